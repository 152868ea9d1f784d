{#-
    A metric value as SQL null when the engine stored NaN (a score Evidently or numpy could not
    compute): PostgreSQL orders NaN above every number, so it would pass `>` thresholds and win
    `max()`. Used by every model that reads monitoring.metric_values.
-#}
{% macro nan_to_null(column) -%}
    nullif({{ column }}, cast('NaN' as double precision))
{%- endmacro %}
