-- depends_on: {{ ref('stg_favorita__changed_days') }}

{{
    config(
        materialized='incremental',
        unique_key=['sales_date', 'store_nbr', 'family'],
        incremental_strategy='delete+insert',
        on_schema_change='fail',
        indexes=[{'columns': ['sales_date', 'store_nbr', 'family'], 'unique': true}],
        post_hook="{{ mark_changed_days_built() }}",
    )
}}

{#-
    Incremental runs rebuild the days from `process_from` on: the first day still waiting for its
    actual sales (a forecast-request row), or else the last day in the table (it may have been
    loaded partly). They also rebuild the days older than that whose raw rows a load inserted or
    replaced (stg_favorita__changed_days, not built yet), each with the `lookback_days` after it
    whose lags and rolling windows read it; the var `features_rebuild_from` (a date) rebuilds every
    day from it on. The sales of the `lookback_days` before the first rebuilt day are read again to
    compute the lags and rolling windows, which reach back 28 days at most, so an incremental run
    gives the same rows as a full refresh. The post-hook marks the changed days recorded before
    this run as built.
-#}
{%- set lookback_days = 28 -%}
{%- set process_from = none -%}
{%- set first_changed = none -%}
{%- set read_from = none -%}
{%- set first_built = none -%}
{%- if is_incremental() and execute -%}
    {%- set bounds_query -%}
        with process_from as (
            select coalesce(min(sales_date) filter (where is_forecast_request), max(sales_date)) as first_day
            from {{ this }}
        ),

        changed as (
            select min(changed_date) as first_day
            from {{ ref('stg_favorita__changed_days') }}
            where is_applied and features_built_at is null
        )

        select process_from.first_day, changed.first_day
        from process_from
        cross join changed
    {%- endset -%}
    {%- set bounds = run_query(bounds_query).rows[0] -%}
    {%- if bounds[0] is not none -%}
        {%- set process_from = bounds[0] -%}
        {%- set first_changed = bounds[1] -%}
        {%- set rebuild_from = var('features_rebuild_from', none) -%}
        {%- if rebuild_from is not none and modules.datetime.date.fromisoformat(rebuild_from | string) < process_from -%}
            {%- set process_from = modules.datetime.date.fromisoformat(rebuild_from | string) -%}
        {%- endif -%}
        {%- if first_changed is not none and first_changed >= process_from -%}
            {%- set first_changed = none -%}
        {%- endif -%}
        {%- set first_built = [process_from, first_changed] | reject('none') | min -%}
        {%- set read_from = first_built - modules.datetime.timedelta(days=lookback_days) -%}
    {%- endif -%}
{%- endif -%}

with

sales_and_requests as (
    select * from {{ ref('int_sales_and_requests_unioned') }}
    {%- if read_from is not none %}
        where sales_date >= cast('{{ read_from }}' as date)
    {%- endif %}
),

calendar_days as (
    select * from {{ ref('int_calendar_days') }}
),

store_holidays as (
    select * from {{ ref('int_store_holidays_matched') }}
),

oil_prices as (
    select * from {{ ref('int_oil_prices_filled') }}
),

stores as (
    select * from {{ ref('stg_favorita__stores') }}
),

transactions as (
    select * from {{ ref('stg_favorita__transactions') }}
),

-- Lags by calendar day, not by row (25 December has no rows, a store may miss days): each frame
-- is a RANGE of days ending the day before sales_date, so nothing of the day itself leaks in.
-- A lag is the first or last row of a frame, kept only when it is the right day. avg and
-- stddev_samp skip null sales. Three frames, three passes over the sorted rows.
sales_windows as (
    select
        sales_date,
        store_nbr,
        family,
        sales,
        onpromotion,
        is_forecast_request,
        case
            when last_value(sales_date) over last_7_days = sales_date - interval '1 day'
                then last_value(sales) over last_7_days
        end as sales_lag_1,
        case
            when first_value(sales_date) over last_7_days = sales_date - interval '7 days'
                then first_value(sales) over last_7_days
        end as sales_lag_7,
        case
            when last_value(sales_date) over days_21_to_14_before = sales_date - interval '14 days'
                then last_value(sales) over days_21_to_14_before
        end as sales_lag_14,
        case
            when first_value(sales_date) over days_21_to_14_before = sales_date - interval '21 days'
                then first_value(sales) over days_21_to_14_before
        end as sales_lag_21,
        case
            when first_value(sales_date) over last_28_days = sales_date - interval '28 days'
                then first_value(sales) over last_28_days
        end as sales_lag_28,
        avg(sales) over last_7_days as sales_mean_7,
        stddev_samp(sales) over last_7_days as sales_std_7,
        avg(sales) over last_28_days as sales_mean_28,
        stddev_samp(sales) over last_28_days as sales_std_28
    from sales_and_requests
    window
        series_days as (partition by store_nbr, family order by sales_date),
        last_7_days as (series_days range between interval '7 days' preceding and interval '1 day' preceding),
        days_21_to_14_before as (
            series_days range between interval '21 days' preceding and interval '14 days' preceding
        ),
        last_28_days as (series_days range between interval '28 days' preceding and interval '1 day' preceding)
),

{%- if first_changed is not none %}

-- Older days whose raw rows changed, and the days whose lags and windows read them.
changed_windows as (
    select distinct cast(affected.sales_date as date) as sales_date
    from {{ ref('stg_favorita__changed_days') }} as changed_days
    cross join lateral generate_series(
        changed_days.changed_date,
        changed_days.changed_date + {{ lookback_days }},
        interval '1 day'
    ) as affected (sales_date)
    where changed_days.is_applied and changed_days.features_built_at is null
),
{%- endif %}

days_to_build as (
    select * from sales_windows
    {%- if process_from is not none %}
        where
            sales_date >= cast('{{ process_from }}' as date)
            {%- if first_changed is not none %}
                or sales_date in (select changed_windows.sales_date from changed_windows)
            {%- endif %}
    {%- endif %}
),

-- Transactions are known the day after: shift them one day forward to join them as a lag.
transactions_next_day as (
    select
        store_nbr,
        transactions,
        cast(transaction_date + interval '1 day' as date) as sales_date
    from transactions
),

-- Everything known per store and day before its sales (54 x 1,700 rows for the full data), so
-- that the sales rows meet a single small table in one join. `materialized` (PostgreSQL) keeps it
-- a separate, small step: inlined, the planner misjudges the view's row counts and sorts the
-- millions of windowed rows for merge joins instead of hashing this table.
store_days as materialized (
    select
        calendar_days.calendar_date as sales_date,
        stores.store_nbr,
        stores.store_type,
        stores.cluster,
        stores.city,
        stores.state,
        calendar_days.day_of_week,
        calendar_days.day_of_month,
        calendar_days.month,
        calendar_days.is_payday,
        calendar_days.is_national_holiday,
        oil_prices.oil_price,
        cast(transactions_next_day.transactions as double precision) as transactions_lag_1,
        coalesce(store_holidays.is_regional_holiday, false) as is_regional_holiday,
        coalesce(store_holidays.is_local_holiday, false) as is_local_holiday,
        calendar_days.is_work_day or coalesce(store_holidays.is_work_day, false) as is_work_day,
        calendar_days.is_national_event or coalesce(store_holidays.is_event, false) as is_event
    from calendar_days
    cross join stores
    left join oil_prices
        on calendar_days.calendar_date = oil_prices.calendar_date
    left join store_holidays
        on
            calendar_days.calendar_date = store_holidays.holiday_date
            and stores.store_nbr = store_holidays.store_nbr
    left join transactions_next_day
        on
            calendar_days.calendar_date = transactions_next_day.sales_date
            and stores.store_nbr = transactions_next_day.store_nbr
    {%- if process_from is not none %}
        where calendar_days.calendar_date >= cast('{{ first_built }}' as date)
    {%- endif %}
),

features as (
    select
        days_to_build.sales_date,
        days_to_build.store_nbr,
        days_to_build.family,
        days_to_build.sales,
        days_to_build.onpromotion,
        store_days.store_type,
        store_days.cluster,
        store_days.city,
        store_days.state,
        store_days.day_of_week,
        store_days.day_of_month,
        store_days.month,
        store_days.is_payday,
        store_days.is_national_holiday,
        store_days.is_regional_holiday,
        store_days.is_local_holiday,
        store_days.is_work_day,
        store_days.oil_price,
        store_days.transactions_lag_1,
        days_to_build.sales_lag_1,
        days_to_build.sales_lag_7,
        days_to_build.sales_lag_14,
        days_to_build.sales_lag_28,
        days_to_build.sales_mean_7,
        days_to_build.sales_std_7,
        days_to_build.sales_mean_28,
        days_to_build.sales_std_28,
        store_days.is_event,
        days_to_build.is_forecast_request,
        -- Mean of the same weekday over the last four weeks, over the weeks that have a value.
        (
            coalesce(days_to_build.sales_lag_7, 0)
            + coalesce(days_to_build.sales_lag_14, 0)
            + coalesce(days_to_build.sales_lag_21, 0)
            + coalesce(days_to_build.sales_lag_28, 0)
        ) / nullif(
            case when days_to_build.sales_lag_7 is null then 0 else 1 end
            + case when days_to_build.sales_lag_14 is null then 0 else 1 end
            + case when days_to_build.sales_lag_21 is null then 0 else 1 end
            + case when days_to_build.sales_lag_28 is null then 0 else 1 end,
            0
        ) as sales_same_weekday_mean_4w
    from days_to_build
    -- A store missing from stores.csv keeps its rows (with empty attributes) and fails the
    -- relationships test, rather than vanishing here.
    left join store_days
        on
            days_to_build.sales_date = store_days.sales_date
            and days_to_build.store_nbr = store_days.store_nbr
)

select * from features
