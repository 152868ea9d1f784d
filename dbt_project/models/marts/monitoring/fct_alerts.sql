{{ config(post_hook="{{ record_alert_history() }}") }}

with

graded as (
    select * from {{ ref('int_metric_values_graded') }}
    where severity is not null
),

first_seen as (
    select * from {{ ref('stg_monitoring__alert_history') }}
),

alerts as (
    select
        graded.alert_id,
        graded.slice_date,
        graded.model_version,
        graded.source,
        graded.alert_scope,
        graded.metric_name,
        graded.column_name,
        graded.segment_type,
        graded.segment_value,
        graded.metric_value,
        graded.comparison,
        graded.threshold,
        graded.severity,
        graded.expected_low,
        graded.expected_high,
        graded.distance_outside,
        graded.z_score,
        graded.q_value,
        -- the first sighting of this breach; never later than the value that breaches now
        least(first_seen.first_seen_at, graded.computed_at) as first_seen_at
    from graded
    left join first_seen
        on graded.alert_id = first_seen.alert_id
)

select * from alerts
