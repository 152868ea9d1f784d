with

source as (
    select * from {{ source('favorita', 'train') }}
),

renamed as (
    select
        id as sales_id,
        date as sales_date,
        store_nbr,
        family,
        sales,
        onpromotion,
        _loaded_at as loaded_at
    from source
)

select * from renamed
