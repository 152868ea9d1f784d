{{
    config(
        materialized='incremental',
        unique_key='alert_id',
        incremental_strategy='append',
        on_schema_change='fail',
    )
}}

{#-
    The memory of the alerts: one row per breach ever seen, with the metric's computed_at the first
    time a build saw it. Append-only: a breach already recorded is never rewritten, so a forced
    recompute or a recompute after late actuals (new computed_at) keeps the first sighting, and
    rerunning a backfill changes nothing. `dbt build --full-refresh` forgets the history (the
    current breaches are then first seen at their computed_at).
-#}

with

graded as (
    select * from {{ ref('int_metric_values_graded') }}
    where severity is not null
),

{% if is_incremental() %}
    already_seen as (
        select * from {{ this }}
    ),
{% endif %}

new_breaches as (
    select
        graded.alert_id,
        graded.slice_date,
        graded.model_version,
        graded.metric_name,
        graded.column_name,
        graded.segment_type,
        graded.segment_value,
        graded.severity as first_severity,
        graded.computed_at as first_seen_at
    from graded
    {% if is_incremental() %}
        left join already_seen
            on graded.alert_id = already_seen.alert_id
        where already_seen.alert_id is null
    {% endif %}
)

select * from new_breaches
