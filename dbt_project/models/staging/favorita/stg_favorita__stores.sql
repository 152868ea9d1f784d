with

source as (
    select * from {{ source('favorita', 'stores') }}
),

renamed as (
    select
        store_nbr,
        city,
        state,
        type as store_type,
        cluster
    from source
)

select * from renamed
