with

prediction_log as (
    select * from {{ source('ml', 'prediction_log') }}
),

renamed as (
    select
        request_id,
        item_index,
        received_at,
        status,
        error,
        sales_date,
        store_nbr,
        family,
        model_version,
        prediction,
        latency_ms
    from prediction_log
)

select * from renamed
