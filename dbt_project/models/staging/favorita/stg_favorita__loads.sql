with

source as (
    select * from {{ source('favorita', 'load_log') }}
),

renamed as (
    select
        load_id,
        file_name,
        rows_read,
        rows_loaded,
        rows_rejected,
        rows_skipped,
        rows_changed,
        updated,
        seconds as load_seconds,
        loaded_at
    from source
)

select * from renamed
