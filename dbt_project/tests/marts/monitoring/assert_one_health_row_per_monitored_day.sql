-- Every day and model version the monitoring flow computed successfully has its row in
-- fct_model_health_daily (uniqueness is tested on the model): one row per monitored day.
with

runs as (
    select * from {{ ref('stg_monitoring__runs') }}
),

model_health as (
    select * from {{ ref('fct_model_health_daily') }}
),

metric_values as (
    select * from {{ ref('stg_monitoring__metric_values') }}
),

-- a successful run whose slice still has metric values (a later run may have replaced them): one probe
-- of the metric values' key per run (`limit 1` in a lateral join), not a join with all of them
monitored_days as (
    select distinct
        runs.slice_date,
        runs.model_version,
        runs.source
    from runs
    cross join
        lateral (
            select 1 as found
            from metric_values
            where
                metric_values.slice_date = runs.slice_date
                and metric_values.model_version = runs.model_version
                and metric_values.source = runs.source
            -- any one row says the slice has values: no order needed
            limit 1  -- noqa: AM09
        ) as with_values
    where runs.status = 'success'
),

missing_days as (
    select monitored_days.*
    from monitored_days
    left join model_health
        on
            monitored_days.slice_date = model_health.slice_date
            and monitored_days.model_version = model_health.model_version
            and monitored_days.source = model_health.source
    where model_health.slice_date is null
)

select * from missing_days
