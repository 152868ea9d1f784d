{#-
    A view: the marts read it inlined, so the planner sees monitoring.metric_values itself. The
    post-hook refreshes that table's statistics when a good share of it changed (a fresh 90-day
    backfill was otherwise planned as a nested loop of minutes by int_metric_values_graded); the view is rebuilt before every model that
    reads it, by any selection that builds the metrics mart.
-#}
{{ config(post_hook="{{ analyze_when_changed(source('monitoring', 'metric_values')) }}") }}

with

metric_values as (
    select * from {{ source('monitoring', 'metric_values') }}
),

renamed as (
    select
        slice_date,
        model_version,
        source,
        metric_family,
        metric_name,
        column_name,
        segment_type,
        segment_value,
        stattest,
        threshold as evidently_threshold,
        detected as evidently_detected,
        run_id,
        computed_at,
        -- NaN (a score the engine could not compute) as null: NaN would pass every `>` and win max()
        {{ nan_to_null('value') }} as metric_value
    from metric_values
)

select * from renamed
