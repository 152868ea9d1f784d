{{ config(post_hook='analyze {{ this }}') }}

with

metric_bounds as (
    select * from {{ ref('stg_monitoring__metric_bounds') }}
),

thresholds as (
    select * from {{ ref('monitoring_thresholds') }}
),

-- the learned centre and spread, widened by the sensitivity a person set (on the scale they were
-- learned on: ln(value) for error ratios)
widened as (
    select
        metric_bounds.model_version,
        metric_bounds.metric_name,
        metric_bounds.column_name,
        metric_bounds.segment_type,
        metric_bounds.segment_value,
        metric_bounds.weekday,
        metric_bounds.center,
        metric_bounds.scale,
        metric_bounds.sample_size,
        metric_bounds.seasonality,
        metric_bounds.observed_min,
        metric_bounds.observed_max,
        thresholds.direction,
        thresholds.sensitivity,
        thresholds.critical_sensitivity,
        thresholds.floor_low,
        thresholds.floor_high,
        thresholds.min_sales_share,
        thresholds.persistence_days,
        thresholds.enabled,
        metric_bounds.config_hash,
        metric_bounds.calibrated_at,
        metric_bounds.value_scale,
        metric_bounds.possible_min,
        metric_bounds.possible_max,
        metric_bounds.center - thresholds.sensitivity * metric_bounds.scale as low_on_scale,
        metric_bounds.center + thresholds.sensitivity * metric_bounds.scale as high_on_scale
    from metric_bounds
    inner join thresholds
        on metric_bounds.metric_name = thresholds.metric_name
),

-- back to the metric's own unit, within the values it can take
expected as (
    select
        *,
        greatest(
            case when value_scale = 'log' then exp(low_on_scale) else low_on_scale end,
            coalesce(possible_min, case when value_scale = 'log' then exp(low_on_scale) else low_on_scale end)
        ) as expected_low,
        least(
            case when value_scale = 'log' then exp(high_on_scale) else high_on_scale end,
            coalesce(possible_max, case when value_scale = 'log' then exp(high_on_scale) else high_on_scale end)
        ) as expected_high
    from widened
),

-- where an alert starts on each side: the expected range, or a person's floor when that is wider
final as (
    select
        *,
        case
            when direction in ('below', 'both') then least(expected_low, coalesce(floor_low, expected_low))
        end as alert_below,
        case
            when direction in ('above', 'both') then greatest(expected_high, coalesce(floor_high, expected_high))
        end as alert_above
    from expected
)

select
    model_version,
    metric_name,
    column_name,
    segment_type,
    segment_value,
    weekday,
    value_scale,
    center,
    scale,
    sample_size,
    seasonality,
    observed_min,
    observed_max,
    direction,
    sensitivity,
    critical_sensitivity,
    floor_low,
    floor_high,
    min_sales_share,
    persistence_days,
    enabled,
    config_hash,
    calibrated_at,
    expected_low,
    expected_high,
    alert_below,
    alert_above
from final
