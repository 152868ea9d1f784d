{#-
    Generic test: every combination of `columns` in the model exists in `to` (a composite foreign
    key; the built-in `relationships` test takes one column only):

        data_tests:
          - relationships_combination:
              arguments:
                to: ref('fct_model_health_daily')
                columns: [slice_date, model_version]

    Fails with one row per orphan combination.
-#}
{% test relationships_combination(model, to, columns) %}

{%- set columns_csv = columns | join(', ') %}

with

child_keys as (
    select distinct {{ columns_csv }}
    from {{ model }}
),

parent_keys as (
    select distinct {{ columns_csv }}
    from {{ to }}
),

orphans as (
    select child_keys.*
    from child_keys
    left join parent_keys
        on
        {%- for column in columns %}
            {% if not loop.first %}and {% endif %}child_keys.{{ column }} = parent_keys.{{ column }}
        {%- endfor %}
    where parent_keys.{{ columns[0] }} is null
)

select * from orphans

{% endtest %}
