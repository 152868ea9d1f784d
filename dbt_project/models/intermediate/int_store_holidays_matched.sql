with

stores as (
    select * from {{ ref('stg_favorita__stores') }}
),

holidays_events as (
    select * from {{ ref('stg_favorita__holidays_events') }}
),

regional_and_local as (
    select
        holiday_date,
        locale,
        locale_name,
        {{ holiday_is_day_off('holiday_type', 'is_transferred') }} as is_day_off,
        holiday_type = 'Work Day' as is_work_day,
        holiday_type = 'Event' as is_event
    from holidays_events
    where locale in ('Regional', 'Local')
),

-- Regional holidays name a state (province), local ones a city.
matched as (
    select
        stores.store_nbr,
        regional_and_local.holiday_date,
        regional_and_local.locale,
        regional_and_local.is_day_off,
        regional_and_local.is_work_day,
        regional_and_local.is_event
    from regional_and_local
    inner join stores
        on
            (regional_and_local.locale = 'Regional' and regional_and_local.locale_name = stores.state)
            or (regional_and_local.locale = 'Local' and regional_and_local.locale_name = stores.city)
),

store_days as (
    select
        holiday_date,
        store_nbr,
        bool_or(locale = 'Regional' and is_day_off) as is_regional_holiday,
        bool_or(locale = 'Local' and is_day_off) as is_local_holiday,
        bool_or(is_work_day) as is_work_day,
        bool_or(is_event) as is_event
    from matched
    group by holiday_date, store_nbr
)

select * from store_days
