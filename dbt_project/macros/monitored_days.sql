{#-
    The marts built from int_metric_values_graded (fct_model_health_daily,
    fct_segment_performance_daily, fct_feature_drift_daily) are incremental by monitored day
    (slice_date, model_version, source), with int_metric_values_graded's notion of a changed day:
    each row keeps the run its values came from (run_id) and its version's bounds (bounds_hash), and
    a build rebuilds the days whose latest successful run or bounds are not those, and the day after
    each (its grades read the day before: persistence) - graded_days_to_rebuild. A monitored day
    that has no rows in a mart (no segment metrics: a day without actual sales yet) is read again by
    every build of that mart: one day's values, no row written.

    `monitored_days_to_rebuild()`: in a model's SQL, the days to rebuild as (day, version, source)
    text triples, or none for a full build (`--full-refresh`, a first build, or a table built
    before the model was incremental: without bounds_hash).
    `monitored_days_filter(rebuilt)`: a `where` condition on slice_date, model_version and source
    that keeps the rows of those days (all rows for none, no rows for an empty list); the range on
    slice_date lets the planner read them by the index of monitoring.metric_values.
-#}
{% macro monitored_days_to_rebuild() %}
    {%- if not (is_incremental() and execute) -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set existing = adapter.get_columns_in_relation(this) | map(attribute='name') | list -%}
    {%- if 'bounds_hash' not in existing or 'run_id' not in existing -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return(graded_days_to_rebuild(this, ref('stg_monitoring__runs'), ref('fct_metric_bounds'))) }}
{% endmacro %}

{% macro monitored_days_filter(rebuilt) %}
    {%- if rebuilt is none -%}
        true
    {%- elif not rebuilt -%}
        false
    {%- else -%}
        slice_date between cast('{{ rebuilt | map(attribute=0) | min }}' as date)
        and cast('{{ rebuilt | map(attribute=0) | max }}' as date)
        and (slice_date, model_version, source) in (
            values
            {%- for day in rebuilt %}
                (cast('{{ day[0] }}' as date), '{{ day[1] | replace("'", "''") }}', '{{ day[2] }}')
                {{- "," if not loop.last }}
            {%- endfor %}
        )
    {%- endif -%}
{% endmacro %}

{#- Post-hook: the index the incremental monitored-day models are read by (the days' runs:
    graded_days_to_rebuild; the days a build deletes: delete_days_without_runs). Found by its
    columns, not its name: a `--full-refresh` builds a new table while the old one, renamed, still
    holds the index's name until the build ends. -#}
{% macro monitored_days_index() %}
    do $index$
    begin
        if not exists (
            select 1 as found
            from pg_indexes
            where
                schemaname = '{{ this.schema }}'
                and tablename = '{{ this.identifier }}'
                and indexdef like '%(slice_date, model_version, source, run_id)'
        ) then
            create index on {{ this }} (slice_date, model_version, source, run_id);
        end if;
    end
    $index$
{% endmacro %}

{#- Post-hook: remove the rows of days that no longer have a successful run (their runs and values
    were deleted), which no incremental batch replaces. The table's distinct days are found by
    walking its day index (a skip scan: one index probe per day, not a read of every row). -#}
{% macro delete_days_without_runs() %}
    with recursive

    built_days as (
        (
            select
                built.slice_date,
                built.model_version,
                built.source
            from {{ this }} as built
            order by built.slice_date, built.model_version, built.source
            limit 1
        )
        union all
        select
            next_day.slice_date,
            next_day.model_version,
            next_day.source
        from built_days
        cross join lateral (
            select
                built.slice_date,
                built.model_version,
                built.source
            from {{ this }} as built
            where
                (built.slice_date, built.model_version, built.source)
                > (built_days.slice_date, built_days.model_version, built_days.source)
            order by built.slice_date, built.model_version, built.source
            limit 1
        ) as next_day
    ),

    vanished_days as materialized (
        select built_days.*
        from built_days
        where not exists (
            select 1 as found
            from {{ ref('stg_monitoring__runs') }} as runs
            where
                runs.status = 'success'
                and runs.slice_date = built_days.slice_date
                and runs.model_version = built_days.model_version
                and runs.source = built_days.source
        )
    )

    delete from {{ this }} as built
    using vanished_days
    where
        built.slice_date = vanished_days.slice_date
        and built.model_version = vanished_days.model_version
        and built.source = vanished_days.source
{% endmacro %}

{#- Post-hook: refresh the planner's statistics of `relation` when a good share of it changed since
    they were taken (in this transaction or before it), or it has none: a table written by the flow
    or rebuilt here is read by the next models of the same build, before autovacuum would analyze
    it (a fresh backfill with stale statistics was planned as a nested loop of minutes). A build
    that changed a day or none skips the sampling (most of a second on a large table). -#}
{% macro analyze_when_changed(relation) %}
    do $analyze$
    begin
        if exists (
            select 1 as stale
            from pg_stat_user_tables as stats
            left join pg_stat_xact_user_tables as this_transaction
                on stats.relid = this_transaction.relid
            inner join pg_class as tables
                on stats.relid = tables.oid
            where
                stats.relid = cast('{{ relation }}' as regclass)
                and (
                    coalesce(stats.last_analyze, stats.last_autoanalyze) is null
                    or stats.n_mod_since_analyze
                    + coalesce(
                        this_transaction.n_tup_ins + this_transaction.n_tup_upd + this_transaction.n_tup_del, 0
                    )
                    > 1000 + 0.02 * greatest(tables.reltuples, 0)
                )
        ) then
            analyze {{ relation }};
        end if;
    end
    $analyze$
{% endmacro %}
