{{ config(materialized='view', schema='intermediate') }}

{#-
    Every metric value beyond a threshold of the monitoring_thresholds seed, graded warning or
    critical: the current breaches (a recomputed slice replaces its own). fct_alerts_first_seen
    remembers when each was first seen, and fct_alerts publishes them.
-#}

with

metric_values as (
    select * from {{ source('monitoring', 'metric_values') }}
),

segment_performance as (
    select * from {{ ref('fct_segment_performance_daily') }}
),

thresholds as (
    select * from {{ ref('monitoring_thresholds') }}
),

-- every metric the engine wrote, at any scope; the seed decides which of them can alert
engine_values as (
    select
        slice_date,
        model_version,
        metric_name,
        column_name,
        segment_type,
        segment_value,
        {{ nan_to_null('value') }} as metric_value,
        computed_at
    from metric_values
),

-- a segment alerts on its error ratio only when the engine found it significantly worse than its
-- reference (Benjamini-Hochberg q-value), so small noisy segments do not alert by chance
degraded_segment_values as (
    select
        slice_date,
        model_version,
        'segment_rmsle_ratio' as metric_name,
        '' as column_name,
        segment_type,
        segment_value,
        rmsle_ratio as metric_value,
        computed_at
    from segment_performance
    where degraded
),

alertable_values as (
    select * from engine_values
    union all
    select * from degraded_segment_values
),

graded as (
    select
        alertable_values.*,
        thresholds.comparison,
        thresholds.warning_threshold,
        thresholds.critical_threshold,
        case
            when thresholds.comparison = '>' and alertable_values.metric_value > thresholds.critical_threshold
                then 'critical'
            when thresholds.comparison = '<' and alertable_values.metric_value < thresholds.critical_threshold
                then 'critical'
            when thresholds.comparison = '>' and alertable_values.metric_value > thresholds.warning_threshold
                then 'warning'
            when thresholds.comparison = '<' and alertable_values.metric_value < thresholds.warning_threshold
                then 'warning'
        end as severity
    from alertable_values
    inner join thresholds
        on alertable_values.metric_name = thresholds.metric_name
),

breaches as (
    select
        slice_date,
        model_version,
        metric_name,
        column_name,
        segment_type,
        segment_value,
        metric_value,
        comparison,
        severity,
        computed_at,
        case when severity = 'critical' then critical_threshold else warning_threshold end as threshold,
        case
            when segment_type <> '' then 'segment'
            when column_name <> '' then 'column'
            else 'model'
        end as alert_scope,
        md5(
            concat_ws(
                '|',
                cast(slice_date as text),
                model_version,
                metric_name,
                column_name,
                segment_type,
                segment_value
            )
        ) as alert_id
    from graded
    where severity is not null
)

select * from breaches
