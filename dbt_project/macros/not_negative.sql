{#-
    Generic test: the column is never below zero (nulls pass; test them with not_null).

        columns:
          - name: sales
            data_tests:
              - not_negative

    Fails with one row per negative value.
-#}
{% test not_negative(model, column_name) %}

with

negative_values as (
    select {{ column_name }} as negative_value
    from {{ model }}
    where {{ column_name }} < 0
)

select * from negative_values

{% endtest %}
