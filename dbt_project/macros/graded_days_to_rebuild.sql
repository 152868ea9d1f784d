{#-
    int_metric_values_graded's incremental runs. `bounds_fingerprints(bounds)`: one md5 per model
    version of every column of its bounds (a recalibration or a seed change changes it).
    `graded_days_to_rebuild(graded, runs, bounds)`: run before the model's SQL is written, the days
    (slice_date, model_version, source, as text) to grade again: those whose latest successful run
    in monitoring.runs, or whose version's bounds, are not the ones graded in `graded`, and the day
    after each (its persistence reads the day before). The marts built from the grades ask the same
    of their own rows (monitored_days.sql). Fetched first, as literals in the model's SQL,
    so that the planner sees how many days it reads (a subquery of them was estimated at one row:
    nested loops of minutes over 90 days).
-#}
{% macro bounds_fingerprints(bounds) %}
    select
        bounds.model_version,
        md5(
            string_agg(
                cast(bounds as text), '|'
                order by
                    bounds.metric_name, bounds.column_name, bounds.segment_type, bounds.segment_value,
                    bounds.weekday
            )
        ) as bounds_hash
    from {{ bounds }} as bounds
    group by bounds.model_version
{% endmacro %}

{#- The final select of the models kept by monitored day (int_metric_values_graded and the marts
    built from it): the rows of the CTE `rows`, each with its version's bounds fingerprint from the
    CTE `fingerprints` (bounds_fingerprints, materialized by the model), which the next build
    compares (graded_days_to_rebuild). -#}
{% macro select_with_bounds_hash(rows, fingerprints) -%}
select
    {{ rows }}.*,
    {{ fingerprints }}.bounds_hash
from {{ rows }}
left join {{ fingerprints }}
    on {{ rows }}.model_version = {{ fingerprints }}.model_version
{%- endmacro %}

{% macro graded_days_to_rebuild(graded, runs, bounds) %}
    {%- set query -%}
        with

        bounds_hashes as (
            {{ bounds_fingerprints(bounds) }}
        ),

        latest_runs as (
            select
                slice_date,
                model_version,
                source,
                run_id,
                row_number() over (
                    partition by slice_date, model_version, source
                    order by finished_at desc, run_id asc
                ) as run_rank
            from {{ runs }}
            where status = 'success'
        ),

        changed_days as (
            select
                latest_runs.slice_date,
                latest_runs.model_version,
                latest_runs.source
            from latest_runs
            left join bounds_hashes
                on latest_runs.model_version = bounds_hashes.model_version
            where
                latest_runs.run_rank = 1
                and not exists (
                    select 1 as found
                    from {{ graded }} as graded
                    where
                        graded.slice_date = latest_runs.slice_date
                        and graded.model_version = latest_runs.model_version
                        and graded.source = latest_runs.source
                        and graded.run_id = latest_runs.run_id
                        and graded.bounds_hash is not distinct from bounds_hashes.bounds_hash
                )
        )

        select cast(slice_date as text), model_version, source from changed_days
        union
        select cast(slice_date + 1 as text), model_version, source from changed_days
        order by 1, 2, 3
    {%- endset -%}
    {{ return(run_query(query).rows | map('list') | list) }}
{% endmacro %}
