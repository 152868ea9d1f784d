"""Model-performance metrics of a slice, once its actual sales are known.

Model level, with numpy on the rows that have actual sales: `mae`, `rmse`, `rmsle`, the same on the
like-for-like reference (`reference_mae`, `reference_rmse`, `reference_rmsle`, computed once per model
version and weekday) and `rmsle_ratio`. Evidently has no RMSLE, and its `MAE`/`RMSE` run its whole legacy
regression-quality computation (error bias tables, binned errors) for two numbers: 35% of a report's
time, so they are only added to drawn reports (HTML, Evidently UI), where they show the same values
(a test checks it). A day without any actual gets `mae`, `rmse`, `rmsle` and `rmsle_ratio` rows with
null values, so that the marts show "not known yet", and no segment rows.

Per segment (store_type, cluster, city, family), with pandas and scipy, because Evidently has no
multiple-testing correction: `segment_row_count`, `segment_mae`, `segment_rmse`, `segment_rmsle`,
`segment_reference_rmsle`, `segment_p_value` (one-sided Mann-Whitney U, normal approximation with tie
and continuity corrections: are the segment's absolute log errors larger than the same segment's in
the reference?) and `segment_q_value` (Benjamini-Hochberg over all segments of the slice), whose
`detected` is q < alpha and segment RMSLE >= min effect x the segment's reference RMSLE.
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
    """MAE, RMSE and RMSLE over the rows with actuals (None each when there are none)."""
    known = frame[frame[target].notna()]
    if known.empty:
        return {"mae": None, "rmse": None, "rmsle": None}
    error = known[prediction].to_numpy(dtype="float64") - known[target].to_numpy(dtype="float64")
    return {
        "mae": float(np.mean(np.abs(error))),
        "rmse": float(np.sqrt(np.mean(np.square(error)))),
        "rmsle": rmsle(known, target, prediction),
    }


def row_errors(frame: pd.DataFrame, config: Any) -> pd.DataFrame:
    """Per row with actuals: the segment columns and the absolute, squared and log errors."""
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
            "abs_log_error": np.abs(log_error),
        }
    )


def segment_table(errors: pd.DataFrame, segment_type: str) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Per segment value: rows, MAE, RMSE, RMSLE; and each segment's absolute log errors."""
    grouped = errors.groupby(segment_type, sort=True)
    table = grouped[["abs_error", "sq_error", "sq_log_error"]].mean()
    table["rows"] = grouped.size()
    table["rmse"] = np.sqrt(table["sq_error"])
    table["rmsle"] = np.sqrt(table["sq_log_error"])
    abs_log_error = errors["abs_log_error"].to_numpy()
    by_segment = {str(value): abs_log_error[positions] for value, positions in grouped.indices.items()}
    return table.rename(columns={"abs_error": "mae"}), by_segment


def _reference_facts(ctx: SliceContext) -> dict[str, Any]:
    """Reference errors overall and per segment, computed once per (model version, weekday)."""
    facts = ctx.reference.derived.get(FAMILY)
    if facts is None:
        config = ctx.config
        frame = ctx.reference.frame
        facts = {**errors_summary(frame, config.target_column, config.prediction_column), "segments": {}}
        errors = row_errors(frame, config)
        for segment_type in config.segment_types:
            table, by_segment = segment_table(errors, segment_type)
            facts["segments"][segment_type] = (table["rmsle"].to_dict(), by_segment)
        ctx.reference.derived[FAMILY] = facts
    return facts


