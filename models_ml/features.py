"""The feature rows the model reads: column roles, one COPY query per date range, input coercion.

The features table is the dbt mart `marts.fct_sales_features`: one row per (sales_date, store_nbr,
family), holding only information known before `sales_date`. Rows are read with one
`copy (select ...) to stdout` with bound date parameters and parsed by pyarrow, which reads about
three million rows in seconds where a row-by-row fetch would take minutes.
"""

from __future__ import annotations

import io
from datetime import date

import numpy as np
import pandas as pd
import psycopg
import pyarrow
import pyarrow.csv
from psycopg import sql

from models_ml.errors import FIRST_BUILD_HINT, ModelError

FEATURES_SCHEMA = "marts"
FEATURES_TABLE = "fct_sales_features"
KEY_COLUMNS: tuple[str, ...] = ("sales_date", "store_nbr", "family")
TARGET = "sales"

CATEGORICAL_FEATURES: tuple[str, ...] = ("store_nbr", "family", "store_type", "cluster", "city", "state")
CALENDAR_FEATURES: tuple[str, ...] = ("day_of_week", "day_of_month", "month")
BOOLEAN_FEATURES: tuple[str, ...] = (
    "is_payday",
    "is_national_holiday",
    "is_regional_holiday",
    "is_local_holiday",
    "is_work_day",
)
# Non-negative quantities on the sales scale (log-transformed for the linear model).
HISTORY_FEATURES: tuple[str, ...] = (
    "transactions_lag_1",
    "sales_lag_1",
    "sales_lag_7",
    "sales_lag_14",
    "sales_lag_28",
    "sales_mean_7",
    "sales_std_7",
    "sales_mean_28",
    "sales_std_28",
    "sales_same_weekday_mean_4w",
)

# The model's input columns, in the features table's order.
FEATURES: tuple[str, ...] = (
    "store_nbr",
    "family",
    "onpromotion",
    "store_type",
    "cluster",
    "city",
    "state",
    *CALENDAR_FEATURES,
    *BOOLEAN_FEATURES,
    "oil_price",
    *HISTORY_FEATURES,
)
NUMERIC_FEATURES: tuple[str, ...] = tuple(
    name for name in FEATURES if name not in CATEGORICAL_FEATURES and name not in BOOLEAN_FEATURES
)
# Everything a reader gets back: key, target, inputs.
COLUMNS: tuple[str, ...] = ("sales_date", "store_nbr", "family", TARGET, *FEATURES[2:])
# The rows a model needs history for: without a 28-day lag, a series has less than four weeks behind it.
HISTORY_COLUMN = "sales_lag_28"

TEXT_FEATURES: tuple[str, ...] = ("family", "store_type", "city", "state")
_ARROW_TYPES = {
    name: (
        pyarrow.date32()
        if name == "sales_date"
        else pyarrow.dictionary(pyarrow.int32(), pyarrow.string())
        if name in TEXT_FEATURES
        else pyarrow.int64()
        if name == "store_nbr"
        else pyarrow.float64()
    )
    for name in COLUMNS
}


def table_exists(conn: psycopg.Connection) -> bool:
    """Whether the features table has been built (by `dbt build`)."""
    row = conn.execute(
        "select to_regclass(%s) is not null", (f"{FEATURES_SCHEMA}.{FEATURES_TABLE}",)
    ).fetchone()
    return bool(row and row[0])


def require_table(conn: psycopg.Connection) -> None:
    """Raise a `ModelError` with the fix when the features table does not exist yet."""
    if not table_exists(conn):
        raise ModelError(
            f"the features table {FEATURES_SCHEMA}.{FEATURES_TABLE} does not exist: {FIRST_BUILD_HINT}"
        )


def _last_date(conn: psycopg.Connection, condition: str) -> date | None:
    require_table(conn)
    query = sql.SQL("select max(sales_date) from {} where {}").format(
        sql.Identifier(FEATURES_SCHEMA, FEATURES_TABLE), sql.SQL(condition)
    )
    row = conn.execute(query).fetchone()
    return row[0] if row else None


def last_actual_date(conn: psycopg.Connection) -> date | None:
    """The last day with known sales in the features table (None when there is none)."""
    return _last_date(conn, "sales is not null")


def last_feature_date(conn: psycopg.Connection) -> date | None:
    """The last day of the features table, forecast requests included (None when it is empty)."""
    return _last_date(conn, "true")


def count_rows(conn: psycopg.Connection, start: date, end: date) -> int:
    """How many feature rows fall between `start` and `end` (inclusive)."""
    query = sql.SQL("select count(*) from {} where sales_date between %s and %s").format(
        sql.Identifier(FEATURES_SCHEMA, FEATURES_TABLE)
    )
    row = conn.execute(query, (start, end)).fetchone()
    return int(row[0]) if row else 0


