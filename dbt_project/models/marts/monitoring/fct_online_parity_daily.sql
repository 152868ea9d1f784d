{#-
    Online/offline parity, day by day: for the requests the service answered for a day that batch
    scoring also predicted (same store, family and model version), the share whose features or
    prediction differ from the batch side, overall (column_name '') and per column. Any share
    above zero is outside the expected range (the seed's floor can allow some) and alerts as
    `parity_mismatch_share` in fct_alerts.
-#}

with

metric_values as (
    select * from {{ ref('stg_monitoring__metric_values') }}
    where source = 'online'
),

graded as (
    select * from {{ ref('int_metric_values_graded') }}
    where metric_name = 'parity_mismatch_share'
),

compared as (
    select
        slice_date,
        model_version,
        metric_value as compared_rows
    from metric_values
    where metric_name = 'parity_compared_rows'
),

final as (
    select
        graded.slice_date,
        graded.model_version,
        graded.column_name,
        graded.metric_value as mismatch_share,
        graded.severity,
        graded.computed_at,
        cast(compared.compared_rows as integer) as compared_rows,
        graded.severity is not null as differs
    from graded
    inner join compared
        on
            graded.slice_date = compared.slice_date
            and graded.model_version = compared.model_version
    where graded.source = 'online'
)

select * from final
