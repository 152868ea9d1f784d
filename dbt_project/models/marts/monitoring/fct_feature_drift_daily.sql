with

metric_values as (
    select * from {{ source('monitoring', 'metric_values') }}
),

graded as (
    select * from {{ ref('int_metric_values_graded') }}
),

column_metrics as (
    select
        slice_date,
        model_version,
        source,
        column_name,
        metric_name,
        stattest,
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
        source,
        column_name,
        max(case when metric_name = 'column_drift_score' then metric_value end) as drift_score,
        max(case when metric_name = 'column_drift_score' then stattest end) as stattest,
        max(case when metric_name = 'column_missing_share' then metric_value end) as missing_share,
        max(case when metric_name = 'column_unseen_count' then metric_value end) as unseen_count,
        max(cast(run_id as text)) as run_id,
        max(computed_at) as computed_at
    from column_metrics
    group by slice_date, model_version, source, column_name
),

-- the drift score against the column's learned bounds (int_metric_values_graded)
drift_tests as (
    select
        slice_date,
        model_version,
        source,
        column_name,
        threshold,
        expected_high,
        severity
    from graded
    where metric_name = 'column_drift_score'
),

final as (
    select
        pivoted.slice_date,
        pivoted.model_version,
        pivoted.source,
        pivoted.column_name,
        pivoted.drift_score,
        pivoted.stattest,
        drift_tests.threshold,
        pivoted.missing_share,
        cast(pivoted.run_id as uuid) as run_id,
        pivoted.computed_at,
        drift_tests.expected_high as drift_score_expected_high,
        cast(pivoted.unseen_count as integer) as unseen_count,
        case
            when drift_tests.severity is not null then true
            when drift_tests.threshold is not null then false
        end as drift_detected
    from pivoted
    left join drift_tests
        on
            pivoted.slice_date = drift_tests.slice_date
            and pivoted.model_version = drift_tests.model_version
            and pivoted.source = drift_tests.source
            and pivoted.column_name = drift_tests.column_name
)

select * from final
