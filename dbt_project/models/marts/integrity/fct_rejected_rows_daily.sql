with

rejected_rows as (
    select * from {{ ref('stg_favorita__rejected_rows') }}
),

counted as (
    select
        cast(rejected_at as date) as rejected_date,
        file_name,
        reason_kind as reason,
        count(*) as rejected_rows,
        max(rejected_at) as last_rejected_at
    from rejected_rows
    group by cast(rejected_at as date), file_name, reason_kind
)

select * from counted
