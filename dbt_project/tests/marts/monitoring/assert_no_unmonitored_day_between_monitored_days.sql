-- No gaps: between the first and the last monitored day of a model version, every day with
-- predictions of that version has its row in fct_model_health_daily. Days without predictions
-- (e.g. December 25, when the stores are closed and the data has no rows) are not gaps.
with

model_health as (
    select * from {{ ref('fct_model_health_daily') }}
),

predictions as (
    select * from {{ source('ml', 'predictions') }}
),

monitored_ranges as (
    select
        model_version,
        min(slice_date) as first_day,
        max(slice_date) as last_day
    from model_health
    group by model_version
),

predicted_days as (
    select distinct
        predictions.model_version,
        predictions.sales_date
    from predictions
    inner join monitored_ranges
        on
            predictions.model_version = monitored_ranges.model_version
            and predictions.sales_date between monitored_ranges.first_day and monitored_ranges.last_day
),

missing_days as (
    select predicted_days.*
    from predicted_days
    left join model_health
        on
            predicted_days.model_version = model_health.model_version
            and predicted_days.sales_date = model_health.slice_date
    where model_health.slice_date is null
)

select * from missing_days
