"""Calibration: what each alerting metric looks like, for one model version, on days with no incident.

A fixed threshold chosen on one data set fits that data set; the next one false-alarms or misses.
So every alerting metric gets its expected range from the model's own history (as NannyML and
Elementary do), computed by the very engine that monitors (`run_report`, same configuration) on two
kinds of calibration day where nothing is known to have changed:

- **leave one out**: each of the 28 validation days against the other validation days of its weekday
  (3 days instead of the monitored days' 4). These are out of sample, so they alone calibrate the
  error metrics (`rmsle_ratio`, `segment_rmsle_ratio`: a segment's own day-to-day history);
- **backcast**: every other week of the `BACKCAST_DAYS` days before the validation window (4 days of
  each weekday, 1 to 49 days before it), scored in memory by the model and compared with its
  same-weekday reference exactly as a monitored day is. Every other week halves the cost (measured:
  calibration added 29 % to train + a 90-day monitor at 54 stores with all 8 weeks) and keeps the
  span of distances from the reference. They show how far the
  drift and data-quality metrics wander over weeks with no incident, at the same distances from the
  reference as the monitored days (in sample for the model, which the drift of its inputs and of its
  prediction does not care about; their errors are not used).

For each metric key (metric, column, segment) the calibration values give a centre and a spread:
the mean and the standard deviation, widened to a prediction interval for one new day
(x sqrt(1 + 1/n)); error ratios are taken on the log scale, where a bad day's multiplicative jump
and its skew are symmetric. Where the metric has a weekly pattern (a one-way ANOVA over weekdays, p < 0.001,
with at least 3 days of each weekday) the centre is the weekday's own mean and the spread the pooled
within-weekday one, as Elementary's `seasonality: day_of_week`. They are stored per model version and
ISO weekday in `monitoring.metric_bounds`; the raw values stay in `monitoring.calibration_values`, so
an analyst can see what a bound was learned from. The sensitivity (how many spreads away from the
centre is unusual), the floors and the metrics switched off are a person's decisions: the dbt seed
`monitoring_thresholds`, applied by the metrics mart (docs/alerts.md).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
import psycopg

from monitoring.calibration_store import KEY, store
from monitoring.config import DEFAULT_CONFIG, MonitoringConfig
from monitoring.results import MetricValue, SliceContext
from monitoring.slices import Reference, as_slice_frame, get_reference, resolve_model_version

BACKCAST_DAYS = 56
# A bound needs at least this many calibration values (a metric seen on fewer days has none).
MIN_SAMPLES = 5
# The weekly pattern must be this clear (ANOVA p-value) to give each weekday its own centre.
SEASONALITY_P_VALUE = 0.001
MIN_DAYS_PER_WEEKDAY = 3

# The metrics the mart can alert on, with the range their values can take (None: unbounded).
CALIBRATED_METRICS: dict[str, tuple[float | None, float | None]] = {
    "row_count_ratio": (0.0, None),
    "missing_values_share": (0.0, 1.0),
    "unseen_category_count": (0.0, None),
    "zero_sales_store_share": (0.0, 1.0),
    "prediction_drift_score": (0.0, None),
    "drifted_columns_share": (0.0, 1.0),
    "rmsle_ratio": (0.0, None),
    "mean_log_error": (None, None),
    "column_drift_score": (0.0, None),
    "column_missing_share": (0.0, 1.0),
    "column_unseen_count": (0.0, None),
    "segment_rmsle_ratio": (0.0, None),
    "segment_mean_log_error": (None, None),
}
# Error metrics: calibrated on out-of-sample (leave-one-out) days only.
ERROR_METRICS = frozenset({"rmsle_ratio", "segment_rmsle_ratio", "mean_log_error", "segment_mean_log_error"})
# Ratios of errors and drift scores are non-negative and right-skewed (a small segment's ratio can
# triple on a bad day but never drop below 0; a distance has a floor of noise and a long upper tail):
# their centre and spread are learned on log(value), where they are close to symmetric (measured on
# the calibration data set: the drift scores' skewness 0.8-1.2 on 12 stores, 0.2-0.45 on the log).
LOG_SCALE_METRICS = frozenset(
    {"rmsle_ratio", "segment_rmsle_ratio", "prediction_drift_score", "column_drift_score"}
)
# The smallest value taken on the log scale (0 would be log 0).
LOG_FLOOR = 1e-6
LEAVE_ONE_OUT, BACKCAST = "leave_one_out", "backcast"
VALUE_FRAME_COLUMNS = ["calibration_date", "calibration_kind", *KEY, "value"]
WEEKDAYS = tuple(range(1, 8))

Progress = Callable[[str], None]


@dataclass(frozen=True)
class CalibrationSummary:
    """What a calibration did: the model version, its days and bounds, the wall time."""

    model_version: str
    leave_one_out_days: int
    backcast_days: int
    bound_count: int
    seconds: float
    skipped: bool = False

    def render(self) -> str:
        """One line for the command line."""
        if self.skipped:
            return f"model {self.model_version}: already calibrated"
        return (
            f"model {self.model_version}: calibrated {self.bound_count // 7} metric keys on "
            f"{self.leave_one_out_days} leave-one-out and {self.backcast_days} backcast days"
            f" in {self.seconds:.1f} s"
        )


def weekday_days(
    conn: psycopg.Connection,
    model_version: str,
    weekday: int,
    config: MonitoringConfig,
    backcast_days: int = BACKCAST_DAYS,
) -> Iterator[tuple[str, SliceContext]]:
    """The calibration days of one ISO weekday as slices with their references (see the module)."""
    reference = get_reference(conn, model_version, weekday, config)
    frame = reference.frame
    if frame.empty:
        return
    for day in sorted(set(frame["sales_date"])):
        others = frame[frame["sales_date"] != day].reset_index(drop=True)
        if others.empty:
            continue
        current = frame[frame["sales_date"] == day].reset_index(drop=True)
        left_out = Reference(model_version, weekday, others, f"leave-one-out:{day.isoformat()}")
        yield LEAVE_ONE_OUT, SliceContext(day, model_version, config, current, left_out)
    validation_start = _validation_start(conn, model_version)
    days = [day for day in backcast_dates(validation_start, backcast_days) if day.isoweekday() == weekday]
    backcast = _backcast_slices(conn, model_version, days, config)
    for day, current in backcast.groupby("sales_date", sort=True):
        yield BACKCAST, SliceContext(day, model_version, config, current.reset_index(drop=True), reference)


def backcast_dates(validation_start: date, backcast_days: int = BACKCAST_DAYS) -> list[date]:
    """The backcast days: every other week of the `backcast_days` before the validation window,
    starting with the week right before it."""
    before = (validation_start - timedelta(days=distance) for distance in range(1, backcast_days + 1))
    return sorted(day for day in before if ((validation_start - day).days - 1) // 7 % 2 == 0)


def _validation_start(conn: psycopg.Connection, model_version: str) -> date:
    row = conn.execute(
        "select valid_start from ml.model_registry where model_version = %s", (model_version,)
    ).fetchone()
    return row[0]


_MODELS: dict[str, tuple[Any, list[str]]] = {}


def _model(conn: psycopg.Connection, model_version: str) -> tuple[Any, list[str]]:
    """The fitted pipeline of a model version and its input columns, loaded once per process."""
    from models_ml.registry import load_model

    if model_version not in _MODELS:
        _, model, features = load_model(model_version, conn=conn)
        _MODELS.clear()  # one version at a time: a pipeline can be large
        _MODELS[model_version] = (model, features)
    return _MODELS[model_version]


def _backcast_slices(
    conn: psycopg.Connection, model_version: str, days: list[date], config: MonitoringConfig
) -> pd.DataFrame:
    """The feature rows of some days before the validation window, scored in memory in one call on
    one thread (8 days of 54 stores: 0.34 s, where a call per day on the default threads took 2.9 s),
    as slices."""
    from threadpoolctl import threadpool_limits

    from models_ml.features import read_features

    frames = [part for part in (read_features(conn, day, day) for day in days) if not part.empty]
    if not frames:
        return pd.DataFrame(columns=["sales_date"])
    frame = pd.concat(frames, ignore_index=True)
    model, features = _model(conn, model_version)
    with threadpool_limits(1):
        prediction = np.clip(np.asarray(model.predict(frame[features]), dtype="float64"), 0.0, None)
    return as_slice_frame(frame.assign(prediction=prediction), config)


def weekday_values(
    model_version: str,
    weekday: int,
    config: MonitoringConfig = DEFAULT_CONFIG,
    backcast_days: int = BACKCAST_DAYS,
    *,
    conninfo: str | None = None,
) -> pd.DataFrame:
    """The calibrated metrics of one weekday's calibration days: one row per day, kind and metric key.

    The unit of work a Prefect task (or a worker process) computes: the seven weekdays are
    independent, and `store_calibration` fits the bounds from their values together. `conninfo` is
    the warehouse's connection string (a worker's task is given it); default the configured one.
    """
    from monitoring.report import run_report
    from warehouse.db import connect

    rows: list[tuple] = []
    with psycopg.connect(conninfo, autocommit=True) if conninfo else connect(autocommit=True) as conn:
        for kind, ctx in weekday_days(conn, model_version, weekday, config, backcast_days):
            values, _ = run_report(ctx)
            rows += [_row(ctx.day, kind, value) for value in values if _calibrated(value, kind)]
    return pd.DataFrame(rows, columns=VALUE_FRAME_COLUMNS)


def _calibrated(value: MetricValue, kind: str) -> bool:
    return value.name in CALIBRATED_METRICS and (kind == LEAVE_ONE_OUT or value.name not in ERROR_METRICS)


def _row(day: date, kind: str, value: MetricValue) -> tuple:
    return (day, kind, value.name, value.column_name, value.segment_type, value.segment_value, value.value)


def fit_bounds(values: pd.DataFrame) -> pd.DataFrame:
    """Centre and spread of every metric key, per ISO weekday (see the module's docstring)."""
    known = values[np.isfinite(values["value"].astype("float64"))].copy()
    known["value"] = known["value"].astype("float64")
    logged = known["metric_name"].isin(LOG_SCALE_METRICS)
    known.loc[logged, "value"] = np.log(np.maximum(known.loc[logged, "value"], LOG_FLOOR))
    known["weekday"] = [day.isoweekday() for day in known["calibration_date"]]
    rows: list[dict] = []
    for key, group in known.groupby(KEY, sort=True):
        if len(group) < MIN_SAMPLES:
            continue
        rows += _bounds_of(dict(zip(KEY, key, strict=True)), group)
    columns = [*KEY, "weekday", "value_scale", "center", "scale", "sample_size", "seasonality"]
    columns += ["observed_min", "observed_max", "possible_min", "possible_max"]
    return pd.DataFrame(rows, columns=columns)


def _bounds_of(key: dict[str, str], group: pd.DataFrame) -> list[dict]:
    """The seven weekday rows of one metric key."""
    values = group["value"].to_numpy()
    n = len(values)
    by_weekday = {weekday: part["value"].to_numpy() for weekday, part in group.groupby("weekday")}
    seasonal = _weekly_pattern(by_weekday)
    if seasonal:
        residuals = np.concatenate([part - part.mean() for part in by_weekday.values()])
        spread = float(np.sqrt(np.sum(residuals**2) / (n - len(by_weekday))))
    else:
        spread = float(np.std(values, ddof=1))
    possible_min, possible_max = CALIBRATED_METRICS[key["metric_name"]]
    on_log = key["metric_name"] in LOG_SCALE_METRICS
    observed = np.exp(values) if on_log else values
    rows = []
    for weekday in range(1, 8):
        own = by_weekday.get(weekday)
        center = float(own.mean()) if seasonal and own is not None else float(values.mean())
        size = len(own) if seasonal and own is not None else n
        rows.append(
            {
                **key,
                "weekday": weekday,
                "value_scale": "log" if on_log else "identity",
                "center": center,
                "scale": spread * float(np.sqrt(1.0 + 1.0 / size)),
                "sample_size": n,
                "seasonality": "day_of_week" if seasonal else "none",
                "observed_min": float(observed.min()),
                "observed_max": float(observed.max()),
                "possible_min": possible_min,
                "possible_max": possible_max,
            }
        )
    return rows


def _weekly_pattern(by_weekday: dict[int, np.ndarray]) -> bool:
    """True when the metric's level clearly depends on the weekday (one-way ANOVA)."""
    from scipy.stats import f_oneway

    if len(by_weekday) < 2 or min(len(part) for part in by_weekday.values()) < MIN_DAYS_PER_WEEKDAY:
        return False
    if all(np.ptp(part) == 0 for part in by_weekday.values()):
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p_value = f_oneway(*by_weekday.values()).pvalue
    return bool(np.isfinite(p_value) and p_value < SEASONALITY_P_VALUE)


def is_calibrated(conn: psycopg.Connection, model_version: str, config: MonitoringConfig) -> bool:
    """Whether the model version's bounds were learned with this configuration."""
    row = conn.execute(
        "select config_hash from monitoring.calibration_runs where model_version = %s", (model_version,)
    ).fetchone()
    return row is not None and row[0] == config.config_hash()


def calibrate(
    model_version: str | None = None,
    *,
    config: MonitoringConfig = DEFAULT_CONFIG,
    force: bool = False,
    backcast_days: int = BACKCAST_DAYS,
    progress: Progress | None = None,
) -> CalibrationSummary:
    """Learn and store the bounds of a model version (default: the champion) in this process, unless
    it already has them for this configuration (or `force`).

    Holds an advisory lock on the model version meanwhile, so that two runs starting together
    calibrate once: the second waits, then finds the bounds stored. The monitoring flow computes the
    seven weekdays as tasks of its task runner instead (`weekday_values`, then `store_calibration`).
    """
    from warehouse.db import connect

    started = time.perf_counter()
    with connect(autocommit=True) as conn:
        version = resolve_model_version(conn, model_version)
        conn.execute("select pg_advisory_lock(hashtext('salesmon.calibration'), hashtext(%s))", (version,))
        try:
            if not force and is_calibrated(conn, version, config):
                return CalibrationSummary(version, 0, 0, 0, time.perf_counter() - started, skipped=True)
            parts = []
            for weekday in WEEKDAYS:
                parts.append(weekday_values(version, weekday, config, backcast_days))
                if progress:
                    progress(f"calibration: weekday {weekday} of 7")
            return store_calibration(version, parts, config=config, started=started)
        finally:
            conn.execute(
                "select pg_advisory_unlock(hashtext('salesmon.calibration'), hashtext(%s))", (version,)
            )


def store_calibration(
    model_version: str,
    parts: list[pd.DataFrame],
    *,
    config: MonitoringConfig = DEFAULT_CONFIG,
    started: float | None = None,
) -> CalibrationSummary:
    """Fit the bounds from the weekdays' calibration values and store values, bounds and the run, in
    one transaction (a concurrent calibration of the same version replaces them as a whole)."""
    from warehouse.db import connect

    values = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=VALUE_FRAME_COLUMNS)
    bounds = fit_bounds(values)
    kinds = values.drop_duplicates(["calibration_date", "calibration_kind"])["calibration_kind"]
    summary = CalibrationSummary(
        model_version=model_version,
        leave_one_out_days=int((kinds == LEAVE_ONE_OUT).sum()),
        backcast_days=int((kinds == BACKCAST).sum()),
        bound_count=len(bounds),
        seconds=time.perf_counter() - started if started is not None else 0.0,
    )
    with connect(autocommit=True) as conn:
        store(conn, model_version, config, values, bounds, summary)
    return summary


def needs_calibration(model_version: str, config: MonitoringConfig = DEFAULT_CONFIG) -> bool:
    """Whether the model version has no bounds for this configuration yet."""
    from warehouse.db import connect

    with connect() as conn:
        return not is_calibrated(conn, model_version, config)
