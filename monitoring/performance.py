"""Model-performance metrics of a slice, once its actual sales are known.

Model level, with numpy on the rows that have actual sales: `mae`, `rmse`, `rmsle`, the same on the
like-for-like reference (`reference_mae`, `reference_rmse`, `reference_rmsle`, computed once per
model version and weekday), `rmsle_ratio` and `mean_log_error` (the mean of log1p(prediction) -
log1p(sales): above 0 the forecast is too high, as after a sales drop or a price rise; below, too
low). Evidently has no RMSLE, and its `MAE`/`RMSE` run its whole legacy regression-quality
computation (error bias tables, binned errors) for two numbers: 35% of a report's time, so they are
only added to drawn reports (HTML, Evidently UI), where they show the same values (a test checks
it). A day without any actual gets `mae`, `rmse`, `rmsle`, `rmsle_ratio` and `mean_log_error` rows
with null values, so that the marts show "not known yet", and no segment rows.

Per segment (store, store_type, cluster, city, family), with pandas: `segment_row_count`,
`segment_mae`, `segment_rmse`, `segment_rmsle`, `segment_reference_rmsle`, `segment_rmsle_ratio` (the
day's RMSLE of the segment over its reference RMSLE), `segment_mean_log_error` (its bias) and
`segment_sales_share` (its share of the day's sales: how much it matters). The mart tests them
against the segment's own day-to-day history (calibration) with Benjamini-Hochberg over the day's
segments: see docs/alerts.md.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from monitoring.results import FamilyPart, MetricValue, SliceContext, as_float

FAMILY = "performance"


def log_errors(frame: pd.DataFrame, target: str, prediction: str) -> pd.Series:
    """Signed log errors log1p(prediction) - log1p(sales) of the rows with actuals (predictions < 0 as 0)."""
    known = frame[frame[target].notna()]
    predicted = np.log1p(np.clip(known[prediction].to_numpy(dtype="float64"), 0.0, None))
    actual = np.log1p(np.clip(known[target].to_numpy(dtype="float64"), 0.0, None))
    return pd.Series(predicted - actual, index=known.index)


def rmsle(frame: pd.DataFrame, target: str, prediction: str) -> float | None:
    """Root mean squared log error over the rows with actuals; None when there are none."""
    errors = log_errors(frame, target, prediction)
    if errors.empty:
        return None
    return float(np.sqrt(np.mean(np.square(errors.to_numpy()))))


def errors_summary(frame: pd.DataFrame, target: str, prediction: str) -> dict[str, float | None]:
    """MAE, RMSE, RMSLE and the mean signed log error over the rows with actuals (None each without)."""
    known = frame[frame[target].notna()]
    if known.empty:
        return {"mae": None, "rmse": None, "rmsle": None, "mean_log_error": None}
    error = known[prediction].to_numpy(dtype="float64") - known[target].to_numpy(dtype="float64")
    return {
        "mae": float(np.mean(np.abs(error))),
        "rmse": float(np.sqrt(np.mean(np.square(error)))),
        "rmsle": rmsle(known, target, prediction),
        "mean_log_error": float(np.mean(log_errors(known, target, prediction))),
    }


def row_errors(frame: pd.DataFrame, config: Any) -> pd.DataFrame:
    """Per row with actuals: the segment columns and the absolute, squared and squared log errors."""
    known = frame[frame[config.target_column].notna()]
    error = known[config.prediction_column].to_numpy(dtype="float64") - known[config.target_column].to_numpy(
        dtype="float64"
    )
    log_error = log_errors(known, config.target_column, config.prediction_column).to_numpy()
    columns = {
        segment_type: known[segment_type].astype(str).to_numpy() for segment_type in config.segment_types
    }
    return pd.DataFrame(
        {
            **columns,
            "abs_error": np.abs(error),
            "sq_error": np.square(error),
            "sq_log_error": np.square(log_error),
            "log_error": log_error,
            "sales": np.clip(known[config.target_column].to_numpy(dtype="float64"), 0.0, None),
        }
    )


def segment_table(errors: pd.DataFrame, segment_type: str) -> pd.DataFrame:
    """Per segment value: rows, MAE, RMSE, RMSLE, mean signed log error and share of the day's sales."""
    grouped = errors.groupby(segment_type, sort=True)
    table = grouped[["abs_error", "sq_error", "sq_log_error", "log_error"]].mean()
    table["rows"] = grouped.size()
    table["rmse"] = np.sqrt(table["sq_error"])
    table["rmsle"] = np.sqrt(table["sq_log_error"])
    total = errors["sales"].sum()
    table["sales_share"] = grouped["sales"].sum() / total if total > 0 else np.nan
    return table.rename(columns={"abs_error": "mae"})


