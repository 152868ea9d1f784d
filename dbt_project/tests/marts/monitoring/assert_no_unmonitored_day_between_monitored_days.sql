-- No unexplained gaps: between the first and the last day of a model version that monitoring
-- attempted, every day with predictions of that version was attempted. A day whose computation
-- failed (or is still running) is not a gap here: it is a known one, named with its error in
-- fct_monitoring_coverage_daily and in the run's summary, and the next run computes it again; the
-- marts are built from the days that succeeded. A day nobody attempted is a day the pipeline lost
-- without a trace, and fails the build. Days without predictions (e.g. December 25, when the
-- stores are closed) have no row in the coverage mart, so they are not gaps either.
with

coverage as (
    select * from {{ ref('fct_monitoring_coverage_daily') }}
),

attempted_ranges as (
    select
        model_version,
        min(slice_date) as first_day,
        max(slice_date) as last_day
    from coverage
    where monitoring_status <> 'not_monitored'
    group by model_version
),

unexplained_gaps as (
    select
        coverage.model_version,
        coverage.slice_date,
        coverage.prediction_rows
    from coverage
    inner join attempted_ranges
        on
            coverage.model_version = attempted_ranges.model_version
            and coverage.slice_date between attempted_ranges.first_day and attempted_ranges.last_day
    where coverage.monitoring_status = 'not_monitored'
)

select * from unexplained_gaps
