"""Training: fit the candidates on the training window, compare them on validation, register the champion.

Splits (ARCHITECTURE.md): for a monitored period starting at `monitor_from` (default: 90 days before
the last day with known sales), training uses the days before `monitor_from - 28`, the 28 days
before `monitor_from` are validation, and the validation rows scored by each candidate become its
Evidently reference (`ml.reference`).

Rows without enough history are dropped from training: a row whose 28-day lag is null (the first
four weeks of a series, or right after a gap) is not a row the model will meet in production.
Validation and scoring keep every row: the gradient-boosting model routes missing lags natively,
the linear model imputes training medians. Rows with unknown sales never enter training or metrics.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sklearn.inspection import permutation_importance
from sklearn.metrics import make_scorer
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from models_ml import metrics, pipelines
from models_ml.errors import FIRST_BUILD_HINT, ModelError
from models_ml.features import FEATURES, TARGET, last_actual_date, read_features, rows_per_day
from models_ml.pipelines import threads_for
from models_ml.registry import ModelRecord, save_training, version_stamp

MONITOR_DAYS = 90
VALIDATION_DAYS = 28
# The candidates fit on at most this many training rows: the most recent whole days that fit
# (about 560 days of 54 stores x 33 families). Recent days carry the current level and trend; more
# rows cost fitting time without improving the validation RMSLE.
MAX_FIT_ROWS = 1_000_000
# Permutation importance runs on a random sample of at most this many validation rows.
IMPORTANCE_MAX_ROWS = 10_000
IMPORTANCE_REPEATS = 3

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Windows:
    """The date windows of one training run (inclusive bounds)."""

    monitor_from: date
    train_end: date
    valid_start: date
    valid_end: date

    @classmethod
    def for_monitor_from(cls, monitor_from: date) -> Windows:
        valid_start = monitor_from - timedelta(days=VALIDATION_DAYS)
        return cls(
            monitor_from=monitor_from,
            train_end=valid_start - timedelta(days=1),
            valid_start=valid_start,
            valid_end=monitor_from - timedelta(days=1),
        )


@dataclass(frozen=True)
class TrainResult:
    """What a training run did: windows, row counts, validation metrics, registered versions."""

    windows: Windows
    train_start: date
    train_rows: int
    available_rows: int
    valid_rows: int
    metrics: dict[str, dict[str, float]]
    versions: dict[str, str]
    champion: str
    champion_version: str
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def improvement_vs_seasonal_naive(self) -> float:
        """How much lower the champion's validation RMSLE is than seasonal-naive's (0.25 = 25 % lower)."""
        baseline = self.metrics[metrics.SEASONAL_NAIVE]["rmsle"]
        return 1 - self.metrics[self.champion]["rmsle"] / baseline

    def render(self) -> str:
        """The validation table and the champion, as printed by `salesmon train`."""
        window = self.windows
        lines = [
            f"training   {self.train_start} .. {window.train_end}: {self.train_rows:,} rows "
            f"(of {self.available_rows:,} with 28 days of history)",
            f"validation {window.valid_start} .. {window.valid_end}: {self.valid_rows:,} rows; "
            f"monitoring from {window.monitor_from}",
            "",
            metrics.render_table(self.metrics, champion=self.champion),
            "",
            f"champion: {self.champion_version} (RMSLE {self.metrics[self.champion]['rmsle']:.4f}, "
            f"{self.improvement_vs_seasonal_naive:.1%} below seasonal-naive) in {self.seconds:.0f} s",
        ]
        return "\n".join(lines)


def default_monitor_from(last_actual: date) -> date:
    """The default start of the monitored period: 90 days before the last day with known sales."""
    return last_actual - timedelta(days=MONITOR_DAYS)


def train(
    monitor_from: date | None = None,
    *,
    progress: Progress | None = None,
    max_fit_rows: int = MAX_FIT_ROWS,
    hgb_params: dict[str, Any] | None = None,
) -> TrainResult:
    """Train the linear baseline and gradient boosting, register both, make the better one champion.

    Reads the training and validation windows of `monitor_from` from the features table, fits the
    candidates on log1p(sales), scores them and seasonal-naive (sales of the same weekday last week)
    on the validation window with RMSLE, MAE and RMSE, and registers every candidate with its
    validation rows as reference. The lowest validation RMSLE becomes the champion, in the same
    transaction that clears the previous champion. Both candidates fit on the same rows: the most
    recent whole days of the training window holding at most `max_fit_rows` rows (all of it on small
    data). Raises `ModelError` when the features table is missing or a window has no rows.
    """
    say = progress or (lambda _message: None)
    started = time.monotonic()
    timings: dict[str, float] = {}
    from warehouse.db import connect

    with connect(autocommit=True) as conn:
        last_actual = last_actual_date(conn)
        if last_actual is None:
            raise ModelError(f"the features table has no rows with known sales: {FIRST_BUILD_HINT}")
        windows = Windows.for_monitor_from(monitor_from or default_monitor_from(last_actual))
        clock = time.monotonic()
        per_day = rows_per_day(conn, date.min, windows.train_end, target_known=True, require_history=True)
        fit_start = _fit_start(per_day, max_fit_rows) if len(per_day) else windows.valid_start
        training = read_features(conn, fit_start, windows.train_end, target_known=True, require_history=True)
        validation = read_features(conn, windows.valid_start, windows.valid_end, target_known=True)
        timings["read"] = time.monotonic() - clock
    if training.empty:
        raise ModelError(
            f"no training rows before {windows.valid_start} with 28 days of history: monitoring from "
            f"{windows.monitor_from} leaves no training window "
            "(choose a later --monitor-from or load more days)"
        )
    if validation.empty:
        raise ModelError(
            f"no rows with known sales in the validation window {windows.valid_start} .. {windows.valid_end} "
            f"(last day with sales: {last_actual}); choose another --monitor-from"
        )
    available = int(per_day.sum())
    say(
        f"read {len(training):,} training rows (of {available:,} with history since {per_day.index[0]}) "
        f"and {len(validation):,} validation rows in {timings['read']:.1f} s"
    )
    params = {pipelines.HGB: hgb_params}
    scores: dict[str, dict[str, float]] = {
        metrics.SEASONAL_NAIVE: metrics.evaluate(
            validation[TARGET], metrics.seasonal_naive(validation["sales_lag_7"])
        )
    }
    fitted: dict[str, Pipeline] = {}
    predictions: dict[str, np.ndarray] = {}
    for name in (pipelines.LINEAR, pipelines.HGB):
        clock = time.monotonic()
        with threadpool_limits(threads_for(len(training))):
            model = pipelines.build(name, params.get(name)).fit(training, training[TARGET].to_numpy())
            predictions[name] = model.predict(validation)
        timings[f"fit_{name}"] = time.monotonic() - clock
        fitted[name] = model
        scores[name] = metrics.evaluate(validation[TARGET], predictions[name])
        rmsle = scores[name]["rmsle"]
        say(f"fitted {name} on {len(training):,} rows in {timings[f'fit_{name}']:.1f} s: RMSLE {rmsle:.4f}")

    champion = min(fitted, key=lambda name: scores[name]["rmsle"])
    clock = time.monotonic()
    importance = feature_importance(fitted[champion], validation)
    timings["importance"] = time.monotonic() - clock
    say(f"permutation importance of {champion} in {timings['importance']:.1f} s")

    clock = time.monotonic()
    # one transaction from the version stamp to the registration: a training registering at the same
    # second waits for this one (version_stamp locks the registry) and then gets another stamp
    with connect(autocommit=True) as conn, conn.transaction():
        stamp = version_stamp(conn)
        versions = {name: f"{stamp}-{name}" for name in fitted}
        records = [
            ModelRecord(
                model_version=versions[name],
                algorithm=type(model.named_steps["model"].regressor).__name__,
                pipeline=model,
                params={
                    **pipelines.describe(model),
                    "fit_rows": len(training),
                    "max_fit_rows": max_fit_rows,
                    "training_rows_available": available,
                    "history_start": per_day.index[0].isoformat(),
                    "training_rows": "known sales, non-null sales_lag_28, latest days up to max_fit_rows",
                },
                train_start=fit_start,
                train_end=windows.train_end,
                valid_start=windows.valid_start,
                valid_end=windows.valid_end,
                monitor_from=windows.monitor_from,
                valid_metrics=scores[name],
                metrics={"validation": scores, "validation_rows": len(validation)},
                is_champion=name == champion,
            )
            for name, model in fitted.items()
        ]
        references = {versions[name]: validation.assign(prediction=predictions[name]) for name in fitted}
        save_training(conn, records, importance=importance, references=references)
    timings["register"] = time.monotonic() - clock
    result = TrainResult(
        windows=windows,
        train_start=fit_start,
        train_rows=len(training),
        available_rows=available,
        valid_rows=len(validation),
        metrics=scores,
        versions=versions,
        champion=champion,
        champion_version=versions[champion],
        seconds=time.monotonic() - started,
        timings=timings,
    )
    say(f"registered {', '.join(versions.values())} in {timings['register']:.1f} s")
    return result


def _fit_start(per_day: pd.Series, max_rows: int) -> date:
    """The first day of the most recent whole days holding at most `max_rows` rows (at least one day)."""
    from_the_end = per_day.sort_index(ascending=False).cumsum()
    days = from_the_end[from_the_end <= max_rows].index
    return min(days) if len(days) else per_day.index.max()


def feature_importance(model: Pipeline, validation: pd.DataFrame, *, seed: int = 0) -> pd.DataFrame:
    """Permutation importance of each input column: the mean increase of validation RMSLE when shuffled.

    Runs on a random sample of at most `IMPORTANCE_MAX_ROWS` validation rows with
    `IMPORTANCE_REPEATS` shuffles per feature. Returns feature, importance_mean, importance_std,
    most important first.
    """
    sample = validation.sample(n=min(len(validation), IMPORTANCE_MAX_ROWS), random_state=seed)
    scorer = make_scorer(metrics.rmsle, greater_is_better=False)
    with threadpool_limits(1):
        result = permutation_importance(
            model,
            sample[list(FEATURES)],
            sample[TARGET].to_numpy(),
            scoring=scorer,
            n_repeats=IMPORTANCE_REPEATS,
            random_state=seed,
            n_jobs=1,
        )
    table = pd.DataFrame(
        {
            "feature": list(FEATURES),
            "importance_mean": result.importances_mean,
            "importance_std": result.importances_std,
        }
    )
    return table.sort_values("importance_mean", ascending=False, ignore_index=True)
