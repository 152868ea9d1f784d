-- The online prediction service's request log (models_ml/service): one row per predicted item of
-- an answered request, and one row per rejected request. Written in batches by a background writer
-- (COPY into a temporary table, then one insert that ignores rows already logged), so a replayed
-- spill file never duplicates a row.
create table if not exists ml.prediction_log (
    request_id uuid not null,
    item_index integer not null,             -- the item's position in the request (0 for one item)
    received_at timestamptz not null,
    status text not null check (status in ('ok', 'rejected', 'error')),
    error text,                              -- why a request was rejected or failed
    inputs jsonb,                            -- the item as received (a rejected body: its text, cut)
    sales_date date,
    store_nbr integer,
    family text,
    model_version text,
    prediction double precision,
    latency_ms double precision,
    -- the features the model used (the request's onpromotion, the rest from the features mart)
    onpromotion integer,
    store_type text,
    cluster integer,
    city text,
    state text,
    day_of_week integer,
    day_of_month integer,
    month integer,
    is_payday boolean,
    is_national_holiday boolean,
    is_regional_holiday boolean,
    is_local_holiday boolean,
    is_work_day boolean,
    oil_price double precision,
    transactions_lag_1 double precision,
    sales_lag_1 double precision,
    sales_lag_7 double precision,
    sales_lag_14 double precision,
    sales_lag_28 double precision,
    sales_mean_7 double precision,
    sales_std_7 double precision,
    sales_mean_28 double precision,
    sales_std_28 double precision,
    sales_same_weekday_mean_4w double precision,
    logged_at timestamptz not null default now(),
    primary key (request_id, item_index)
);

-- Online monitoring selects a day's answered requests of one model version.
create index if not exists prediction_log_day
    on ml.prediction_log (sales_date, model_version) where status = 'ok';
