-- Analysts' starting point: each model version's validation error against the seasonal-naive
-- forecast (the same weekday last week), beside its mean daily error over the days it was
-- monitored. The same query against the marts is in the README ("The marts for analysts").
with

versions as (
    select * from {{ ref('dim_model_versions') }}
),

health as (
    select * from {{ ref('fct_model_health_daily') }}
    where source = 'batch'
),

monitored as (
    select
        model_version,
        count(*) as monitored_days,
        avg(rmsle) as mean_daily_rmsle
    from health
    group by model_version
),

final as (
    select
        versions.model_version,
        versions.is_champion,
        versions.valid_rmsle,
        versions.seasonal_naive_rmsle,
        versions.rmsle_vs_seasonal_naive,
        monitored.monitored_days,
        monitored.mean_daily_rmsle
    from versions
    left join monitored
        on versions.model_version = monitored.model_version
)

select * from final
order by model_version desc
