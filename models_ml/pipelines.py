"""The candidate models as scikit-learn Pipelines that take a DataFrame of feature columns.

Both predict sales through log1p: they are fitted on log1p(sales) and predict expm1(.) clipped at
zero, which is what RMSLE (the competition metric) rewards. Every function a fitted pipeline calls
lives here at module level, so a pickled artifact unpickles wherever `models_ml` is importable.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.compose import ColumnTransformer, TransformedTargetRegressor
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from models_ml.features import (
    BOOLEAN_FEATURES,
    CATEGORICAL_FEATURES,
    HISTORY_FEATURES,
    NUMERIC_FEATURES,
    prepare_inputs,
)

LINEAR = "linear"
HGB = "hgb"

# Below this many rows, fitting and predicting run on one thread.
SINGLE_THREAD_ROWS = 50_000
# Measured on the full generated data (1 M training rows): 63 leaves / 40 rows per leaf gave a
# validation RMSLE of 0.371, these 31 / 100 gave 0.381, but fit and predict about 35 % faster.
HGB_PARAMS: dict[str, Any] = {
    "max_iter": 200,
    "learning_rate": 0.1,
    "max_leaf_nodes": 31,
    "min_samples_leaf": 100,
    "l2_regularization": 1.0,
    "early_stopping": False,
    "random_state": 0,
}


def threads_for(rows: int) -> int | None:
    """OpenMP/BLAS threads for fitting or predicting `rows` rows: None (all cores) or 1.

    One thread below `SINGLE_THREAD_ROWS` rows (threads cost more than they bring there), and one
    thread when the machine is already busy (1-minute load average at or above the core count):
    OpenMP threads spin-waiting on busy cores were measured 15x slower than a single thread here.
    """
    if rows < SINGLE_THREAD_ROWS:
        return 1
    cores = os.cpu_count() or 1
    if cores > 1 and os.getloadavg()[0] >= cores:
        return 1
    return None


def log1p_nonneg(values: npt.ArrayLike) -> np.ndarray:
    """log1p of values clipped at zero (sales and their history are never negative)."""
    return np.log1p(np.clip(np.asarray(values, dtype=np.float64), 0, None))


def expm1_nonneg(values: npt.ArrayLike) -> np.ndarray:
    """The inverse of `log1p_nonneg`: expm1 clipped at zero, so no prediction is negative."""
    return np.clip(np.expm1(np.asarray(values, dtype=np.float64)), 0, None)


def _log_target(regressor: Any) -> TransformedTargetRegressor:
    return TransformedTargetRegressor(
        regressor=regressor, func=log1p_nonneg, inverse_func=expm1_nonneg, check_inverse=False
    )


def _inputs_step() -> FunctionTransformer:
    return FunctionTransformer(prepare_inputs)


def build_linear() -> Pipeline:
    """The seed baseline: LinearRegression on one-hot categoricals and standardized, imputed numerics.

    Sales-history columns are log1p-transformed (a log-log model of sales on its own history);
    day of week and month are one-hot encoded like the store and family attributes; missing values
    are imputed with the training median (booleans with the most frequent value).
    """
    one_hot = [*CATEGORICAL_FEATURES, "day_of_week", "month"]
    encode = ColumnTransformer(
        [
            (
                "categorical",
                OneHotEncoder(handle_unknown="ignore", sparse_output=True),
                one_hot,
            ),
            (
                "history",
                Pipeline(
                    [
                        ("impute", SimpleImputer(strategy="median")),
                        ("log", FunctionTransformer(log1p_nonneg, feature_names_out="one-to-one")),
                        ("scale", StandardScaler()),
                    ]
                ),
                list(HISTORY_FEATURES),
            ),
            (
                "numeric",
                Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]),
                [name for name in NUMERIC_FEATURES if name not in HISTORY_FEATURES and name not in one_hot],
            ),
            ("boolean", SimpleImputer(strategy="most_frequent"), list(BOOLEAN_FEATURES)),
        ],
        sparse_threshold=1.0,
    )
    return Pipeline(
        [("inputs", _inputs_step()), ("encode", encode), ("model", _log_target(LinearRegression()))]
    )


def build_hgb(params: dict[str, Any] | None = None) -> Pipeline:
    """The stronger model: HistGradientBoostingRegressor on log1p(sales) with native categoricals.

    Store, family, store type, cluster, city and state are declared categorical: the estimator
    ordinal-encodes them itself (an unknown or missing category is routed as missing). Numerics go in
    as they are: the trees handle NaN, so rows with short history still get a prediction.
    """
    regressor = HistGradientBoostingRegressor(
        categorical_features=list(CATEGORICAL_FEATURES), **{**HGB_PARAMS, **(params or {})}
    )
    return Pipeline([("inputs", _inputs_step()), ("model", _log_target(regressor))])


def build(name: str, params: dict[str, Any] | None = None) -> Pipeline:
    """A fresh, unfitted candidate by name (`linear` or `hgb`)."""
    if name == LINEAR:
        return build_linear()
    if name == HGB:
        return build_hgb(params)
    raise ValueError(f"unknown candidate {name!r}")


def describe(pipeline: Pipeline) -> dict[str, Any]:
    """The estimator's parameters worth recording in the registry (JSON-serializable)."""
    regressor = pipeline.named_steps["model"].regressor
    params = {key: value for key, value in regressor.get_params().items() if _jsonable(value)}
    return {"estimator": type(regressor).__name__, "target": "log1p", **params}


def _jsonable(value: Any) -> bool:
    return (
        value is None
        or isinstance(value, bool | int | float | str)
        or (
            isinstance(value, list | tuple)
            and all(isinstance(item, bool | int | float | str) for item in value)
        )
    )


__all__ = [
    "HGB",
    "HGB_PARAMS",
    "LINEAR",
    "build",
    "build_hgb",
    "build_linear",
    "describe",
    "expm1_nonneg",
    "log1p_nonneg",
    "threads_for",
]
