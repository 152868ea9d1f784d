with

model_registry as (
    select * from {{ source('ml', 'model_registry') }}
),

renamed as (
    select
        model_version,
        algorithm,
        is_champion,
        created_at,
        train_start,
        train_end,
        valid_start,
        valid_end,
        monitor_from,
        valid_rmsle,
        valid_mae,
        valid_rmse,
        features,
        params,
        metrics,
        artifact,
        artifact_sha256,
        sklearn_version
    from model_registry
)

select * from renamed
