with

predictions as (
    select * from {{ source('ml', 'predictions') }}
),

renamed as (
    select
        sales_date,
        store_nbr,
        family,
        model_version,
        prediction,
        scored_at
    from predictions
)

select * from renamed
