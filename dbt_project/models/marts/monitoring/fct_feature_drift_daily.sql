with

metric_values as (
    select * from {{ source('monitoring', 'metric_values') }}
),

column_metrics as (
    select
        slice_date,
        model_version,
        column_name,
        metric_name,
        stattest,
        threshold,
        detected,
        run_id,
        computed_at,
        {{ nan_to_null('value') }} as metric_value
    from metric_values
    where column_name <> '' and segment_type = ''
),

pivoted as (
    select
        slice_date,
        model_version,
        column_name,
        max(case when metric_name = 'column_drift_score' then metric_value end) as drift_score,
        max(case when metric_name = 'column_drift_score' then stattest end) as stattest,
        max(case when metric_name = 'column_drift_score' then threshold end) as threshold,
        bool_or(case when metric_name = 'column_drift_score' then detected end) as drift_detected,
        max(case when metric_name = 'column_missing_share' then metric_value end) as missing_share,
        max(cast(run_id as text)) as run_id,
        max(computed_at) as computed_at
    from column_metrics
    group by slice_date, model_version, column_name
),

final as (
    select
        slice_date,
        model_version,
        column_name,
        drift_score,
        stattest,
        threshold,
        drift_detected,
        missing_share,
        cast(run_id as uuid) as run_id,
        computed_at
    from pivoted
)

select * from final
