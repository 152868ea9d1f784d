-- depends_on: {{ ref('stg_monitoring__runs') }}
{{
    config(
        materialized='incremental',
        unique_key=['slice_date', 'model_version', 'source'],
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
        post_hook=[
            '{{ monitored_days_index() }}',
            '{{ delete_days_without_runs() }}',
            '{{ analyze_when_changed(this) }}',
        ],
    )
}}

{#-
    A table (read by five marts and their tests: computed once per build; the hooks - this one's
    and stg_monitoring__metric_values', which analyzes monitoring.metric_values after a large
    write (analyze_when_changed) - keep the planner's statistics current, without which a fresh
    90-day backfill joined to freshly built bounds was planned as a nested loop of minutes instead
    of a hash join of 0.3 s). Every alertable metric value of every monitored day, graded against
    the bounds its model version learned on days with no incident (fct_metric_bounds, for the
    day's weekday). A value alerts when it lies outside its expected range in a bad direction,
    beyond the person's floor, and - where one metric is tested many times a day (per column, per segment) - when it stays
    significant after Benjamini-Hochberg over that day's tests: its q-value must be below the tail
    probability of the sensitivity, P(Z > k). With one test a day (model metrics) that is exactly
    "more than k spreads from the centre". Severity is critical beyond the critical sensitivity. A
    metric the seed asks to persist 2 days alerts only on the second day in a row.
    fct_alerts keeps the rows with a severity; the other marts read the verdicts.

    Incremental, by monitored day (model version, source, day): a build grades again only the days
    whose stored values changed since it last graded them - the day's latest successful run in
    monitoring.runs is not the run_id graded here, or the version's bounds (fct_metric_bounds, the
    seed's settings included) are not the ones graded with (bounds_hash) - and the day after each
    (persistence reads the day before); a changed day's previous day is read, not rebuilt. A
    `--full-refresh` gives the same rows (tests/test_incremental_marts.py). The days that no longer
    have a successful run (deleted from monitoring.*) are deleted by the post-hook. The marts built
    from the grades find their changed days the same way (monitored_days.sql). A table built
    before this model was incremental (without bounds_hash) gets the new columns and every day
    graded again, once.
-#}
{%- set incremental = is_incremental() -%}
{%- set rebuilt = [] -%}
{%- if incremental and execute -%}
    {%- set existing = adapter.get_columns_in_relation(this) | map(attribute='name') | list -%}
    {%- set incremental = 'bounds_hash' in existing and 'run_id' in existing -%}
    {%- if incremental -%}
        {%- set rebuilt = graded_days_to_rebuild(
            this, ref('stg_monitoring__runs'), ref('fct_metric_bounds')
        ) -%}
    {%- endif -%}
{%- endif -%}
{#- read: from the day before the first rebuilt day (persistence) to the last -#}
{%- set read_from = (
    modules.datetime.date.fromisoformat(rebuilt[0][0]) - modules.datetime.timedelta(days=1)
) if rebuilt else none -%}
{%- set read_to = rebuilt | map(attribute=0) | max if rebuilt else none %}

with

-- computed once (materialized): a join estimated at one row would recompute it per graded row
bounds_hashes as materialized (
    {{ bounds_fingerprints(ref('fct_metric_bounds')) }}
),

bounds as (
    select * from {{ ref('fct_metric_bounds') }}
),

metric_values as (
    select * from {{ ref('stg_monitoring__metric_values') }}
    {%- if incremental and rebuilt %}
        where slice_date between cast('{{ read_from }}' as date) and cast('{{ read_to }}' as date)
    {%- elif incremental %}
        where false
    {%- endif %}
),

-- how much of the day's sales each segment carries (the seed's minimum for segment alerts)
segment_shares as (
    select
        slice_date,
        model_version,
        source,
        segment_type,
        segment_value,
        metric_value as sales_share
    from metric_values
    where metric_name = 'segment_sales_share'
),

-- the segment's share of the day's sales joined first (a hash join of two large inputs; joined
-- after the bounds, a misestimated row count made it a nested loop of minutes at 54 stores)
engine_values as (
    select
        metric_values.slice_date,
        metric_values.model_version,
        metric_values.source,
        metric_values.metric_name,
        metric_values.column_name,
        metric_values.segment_type,
        metric_values.segment_value,
        metric_values.computed_at,
        metric_values.run_id,
        segment_shares.sales_share,
        metric_values.metric_value,
        cast(extract(isodow from metric_values.slice_date) as integer) as slice_weekday
    from metric_values
    left join segment_shares
        on
            metric_values.slice_date = segment_shares.slice_date
            and metric_values.model_version = segment_shares.model_version
            and metric_values.source = segment_shares.source
            and metric_values.segment_type = segment_shares.segment_type
            and metric_values.segment_value = segment_shares.segment_value
),

-- how far the value lies from the centre, in spreads, in its bad direction (zero spread: a value
-- off a constant centre is infinitely far, clamped to 37 where the normal tail is 0 anyway)
bounded as (
    select
        engine_values.*,
        bounds.direction,
        bounds.value_scale,
        bounds.center,
        bounds.scale,
        bounds.expected_low,
        bounds.expected_high,
        bounds.alert_below,
        bounds.alert_above,
        bounds.sensitivity,
        bounds.critical_sensitivity,
        bounds.persistence_days,
        case
            when bounds.value_scale = 'log' then ln(greatest(engine_values.metric_value, 1e-6))
            else engine_values.metric_value
        end as value_on_scale
    from engine_values
    inner join bounds
        on
            engine_values.model_version = bounds.model_version
            and engine_values.metric_name = bounds.metric_name
            and engine_values.column_name = bounds.column_name
            and engine_values.segment_type = bounds.segment_type
            and engine_values.segment_value = bounds.segment_value
            and engine_values.slice_weekday = bounds.weekday
    where
        bounds.enabled
        and engine_values.metric_value is not null
        and (bounds.min_sales_share is null or coalesce(engine_values.sales_share, 0) >= bounds.min_sales_share)
),

scored as (
    select
        *,
        case
            when scale > 0 then (value_on_scale - center) / scale
            when value_on_scale > center then 37.0
            when value_on_scale < center then -37.0
            else 0.0
        end as z_score,
        case
            when direction = 'below' then '<'
            when direction = 'above' then '>'
            when value_on_scale < center then '<'
            else '>'
        end as comparison
    from bounded
),

directed as (
    select
        *,
        least(
            greatest(case when comparison = '<' then -z_score else z_score end, -37.0), 37.0
        ) as bad_z,
        case when comparison = '<' then alert_below else alert_above end as threshold
    from scored
),

erfc_arguments as (
    select
        *,
        abs(bad_z) / sqrt(2.0) as erfc_x,
        1.0 / (1.0 + 0.5 * abs(bad_z) / sqrt(2.0)) as erfc_t
    from directed
),

tested as (
    select
        *,
        case
            when bad_z >= 0 then 0.5 * {{ erfc('erfc_x', 'erfc_t') }}
            else 1 - 0.5 * {{ erfc('erfc_x', 'erfc_t') }}
        end as p_value,
        count(*) over (partition by slice_date, model_version, source, metric_name) as tests_count,
        row_number() over (
            partition by slice_date, model_version, source, metric_name
            order by bad_z desc, column_name asc, segment_type asc, segment_value asc
        ) as p_rank
    from erfc_arguments
),

-- Benjamini-Hochberg: q = min over the ranks from here to the last of p * m / rank
adjusted as (
    select
        *,
        least(
            1.0,
            min(p_value * tests_count / p_rank) over (
                partition by slice_date, model_version, source, metric_name
                order by p_rank desc
                rows between unbounded preceding and current row
            )
        ) as q_value
    from tested
),

-- how unusual the value is on its own day: beyond the threshold and significant after the day's tests
judged as (
    select
        *,
        case
            when
                (comparison = '>' and metric_value <= threshold)
                or (comparison = '<' and metric_value >= threshold)
                then null
            when q_value <= 0.5 * {{ erfc(
                '(critical_sensitivity / sqrt(2.0))',
                '(1.0 / (1.0 + 0.5 * critical_sensitivity / sqrt(2.0)))'
            ) }} then 'critical'
            when q_value <= 0.5 * {{ erfc(
                '(sensitivity / sqrt(2.0))',
                '(1.0 / (1.0 + 0.5 * sensitivity / sqrt(2.0)))'
            ) }} then 'warning'
        end as day_severity
    from adjusted
),

-- persistence: a metric the seed asks to persist 2 days alerts only when the same key was unusual
-- the day before too (a one-day spike of one store or one lag column is the calendar, not a change)
persisted as (
    select
        *,
        lag(day_severity) over keyed as previous_severity,
        lag(slice_date) over keyed as previous_date
    from judged
    window keyed as (
        partition by model_version, source, metric_name, column_name, segment_type, segment_value
        order by slice_date
    )
),

graded as (
    select
        *,
        case
            when persistence_days <= 1 then day_severity
            when previous_severity is not null and previous_date = slice_date - 1 then day_severity
        end as severity
    from persisted
),

final as (
    select
        slice_date,
        model_version,
        source,
        metric_name,
        column_name,
        segment_type,
        segment_value,
        metric_value,
        comparison,
        threshold,
        expected_low,
        expected_high,
        center,
        scale,
        z_score,
        p_value,
        q_value,
        cast(tests_count as integer) as tests_count,
        severity,
        computed_at,
        run_id,
        case when comparison = '<' then threshold - metric_value else metric_value - threshold end
            as distance_outside,
        case
            when segment_type <> '' then 'segment'
            when column_name <> '' then 'column'
            else 'model'
        end as alert_scope,
        md5(
            concat_ws(
                '|',
                cast(slice_date as text),
                model_version,
                metric_name,
                column_name,
                segment_type,
                segment_value,
                -- null for batch (concat_ws skips it): batch alert ids are what they always were
                nullif(source, 'batch')
            )
        ) as alert_id
    from graded
)

{{ select_with_bounds_hash('final', 'bounds_hashes') }}
{%- if incremental and rebuilt %}
    inner join (
        values
        {%- for day in rebuilt %}
            (cast('{{ day[0] }}' as date), '{{ day[1] | replace("'", "''") }}', '{{ day[2] }}')
            {{- "," if not loop.last }}
        {%- endfor %}
    ) as rebuilt_days (slice_date, model_version, source)
        on
            final.slice_date = rebuilt_days.slice_date
            and final.model_version = rebuilt_days.model_version
            and final.source = rebuilt_days.source
{%- endif %}
