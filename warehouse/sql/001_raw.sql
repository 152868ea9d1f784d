-- Raw tables: the Kaggle files as loaded, one table per file. Written by the loader only.
-- Keys make reloading idempotent: a row already present is skipped, never duplicated.
create schema if not exists raw;

create table if not exists raw.stores (
    store_nbr integer primary key,
    city text,
    state text,
    type text,
    cluster integer,
    _loaded_at timestamptz not null default now()
);

create table if not exists raw.train (
    id bigint not null,
    date date not null,
    store_nbr integer not null,
    family text not null,
    sales double precision,
    onpromotion integer,
    _loaded_at timestamptz not null default now(),
    primary key (date, store_nbr, family)
);

create table if not exists raw.test (
    id bigint not null,
    date date not null,
    store_nbr integer not null,
    family text not null,
    onpromotion integer,
    _loaded_at timestamptz not null default now(),
    primary key (date, store_nbr, family)
);

create table if not exists raw.oil (
    date date primary key,
    dcoilwtico double precision,
    _loaded_at timestamptz not null default now()
);

create table if not exists raw.holidays_events (
    date date not null,
    type text not null,
    locale text not null,
    locale_name text not null,
    description text not null,
    transferred boolean,
    _loaded_at timestamptz not null default now(),
    primary key (date, type, locale, locale_name, description)
);

create table if not exists raw.transactions (
    date date not null,
    store_nbr integer not null,
    transactions integer,
    _loaded_at timestamptz not null default now(),
    primary key (date, store_nbr)
);

-- Rows that failed validation, with the reason. Keyed by file, line number and the line's md5: the
-- line itself is a plain column, so a line of any length fits (an index entry cannot exceed ~2.7 kB).
-- A reload does not add a line twice.
create table if not exists raw.rejected_rows (
    file_name text not null,
    line_number integer not null,
    raw_line_md5 text not null,
    raw_line text not null,
    reason text not null,
    rejected_at timestamptz not null default now(),
    primary key (file_name, line_number, raw_line_md5)
);

-- Databases created before raw_line_md5: add it, and key on it instead of the line (idempotent:
-- nothing is touched, or locked, once done).
do $$
begin
    if not exists (
        select from information_schema.columns
        where table_schema = 'raw' and table_name = 'rejected_rows' and column_name = 'raw_line_md5'
    ) then
        alter table raw.rejected_rows add column raw_line_md5 text;
        update raw.rejected_rows set raw_line_md5 = md5(raw_line);
        alter table raw.rejected_rows alter column raw_line_md5 set not null;
        alter table raw.rejected_rows drop constraint rejected_rows_pkey;
        alter table raw.rejected_rows add primary key (file_name, line_number, raw_line_md5);
    end if;
end
$$;

-- One row per file per load: what came in and what happened to it. rows_read = rows_loaded +
-- rows_rejected + rows_skipped; rows_changed: rows whose stored values differed (replaced when
-- `updated`, the `salesmon load --update` case, otherwise skipped).
create table if not exists raw.load_log (
    load_id bigint generated always as identity primary key,
    file_name text not null,
    source_path text not null,
    rows_read integer not null,
    rows_loaded integer not null,
    rows_rejected integer not null,
    rows_skipped integer not null,
    rows_changed integer not null default 0,
    updated boolean not null default false,
    seconds double precision not null,
    loaded_at timestamptz not null default now(),
    check (rows_read = rows_loaded + rows_rejected + rows_skipped)
);

do $$
begin
    if not exists (
        select from information_schema.columns
        where table_schema = 'raw' and table_name = 'load_log' and column_name = 'rows_changed'
    ) then
        alter table raw.load_log add column rows_changed integer not null default 0;
        alter table raw.load_log add column updated boolean not null default false;
    end if;
end
$$;

-- The days a load inserted rows into or found changed (replaced when `replaced`): what the features
-- model rebuilds (with the lag windows that read them) and scoring rescores. features_built_at is
-- set by the features model once it has rebuilt them.
create table if not exists raw.changed_days (
    load_id bigint not null references raw.load_log (load_id) on delete cascade,
    table_name text not null,
    day date not null,
    rows_inserted integer not null,
    rows_changed integer not null,
    replaced boolean not null,
    recorded_at timestamptz not null default now(),
    features_built_at timestamptz,
    primary key (load_id, table_name, day)
);

create index if not exists changed_days_pending on raw.changed_days (day) where features_built_at is null;
