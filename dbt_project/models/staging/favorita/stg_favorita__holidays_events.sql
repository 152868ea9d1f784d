with

source as (
    select * from {{ source('favorita', 'holidays_events') }}
),

renamed as (
    select
        date as holiday_date,
        type as holiday_type,
        locale,
        locale_name,
        description,
        coalesce(transferred, false) as is_transferred
    from source
)

select * from renamed