def rows_per_day(
    conn: psycopg.Connection,
    start: date,
    end: date,
    *,
    target_known: bool = False,
    require_history: bool = False,
) -> pd.Series:
    """Row counts per day between `start` and `end` (same filters as `read_features`), by day."""
    conditions = _conditions(target_known=target_known, require_history=require_history)
    query = sql.SQL("select sales_date, count(*) from {table} where {conditions} group by sales_date").format(
        table=sql.Identifier(FEATURES_SCHEMA, FEATURES_TABLE), conditions=conditions
    )
    rows = conn.execute(query, (start, end)).fetchall()
    counts = pd.Series({day: count for day, count in rows}, dtype="int64")
    return counts.sort_index()


def _conditions(*, target_known: bool, require_history: bool) -> sql.Composable:
    """The WHERE clause of a date-range read; parameters: start, end."""
    conditions = [sql.SQL("sales_date between %s and %s")]
    if target_known:
        conditions.append(sql.SQL("sales is not null"))
    if require_history:
        conditions.append(sql.SQL("{} is not null").format(sql.Identifier(HISTORY_COLUMN)))
    return sql.SQL(" and ").join(conditions)


def read_features(
    conn: psycopg.Connection,
    start: date,
    end: date,
    *,
    target_known: bool = False,
    require_history: bool = False,
) -> pd.DataFrame:
    """Read the feature rows of `start`..`end` (inclusive), sorted by day, store and family.

    `target_known` keeps only rows with known sales; `require_history` drops rows whose series has
    less than 28 days behind it (null `sales_lag_28`). Booleans arrive as 0/1 floats, `sales_date`
    as datetime64, text columns as categoricals. One COPY statement with bound parameters;
    pyarrow parses the CSV stream (multi-threaded).
    """
    require_table(conn)
    selected = [
        sql.SQL("{}::int").format(sql.Identifier(name)) if name in BOOLEAN_FEATURES else sql.Identifier(name)
        for name in COLUMNS
    ]
    query = sql.SQL(
        "copy (select {columns} from {table} where {conditions}) to stdout (format csv, header true)"
    ).format(
        columns=sql.SQL(", ").join(selected),
        table=sql.Identifier(FEATURES_SCHEMA, FEATURES_TABLE),
        conditions=_conditions(target_known=target_known, require_history=require_history),
    )
    buffer = io.BytesIO()
    with conn.cursor() as cursor, cursor.copy(query, (start, end)) as copy:
        for chunk in copy:
            buffer.write(chunk)
    buffer.seek(0)
    table = pyarrow.csv.read_csv(
        buffer, convert_options=pyarrow.csv.ConvertOptions(column_types=_ARROW_TYPES)
    )
    frame = table.to_pandas(date_as_object=False)
    for name in TEXT_FEATURES:
        frame[name] = _sorted_categories(frame[name])
    return frame.sort_values(list(KEY_COLUMNS), ignore_index=True)


def _sorted_categories(column: pd.Series) -> pd.Series:
    """A categorical column with its categories in sorted order (so sorting by it is alphabetical)."""
    if not isinstance(column.dtype, pd.CategoricalDtype):
        return column.astype(object).astype("category")
    categories = column.cat.categories
    return (
        column.cat.reorder_categories(sorted(categories))
        if not categories.is_monotonic_increasing
        else column
    )


def prepare_inputs(frame: pd.DataFrame) -> pd.DataFrame:
    """The model's input columns with uniform dtypes: text categoricals as objects, the rest float.

    The first step of every model pipeline, so a DataFrame built anywhere (a COPY, a JSON request,
    Evidently's reference table) scores alike: booleans (True/False, 't'/'f', 0/1) become 0/1, numbers
    given as strings become floats, missing values become NaN.
    """
    missing = [name for name in FEATURES if name not in frame.columns]
    if missing:
        raise ValueError(f"missing feature columns: {', '.join(missing)}")
    prepared = {}
    for name in FEATURES:
        column = frame[name]
        if name in TEXT_FEATURES:
            prepared[name] = _sorted_categories(column)
        elif name in BOOLEAN_FEATURES and not pd.api.types.is_numeric_dtype(column):
            text = column.astype(object).map(
                lambda value: str(value).strip().lower() if pd.notna(value) else value
            )
            prepared[name] = text.map({"true": 1.0, "t": 1.0, "1": 1.0, "false": 0.0, "f": 0.0, "0": 0.0})
        else:
            prepared[name] = pd.to_numeric(column, errors="coerce").astype(np.float64, copy=False)
    return pd.DataFrame(prepared, index=frame.index)
