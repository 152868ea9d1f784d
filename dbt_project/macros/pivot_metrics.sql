{#-
    Long metric rows to one column per metric: for each metric name, the value of the group's row
    with that name (one such row per group, so max() only picks it out).

        {{ pivot_metrics(['mae', 'rmse']) }}
        -> max(case when metric_name = 'mae' then metric_value end) as mae,
           max(case when metric_name = 'rmse' then metric_value end) as rmse

    `metrics` is a list of names (each column named as its metric) or a mapping of metric name to
    column name ({'segment_mae': 'mae'}). `value` is the column (or expression) picked, e.g.
    'stattest' for the statistical test of a drift metric. The caller groups by its grain.
-#}
{% macro pivot_metrics(metrics, value='metric_value', name_column='metric_name') -%}
    {%- for metric_name in metrics %}
    {%- set column = metrics[metric_name] if metrics is mapping else metric_name %}
    max(case when {{ name_column }} = '{{ metric_name }}' then {{ value }} end) as {{ column }}
    {{- "," if not loop.last }}
    {%- endfor %}
{%- endmacro %}
