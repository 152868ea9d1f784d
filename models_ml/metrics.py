"""Forecast error metrics (RMSLE is the competition metric) and the validation table."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

SEASONAL_NAIVE = "seasonal_naive"


def _arrays(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    true = np.asarray(y_true, dtype=np.float64)
    pred = np.asarray(y_pred, dtype=np.float64)
    if true.shape != pred.shape:
        raise ValueError(f"y_true and y_pred differ in shape: {true.shape} vs {pred.shape}")
    return true, pred


def rmsle(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> float:
    """Root mean squared logarithmic error, with predictions and actuals clipped at zero first."""
    true, pred = _arrays(y_true, y_pred)
    diff = np.log1p(np.clip(pred, 0, None)) - np.log1p(np.clip(true, 0, None))
    return float(np.sqrt(np.mean(diff**2)))


def mae(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> float:
    """Mean absolute error."""
    true, pred = _arrays(y_true, y_pred)
    return float(np.mean(np.abs(pred - true)))


def rmse(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> float:
    """Root mean squared error."""
    true, pred = _arrays(y_true, y_pred)
    return float(np.sqrt(np.mean((pred - true) ** 2)))


def evaluate(y_true: npt.ArrayLike, y_pred: npt.ArrayLike) -> dict[str, float]:
    """RMSLE, MAE, RMSE and the row count of one set of predictions."""
    true, _ = _arrays(y_true, y_pred)
    return {
        "rmsle": rmsle(y_true, y_pred),
        "mae": mae(y_true, y_pred),
        "rmse": rmse(y_true, y_pred),
        "rows": float(len(true)),
    }


def seasonal_naive(sales_lag_7: npt.ArrayLike) -> np.ndarray:
    """The seasonal-naive forecast: the same weekday last week's sales, 0 where unknown."""
    lag = np.asarray(sales_lag_7, dtype=np.float64)
    return np.where(np.isnan(lag), 0.0, np.clip(lag, 0, None))


def render_table(metrics: Mapping[str, Mapping[str, float]], champion: str | None = None) -> str:
    """The validation table: one line per model with RMSLE, MAE, RMSE and RMSLE vs seasonal-naive in %."""
    baseline = metrics.get(SEASONAL_NAIVE, {}).get("rmsle")
    width = max(len(name) for name in metrics) + 2
    lines = [f"{'model':<{width}} {'RMSLE':>8} {'MAE':>10} {'RMSE':>10} {'vs seasonal-naive':>18}"]
    for name, values in metrics.items():
        if baseline and name != SEASONAL_NAIVE:
            versus = f"{(values['rmsle'] / baseline - 1) * 100:+.1f}%"
        else:
            versus = "-"
        marker = "  <- champion" if name == champion else ""
        lines.append(
            f"{name:<{width}} {values['rmsle']:>8.4f} {values['mae']:>10.2f} {values['rmse']:>10.2f} "
            f"{versus:>18}{marker}"
        )
    return "\n".join(lines)
