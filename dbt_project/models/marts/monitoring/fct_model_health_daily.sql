{{
    config(
        materialized='incremental',
        unique_key=['slice_date', 'model_version', 'source'],
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        post_hook=['{{ monitored_days_index() }}', '{{ delete_days_without_runs() }}'],
    )
}}

{#-
    Incremental, by monitored day: a build rebuilds only the days whose latest successful run or
    bounds changed, and the day after each (monitored_days.sql); a `--full-refresh` gives the same
    rows (tests/test_incremental_marts.py).
-#}
{%- set rebuilt = monitored_days_to_rebuild() %}

with

-- computed once (materialized): a join estimated at one row would recompute it per row
bounds_hashes as materialized (
    {{ bounds_fingerprints(ref('fct_metric_bounds')) }}
),

metric_values as (
    select * from {{ ref('stg_monitoring__metric_values') }}
    where {{ monitored_days_filter(rebuilt) }}
),

segment_performance as (
    select * from {{ ref('fct_segment_performance_daily') }}
    where {{ monitored_days_filter(rebuilt) }}
),

alerts as (
    select * from {{ ref('fct_alerts') }}
    where {{ monitored_days_filter(rebuilt) }}
),

graded as (
    select * from {{ ref('int_metric_values_graded') }}
    where {{ monitored_days_filter(rebuilt) }}
),

-- every slice that has any metric is a monitored day of that model version
slices as (
    select
        slice_date,
        model_version,
        source,
        max(cast(run_id as text)) as run_id,
        max(computed_at) as computed_at
    from metric_values
    group by slice_date, model_version, source
),

model_metrics as (
    select
        slice_date,
        model_version,
        source,
        metric_name,
        stattest,
        metric_value
    from metric_values
    where column_name = '' and segment_type = ''
),

pivoted as (
    select
        slice_date,
        model_version,
        source,
        {{ pivot_metrics([
            'row_count',
            'expected_row_count',
            'row_count_ratio',
            'prediction_drift_score',
            'missing_values_share',
            'zero_sales_store_share',
            'zero_sales_store_share_reference',
            'unseen_category_count',
            'mean_prediction',
            'mean_sales',
            'mae',
            'rmse',
            'rmsle',
            'reference_mae',
            'reference_rmse',
            'reference_rmsle',
            'rmsle_ratio',
            'mean_log_error',
        ]) }},
        {{ pivot_metrics({'prediction_drift_score': 'prediction_drift_stattest'}, value='stattest') }}
    from model_metrics
    group by slice_date, model_version, source
),

-- the prediction's drift and the columns' drift against their learned bounds
drift_verdicts as (
    select
        slice_date,
        model_version,
        source,
        max(case when metric_name = 'prediction_drift_score' then threshold end) as prediction_drift_threshold,
        bool_or(
            case when metric_name = 'prediction_drift_score' then severity is not null end
        ) as prediction_drift_detected,
        count(case when metric_name = 'column_drift_score' and severity is not null then 1 end)
            as drifted_columns_count,
        count(case when metric_name = 'column_drift_score' then 1 end) as tested_columns_count
    from graded
    group by slice_date, model_version, source
),

degraded_segments as (
    select
        slice_date,
        model_version,
        source,
        count(*) as degraded_segments_count
    from segment_performance
    where degraded
    group by slice_date, model_version, source
),

alert_counts as (
    select
        slice_date,
        model_version,
        source,
        count(*) as alerts_count,
        count(case when alert_scope = 'model' then 1 end) as model_alerts_count,
        count(case when severity = 'critical' then 1 end) as critical_alerts_count
    from alerts
    group by slice_date, model_version, source
),

final as (
    select
        slices.slice_date,
        slices.model_version,
        slices.source,
        cast(pivoted.row_count as integer) as row_count,
        cast(pivoted.expected_row_count as integer) as expected_row_count,
        pivoted.row_count_ratio,
        pivoted.prediction_drift_score,
        pivoted.prediction_drift_stattest,
        drift_verdicts.prediction_drift_threshold,
        drift_verdicts.prediction_drift_detected,
        cast(drift_verdicts.drifted_columns_count as integer) as drifted_columns_count,
        pivoted.missing_values_share,
        pivoted.zero_sales_store_share,
        pivoted.zero_sales_store_share_reference,
        cast(pivoted.unseen_category_count as integer) as unseen_category_count,
        pivoted.mean_prediction,
        pivoted.mean_sales,
        pivoted.mae,
        pivoted.rmse,
        pivoted.rmsle,
        pivoted.reference_mae,
        pivoted.reference_rmse,
        pivoted.reference_rmsle,
        pivoted.rmsle_ratio,
        pivoted.mean_log_error,
        cast(coalesce(degraded_segments.degraded_segments_count, 0) as integer) as degraded_segments_count,
        cast(coalesce(alert_counts.alerts_count, 0) as integer) as alerts_count,
        cast(coalesce(alert_counts.model_alerts_count, 0) as integer) as model_alerts_count,
        cast(coalesce(alert_counts.critical_alerts_count, 0) as integer) as critical_alerts_count,
        cast(slices.run_id as uuid) as run_id,
        slices.computed_at,
        coalesce(alert_counts.alerts_count, 0) > 0 as has_alert,
        cast(drift_verdicts.drifted_columns_count as double precision)
        / nullif(drift_verdicts.tested_columns_count, 0) as drifted_columns_share
    from slices
    left join pivoted
        on
            slices.slice_date = pivoted.slice_date
            and slices.model_version = pivoted.model_version
            and slices.source = pivoted.source
    left join drift_verdicts
        on
            slices.slice_date = drift_verdicts.slice_date
            and slices.model_version = drift_verdicts.model_version
            and slices.source = drift_verdicts.source
    left join degraded_segments
        on
            slices.slice_date = degraded_segments.slice_date
            and slices.model_version = degraded_segments.model_version
            and slices.source = degraded_segments.source
    left join alert_counts
        on
            slices.slice_date = alert_counts.slice_date
            and slices.model_version = alert_counts.model_version
            and slices.source = alert_counts.source
)

{{ select_with_bounds_hash('final', 'bounds_hashes') }}
