"""Daily slices and their like-for-like reference, selected in SQL with bound parameters.

A slice is one day's rows of the features mart joined to that day's predictions of one model
version (the actual sales are the mart's `sales`, null until known). Its reference is the model's
validation rows (`ml.reference`) on the same ISO weekday: 4 days of the 28-day validation window.
A reference never changes for a model version, so each worker process keeps it in memory per
(model version, weekday). No query reads a whole table to filter a day in pandas: every query is
keyed on `sales_date` (the features mart's index, the predictions' primary key) or on the model
version (the reference's primary key).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql

from models_ml.features import FEATURES_SCHEMA, FEATURES_TABLE, HISTORY_FEATURES, KEY_COLUMNS
from models_ml.registry import champion_version
from monitoring.config import MonitoringConfig


class NoChampionError(RuntimeError):
    """No model version was given and ml.model_registry has no champion."""


def _slice_columns(config: MonitoringConfig) -> list[str]:
    """Columns a slice carries, in order: keys, target, monitored features, segment columns."""
    columns = [*KEY_COLUMNS, config.target_column]
    for column in (*config.feature_columns, *config.segment_types):
        if column not in columns:
            columns.append(column)
    return columns


def slice_query(config: MonitoringConfig) -> sql.Composed:
    """The one query that selects a day's slice: features joined to predictions on the key.

    Parameters: `sales_date` and `model_version`, bound by the driver. Both tables are read
    through their `sales_date` index.
    """
    columns = _slice_columns(config)
    return sql.SQL(
        "select {columns}, predictions.prediction"
        " from {features} as features"
        " inner join ml.predictions as predictions"
        " on predictions.sales_date = features.sales_date"
        " and predictions.store_nbr = features.store_nbr"
        " and predictions.family = features.family"
        " where features.sales_date = %(sales_date)s"
        " and predictions.sales_date = %(sales_date)s"
        " and predictions.model_version = %(model_version)s"
        " order by features.store_nbr, features.family"
    ).format(
        columns=sql.SQL(", ").join(sql.Identifier("features", column) for column in columns),
        features=sql.Identifier(FEATURES_SCHEMA, FEATURES_TABLE),
    )


def reference_query(config: MonitoringConfig) -> sql.Composed:
    """The query for a model's like-for-like reference: its validation rows on one ISO weekday."""
    columns = _slice_columns(config)
    return sql.SQL(
        "select {columns}, reference.prediction"
        " from ml.reference as reference"
        " where reference.model_version = %(model_version)s"
        " and extract(isodow from reference.sales_date) = %(weekday)s"
        " order by reference.sales_date, reference.store_nbr, reference.family"
    ).format(columns=sql.SQL(", ").join(sql.Identifier("reference", column) for column in columns))


# The reference's numbers summed into its fingerprint (exactly, as numeric: a float sum depends on
# the scan order), and its text and category columns, hashed and summed.
_REFERENCE_SUMS = ("store_nbr", "sales", "prediction", "onpromotion", *HISTORY_FEATURES)
_REFERENCE_LABELS = ("family", "store_type", "cluster", "city", "state")


def _reference_hash_query() -> sql.Composed:
    """A fingerprint of each weekday of a model's reference: row and actuals counts, date range, the
    exact sum of every number and a sum of hashes of the labels (aggregates, like a slice's
    signature: about a third of the cost of hashing every row's text)."""
    sums = sql.SQL(", ").join(
        sql.SQL("sum({}::numeric)").format(sql.Identifier("reference", column)) for column in _REFERENCE_SUMS
    )
    labels = sql.SQL(", ").join(sql.Identifier("reference", column) for column in _REFERENCE_LABELS)
    return sql.SQL(
        "select extract(isodow from reference.sales_date)::integer as weekday,"
        " md5(concat_ws('|', count(*), count(reference.sales), min(reference.sales_date),"
        " max(reference.sales_date), {sums}, sum(hashtext(concat_ws('|', {labels}))::bigint)))"
        " as reference_hash"
        " from ml.reference as reference"
        " where reference.model_version = %(model_version)s"
        " group by 1"
    ).format(sums=sums, labels=labels)


