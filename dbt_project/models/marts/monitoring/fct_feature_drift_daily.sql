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
        metric_value
    from metric_values
    where column_name <> '' and segment_type = ''
),

pivoted as (
    select
        slice_date,
        model_version,
        source,
        column_name,
        {{ pivot_metrics({
            'column_drift_score': 'drift_score',
            'column_missing_share': 'missing_share',
            'column_unseen_count': 'unseen_count',
        }) }},
        {{ pivot_metrics({'column_drift_score': 'stattest'}, value='stattest') }},
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

{{ select_with_bounds_hash('final', 'bounds_hashes') }}