def _reference_facts(ctx: SliceContext) -> dict[str, Any]:
    """Reference errors overall and per segment, computed once per (model version, weekday)."""
    facts = ctx.reference.derived.get(FAMILY)
    if facts is None:
        config = ctx.config
        frame = ctx.reference.frame
        facts = {**errors_summary(frame, config.target_column, config.prediction_column), "segments": {}}
        errors = row_errors(frame, config)
        for segment_type in config.segment_types:
            facts["segments"][segment_type] = segment_table(errors, segment_type)["rmsle"].to_dict()
        ctx.reference.derived[FAMILY] = facts
    return facts


def segment_values(ctx: SliceContext) -> list[MetricValue]:
    """Per-segment errors and their ratio to the same segment's like-for-like reference RMSLE.

    Whether a segment's ratio is unusual is decided in the metrics mart, against that segment's own
    day-to-day history learned by calibration (a row-level test of the day's errors against the
    reference's would treat rows of one day as independent, which they are not: a local holiday
    moves every family of a store together).
    """
    config = ctx.config
    facts = _reference_facts(ctx)
    values: list[MetricValue] = []
    errors = row_errors(ctx.current, config)
    for segment_type in config.segment_types:
        table = segment_table(errors, segment_type)
        reference_rmsle = facts["segments"][segment_type]
        columns = ["rows", "mae", "rmse", "rmsle", "log_error", "sales_share"]
        rows = zip(table.index, *(table[column].tolist() for column in columns), strict=True)
        for value, count, mae, rmse, rmsle, log_error, sales_share in rows:
            segment = {"segment_type": segment_type, "segment_value": str(value)}
            reference = as_float(reference_rmsle.get(value))
            current = as_float(rmsle)
            ratio = current / reference if current is not None and reference else None
            values += [
                MetricValue(FAMILY, "segment_row_count", float(count), **segment),
                MetricValue(FAMILY, "segment_mae", as_float(mae), **segment),
                MetricValue(FAMILY, "segment_rmse", as_float(rmse), **segment),
                MetricValue(FAMILY, "segment_rmsle", current, **segment),
                MetricValue(FAMILY, "segment_reference_rmsle", reference, **segment),
                MetricValue(FAMILY, "segment_rmsle_ratio", ratio, **segment),
                MetricValue(FAMILY, "segment_mean_log_error", as_float(log_error), **segment),
                MetricValue(FAMILY, "segment_sales_share", as_float(sales_share), **segment),
            ]
    return values


def build(ctx: SliceContext) -> FamilyPart:
    """The performance family's metrics for the slice's report and how to read them back."""
    from evidently.metrics import MAE, RMSE

    config = ctx.config
    facts = _reference_facts(ctx)
    if not ctx.has_actuals:

        def collect_without_actuals(snapshot: Any) -> list[MetricValue]:
            names = ("mae", "rmse", "rmsle", "rmsle_ratio", "mean_log_error")
            return [MetricValue(FAMILY, name, None) for name in names]

        return FamilyPart(metrics=[], collect=collect_without_actuals)

    def collect(snapshot: Any) -> list[MetricValue]:
        current = errors_summary(ctx.current, config.target_column, config.prediction_column)
        reference_rmsle = facts["rmsle"]
        ratio = (
            current["rmsle"] / reference_rmsle if current["rmsle"] is not None and reference_rmsle else None
        )
        values = [
            MetricValue(FAMILY, "mae", as_float(current["mae"])),
            MetricValue(FAMILY, "rmse", as_float(current["rmse"])),
            MetricValue(FAMILY, "rmsle", as_float(current["rmsle"])),
            MetricValue(FAMILY, "reference_mae", as_float(facts["mae"])),
            MetricValue(FAMILY, "reference_rmse", as_float(facts["rmse"])),
            MetricValue(FAMILY, "reference_rmsle", as_float(reference_rmsle)),
            MetricValue(FAMILY, "rmsle_ratio", as_float(ratio)),
            MetricValue(FAMILY, "mean_log_error", as_float(current["mean_log_error"])),
        ]
        return values + segment_values(ctx)

    return FamilyPart(metrics=[], collect=collect, display_metrics=[MAE(), RMSE()])
