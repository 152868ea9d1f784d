-- Analysts' starting point: the champion's alerts by metric, with the first day each was seen, the
-- days it alerted on, its worst severity and how many keys (columns, segments) it named. The same
-- query against the marts is in the README ("The marts for analysts").
with

alerts as (
    select * from {{ ref('fct_alerts') }}
),

champion as (
    select * from {{ ref('dim_model_versions') }}
    where is_champion
),

final as (
    select
        alerts.metric_name,
        min(alerts.slice_date) as first_alert_date,
        count(distinct alerts.slice_date) as alert_days,
        case
            when bool_or(alerts.severity = 'critical') then 'critical' else 'warning'
        end as worst_severity,
        count(distinct concat_ws('=', alerts.column_name, alerts.segment_type, alerts.segment_value))
            as alerted_keys
    from alerts
    inner join champion
        on alerts.model_version = champion.model_version
    where alerts.source = 'batch'
    group by alerts.metric_name
)

select * from final
order by first_alert_date, metric_name
