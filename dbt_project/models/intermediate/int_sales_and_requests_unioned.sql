with

sales as (
    select * from {{ ref('stg_favorita__sales') }}
),

forecast_requests as (
    select * from {{ ref('stg_favorita__forecast_requests') }}
),

request_dates as (
    select distinct sales_date from forecast_requests
),

-- Actual sales on the days that have forecast requests: a second import of the sales, so that
-- PostgreSQL does not materialize `sales` in full, and a probe against a handful of dates rather
-- than a hash of every sales row.
answered_requests as (
    select
        sales_date,
        store_nbr,
        family
    from {{ ref('stg_favorita__sales') }}
    where sales_date in (select request_dates.sales_date from request_dates)
),

actuals as (
    select
        sales_date,
        store_nbr,
        family,
        sales,
        onpromotion,
        false as is_forecast_request
    from sales
),

-- A forecast request whose day has since got its actual sales is answered: the actual row wins.
open_requests as (
    select
        forecast_requests.sales_date,
        forecast_requests.store_nbr,
        forecast_requests.family,
        cast(null as double precision) as sales,
        forecast_requests.onpromotion,
        true as is_forecast_request
    from forecast_requests
    left join answered_requests
        on
            forecast_requests.sales_date = answered_requests.sales_date
            and forecast_requests.store_nbr = answered_requests.store_nbr
            and forecast_requests.family = answered_requests.family
    where answered_requests.sales_date is null
),

unioned as (
    select * from actuals
    union all
    select * from open_requests
)

select * from unioned
