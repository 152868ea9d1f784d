-- A critical threshold is never less severe than the warning threshold of the same metric:
-- for `>` metrics critical >= warning, for `<` metrics critical <= warning.
with

thresholds as (
    select * from {{ ref('monitoring_thresholds') }}
),

disordered as (
    select
        metric_name,
        comparison,
        warning_threshold,
        critical_threshold
    from thresholds
    where
        (comparison = '>' and critical_threshold < warning_threshold)
        or (comparison = '<' and critical_threshold > warning_threshold)
)

select * from disordered
