-- The memory of the alerts: one row per breach ever seen (day, model version, metric, column,
-- segment), with the time it was first seen. Owned by the warehouse bootstrap, not by dbt, so that
-- `dbt build --full-refresh` cannot erase it. The dbt model fct_alerts adds each of its alerts once
-- as it is built (a post-hook: insert ... on conflict (alert_id) do nothing, so concurrent or
-- repeated builds never duplicate one) and reads the history back through
-- staging.stg_monitoring__alert_history for first_seen_at.
create table if not exists monitoring.alert_history (
    alert_id text primary key,
    slice_date date not null,
    model_version text not null,
    metric_name text not null,
    column_name text not null default '',
    segment_type text not null default '',
    segment_value text not null default '',
    first_severity text not null check (first_severity in ('warning', 'critical')),
    first_seen_at timestamptz not null,
    recorded_at timestamptz not null default now()
);

-- The history the former incremental model marts.fct_alerts_first_seen kept is carried over once,
-- its earliest sighting per alert (it could hold duplicates), and that table is dropped.
do $$
begin
    if to_regclass('marts.fct_alerts_first_seen') is not null then
        insert into monitoring.alert_history (
            alert_id, slice_date, model_version, metric_name, column_name, segment_type,
            segment_value, first_severity, first_seen_at
        )
        select distinct on (alert_id)
            alert_id, slice_date, model_version, metric_name, column_name, segment_type,
            segment_value, first_severity, first_seen_at
        from marts.fct_alerts_first_seen
        order by alert_id, first_seen_at
        on conflict (alert_id) do nothing;
        drop table marts.fct_alerts_first_seen;
    end if;
end
$$;
