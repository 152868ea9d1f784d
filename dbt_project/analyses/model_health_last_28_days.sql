-- Analysts' starting point: the champion's health over its last 28 monitored days, with the
-- alerts of each day. Compile with `salesmon dbt compile` and run the SQL in
-- target/compiled/, or copy it and replace the refs with marts.<model>.
with

health as (
    select * from {{ ref('fct_model_health_daily') }}
),

alerts as (
    select * from {{ ref('fct_alerts') }}
),

champion as (
    select * from {{ ref('dim_model_versions') }}
    where is_champion
),

last_day as (
    select max(slice_date) as last_slice_date from health
),

recent_health as (
    select health.*
    from health
    inner join champion
        on health.model_version = champion.model_version
    cross join last_day
    where health.slice_date > last_day.last_slice_date - 28
),

alerts_per_day as (
    select
        slice_date,
        model_version,
        string_agg(metric_name || ' (' || severity || ')', ', ' order by metric_name) as alerts
    from alerts
    group by slice_date, model_version
),

final as (
    select
        recent_health.slice_date,
        recent_health.model_version,
        recent_health.row_count,
        recent_health.prediction_drift_score,
        recent_health.drifted_columns_share,
        recent_health.missing_values_share,
        recent_health.rmsle,
        recent_health.rmsle_ratio,
        alerts_per_day.alerts
    from recent_health
    left join alerts_per_day
        on
            recent_health.slice_date = alerts_per_day.slice_date
            and recent_health.model_version = alerts_per_day.model_version
)

select * from final
