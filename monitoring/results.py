"""The shapes shared by the metric families: a slice's context, one metric value, one family's part."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pandas as pd

from monitoring.config import MonitoringConfig
from monitoring.slices import Reference


@dataclass
class SliceContext:
    """Everything a metric family needs for one slice: the day's rows and its like-for-like reference."""

    day: date
    model_version: str
    config: MonitoringConfig
    current: pd.DataFrame
    reference: Reference

    @property
    def has_actuals(self) -> bool:
        """True when at least one row of the day has its actual sales."""
        return bool(self.current[self.config.target_column].notna().any())


@dataclass(frozen=True)
class MetricValue:
    """One row of monitoring.metric_values (without the slice key, run id and timestamp)."""

    family: str
    name: str
    value: float | None
    column_name: str = ""
    segment_type: str = ""
    segment_value: str = ""
    stattest: str | None = None
    threshold: float | None = None
    detected: bool | None = None


@dataclass
class FamilyPart:
    """A metric family's share of the slice's single Evidently report, and how to read it back.

    `metrics` go into the one Report of the slice; `collect(snapshot)` reads their results by metric
    id and adds what the family computes without Evidently. The others show what is stored and are
    not read back: `dashboard_metrics` are added to the reports kept in the Evidently workspace (what
    its dashboard plots), `display_metrics` (and the dashboard's) to drawn reports (HTML files).
    """

    metrics: list[Any] = field(default_factory=list)
    display_metrics: list[Any] = field(default_factory=list)
    dashboard_metrics: list[Any] = field(default_factory=list)
    collect: Callable[[Any], list[MetricValue]] = lambda snapshot: []


def as_float(value: Any) -> float | None:
    """A float for storage: None for None, NaN or infinity."""
    if value is None:
        return None
    number = float(value)
    if number != number or number in (float("inf"), float("-inf")):
        return None
    return number
