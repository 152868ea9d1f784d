"""The monitoring configuration: which columns, which statistical tests, which segments.

Its hash is stored with every computed slice, so a backfill recomputes a day when the configuration
changed and skips it otherwise. It holds no alert threshold: what counts as unusual is learned per
model version by calibration (monitoring/calibration.py, `monitoring.metric_bounds`), and what a
person decides (sensitivity, floors, metrics switched off) is the dbt seed `monitoring_thresholds`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

from models_ml.features import HISTORY_FEATURES

# Bump when the engine computes or names metrics differently with an unchanged configuration.
ENGINE_VERSION = 2

# The model's promotion count and sales-history features; calendar features are constant within a day.
NUMERICAL_COLUMNS: tuple[str, ...] = ("onpromotion", *HISTORY_FEATURES)
CATEGORICAL_COLUMNS: tuple[str, ...] = ("store_type", "cluster", "city", "state", "family")
SEGMENT_TYPES: tuple[str, ...] = ("store_nbr", "store_type", "cluster", "city", "family")


@dataclass(frozen=True)
class MonitoringConfig:
    """What a slice is measured on and how.

    Numerical columns are drift-tested with `numerical_stattest` (Evidently's normed Wasserstein
    distance by default: a score where higher means more drift), categorical columns with
    `categorical_stattest` (Jensen-Shannon distance), the prediction with `prediction_stattest`. The
    tests are fixed rather than left to Evidently's size-based choice so that a score means the same
    thing on a 3-store test set and on the full data. With `log_scale`, the numerical columns and the
    prediction (all non-negative amounts spanning four orders of magnitude across families) are
    compared on log1p(x), the scale the model is fitted on: a shift of every family by the same
    percentage then moves the score the same whatever the family mix. Calendar columns, constant
    within a day, are not drift-tested. Errors are measured overall and per segment (`segment_types`).
    Evidently's own per-test verdict (its default threshold of each method) is kept in
    `metric_values.detected` as information; alerts come from the learned bounds.
    """

    numerical_columns: tuple[str, ...] = NUMERICAL_COLUMNS
    categorical_columns: tuple[str, ...] = CATEGORICAL_COLUMNS
    prediction_column: str = "prediction"
    target_column: str = "sales"
    numerical_stattest: str = "wasserstein"
    categorical_stattest: str = "jensenshannon"
    prediction_stattest: str = "wasserstein"
    log_scale: bool = True
    segment_types: tuple[str, ...] = SEGMENT_TYPES
    engine_version: int = field(default=ENGINE_VERSION)

    @property
    def feature_columns(self) -> tuple[str, ...]:
        """The monitored feature columns: numerical first, then categorical."""
        return self.numerical_columns + self.categorical_columns

    def stattest_for(self, column: str) -> str:
        """The statistical test used for a monitored column or the prediction."""
        if column == self.prediction_column:
            return self.prediction_stattest
        if column in self.categorical_columns:
            return self.categorical_stattest
        return self.numerical_stattest

    def on_log_scale(self, column: str) -> bool:
        """True when drift of this column is tested on log1p(values)."""
        return self.log_scale and (column == self.prediction_column or column in self.numerical_columns)

    def drift_column(self, column: str) -> str:
        """The column of the Evidently dataset that the drift of `column` is tested on."""
        return f"{column}__log1p" if self.on_log_scale(column) else column

    def stattest_label(self, column: str) -> str:
        """The test as stored in metric_values.stattest, e.g. 'wasserstein(log1p)'."""
        method = self.stattest_for(column)
        return f"{method}(log1p)" if self.on_log_scale(column) else method

    def config_hash(self) -> str:
        """A stable hash of everything that changes the computed metrics (16 hex digits)."""
        payload = json.dumps(asdict(self), sort_keys=True, default=list)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


DEFAULT_CONFIG = MonitoringConfig()
