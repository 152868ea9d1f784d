with

metric_bounds as (
    select * from {{ source('monitoring', 'metric_bounds') }}
),

renamed as (
    select
        model_version,
        config_hash,
        metric_name,
        column_name,
        segment_type,
        segment_value,
        weekday,
        value_scale,
        center,
        scale,
        sample_size,
        seasonality,
        observed_min,
        observed_max,
        possible_min,
        possible_max,
        calibrated_at
    from metric_bounds
)

select * from renamed
