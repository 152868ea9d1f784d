-- Tables the monitoring flow writes (dbt sources of the metrics mart).
create schema if not exists monitoring;

-- One row per computation of one slice (day × model version). A slice computed successfully
-- with the same config and reference hash is skipped by later backfills unless forced.
create table if not exists monitoring.runs (
    run_id uuid primary key,
    flow_run_id text,
    slice_date date not null,
    model_version text not null,
    config_hash text not null,
    reference_hash text not null,
    evidently_version text not null,
    status text not null check (status in ('running', 'success', 'failed', 'skipped')),
    row_count integer,
    error text,
    -- what the slice's inputs looked like when computed (rows, actuals, sums, scoring time): late
    -- actuals or a rescoring change it, and the next backfill recomputes the day
    slice_signature text,
    snapshot_id text,                        -- the Evidently workspace snapshot of the slice
    metric_count integer,
    started_at timestamptz not null default now(),
    finished_at timestamptz
);

create index if not exists runs_slice on monitoring.runs (slice_date, model_version, status);

-- Every metric of every slice, in long form. A slice's rows are replaced as a whole, in one
-- transaction, when the slice is recomputed. column_name, segment_type and segment_value are
-- '' where they do not apply, so that the key has no nulls.
create table if not exists monitoring.metric_values (
    slice_date date not null,
    model_version text not null,
    metric_family text not null check (metric_family in ('drift', 'quality', 'performance')),
    metric_name text not null,
    column_name text not null default '',
    segment_type text not null default '',
    segment_value text not null default '',
    value double precision,
    stattest text,
    threshold double precision,
    detected boolean,
    run_id uuid not null,
    computed_at timestamptz not null default now(),
    primary key (slice_date, model_version, metric_name, column_name, segment_type, segment_value)
);

