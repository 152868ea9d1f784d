{#-
    Generic test: the column lies within [min_value, max_value] (either bound may be omitted;
    nulls pass: test them with not_null). A stand-in for dbt_utils.accepted_range, with the same
    argument names:

        columns:
          - name: drifted_columns_share
            data_tests:
              - accepted_range:
                  arguments:
                    min_value: 0
                    max_value: 1

    Fails with one row per value out of range.
-#}
{% test accepted_range(model, column_name, min_value=none, max_value=none) %}

with

out_of_range as (
    select {{ column_name }} as out_of_range_value
    from {{ model }}
    where
        {{ column_name }} is not null
        and (
            false
            {%- if min_value is not none %}
            or {{ column_name }} < {{ min_value }}
            {%- endif %}
            {%- if max_value is not none %}
            or {{ column_name }} > {{ max_value }}
            {%- endif %}
        )
)

select * from out_of_range

{% endtest %}
