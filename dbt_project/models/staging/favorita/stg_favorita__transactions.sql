with

source as (
    select * from {{ source('favorita', 'transactions') }}
),

renamed as (
    select
        date as transaction_date,
        store_nbr,
        transactions
    from source
)

select * from renamed
