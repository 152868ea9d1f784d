with

source as (
    select * from {{ source('favorita', 'rejected_rows') }}
),

renamed as (
    select
        file_name,
        line_number,
        reason,
        rejected_at,
        -- the rule broken, without the offending value ("sales is negative: -3" -> "sales is negative")
        regexp_replace(split_part(reason, ':', 1), ' ''.*$', '') as reason_kind
    from source
)

select * from renamed
