"""Exact predictions off the pipeline's per-call cost: a table per cached day and champion.

A request names a cached feature row (day, store, family) and brings one number of its own,
`onpromotion`; every other input is the row. The gradient-boosting champion is a sum of trees, and
its splits on onpromotion use finitely many thresholds t1 < ... < tk, so for one row the model's
output is a step function of onpromotion: the same for every value in (t(j-1), tj] (a tree goes
left when the value is <= its threshold) and above tk. `TreeTables.table(rows)` evaluates the
fitted trees once per row and interval, with the estimator's own tree predictors, summed tree by
tree in the estimator's order, then mapped back through its own inverse link and inverse target
transform, and clipped at zero as batch scoring does. A request then costs a binary search and a
lookup, and answers the number the full pipeline answers for the same inputs (the tests compare
them for every row and many promotion counts).

Each tree is evaluated at its own thresholds only (plus one value above them), so a table costs
about (1 + splits on onpromotion per tree) tree evaluations per row: a few times batch scoring of
the same rows. Models of another kind (the linear candidate) get no table: `TreeTables.build`
returns None and the service predicts through the pipeline.
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import TransformedTargetRegressor
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.pipeline import Pipeline

log = logging.getLogger("salesmon.service")
PROMOTION = "onpromotion"


@dataclass
class PredictionTable:
    """A day's predictions for every row and onpromotion interval of one model version."""

    version: str
    thresholds: np.ndarray  # the model's onpromotion split thresholds, sorted
    values: np.ndarray  # (rows, len(thresholds) + 1): final predictions

    def __post_init__(self) -> None:
        self._bounds = self.thresholds.tolist()

    def lookup(self, position: int, onpromotion: float) -> float:
        """The prediction for row `position` with this promotion count."""
        return float(self.values[position, bisect_left(self._bounds, onpromotion)])


@dataclass(frozen=True)
class _Tree:
    predictor: Any  # sklearn's TreePredictor
    values_at: np.ndarray  # onpromotion values to evaluate it at: its thresholds, then one above
    columns: np.ndarray  # for each interval of the table, which of `values_at` stands for it


class TreeTables:
    """Builds `PredictionTable`s for a fitted Pipeline(inputs..., [TransformedTargetRegressor](HGB))."""

    def __init__(
        self,
        version: str,
        pipeline: Pipeline,
        features: list[str],
        regressor: HistGradientBoostingRegressor,
        target: TransformedTargetRegressor | None,
        column: int,
    ) -> None:
        self.version = version
        self._prefix = pipeline[:-1]
        self._features = features
        self._regressor = regressor
        self._target = target
        self._column = column
        self._bitsets = regressor._bin_mapper.make_known_categories_bitsets()
        per_tree = [_thresholds(predictors[0], column) for predictors in regressor._predictors]
        self.thresholds = np.unique(np.concatenate([np.zeros(0), *per_tree]))
        table_values = _values_at(self.thresholds)
        self._trees = [
            _Tree(
                predictors[0],
                _values_at(own),
                np.searchsorted(own, table_values, side="left"),
            )
            for predictors, own in zip(regressor._predictors, per_tree, strict=True)
        ]

    @classmethod
    def build(
        cls, version: str, pipeline: Any, features: list[str], sample: pd.DataFrame
    ) -> TreeTables | None:
        """Tables for this model, or None when it is not a one-output gradient-boosting pipeline.

        `sample` (a few feature rows) locates onpromotion among the estimator's own input columns:
        two copies differing only in it must differ in exactly one column, holding its value.
        """
        if not isinstance(pipeline, Pipeline) or PROMOTION not in features or sample.empty:
            return None
        final = pipeline[-1]
        target = final if isinstance(final, TransformedTargetRegressor) else None
        regressor = target.regressor_ if target is not None else final
        if not isinstance(regressor, HistGradientBoostingRegressor) or regressor.n_trees_per_iteration_ != 1:
            return None
        probes = []
        for value in (3.0, 5.0):
            rows = sample.iloc[:1][features].copy()
            rows[PROMOTION] = value
            probes.append(regressor._preprocess_X(pipeline[:-1].transform(rows), reset=False)[0])
        differ = np.flatnonzero(~((probes[0] == probes[1]) | (np.isnan(probes[0]) & np.isnan(probes[1]))))
        if len(differ) != 1 or probes[1][differ[0]] != 5.0:
            log.info("model %s: onpromotion not found among its inputs; no prediction tables", version)
            return None
        return cls(version, pipeline, features, regressor, target, int(differ[0]))

    def tables(self, days: list[pd.DataFrame], *, chunk_rows: int = 20_000) -> list[PredictionTable]:
        """`table()` of each day, computed for several days at once (fewer calls per tree)."""
        tables: list[PredictionTable] = []
        start = 0
        while start < len(days):
            end, rows = start, 0
            while end < len(days) and (end == start or rows + len(days[end]) <= chunk_rows):
                rows += len(days[end])
                end += 1
            chunk = days[start:end]
            values = self.table(pd.concat(chunk, ignore_index=True) if len(chunk) > 1 else chunk[0]).values
            offsets = np.cumsum([0, *(len(day) for day in chunk)])
            tables.extend(
                PredictionTable(self.version, self.thresholds, values[first:last])
                for first, last in zip(offsets[:-1], offsets[1:], strict=True)
            )
            start = end
        return tables

    def table(self, rows: pd.DataFrame) -> PredictionTable:
        """The predictions of `rows` (a cached day) for every onpromotion interval."""
        inputs = self._regressor._preprocess_X(self._prefix.transform(rows[self._features]), reset=False)
        inputs = np.ascontiguousarray(inputs, dtype=np.float64)
        count, width = len(inputs), len(self.thresholds) + 1
        # as HistGradientBoostingRegressor._raw_predict: the baseline, then each tree in turn
        raw = np.zeros((count, width))
        raw += self._regressor._baseline_prediction.ravel()[0]
        known, index_map = self._bitsets
        for tree in self._trees:
            points = len(tree.values_at)
            grid = np.repeat(inputs, points, axis=0)
            grid[:, self._column] = np.tile(tree.values_at, count)
            values = tree.predictor.predict(grid, known, index_map, 1).reshape(count, points)
            raw += values[:, tree.columns]
        predictions = self._regressor._loss.link.inverse(raw.reshape(-1))
        if self._target is not None:
            predictions = self._target.transformer_.inverse_transform(predictions.reshape(-1, 1))
        values = np.clip(np.asarray(predictions, dtype=np.float64).reshape(count, width), 0, None)
        return PredictionTable(self.version, self.thresholds, values)


def _thresholds(predictor: Any, column: int) -> np.ndarray:
    """The sorted distinct thresholds of a tree's numeric splits on input column `column`."""
    nodes = predictor.nodes
    splits = (nodes["is_leaf"] == 0) & (nodes["is_categorical"] == 0) & (nodes["feature_idx"] == column)
    return np.unique(nodes["num_threshold"][splits]).astype(np.float64)


def _values_at(thresholds: np.ndarray) -> np.ndarray:
    """One onpromotion value per interval: each threshold (its interval's top), then one above all."""
    above = thresholds[-1] + 1.0 if len(thresholds) else 0.0
    return np.append(thresholds, above)
