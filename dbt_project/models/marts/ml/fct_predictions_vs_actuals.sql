{{
    config(
        indexes=[
            {'columns': ['sales_date', 'store_nbr', 'family', 'model_version'], 'unique': true},
            {'columns': ['model_version', 'sales_date']},
        ],
    )
}}

with

predictions as (
    select * from {{ ref('stg_ml__predictions') }}
),

sales as (
    select * from {{ ref('stg_favorita__sales') }}
),

stores as (
    select * from {{ ref('stg_favorita__stores') }}
),

-- Actual sales are null until the day's sales are loaded; the errors are null with them
-- (greatest() would skip a null, so only the never-null prediction goes through it).
predictions_with_actuals as (
    select
        predictions.sales_date,
        predictions.store_nbr,
        predictions.family,
        predictions.model_version,
        stores.store_type,
        stores.cluster,
        stores.city,
        stores.state,
        predictions.prediction,
        sales.sales as actual_sales,
        predictions.scored_at,
        sales.sales is not null as has_actual,
        predictions.prediction - sales.sales as error,
        abs(predictions.prediction - sales.sales) as abs_error,
        power(ln(1 + greatest(predictions.prediction, 0)) - ln(1 + sales.sales), 2)
            as squared_log_error
    from predictions
    left join sales
        on
            predictions.sales_date = sales.sales_date
            and predictions.store_nbr = sales.store_nbr
            and predictions.family = sales.family
    left join stores
        on predictions.store_nbr = stores.store_nbr
)

select * from predictions_with_actuals
