with

loads as (
    select * from {{ ref('stg_favorita__loads') }}
),

final as (
    select
        load_id,
        file_name,
        rows_read,
        rows_loaded,
        rows_rejected,
        rows_skipped,
        rows_changed,
        updated,
        load_seconds,
        loaded_at
    from loads
)

select * from final