def one_sided_p_value(current: np.ndarray, reference: np.ndarray) -> float | None:
    """Mann-Whitney U p-value that `current` tends to exceed `reference`; None when a side is empty.

    The normal approximation with tie and continuity corrections, i.e. scipy's
    `mannwhitneyu(current, reference, alternative="greater", method="asymptotic")`, written out because
    scipy's wrapper costs more than the test itself when run on ~80 segments a day.
    """
    from scipy.special import ndtr
    from scipy.stats import rankdata

    n_current, n_reference = len(current), len(reference)
    if n_current == 0 or n_reference == 0:
        return None
    pooled = np.concatenate([current, reference])
    total = n_current + n_reference
    _, ties = np.unique(pooled, return_counts=True)
    tie_term = float((ties**3 - ties).sum()) / (total * (total - 1)) if total > 1 else 0.0
    variance = n_current * n_reference / 12.0 * ((total + 1) - tie_term)
    if variance <= 0:
        return 1.0  # every error equal: no evidence either way
    u_statistic = rankdata(pooled)[:n_current].sum() - n_current * (n_current + 1) / 2.0
    z_score = (u_statistic - n_current * n_reference / 2.0 - 0.5) / np.sqrt(variance)
    return float(ndtr(-z_score))


def benjamini_hochberg(p_values: list[float | None]) -> list[float | None]:
    """Benjamini-Hochberg adjusted p-values (q-values); None stays None and is not counted."""
    from scipy.stats import false_discovery_control

    present = [index for index, value in enumerate(p_values) if value is not None]
    adjusted: list[float | None] = [None] * len(p_values)
    if present:
        q_values = false_discovery_control(np.array([p_values[index] for index in present]), method="bh")
        for index, q_value in zip(present, q_values, strict=True):
            adjusted[index] = float(q_value)
    return adjusted


def segment_values(ctx: SliceContext) -> list[MetricValue]:
    """Per-segment errors, their one-sided tests against the reference, and BH q-values."""
    config = ctx.config
    facts = _reference_facts(ctx)
    rows: list[tuple[str, str, pd.Series, float | None, float | None]] = []
    errors = row_errors(ctx.current, config)
    for segment_type in config.segment_types:
        table, current_errors = segment_table(errors, segment_type)
        reference_rmsle, reference_errors = facts["segments"][segment_type]
        for value, stats in table.iterrows():
            p_value = one_sided_p_value(
                current_errors.get(str(value), np.empty(0)), reference_errors.get(str(value), np.empty(0))
            )
            rows.append((segment_type, str(value), stats, as_float(reference_rmsle.get(value)), p_value))
    q_values = benjamini_hochberg([row[4] for row in rows])
    values: list[MetricValue] = []
    for (segment_type, value, stats, reference, p_value), q_value in zip(rows, q_values, strict=True):
        segment = {"segment_type": segment_type, "segment_value": value}
        values += [
            MetricValue(FAMILY, "segment_row_count", float(stats["rows"]), **segment),
            MetricValue(FAMILY, "segment_mae", as_float(stats["mae"]), **segment),
            MetricValue(FAMILY, "segment_rmse", as_float(stats["rmse"]), **segment),
            MetricValue(FAMILY, "segment_rmsle", as_float(stats["rmsle"]), **segment),
            MetricValue(FAMILY, "segment_reference_rmsle", reference, **segment),
            MetricValue(FAMILY, "segment_p_value", p_value, stattest="mann_whitney_u_greater", **segment),
        ]
        detected = None
        if q_value is not None:
            large = reference is not None and float(stats["rmsle"]) >= config.segment_min_effect * reference
            if reference == 0.0:
                large = float(stats["rmsle"]) > 0.0
            detected = bool(q_value < config.segment_alpha and large)
        values.append(
            MetricValue(
                FAMILY,
                "segment_q_value",
                q_value,
                stattest="benjamini_hochberg",
                threshold=config.segment_alpha,
                detected=detected,
                **segment,
            )
        )
    return values


def build(ctx: SliceContext) -> FamilyPart:
    """The performance family's metrics for the slice's report and how to read them back."""
    from evidently.metrics import MAE, RMSE

    config = ctx.config
    facts = _reference_facts(ctx)
    if not ctx.has_actuals:

        def collect_without_actuals(snapshot: Any) -> list[MetricValue]:
            return [MetricValue(FAMILY, name, None) for name in ("mae", "rmse", "rmsle", "rmsle_ratio")]

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
        ]
        return values + segment_values(ctx)

    return FamilyPart(metrics=[], collect=collect, display_metrics=[MAE(), RMSE()])
