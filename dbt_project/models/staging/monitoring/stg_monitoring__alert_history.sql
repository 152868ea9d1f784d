with

source as (
    select * from {{ source('monitoring', 'alert_history') }}
),

renamed as (
    select
        alert_id,
        slice_date,
        model_version,
        metric_name,
        column_name,
        segment_type,
        segment_value,
        first_severity,
        first_seen_at
    from source
)

select * from renamed
