"""Where calibration results are kept: monitoring.calibration_values (the raw values),
monitoring.metric_bounds (a centre and a spread per metric key, model version and weekday) and
monitoring.calibration_runs, written together (monitoring/calibration.py computes them)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import psycopg

from monitoring.config import MonitoringConfig

if TYPE_CHECKING:
    from monitoring.calibration import CalibrationSummary

KEY = ["metric_name", "column_name", "segment_type", "segment_value"]

_VALUE_COLUMNS = ("model_version", "config_hash", "calibration_date", "calibration_kind", *KEY, "value")
_BOUND_COLUMNS = (
    "model_version",
    "config_hash",
    *KEY,
    "weekday",
    "value_scale",
    "center",
    "scale",
    "sample_size",
    "seasonality",
    "observed_min",
    "observed_max",
    "possible_min",
    "possible_max",
)


def store(
    conn: psycopg.Connection,
    model_version: str,
    config: MonitoringConfig,
    values: pd.DataFrame,
    bounds: pd.DataFrame,
    summary: CalibrationSummary,
) -> None:
    """Replace the model version's calibration values, bounds and calibration run in one transaction."""
    config_hash = config.config_hash()
    with conn.transaction():
        conn.execute(
            "select pg_advisory_xact_lock(hashtext('salesmon.calibration.store'), hashtext(%s))",
            (model_version,),
        )
        for table in ("calibration_values", "metric_bounds", "calibration_runs"):
            conn.execute(f"delete from monitoring.{table} where model_version = %s", (model_version,))
        _copy(conn, "monitoring.calibration_values", _VALUE_COLUMNS, values, model_version, config_hash)
        _copy(conn, "monitoring.metric_bounds", _BOUND_COLUMNS, bounds, model_version, config_hash)
        conn.execute(
            "insert into monitoring.calibration_runs (model_version, config_hash, leave_one_out_days,"
            " backcast_days, bound_count, seconds) values (%s, %s, %s, %s, %s, %s)",
            (
                model_version,
                config_hash,
                summary.leave_one_out_days,
                summary.backcast_days,
                summary.bound_count,
                summary.seconds,
            ),
        )


def _copy(
    conn: psycopg.Connection,
    table: str,
    columns: tuple[str, ...],
    frame: pd.DataFrame,
    model_version: str,
    config_hash: str,
) -> None:
    rows = frame.assign(model_version=model_version, config_hash=config_hash)[list(columns)]
    with conn.cursor().copy(f"copy {table} ({', '.join(columns)}) from stdin") as copy:
        for row in rows.itertuples(index=False, name=None):
            copy.write_row([None if _missing(value) else value for value in row])


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and not np.isfinite(value))


def copy_bounds(conn: psycopg.Connection, model_version: str, to_version: str) -> int:
    """Give another model version label the same bounds (tests and benchmarks keep several runs of
    one model apart under labels); returns the rows copied."""
    columns = ", ".join(column for column in _BOUND_COLUMNS if column != "model_version")
    cursor = conn.execute(
        f"insert into monitoring.metric_bounds (model_version, {columns})"
        f" select %s, {columns} from monitoring.metric_bounds where model_version = %s",
        (to_version, model_version),
    )
    return cursor.rowcount
