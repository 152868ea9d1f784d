with

calendar_days as (
    select * from {{ ref('int_calendar_days') }}
),

oil_prices as (
    select * from {{ ref('stg_favorita__oil_prices') }}
),

known_prices as (
    select
        price_date,
        oil_price
    from oil_prices
    where oil_price is not null
),

-- Prices quoted before the calendar starts still carry forward into it.
price_days as (
    select calendar_date as price_date from calendar_days
    union
    select price_date from known_prices
),

numbered as (
    select
        price_days.price_date,
        known_prices.oil_price as quoted_price,
        -- Each known price starts a group; the days after it (weekends, gaps) share its group.
        -- Group 0, the days before the first known price, joins group 1: the first known price.
        greatest(count(known_prices.oil_price) over (order by price_days.price_date), 1) as price_group
    from price_days
    left join known_prices
        on price_days.price_date = known_prices.price_date
),

filled as (
    select
        price_date,
        quoted_price,
        max(quoted_price) over (partition by price_group) as oil_price
    from numbered
),

calendar_prices as (
    select
        calendar_days.calendar_date,
        filled.oil_price,
        filled.quoted_price is null as is_filled
    from calendar_days
    inner join filled
        on calendar_days.calendar_date = filled.price_date
)

select * from calendar_prices
