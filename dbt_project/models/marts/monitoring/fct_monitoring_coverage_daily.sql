{#-
    Rebuilt whole on every build, from the runs, the day totals of ml.predictions (a parallel scan
    of its rows: most of what this model costs) and one index probe of monitoring.metric_values per
    predicted day (not a read of its millions of rows).
-#}
with

predictions as (
    select * from {{ ref('stg_ml__predictions') }}
),

-- coverage of the batch predictions (the request log has no "expected" days to cover)
runs as (
    select * from {{ ref('stg_monitoring__runs') }}
    where source = 'batch'
),

metric_values as (
    select * from {{ ref('stg_monitoring__metric_values') }}
    where source = 'batch'
),

-- the days a model version has predictions for: the days there is something to monitor
predicted_days as (
    select
        model_version,
        sales_date as slice_date,
        count(*) as prediction_rows
    from predictions
    group by model_version, sales_date
),

-- every attempt, the latest first ('skipped' runs confirm that the stored values are current)
ranked_runs as (
    select
        model_version,
        slice_date,
        status,
        error,
        flow_run_id,
        started_at,
        finished_at,
        row_number() over (
            partition by model_version, slice_date
            order by started_at desc, finished_at desc nulls first, run_id asc
        ) as attempt_rank
    from runs
),

run_history as (
    select
        model_version,
        slice_date,
        count(case when status <> 'skipped' then 1 end) as attempts,
        -- an abandoned run (killed before it finished) failed too
        count(case when status in ('failed', 'abandoned') then 1 end) as failed_attempts,
        max(case when status = 'success' then finished_at end) as last_success_at,
        max(case when status in ('failed', 'abandoned') then started_at end) as last_failed_at
    from runs
    group by model_version, slice_date
),

last_attempts as (
    select
        model_version,
        slice_date,
        status as last_attempt_status,
        started_at as last_attempt_at,
        flow_run_id as last_flow_run_id
    from ranked_runs
    where attempt_rank = 1
),

last_failures as (
    select
        model_version,
        slice_date,
        error as last_error,
        row_number() over (
            partition by model_version, slice_date
            order by started_at desc, finished_at desc nulls first
        ) as failure_rank
    from ranked_runs
    where status in ('failed', 'abandoned')
),

coverage as (
    -- the table's column order is the contract's (_monitoring__models.yml)
    select
        predicted_days.slice_date,
        predicted_days.model_version,
        last_attempts.last_attempt_status,
        last_attempts.last_attempt_at,
        last_attempts.last_flow_run_id,
        run_history.last_success_at,
        run_history.last_failed_at,
        last_failures.last_error,
        cast(predicted_days.prediction_rows as integer) as prediction_rows,
        cast(coalesce(run_history.attempts, 0) as integer) as attempts,
        cast(coalesce(run_history.failed_attempts, 0) as integer) as failed_attempts,
        case
            when last_attempts.last_attempt_status in ('failed', 'abandoned') then 'failed'
            when last_attempts.last_attempt_status = 'running' then 'running'
            when stored_days.slice_date is not null then 'computed'
            else 'not_monitored'
        end as monitoring_status,
        stored_days.slice_date is not null as has_metrics
    from predicted_days
    -- whether the day's metric values are stored (the days fct_model_health_daily has): one index
    -- probe of monitoring.metric_values per predicted day, not a read of all its rows
    left join lateral (
        select metric_values.slice_date
        from metric_values
        where
            metric_values.model_version = predicted_days.model_version
            and metric_values.slice_date = predicted_days.slice_date
        order by metric_values.slice_date  -- any row of the day
        limit 1
    ) as stored_days on true
    left join run_history
        on
            predicted_days.model_version = run_history.model_version
            and predicted_days.slice_date = run_history.slice_date
    left join last_attempts
        on
            predicted_days.model_version = last_attempts.model_version
            and predicted_days.slice_date = last_attempts.slice_date
    left join last_failures
        on
            predicted_days.model_version = last_failures.model_version
            and predicted_days.slice_date = last_failures.slice_date
            and last_failures.failure_rank = 1
)

select * from coverage
