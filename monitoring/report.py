"""The one Evidently report of a slice: every family's metrics, run once on the slice and its reference.

Evidently is imported lazily (5 to 8 s) and only here and in the family modules; a worker process
imports it once, on its first slice (or in `warm_up`), and keeps it for every later one.

What a report holds depends on who looks at it (`view`): the values alone (`None`: calibration,
`--no-workspace`), plus the metrics the Evidently workspace's dashboard plots (`"dashboard"`), or
every metric with its widgets for an HTML file (`"full"`). Only Evidently's public API is used:
metrics that draw plots while they compute (`ValueDrift`, `DriftedColumnsCount`, `MeanValue`, `MAE`,
`RMSE`) are only added to reports that are shown, and the values they would give are computed from
the same rows by the family modules (drift scores by Evidently's own statistical tests).
"""

from __future__ import annotations

import warnings
from datetime import datetime, time
from typing import Any

import pandas as pd

from monitoring import drift, performance, quality
from monitoring.results import FamilyPart, MetricValue, SliceContext
from monitoring.slices import Reference

FAMILIES = (quality, drift, performance)
VIEWS = (None, "dashboard", "full")


def warm_up() -> None:
    """Import Evidently and its metrics in this process (a worker's initializer), so that the first
    slice does not pay for it; then keep them out of Python's later garbage collections and the
    last ones at exit (warehouse/gc_freeze.py)."""
    import evidently  # noqa: F401
    import evidently.legacy.calculations.stattests  # noqa: F401
    import evidently.metrics  # noqa: F401
    import scipy.stats  # noqa: F401

    from warehouse import gc_freeze

    gc_freeze.imported()


def data_definition(config: Any, has_actuals: bool) -> Any:
    """Evidently's view of a slice: numerical and categorical features, and the regression pair
    when the slice has actual sales.

    A column compared on log1p is only in Evidently's dataset as its log1p copy (its nulls are the
    same); the prediction and the target are also there as they are, for the regression widgets of
    drawn reports.
    """
    from evidently import DataDefinition, Regression

    regression = None
    if has_actuals:
        regression = [Regression(target=config.target_column, prediction=config.prediction_column)]
    numerical = [config.drift_column(column) for column in config.numerical_columns]
    numerical += [config.prediction_column, config.target_column]
    if config.on_log_scale(config.prediction_column):
        numerical.append(config.drift_column(config.prediction_column))
    return DataDefinition(
        numerical_columns=numerical,
        categorical_columns=list(config.categorical_columns),
        regression=regression,
    )


def reference_dataset(reference: Reference, config: Any, has_actuals: bool = True) -> Any:
    """The reference as an Evidently dataset, built once per process and reference (it depends only
    on the data definition, with or without the regression pair), then kept in `reference.derived`."""
    from evidently import Dataset

    key = f"evidently_dataset:{has_actuals}"
    dataset = reference.derived.get(key)
    if dataset is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # numpy's 0/0 in Evidently's statistics of an all-null column
            dataset = Dataset.from_pandas(
                evidently_frame(reference.frame, config),
                data_definition=data_definition(config, has_actuals),
            )
        reference.derived[key] = dataset
    return dataset


def evidently_frame(frame: pd.DataFrame, config: Any) -> pd.DataFrame:
    """The columns Evidently sees: monitored features (numerical ones as log1p copies when compared on
    log1p), the prediction and the target, and the prediction's log1p copy."""
    data = pd.DataFrame(index=frame.index)
    for column in config.feature_columns:
        data[config.drift_column(column)] = drift.drift_values(frame, column, config)
    data[config.prediction_column] = frame[config.prediction_column]
    data[config.target_column] = frame[config.target_column]
    if config.on_log_scale(config.prediction_column):
        prediction = config.prediction_column
        data[config.drift_column(prediction)] = drift.drift_values(frame, prediction, config)
    return data


def run_report(ctx: SliceContext, *, view: str | None = None) -> tuple[list[MetricValue], Any]:
    """Run the slice's single report and read every family's values back.

    `view` says who will look at the snapshot (see the module's docstring): None, "dashboard" or
    "full". Returns the metric values (the same whatever the view) and the Evidently snapshot (for
    the HTML file and the workspace; None when no view is asked for and no family needs a report:
    the values are then computed without one).
    """
    from evidently import Dataset, Report

    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r}; expected one of {VIEWS}")
    parts: list[FamilyPart] = [family.build(ctx) for family in FAMILIES]
    if view is None and not any(part.metrics for part in parts):
        return [value for part in parts for value in part.collect(None)], None
    metrics = [metric for part in parts for metric in part.metrics]
    if view is not None:
        metrics += [metric for part in parts for metric in part.dashboard_metrics]
    if view == "full":
        metrics += [metric for part in parts for metric in part.display_metrics]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numpy's 0/0 in Evidently's statistics of an all-null column
        current = Dataset.from_pandas(
            evidently_frame(ctx.current, ctx.config),
            data_definition=data_definition(ctx.config, ctx.has_actuals),
        )
    reference = reference_dataset(ctx.reference, ctx.config, ctx.has_actuals)
    report = Report(
        _unique(metrics),
        include_tests=True,
        metadata={"model_version": ctx.model_version, "slice_date": ctx.day.isoformat()},
        tags=[ctx.model_version],
    )
    with warnings.catch_warnings():
        # sklearn's "R^2 is not well-defined" from Evidently's regression widgets on one-row bins,
        # numpy's empty-slice warnings on columns without values: noise, not results.
        warnings.simplefilter("ignore")
        snapshot = report.run(
            current,
            reference,
            timestamp=datetime.combine(ctx.day, time()),
            name=f"{ctx.day.isoformat()} {ctx.model_version}",
        )
    values = [value for part in parts for value in part.collect(snapshot)]
    return values, snapshot


def _unique(metrics: list[Any]) -> list[Any]:
    """The metrics without repeats (the dashboard's drift metrics are among the drawn ones)."""
    seen: set[str] = set()
    unique = []
    for metric in metrics:
        if metric.metric_id not in seen:
            seen.add(metric.metric_id)
            unique.append(metric)
    return unique
