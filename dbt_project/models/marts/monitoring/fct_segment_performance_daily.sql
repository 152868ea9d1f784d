with

metric_values as (
    select * from {{ source('monitoring', 'metric_values') }}
),

segment_metrics as (
    select
        slice_date,
        model_version,
        segment_type,
        segment_value,
        metric_name,
        detected,
        run_id,
        computed_at,
        {{ nan_to_null('value') }} as metric_value
    from metric_values
    where segment_type <> ''
),

pivoted as (
    select
        slice_date,
        model_version,
        segment_type,
        segment_value,
        cast(max(case when metric_name = 'segment_row_count' then metric_value end) as integer) as row_count,
        max(case when metric_name = 'segment_mae' then metric_value end) as mae,
        max(case when metric_name = 'segment_rmse' then metric_value end) as rmse,
        max(case when metric_name = 'segment_rmsle' then metric_value end) as rmsle,
        max(case when metric_name = 'segment_reference_rmsle' then metric_value end) as reference_rmsle,
        max(case when metric_name = 'segment_p_value' then metric_value end) as p_value,
        max(case when metric_name = 'segment_q_value' then metric_value end) as q_value,
        coalesce(bool_or(case when metric_name = 'segment_q_value' then detected end), false) as degraded,
        max(cast(run_id as text)) as run_id,
        max(computed_at) as computed_at
    from segment_metrics
    group by slice_date, model_version, segment_type, segment_value
),

final as (
    select
        slice_date,
        model_version,
        segment_type,
        segment_value,
        row_count,
        mae,
        rmse,
        rmsle,
        reference_rmsle,
        p_value,
        q_value,
        degraded,
        cast(run_id as uuid) as run_id,
        computed_at,
        case when reference_rmsle > 0 then rmsle / reference_rmsle end as rmsle_ratio
    from pivoted
)

select * from final
