{#-
    Generic test: the combination of the given columns is unique in the model.
    A stand-in for dbt_utils.unique_combination_of_columns (dbt packages cannot be installed
    offline), with the same argument name, so switching back later is a one-word change:

        data_tests:
          - unique_combination_of_columns:
              arguments:
                combination_of_columns: [sales_date, store_nbr, family]

    Fails with one row per duplicated combination (and how many times it occurs).
-#}
{% test unique_combination_of_columns(model, combination_of_columns) %}

{%- set columns_csv = combination_of_columns | join(', ') %}

with

duplicated_combinations as (
    select
        {{ columns_csv }},
        count(*) as occurrences
    from {{ model }}
    group by {{ columns_csv }}
    having count(*) > 1
)

select * from duplicated_combinations

{% endtest %}
