-- Tables the Python model code writes (dbt sources): registry, reference data, predictions.
create schema if not exists ml;

-- One row per trained model version (every candidate of a training run is registered;
-- exactly one version at a time is the champion).
create table if not exists ml.model_registry (
    model_version text primary key,
    algorithm text not null,
    params jsonb not null default '{}',
    features jsonb not null,                 -- list of feature column names, in model order
    train_start date not null,
    train_end date not null,
    valid_start date not null,
    valid_end date not null,
    monitor_from date not null,
    valid_rmsle double precision,
    valid_mae double precision,
    valid_rmse double precision,
    metrics jsonb not null default '{}',     -- every candidate's and seasonal-naive's validation metrics
    is_champion boolean not null default false,
    created_at timestamptz not null default now(),
    artifact bytea not null,                 -- the serialized model: a scorer needs only the database
    artifact_sha256 text not null
);

-- The scikit-learn version that fitted and pickled the model: checked when the model is loaded.
alter table ml.model_registry add column if not exists sklearn_version text;

create unique index if not exists model_registry_one_champion
    on ml.model_registry (is_champion) where is_champion;

-- Permutation importance of a model's features on its validation window.
create table if not exists ml.feature_importance (
    model_version text not null references ml.model_registry (model_version) on delete cascade,
    feature text not null,
    importance_mean double precision not null,
    importance_std double precision not null,
    primary key (model_version, feature)
);

-- The validation window's scored rows: inputs, target and prediction. Evidently's reference.
create table if not exists ml.reference (
    model_version text not null references ml.model_registry (model_version) on delete cascade,
    sales_date date not null,
    store_nbr integer not null,
    family text not null,
    sales double precision,
    prediction double precision not null,
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
    primary key (model_version, sales_date, store_nbr, family)
);

-- Batch predictions; rescoring a day replaces its rows (upsert on the key).
create table if not exists ml.predictions (
    sales_date date not null,
    store_nbr integer not null,
    family text not null,
    model_version text not null,
    prediction double precision not null,
    scored_at timestamptz not null default now(),
    primary key (sales_date, store_nbr, family, model_version)
);
