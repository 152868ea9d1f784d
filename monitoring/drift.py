"""Drift metrics of a slice against its like-for-like reference, scored by Evidently's statistical tests.

- `prediction_drift_score`: the drift of the prediction column (score, test, and Evidently's own
  verdict with its default threshold for the method, kept as information: alerts come from the
  bounds learned by calibration). Numerical columns and the prediction are compared on log1p(x) when
  the configuration says so (the default; see `MonitoringConfig`): the test is then stored as e.g.
  `wasserstein(log1p)`.
- `column_drift_score` per monitored feature column (same fields).
- `drifted_columns_count` / `drifted_columns_share`: how many of the tested columns Evidently's test
  calls drifted at its default threshold, and their share (what Evidently's `DriftedColumnsCount`
  reports with the same per-column tests). The metrics mart counts drifted columns against the
  learned bounds instead (`fct_model_health_daily`).

Each score is the value Evidently's `ValueDrift` metric gives: the same registered Evidently test
(`get_stattest`, the registry its `DataDriftOptions` resolve a method name in), called on the same
column with infinities and nulls dropped, as `ValueDrift` does. What `ValueDrift` adds on top is
plot data and plotly widgets, drawn inside the calculation whether or not anything is shown: four
fifths of a report's time (measured in docs/monitoring.md). So a slice's values come from the tests
alone, and `ValueDrift` and `DriftedColumnsCount` are only put in reports that are shown: drawn
ones (`--html`: every column) and the Evidently workspace's (the two columns its dashboard plots).
tests/test_monitoring.py checks that the scores, thresholds and verdicts equal `ValueDrift`'s.

A column is tested when it has values on both sides and is not one constant value on both sides
(a constant column cannot drift; store attributes are constant in a one-store data set). A column
with no value at all in the slice or the reference gets a `column_drift_score` row with a null score.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_numeric_dtype

from monitoring.config import MonitoringConfig
from monitoring.results import FamilyPart, MetricValue, SliceContext, as_float

FAMILY = "drift"


def _reference_values(ctx: SliceContext) -> dict[str, frozenset[Any]]:
    """Per monitored column, its distinct reference values (at most two kept), cached on the reference."""
    cached = ctx.reference.derived.get(FAMILY)
    if cached is None:
        cached = {}
        for column in ctx.config.feature_columns:
            values = ctx.reference.frame[column].dropna()
            cached[column] = (
                frozenset(values.iloc[:1]) | frozenset(values[values != values.iloc[0]].iloc[:1])
                if len(values)
                else frozenset()
            )
        ctx.reference.derived[FAMILY] = cached
    return cached


def tested_columns(ctx: SliceContext) -> tuple[list[str], list[str]]:
    """The monitored columns that can be drift-tested, and those that cannot (no values on a side)."""
    tested: list[str] = []
    empty: list[str] = []
    reference_values = _reference_values(ctx)
    for column in ctx.config.feature_columns:
        current = ctx.current[column].dropna()
        reference = reference_values[column]
        if current.empty or not reference:
            empty.append(column)
            continue
        if len(reference) > 1 or current.nunique() > 1 or current.iloc[0] not in reference:
            tested.append(column)
    return tested, empty


def drift_values(frame: pd.DataFrame, column: str, config: MonitoringConfig) -> pd.Series:
    """The values the drift of `column` is tested on: log1p of the non-negative amounts when the
    configuration compares the column on the log scale, else the column as it is."""
    values = frame[column]
    if config.on_log_scale(column):
        amounts = values.to_numpy(dtype="float64", na_value=np.nan)
        return pd.Series(np.log1p(np.maximum(amounts, 0.0)), index=values.index, name=column)
    return values


def _column_type(column: str, config: MonitoringConfig) -> Any:
    from evidently.legacy.core import ColumnType

    return ColumnType.Categorical if column in config.categorical_columns else ColumnType.Numerical


def _reference_series(ctx: SliceContext, column: str) -> pd.Series:
    """The reference's tested values of a column, without infinities and nulls (cached on it)."""
    cache = ctx.reference.derived.setdefault(f"{FAMILY}:series", {})
    series = cache.get(column)
    if series is None:
        series = cache[column] = _clean(drift_values(ctx.reference.frame, column, ctx.config))
    return series


def _clean(values: pd.Series) -> pd.Series:
    """What Evidently's column drift tests are given: the values without infinities and nulls."""
    if is_numeric_dtype(values.dtype) and not is_bool_dtype(values.dtype):
        return values[np.isfinite(values.to_numpy(dtype="float64", na_value=np.nan))]
    return values.dropna()


def score(ctx: SliceContext, column: str) -> MetricValue:
    """The drift of one column (or the prediction) of the slice against its reference, with
    Evidently's registered test for the configured method (see the module's docstring)."""
    from evidently.legacy.calculations.stattests import get_stattest

    config = ctx.config
    reference = _reference_series(ctx, column)
    current = _clean(drift_values(ctx.current, column, config))
    name = "prediction_drift_score" if column == config.prediction_column else "column_drift_score"
    column_name = "" if column == config.prediction_column else column
    stattest = config.stattest_label(column)
    if reference.empty or current.empty:
        return MetricValue(FAMILY, name, None, column_name=column_name, stattest=stattest)
    kind = _column_type(column, config)
    test = get_stattest(reference, current, kind, config.stattest_for(column))
    result = test(reference, current, kind, None)
    return MetricValue(
        FAMILY,
        name,
        as_float(result.drift_score),
        column_name=column_name,
        stattest=stattest,
        threshold=as_float(result.actual_threshold),
        detected=bool(result.drifted),
    )


def display_metrics(ctx: SliceContext, columns: list[str]) -> list[Any]:
    """Evidently's `ValueDrift` of each given column (monitored columns or the prediction), for a
    report that is shown: they draw the distributions the stored scores summarise."""
    from evidently.metrics import ValueDrift

    config = ctx.config
    return [
        ValueDrift(column=config.drift_column(column), method=config.stattest_for(column))
        for column in columns
    ]


def build(ctx: SliceContext) -> FamilyPart:
    """The drift family's values of the slice, and the Evidently metrics that show them."""
    from evidently.metrics import DriftedColumnsCount

    config = ctx.config
    tested, empty = tested_columns(ctx)
    prediction = score(ctx, config.prediction_column)
    columns = [score(ctx, column) for column in tested]
    columns += [
        MetricValue(
            FAMILY, "column_drift_score", None, column_name=column, stattest=config.stattest_label(column)
        )
        for column in empty
    ]
    drifted = sum(1 for value in columns if value.detected)
    values = [
        prediction,
        *columns,
        MetricValue(FAMILY, "drifted_columns_count", float(drifted)),
        MetricValue(FAMILY, "drifted_columns_share", drifted / len(tested) if tested else None),
    ]
    display = display_metrics(ctx, [config.prediction_column, *tested])
    if tested:
        display.append(
            DriftedColumnsCount(
                columns=[config.drift_column(column) for column in tested],
                per_column_method={
                    config.drift_column(column): config.stattest_for(column) for column in tested
                },
            )
        )
    # The workspace's dashboard plots the drift scores computed here (dashboard.salesmon_results), so
    # its report asks Evidently for no drift metric: ValueDrift draws its distributions while it
    # computes (0.1 s a column); only drawn reports (--html) show them.
    return FamilyPart(collect=lambda snapshot: values, display_metrics=display)