_TEXT_TYPES = {25, 1043}  # text, varchar (PostgreSQL type OIDs)


def _frame(cursor: psycopg.Cursor[Any], columns: list[str], config: MonitoringConfig) -> pd.DataFrame:
    """A query's rows as a typed frame, built column by column: floats for numbers (NaN for null),
    text for categories (the cluster number too), integers for the store number."""
    rows = cursor.fetchall()
    numeric = {*config.numerical_columns, config.target_column, config.prediction_column}
    categorical = {*config.categorical_columns, *config.segment_types}
    by_column = list(zip(*rows, strict=True)) if rows else [()] * len(columns)
    texts = {column.name for column in cursor.description or [] if column.type_code in _TEXT_TYPES}
    data: dict[str, np.ndarray] = {}
    for name, values in zip(columns, by_column, strict=True):
        if name in numeric:
            data[name] = np.array(values, dtype="float64")
        elif name in categorical and name not in texts:
            data[name] = np.array([None if value is None else str(value) for value in values], dtype=object)
        elif name == "store_nbr":
            data[name] = np.array(values, dtype="int64")
        else:
            data[name] = np.array(values, dtype=object)
    return pd.DataFrame(data, columns=columns)


def as_slice_frame(frame: pd.DataFrame, config: MonitoringConfig) -> pd.DataFrame:
    """Rows read some other way (the features reader, with a prediction column added) typed as a
    slice: the slice's columns, dates as `date` objects, categories as text, numbers as floats."""
    columns = [*_slice_columns(config), config.prediction_column]
    numeric = {*config.numerical_columns, config.target_column, config.prediction_column}
    data: dict[str, Any] = {}
    for name in columns:
        values = frame[name]
        if name in numeric:
            data[name] = values.to_numpy(dtype="float64", na_value=np.nan)
        elif name == "store_nbr":
            data[name] = values.to_numpy(dtype="int64")
        elif name == "sales_date":
            data[name] = np.array([pd.Timestamp(value).date() for value in values], dtype=object)
        else:
            data[name] = np.array([_text(value) for value in values], dtype=object)
    return pd.DataFrame(data, columns=columns)


def _text(value: Any) -> str | None:
    """A category as the slice query gives it: None for null, whole numbers without '.0'."""
    if pd.isna(value):
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def load_slice(
    conn: psycopg.Connection, day: date, model_version: str, config: MonitoringConfig
) -> pd.DataFrame:
    """The slice of one day for one model version: features, actual `sales` and `prediction`."""
    columns = [*_slice_columns(config), config.prediction_column]
    cursor = conn.cursor(binary=True)  # binary floats and dates: no text parsing
    cursor.execute(slice_query(config), {"sales_date": day, "model_version": model_version})
    return _frame(cursor, columns, config)


@dataclass
class Reference:
    """A model version's like-for-like reference for one ISO weekday, with derived values cached."""

    model_version: str
    weekday: int
    frame: pd.DataFrame
    reference_hash: str
    derived: dict[str, Any] = field(default_factory=dict)

    @property
    def days(self) -> int:
        """Number of distinct days in the reference (4 in a 28-day validation window)."""
        return int(self.frame["sales_date"].nunique())


_REFERENCE_CACHE: dict[tuple[str, int, str], Reference] = {}
_HASH_CACHE: dict[str, dict[int, str]] = {}


def reference_hashes(conn: psycopg.Connection, model_version: str) -> dict[int, str]:
    """The reference fingerprint of each ISO weekday of a model version, read afresh (and kept for
    `get_reference`)."""
    rows = conn.execute(_reference_hash_query(), {"model_version": model_version}).fetchall()
    hashes = _HASH_CACHE[model_version] = {int(weekday): digest for weekday, digest in rows}
    return hashes


