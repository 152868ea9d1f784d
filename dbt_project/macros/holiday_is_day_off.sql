{#-
    Whether a row of the Kaggle holidays_events file makes its date a day off, by the
    competition's rules: a Holiday with transferred = true is an ordinary day (its day off is
    the matching Transfer row); Transfer, Bridge (an extra day off) and Additional (days added
    around a holiday) are days off; Work Day (a weekend day worked to pay back a Bridge) and
    Event are not.

        bool_or({{ holiday_is_day_off('holiday_type', 'is_transferred') }}) as is_holiday

    Used by int_calendar_days (national rows) and int_store_holidays_matched (regional and
    local rows), so both apply the same rule.
-#}
{% macro holiday_is_day_off(holiday_type, is_transferred) -%}
    ({{ holiday_type }} in ('Holiday', 'Transfer', 'Bridge', 'Additional') and not {{ is_transferred }})
{%- endmacro %}
