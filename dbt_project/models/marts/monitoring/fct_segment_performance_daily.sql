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

graded as (
    select * from {{ ref('int_metric_values_graded') }}
    where {{ monitored_days_filter(rebuilt) }}
),

segment_metrics as (
    select
        slice_date,
        model_version,
        source,
        segment_type,
        segment_value,
        metric_name,
        run_id,
        computed_at,
        metric_value
    from metric_values
    where segment_type <> ''
),

pivoted as (
    select
        slice_date,
        model_version,
        source,
        segment_type,
        segment_value,
        {{ pivot_metrics({
            'segment_row_count': 'row_count',
            'segment_mae': 'mae',
            'segment_rmse': 'rmse',
            'segment_rmsle': 'rmsle',
            'segment_reference_rmsle': 'reference_rmsle',
            'segment_rmsle_ratio': 'rmsle_ratio',
            'segment_mean_log_error': 'mean_log_error',
        }) }},
        max(cast(run_id as text)) as run_id,
        max(computed_at) as computed_at
    from segment_metrics
    group by slice_date, model_version, source, segment_type, segment_value
),

-- the ratio tested against the segment's own day-to-day history (int_metric_values_graded)
ratio_tests as (
    select
        slice_date,
        model_version,
        source,
        segment_type,
        segment_value,
        expected_high,
        p_value,
        q_value,
        severity
    from graded
    where metric_name = 'segment_rmsle_ratio'
),

final as (
    select
        pivoted.slice_date,
        pivoted.model_version,
        pivoted.source,
        pivoted.segment_type,
        pivoted.segment_value,
        cast(pivoted.row_count as integer) as row_count,
        pivoted.mae,
        pivoted.rmse,
        pivoted.rmsle,
        pivoted.reference_rmsle,
        ratio_tests.p_value,
        ratio_tests.q_value,
        cast(pivoted.run_id as uuid) as run_id,
        pivoted.computed_at,
        pivoted.rmsle_ratio,
        pivoted.mean_log_error,
        ratio_tests.expected_high as rmsle_ratio_expected_high,
        coalesce(ratio_tests.severity is not null, false) as degraded
    from pivoted
    left join ratio_tests
        on
            pivoted.slice_date = ratio_tests.slice_date
            and pivoted.model_version = ratio_tests.model_version
            and pivoted.source = ratio_tests.source
            and pivoted.segment_type = ratio_tests.segment_type
            and pivoted.segment_value = ratio_tests.segment_value
)

{{ select_with_bounds_hash('final', 'bounds_hashes') }}
