"""Drift metrics of a slice against its like-for-like reference, computed by Evidently.

- `prediction_drift_score`: Evidently `ValueDrift` of the prediction column (score, test, and
  Evidently's own verdict with its default threshold for the method, kept as information: alerts
  come from the bounds learned by calibration). Numerical columns and the prediction are compared on
  log1p(x) when the configuration says so (the default; see `MonitoringConfig`): the test is then
  stored as e.g. `wasserstein(log1p)`.
- `column_drift_score` per monitored feature column (`ValueDrift`, same fields).
- `drifted_columns_count` / `drifted_columns_share`: how many of the tested columns Evidently's
  `ValueDrift` found drifted at its default thresholds, and their share. This is what Evidently's
  `DriftedColumnsCount` reports with the same per-column tests (a test checks it), but
  `DriftedColumnsCount` runs every column's test a second time (a quarter of the report's time), so
  it is only added to drawn reports (HTML, Evidently UI), where its widget is shown. The metrics
  mart counts drifted columns against the learned bounds instead (`fct_model_health_daily`).

A column is tested when it has values on both sides and is not one constant value on both sides
(a constant column cannot drift; store attributes are constant in a one-store data set). A column
with no value at all in the slice or the reference gets a `column_drift_score` row with a null score.
"""

from __future__ import annotations

from typing import Any

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


def _detected(result: Any) -> bool | None:
    """Evidently's verdict for a ValueDrift result: its 'drift' test failed means drift detected."""
    for test in result.tests or []:
        if test.id == "drift":
            return str(getattr(test.status, "value", test.status)).upper() == "FAIL"
    return None


def _threshold(result: Any) -> float | None:
    """The threshold Evidently's own drift test applied (its default for the method)."""
    for test in result.tests or []:
        if test.id == "drift":
            return as_float(test.metric_config.params.get("threshold"))
    return None


def build(ctx: SliceContext) -> FamilyPart:
    """The drift family's metrics for the slice's report and how to read them back."""
    from evidently.metrics import DriftedColumnsCount, ValueDrift

    config = ctx.config
    tested, empty = tested_columns(ctx)
    prediction_metric = ValueDrift(
        column=config.drift_column(config.prediction_column),
        method=config.stattest_for(config.prediction_column),
    )
    column_metrics = {
        column: ValueDrift(column=config.drift_column(column), method=config.stattest_for(column))
        for column in tested
    }
    count_metric = None
    if tested:
        count_metric = DriftedColumnsCount(
            columns=[config.drift_column(column) for column in tested],
            per_column_method={config.drift_column(column): config.stattest_for(column) for column in tested},
        )
    metrics: list[Any] = [prediction_metric, *column_metrics.values()]

    def collect(snapshot: Any) -> list[MetricValue]:
        results = snapshot.metric_results
        values: list[MetricValue] = []
        result = results[prediction_metric.metric_id]
        values.append(
            MetricValue(
                FAMILY,
                "prediction_drift_score",
                as_float(result.value),
                stattest=config.stattest_label(config.prediction_column),
                threshold=_threshold(result),
                detected=_detected(result),
            )
        )
        for column, metric in column_metrics.items():
            result = results[metric.metric_id]
            values.append(
                MetricValue(
                    FAMILY,
                    "column_drift_score",
                    as_float(result.value),
                    column_name=column,
                    stattest=config.stattest_label(column),
                    threshold=_threshold(result),
                    detected=_detected(result),
                )
            )
        for column in empty:
            values.append(
                MetricValue(
                    FAMILY,
                    "column_drift_score",
                    None,
                    column_name=column,
                    stattest=config.stattest_label(column),
                )
            )
        verdicts = [
            value.detected for value in values if value.name == "column_drift_score" and value.column_name
        ]
        drifted = sum(1 for verdict in verdicts if verdict)
        values.append(MetricValue(FAMILY, "drifted_columns_count", float(drifted)))
        values.append(MetricValue(FAMILY, "drifted_columns_share", drifted / len(tested) if tested else None))
        return values

    display = [count_metric] if count_metric is not None else []
    return FamilyPart(metrics=metrics, collect=collect, display_metrics=display)
