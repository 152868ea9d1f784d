-- Tables the monitoring flow writes (dbt sources of the metrics mart).
create schema if not exists monitoring;

-- One row per computation of one slice (day × model version). A slice computed successfully
-- with the same config and reference hash is skipped by later backfills unless forced.
create table if not exists monitoring.runs (
    run_id uuid primary key,
    flow_run_id text,
    slice_date date not null,
    model_version text not null,
    -- 'batch': the day's rows of ml.predictions; 'online': the day's answered requests in ml.prediction_log
    source text not null default 'batch' check (source in ('batch', 'online')),
    config_hash text not null,
    reference_hash text not null,
    evidently_version text not null,
    -- 'abandoned': a 'running' row whose run ended without finishing it (killed), found by the next
    -- monitoring run of the model version (monitoring/locks.py)
    status text not null check (status in ('running', 'success', 'failed', 'skipped', 'abandoned')),
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

-- A warehouse created before 'abandoned' existed gets it (once: the check is replaced only then).
do $$
begin
    if not exists (
        select 1 from pg_constraint
        where conrelid = 'monitoring.runs'::regclass and contype = 'c'
            and pg_get_constraintdef(oid) like '%abandoned%'
    ) then
        alter table monitoring.runs drop constraint if exists runs_status_check;
        alter table monitoring.runs add constraint runs_status_check
            check (status in ('running', 'success', 'failed', 'skipped', 'abandoned'));
    end if;
end
$$;

-- Every metric of every slice, in long form. A slice's rows are replaced as a whole, in one
-- transaction, when the slice is recomputed. column_name, segment_type and segment_value are
-- '' where they do not apply, so that the key has no nulls.
create table if not exists monitoring.metric_values (
    slice_date date not null,
    model_version text not null,
    source text not null default 'batch' check (source in ('batch', 'online')),
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
    primary key (slice_date, model_version, source, metric_name, column_name, segment_type, segment_value)
);

-- Warehouses created before online monitoring: add the source (every earlier row is batch) and
-- make it part of the key.
alter table monitoring.runs
    add column if not exists source text not null default 'batch' check (source in ('batch', 'online'));
alter table monitoring.metric_values
    add column if not exists source text not null default 'batch' check (source in ('batch', 'online'));
do $$
begin
    if not exists (
        select 1
        from information_schema.key_column_usage
        where table_schema = 'monitoring' and table_name = 'metric_values'
            and constraint_name = 'metric_values_pkey' and column_name = 'source'
    ) then
        alter table monitoring.metric_values drop constraint metric_values_pkey;
        alter table monitoring.metric_values add primary key (
            slice_date, model_version, source, metric_name, column_name, segment_type, segment_value
        );
    end if;
end
$$;
create index if not exists runs_slice_source on monitoring.runs (slice_date, model_version, source, status);


-- Calibration (monitoring/calibration.py): the same daily metrics computed on days where nothing
-- is known to have changed, per model version. 'leave_one_out': each validation day against the
-- other validation days of its weekday (out of sample: the only days that calibrate error
-- metrics); 'backcast': the days before the validation window, scored in memory, against the
-- model's same-weekday reference (how far drift metrics move over weeks with no incident).
create table if not exists monitoring.calibration_values (
    model_version text not null,
    config_hash text not null,
    calibration_date date not null,
    calibration_kind text not null check (calibration_kind in ('leave_one_out', 'backcast')),
    metric_name text not null,
    column_name text not null default '',
    segment_type text not null default '',
    segment_value text not null default '',
    value double precision,
    primary key (model_version, calibration_date, metric_name, column_name, segment_type, segment_value)
);

-- What calibration learned: per model version, metric (at any scope) and ISO weekday, the
-- expected centre and spread of the metric on a day with no incident. The alerting marts turn
-- them into an expected range with the sensitivity a person set (dbt seed monitoring_thresholds).
create table if not exists monitoring.metric_bounds (
    model_version text not null,
    config_hash text not null,
    metric_name text not null,
    column_name text not null default '',
    segment_type text not null default '',
    segment_value text not null default '',
    weekday smallint not null check (weekday between 1 and 7),
    -- 'log': centre and spread are of ln(value) (error ratios), 'identity': of the value itself
    value_scale text not null check (value_scale in ('identity', 'log')),
    center double precision not null,
    scale double precision not null check (scale >= 0),
    sample_size integer not null,
    seasonality text not null check (seasonality in ('none', 'day_of_week')),
    observed_min double precision not null,
    observed_max double precision not null,
    possible_min double precision,
    possible_max double precision,
    calibrated_at timestamptz not null default now(),
    primary key (model_version, metric_name, column_name, segment_type, segment_value, weekday)
);

-- One row per calibrated model version: when, on which configuration, on how many days.
create table if not exists monitoring.calibration_runs (
    model_version text primary key,
    config_hash text not null,
    leave_one_out_days integer not null,
    backcast_days integer not null,
    bound_count integer not null,
    seconds double precision not null,
    calibrated_at timestamptz not null default now()
);
