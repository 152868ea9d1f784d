with

source as (
    select * from {{ source('favorita', 'changed_days') }}
),

renamed as (
    select
        load_id,
        table_name,
        day as changed_date,
        rows_inserted,
        rows_changed,
        replaced,
        recorded_at,
        features_built_at,
        -- what reaches the raw tables: rows inserted, or changed rows that were replaced
        rows_inserted > 0 or (replaced and rows_changed > 0) as is_applied
    from source
)

select * from renamed
