"""The one Evidently report of a slice: every family's metrics, run once on the slice and its reference.

Evidently is imported lazily (about 7 s) and only here and in the family modules' `build`; a worker
process calls `warm_up()` once (the process pool's initializer) so that no slice pays for the import.

Evidently 0.7 draws every `ValueDrift` result's plotly widgets inside the calculation itself, which is
about 70% of the report's time and is only needed for an HTML report or the Evidently UI. When
neither is wanted, `run_report(render=False)` switches that drawing off for the length of the run
(a context variable read by a thin wrapper around `ValueDriftCalculation._render`); the metric values
are the same either way.
"""

from __future__ import annotations

import contextvars
import functools
import warnings
from datetime import datetime, time
from typing import Any

import numpy as np
import pandas as pd

from monitoring import drift, performance, quality
from monitoring.results import FamilyPart, MetricValue, SliceContext
from monitoring.slices import Reference

FAMILIES = (quality, drift, performance)

_RENDER_WIDGETS: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "salesmon_render_widgets", default=True
)


def _install_render_switch() -> None:
    """Wrap ValueDrift's widget drawing so that a run can switch it off (idempotent)."""
    from evidently.metrics import column_statistics

    calculation = getattr(column_statistics, "ValueDriftCalculation", None)
    original = getattr(calculation, "_render", None)
    if original is None or getattr(original, "_salesmon_switch", False):
        return

    def _render(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _RENDER_WIDGETS.get():
            return original(self, *args, **kwargs)
        return []

    _render._salesmon_switch = True  # type: ignore[attr-defined]
    calculation._render = _render  # type: ignore[union-attr]


def warm_up() -> None:
    """Import Evidently and its metrics once in this process (a worker's initializer)."""
    import evidently  # noqa: F401
    import evidently.metrics  # noqa: F401
    import scipy.stats  # noqa: F401

    _install_render_switch()


@functools.lru_cache(maxsize=1)
def evidently_version() -> str:
    """The installed Evidently version, without importing it."""
    from importlib.metadata import version

    return version("evidently")


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


def log_columns(config: Any) -> dict[str, str]:
    """The columns compared on log1p(x): original name -> name of the log1p column."""
    columns = [*config.numerical_columns, config.prediction_column]
    return {column: config.drift_column(column) for column in columns if config.on_log_scale(column)}


def evidently_frame(frame: pd.DataFrame, config: Any) -> pd.DataFrame:
    """The columns Evidently sees: monitored features (numerical ones as log1p copies when compared on
    log1p), the prediction and the target, and the prediction's log1p copy."""
    logs = log_columns(config)
    data = pd.DataFrame(index=frame.index)
    for column in config.feature_columns:
        if column in logs:
            data[logs[column]] = np.log1p(frame[column].clip(lower=0.0))
        else:
            data[column] = frame[column]
    data[config.prediction_column] = frame[config.prediction_column]
    data[config.target_column] = frame[config.target_column]
    if config.prediction_column in logs:
        data[logs[config.prediction_column]] = np.log1p(frame[config.prediction_column].clip(lower=0.0))
    return data


def run_report(ctx: SliceContext, *, render: bool = True) -> tuple[list[MetricValue], Any]:
    """Run the slice's single report (all families' metrics) and read every family's values back.

    Returns the metric values and the Evidently snapshot (for the HTML file and the workspace).
    """
    from evidently import Dataset, Report

    warm_up()
    parts: list[FamilyPart] = [family.build(ctx) for family in FAMILIES]
    metrics = [metric for part in parts for metric in part.metrics]
    if render:
        metrics += [metric for part in parts for metric in part.display_metrics]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numpy's 0/0 in Evidently's statistics of an all-null column
        current = Dataset.from_pandas(
            evidently_frame(ctx.current, ctx.config),
            data_definition=data_definition(ctx.config, ctx.has_actuals),
        )
    reference = reference_dataset(ctx.reference, ctx.config, ctx.has_actuals)
    report = Report(
        metrics,
        include_tests=True,
        metadata={"model_version": ctx.model_version, "slice_date": ctx.day.isoformat()},
        tags=[ctx.model_version],
    )
    token = _RENDER_WIDGETS.set(render)
    try:
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
    finally:
        _RENDER_WIDGETS.reset(token)
    values = [value for part in parts for value in part.collect(snapshot)]
    return values, snapshot
