"""Online monitoring: the request log's daily slices, and the parity of online and batch predictions.

An online slice is one day's answered requests of one model version in `ml.prediction_log`: the
features the service used, its prediction, and the actual sales from the features mart (null until
known). Every request counts, a key asked twice included: the slice is the traffic the model
served. It is measured with the same metrics, against the same reference, as a batch slice, and its
values are stored with `source = 'online'`.

Parity compares each logged request with the batch side for the same (day, store, family, model
version): the features mart row batch scoring read and its prediction in `ml.predictions`. A
feature or a prediction that differs beyond rounding means the online path does not compute what
the batch path does (a stale feature, a different transformation, another model). The share of
requests that differ is stored per feature, for the prediction and overall, as
`parity_mismatch_share`, and alerts like every other metric (its bounds: zero, see
`parity_bounds`).
"""

from __future__ import annotations

from datetime import date

import pandas as pd
import psycopg
from psycopg import sql

from models_ml.features import FEATURES, FEATURES_SCHEMA, FEATURES_TABLE
from monitoring.config import MonitoringConfig
from monitoring.results import MetricValue
from monitoring.slices import _frame, _slice_columns
from monitoring.slices import slice_signatures as batch_signatures

BATCH = "batch"
ONLINE = "online"
SOURCES = (BATCH, ONLINE)
PARITY_METRIC = "parity_mismatch_share"
PARITY_COLUMNS: tuple[str, ...] = (*FEATURES[2:], "prediction")
_EXACT = {"store_type", "city", "state", "is_payday", "is_national_holiday", "is_regional_holiday",
          "is_local_holiday", "is_work_day"}  # fmt: skip
_LOGGED = "log.status = 'ok' and log.sales_date = %(sales_date)s and log.model_version = %(model_version)s"


def slice_query(config: MonitoringConfig) -> sql.Composed:
    """A day's answered requests of one model version, with the day's actual sales joined."""
    columns = [
        sql.SQL("features.sales") if name == config.target_column else sql.Identifier("log", name)
        for name in _slice_columns(config)
    ]
    return sql.SQL(
        "select {columns}, log.prediction"
        " from ml.prediction_log as log"
        " left join {features} as features"
        " on features.sales_date = log.sales_date"
        " and features.store_nbr = log.store_nbr"
        " and features.family = log.family"
        " where {logged}"
        " order by log.store_nbr, log.family, log.received_at, log.request_id, log.item_index"
    ).format(
        columns=sql.SQL(", ").join(columns),
        features=sql.Identifier(FEATURES_SCHEMA, FEATURES_TABLE),
        logged=sql.SQL(_LOGGED),
    )


def load_slice(
    conn: psycopg.Connection, day: date, model_version: str, config: MonitoringConfig
) -> pd.DataFrame:
    """The online slice of one day for one model version (columns as a batch slice's)."""
    columns = [*_slice_columns(config), config.prediction_column]
    cursor = conn.cursor(binary=True)
    cursor.execute(slice_query(config), {"sales_date": day, "model_version": model_version})
    return _frame(cursor, columns, config)


def slice_signatures(conn: psycopg.Connection, model_version: str, start: date, end: date) -> dict[date, str]:
    """A fingerprint of each logged day's inputs: a new request or late actuals change it."""
    return batch_signatures(conn, model_version, start, end, online=True)


def logged_range(conn: psycopg.Connection, model_version: str | None = None) -> tuple[date, date] | None:
    """The first and last day of answered requests in the log (of a version, when given)."""
    row = conn.execute(
        "select min(sales_date), max(sales_date) from ml.prediction_log"
        " where status = 'ok' and (%(version)s::text is null or model_version = %(version)s)",
        {"version": model_version},
    ).fetchone()
    return (row[0], row[1]) if row and row[0] is not None else None


def _differs(name: str) -> sql.Composable:
    """Whether the logged value of `name` differs from the batch side's (numbers beyond rounding)."""
    online = sql.Identifier("log", name)
    batch = sql.Identifier("predictions" if name == "prediction" else "features", name)
    if name in _EXACT:
        return sql.SQL("{} is distinct from {}").format(online, batch)
    return sql.SQL(
        "(({online} is null) <> ({batch} is null)"
        " or abs({online}::double precision - {batch}::double precision)"
        " > 1e-9 * greatest(1.0, abs({batch}::double precision)))"
    ).format(online=online, batch=batch)


def parity_query() -> sql.Composed:
    """Per day: requests compared with their batch twin, and how many differ per column and overall."""
    per_column = [
        sql.SQL("count(*) filter (where {}) as {}").format(_differs(name), sql.Identifier(name))
        for name in PARITY_COLUMNS
    ]
    anything = sql.SQL(" or ").join(_differs(name) for name in PARITY_COLUMNS)
    return sql.SQL(
        "select count(*) as compared, count(*) filter (where {anything}) as differing, {per_column}"
        " from ml.prediction_log as log"
        " inner join ml.predictions as predictions"
        " on predictions.sales_date = log.sales_date and predictions.store_nbr = log.store_nbr"
        " and predictions.family = log.family and predictions.model_version = log.model_version"
        " inner join {features} as features"
        " on features.sales_date = log.sales_date and features.store_nbr = log.store_nbr"
        " and features.family = log.family"
        " where {logged}"
    ).format(
        anything=anything,
        per_column=sql.SQL(", ").join(per_column),
        features=sql.Identifier(FEATURES_SCHEMA, FEATURES_TABLE),
        logged=sql.SQL(_LOGGED),
    )


def parity_values(conn: psycopg.Connection, day: date, model_version: str) -> list[MetricValue]:
    """The day's parity metrics; none when no logged request has a batch twin."""
    cursor = conn.execute(parity_query(), {"sales_date": day, "model_version": model_version})
    row = cursor.fetchone()
    names = [column.name for column in cursor.description or []]
    counts = dict(zip(names, row or (), strict=True))
    compared = int(counts.get("compared") or 0)
    values = [MetricValue("quality", "parity_compared_rows", float(compared))]
    if compared == 0:
        return values
    values.append(MetricValue("quality", PARITY_METRIC, counts["differing"] / compared))
    values.extend(
        MetricValue("quality", PARITY_METRIC, counts[name] / compared, column_name=name)
        for name in PARITY_COLUMNS
    )
    return values


def ensure_parity_bounds(conn: psycopg.Connection, model_version: str, config_hash: str) -> int:
    """Write the parity metric's bounds for a model version: zero on every weekday, at every scope.

    Nothing is learned here: the same inputs through the same model must give the same prediction,
    so any share of differing requests is outside the expected range (the seed's floor can allow
    some). Calibration never computes parity (it has no requests), so these rows are written by
    online monitoring itself, before its first day; rows already there are kept.
    """
    rows = [
        (model_version, config_hash, PARITY_METRIC, column, weekday)
        for column in ("", *PARITY_COLUMNS)
        for weekday in range(1, 8)
    ]
    with conn.transaction(), conn.cursor() as cursor:
        cursor.executemany(
            "insert into monitoring.metric_bounds (model_version, config_hash, metric_name, column_name,"
            " weekday, value_scale, center, scale, sample_size, seasonality, observed_min, observed_max,"
            " possible_min, possible_max)"
            " values (%s, %s, %s, %s, %s, 'identity', 0, 0, 0, 'none', 0, 0, 0, 1)"
            " on conflict (model_version, metric_name, column_name, segment_type, segment_value, weekday)"
            " do nothing",
            rows,
        )
    return len(rows)
