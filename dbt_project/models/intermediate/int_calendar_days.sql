with

sales as (
    select * from {{ ref('stg_favorita__sales') }}
),

forecast_requests as (
    select * from {{ ref('stg_favorita__forecast_requests') }}
),

holidays_events as (
    select * from {{ ref('stg_favorita__holidays_events') }}
),

-- min/max per table first: each is an index lookup on the raw table's (date, ...) key.
date_bounds as (
    select
        min(sales_date) as first_date,
        max(sales_date) as last_date
    from sales
    union all
    select
        min(sales_date) as first_date,
        max(sales_date) as last_date
    from forecast_requests
),

date_range as (
    select
        min(first_date) as first_date,
        max(last_date) as last_date
    from date_bounds
),

days as (
    select date_range.first_date + day_offset as calendar_date
    from date_range
    cross join generate_series(0, date_range.last_date - date_range.first_date) as day_offset
),

national_days as (
    select
        holiday_date,
        bool_or({{ holiday_is_day_off('holiday_type', 'is_transferred') }}) as is_national_holiday,
        bool_or(holiday_type = 'Work Day') as is_work_day,
        bool_or(holiday_type = 'Event') as is_national_event
    from holidays_events
    where locale = 'National'
    group by holiday_date
),

calendar as (
    select
        days.calendar_date,
        -- `year` and `month` are keywords, but the names analysts and the features contract expect.
        cast(extract(year from days.calendar_date) as integer) as year,  -- noqa: RF04
        cast(extract(month from days.calendar_date) as integer) as month,  -- noqa: RF04
        cast(extract(day from days.calendar_date) as integer) as day_of_month,
        cast(extract(isodow from days.calendar_date) as integer) as day_of_week,
        extract(isodow from days.calendar_date) in (6, 7) as is_weekend,
        -- Public-sector wages are paid on the 15th and on the last day of the month.
        (
            extract(day from days.calendar_date) = 15
            or extract(day from days.calendar_date + 1) = 1
        ) as is_payday,
        coalesce(national_days.is_national_holiday, false) as is_national_holiday,
        coalesce(national_days.is_national_event, false) as is_national_event,
        coalesce(national_days.is_work_day, false) as is_work_day
    from days
    left join national_days
        on days.calendar_date = national_days.holiday_date
)

select * from calendar
