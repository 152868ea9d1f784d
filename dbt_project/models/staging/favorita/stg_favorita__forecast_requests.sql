with

source as (
    select * from {{ source('favorita', 'test') }}
),

renamed as (
    select
        id as sales_id,
        date as sales_date,
        store_nbr,
        family,
        onpromotion
    from source
)

select * from renamed