def get_reference(
    conn: psycopg.Connection,
    model_version: str,
    weekday: int,
    config: MonitoringConfig,
    reference_hash: str | None = None,
) -> Reference:
    """The reference of (model version, ISO weekday), read once per process and then cached.

    `reference_hash` is its fingerprint when the caller knows it (a planned day's key): no query for
    it then, and a cached reference with another fingerprint (read before the reference changed) is
    read again.
    """
    key = (model_version, weekday, config.config_hash())
    cached = _REFERENCE_CACHE.get(key)
    if cached is not None and reference_hash in (None, cached.reference_hash):
        return cached
    columns = [*_slice_columns(config), config.prediction_column]
    cursor = conn.cursor(binary=True)
    cursor.execute(reference_query(config), {"model_version": model_version, "weekday": weekday})
    frame = _frame(cursor, columns, config)
    if reference_hash is None:
        hashes = _HASH_CACHE.get(model_version)
        if hashes is None:
            hashes = reference_hashes(conn, model_version)
        reference_hash = hashes.get(weekday, "")
    reference = Reference(
        model_version=model_version, weekday=weekday, frame=frame, reference_hash=reference_hash
    )
    _REFERENCE_CACHE[key] = reference
    return reference


def clear_reference_cache() -> None:
    """Forget the cached references (tests; a process that saw a model version deleted and re-created)."""
    _REFERENCE_CACHE.clear()
    _HASH_CACHE.clear()


def resolve_model_version(conn: psycopg.Connection, model_version: str | None) -> str:
    """The given model version if it is registered, else the champion; raises NoChampionError."""
    if model_version:
        row = conn.execute(
            "select model_version from ml.model_registry where model_version = %s", (model_version,)
        ).fetchone()
        if row is None:
            raise NoChampionError(f"model version {model_version!r} is not in ml.model_registry")
        return model_version
    champion = champion_version(conn)
    if champion is None:
        raise NoChampionError("no champion in ml.model_registry: train a model first (salesmon train)")
    return champion


# Predictions and actuals (every feature row of the day, which scoring predicts in full) are
# aggregated apart, then joined by day: 5 times cheaper than joining the rows first (60 ms for 90
# days of 54 stores instead of 300 ms).
_SIGNATURE_SQL = """
with predicted as (
    select
        sales_date,
        count(*) as row_count,
        round(sum(prediction)::numeric, 3) as prediction_sum,
        max({stamp}) as scored_at
    from {predictions}
    where sales_date between %(start)s and %(end)s
        and model_version = %(model_version)s{answered}
    group by sales_date
),

actual as (
    select
        sales_date,
        count(sales) as actual_count,
        round(sum(sales)::numeric, 3) as actual_sum
    from {features}
    where sales_date between %(start)s and %(end)s
    group by sales_date
)

select
    predicted.sales_date,
    md5(concat_ws('|', predicted.row_count, actual.actual_count, actual.actual_sum,
        predicted.prediction_sum, predicted.scored_at)) as signature
from predicted
left join actual on predicted.sales_date = actual.sales_date
"""


def slice_signatures(
    conn: psycopg.Connection, model_version: str, start: date, end: date, *, online: bool = False
) -> dict[date, str]:
    """A cheap fingerprint of each day's inputs (rows, actuals, predictions, scoring time) in a range.

    Only days with predictions of the version appear: the batch predictions, or with `online` the
    requests the service answered (ml.prediction_log, stamped by when they were logged). A day whose
    signature changed since it was computed (late actuals, rescoring, new requests) is recomputed by
    the next run.
    """
    query = sql.SQL(_SIGNATURE_SQL).format(
        features=sql.Identifier(FEATURES_SCHEMA, FEATURES_TABLE),
        predictions=sql.Identifier("ml", "prediction_log" if online else "predictions"),
        stamp=sql.Identifier("logged_at" if online else "scored_at"),
        answered=sql.SQL(" and status = 'ok'" if online else ""),
    )
    rows = conn.execute(query, {"start": start, "end": end, "model_version": model_version}).fetchall()
    return {day: signature for day, signature in rows}


def finite(values: pd.Series | np.ndarray) -> np.ndarray:
    """The finite values of a numeric series as a float array."""
    array = np.asarray(values, dtype="float64")
    return array[np.isfinite(array)]
