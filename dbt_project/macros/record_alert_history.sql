{#-
    fct_alerts' post-hook: add the alerts just built to monitoring.alert_history, the first sighting
    of each (a table the warehouse bootstrap owns, so `--full-refresh` cannot erase it). An alert
    already there keeps its row: first_seen_at never moves, and concurrent builds never duplicate.
-#}
{% macro record_alert_history() %}
    insert into {{ source('monitoring', 'alert_history') }} (
        alert_id, slice_date, model_version, metric_name, column_name, segment_type,
        segment_value, first_severity, first_seen_at
    )
    select
        alert_id, slice_date, model_version, metric_name, column_name, segment_type,
        segment_value, severity, first_seen_at
    from {{ this }}
    on conflict (alert_id) do nothing
{% endmacro %}
