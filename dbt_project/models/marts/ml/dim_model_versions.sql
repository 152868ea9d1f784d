with

model_registry as (
    select * from {{ ref('stg_ml__model_versions') }}
),

-- Everything but the artifact itself; seasonal-naive's validation RMSLE of the same training run
-- sits beside the version's own for comparison.
model_versions as (
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
        artifact_sha256,
        cast(metrics -> 'validation' -> 'seasonal_naive' ->> 'rmsle' as double precision)
            as seasonal_naive_rmsle,
        valid_rmsle
        / nullif(cast(metrics -> 'validation' -> 'seasonal_naive' ->> 'rmsle' as double precision), 0)
        - 1 as rmsle_vs_seasonal_naive,
        jsonb_array_length(features) as feature_count,
        octet_length(artifact) as artifact_bytes
    from model_registry
)

select * from model_versions
