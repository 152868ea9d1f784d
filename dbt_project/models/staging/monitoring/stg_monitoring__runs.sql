with

runs as (
    select * from {{ source('monitoring', 'runs') }}
),

renamed as (
    select
        run_id,
        flow_run_id,
        slice_date,
        model_version,
        source,
        config_hash,
        reference_hash,
        evidently_version,
        status,
        row_count,
        error,
        started_at,
        finished_at
    from runs
)

select * from renamed
