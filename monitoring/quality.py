"""Data-quality metrics of a slice.

Counted with pandas: `row_count`, `column_missing_share` per monitored column and the prediction,
`missing_values_share` (their missing cells over all their cells): what Evidently's `RowCount` and
`MissingValueCount` give (tests/test_monitoring.py compares them), which are put in the reports that
are shown (the workspace's dashboard plots them) rather than run for two counts per column on every
slice. `mean_prediction` and `mean_sales` (null until actuals exist; Evidently's `MeanValue` draws a
distribution plot on every call, so it is only in drawn reports), and, because they compare the slice
with facts of the reference that Evidently does not model,
`expected_row_count` (distinct store x family pairs in the like-for-like reference), `row_count_ratio`,
`zero_sales_store_share` (stores whose every family sold 0 that day, among stores with actuals; null
without actuals), `zero_sales_store_share_reference` (the same over the reference's store-days),
`column_unseen_count` per categorical column and `store_nbr` (its distinct values never seen in the
reference: a new store, city, cluster or family) and `unseen_category_count` (their sum).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from monitoring.results import FamilyPart, MetricValue, SliceContext, as_float
from monitoring.slices import Reference

FAMILY = "quality"


def zero_sales_store_share(frame: pd.DataFrame, target: str, by: list[str]) -> float | None:
    """Share of groups (a store, or a store-day) whose every known sales value is 0; None without actuals."""
    known = frame[frame[target].notna()]
    if known.empty:
        return None
    sold = (known[target] != 0).groupby([known[column] for column in by]).any()
    return float((~sold).mean())


def _reference_facts(ctx: SliceContext) -> dict[str, Any]:
    """Values derived from the reference once per (model version, weekday), cached on it."""
    reference: Reference = ctx.reference
    facts = reference.derived.get(FAMILY)
    if facts is None:
        frame = reference.frame
        facts = {
            "expected_row_count": int(frame[["store_nbr", "family"]].drop_duplicates().shape[0]),
            "zero_sales_store_share": zero_sales_store_share(
                frame, ctx.config.target_column, ["sales_date", "store_nbr"]
            ),
            "categories": {column: set(frame[column].dropna().unique()) for column in category_columns(ctx)},
        }
        reference.derived[FAMILY] = facts
    return facts


def category_columns(ctx: SliceContext) -> list[str]:
    """The columns whose unseen values are counted: the store number and the categorical columns."""
    return ["store_nbr", *ctx.config.categorical_columns]


def unseen_counts(ctx: SliceContext, seen: dict[str, set[Any]]) -> dict[str, int]:
    """Per category column, the distinct values in the slice that the reference never had."""
    return {
        column: len(set(ctx.current[column].dropna().unique()) - seen[column])
        for column in category_columns(ctx)
    }


def build(ctx: SliceContext) -> FamilyPart:
    """The quality family's values of the slice, and the Evidently metrics that show them."""
    from evidently.metrics import MeanValue, MissingValueCount, RowCount

    config = ctx.config
    facts = _reference_facts(ctx)
    missing_columns = [*config.feature_columns, config.prediction_column]
    # Numerical columns are in Evidently's dataset as their log1p copies (same nulls), see report.py.
    dashboard: list[Any] = [
        RowCount(),
        *(MissingValueCount(column=config.drift_column(column)) for column in missing_columns),
    ]
    display: list[Any] = [MeanValue(column=config.prediction_column)]
    if ctx.has_actuals:
        display.append(MeanValue(column=config.target_column))

    def collect(snapshot: Any) -> list[MetricValue]:
        row_count = float(len(ctx.current))
        expected = float(facts["expected_row_count"])
        values = [
            MetricValue(FAMILY, "row_count", row_count),
            MetricValue(FAMILY, "expected_row_count", expected),
            MetricValue(FAMILY, "row_count_ratio", row_count / expected if expected else None),
        ]
        missing = ctx.current[missing_columns].isna().sum()
        for column in missing_columns:
            share = float(missing[column]) / row_count if row_count else None
            values.append(MetricValue(FAMILY, "column_missing_share", share, column_name=column))
        cells = row_count * len(missing_columns)
        values.append(
            MetricValue(FAMILY, "missing_values_share", float(missing.sum()) / cells if cells else None)
        )
        values.append(
            MetricValue(FAMILY, "mean_prediction", as_float(ctx.current[config.prediction_column].mean()))
        )
        sales = ctx.current[config.target_column]
        values.append(
            MetricValue(FAMILY, "mean_sales", as_float(sales.mean()) if sales.notna().any() else None)
        )
        values.append(
            MetricValue(
                FAMILY,
                "zero_sales_store_share",
                zero_sales_store_share(ctx.current, config.target_column, ["store_nbr"]),
            )
        )
        values.append(
            MetricValue(FAMILY, "zero_sales_store_share_reference", as_float(facts["zero_sales_store_share"]))
        )
        unseen = unseen_counts(ctx, facts["categories"])
        values += [
            MetricValue(FAMILY, "column_unseen_count", float(count), column_name=column)
            for column, count in unseen.items()
        ]
        values.append(MetricValue(FAMILY, "unseen_category_count", float(sum(unseen.values()))))
        return values

    return FamilyPart(collect=collect, display_metrics=display, dashboard_metrics=dashboard)
