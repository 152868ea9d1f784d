-- A critical alert is never less unusual than a warning: the critical sensitivity is at least
-- the sensitivity, and both are positive.
with

thresholds as (
    select * from {{ ref('monitoring_thresholds') }}
),

disordered as (
    select
        metric_name,
        sensitivity,
        critical_sensitivity
    from thresholds
    where sensitivity <= 0 or critical_sensitivity < sensitivity
)

select * from disordered
