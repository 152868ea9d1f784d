with

source as (
    select * from {{ source('favorita', 'oil') }}
),

renamed as (
    select
        date as price_date,
        dcoilwtico as oil_price
    from source
)

select * from renamed
