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

-- Rows that failed validation, with the reason; a reload does not add them twice.
create table if not exists raw.rejected_rows (
    file_name text not null,
    line_number integer not null,
    raw_line text not null,
    reason text not null,
    rejected_at timestamptz not null default now(),
    primary key (file_name, line_number, raw_line)
);

-- One row per file per load: what came in and what happened to it.
create table if not exists raw.load_log (
    load_id bigint generated always as identity primary key,
    file_name text not null,
    source_path text not null,
    rows_read integer not null,
    rows_loaded integer not null,
    rows_rejected integer not null,
    rows_skipped integer not null,
    seconds double precision not null,
    loaded_at timestamptz not null default now()
);
