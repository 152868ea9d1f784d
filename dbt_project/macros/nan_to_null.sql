{#-
    A metric value as SQL null when the engine stored NaN (a score Evidently or numpy could not
    compute): PostgreSQL orders NaN above every number, so it would pass `>` thresholds and win
    `max()`. Used once, in staging (stg_monitoring__metric_values): every model downstream reads
    its metric_value.
-#}
{% macro nan_to_null(column) -%}
    nullif({{ column }}, cast('NaN' as double precision))
{%- endmacro %}
