"""What names the cause of each of the generator's scenarios (datagen/), for the tests and
the acceptance benchmark that check that every scenario is caught: a metric, or (metric, column) where
the column is the cause."""

from __future__ import annotations

ScenarioCause = str | tuple[str, str]

CAUSES: dict[str, frozenset[ScenarioCause]] = {
    "promo_shift": frozenset({("column_drift_score", "onpromotion"), "prediction_drift_score"}),
    "sales_drop": frozenset(
        {"rmsle_ratio", "mean_log_error", "segment_rmsle_ratio", "segment_mean_log_error"}
    ),
    "missing_burst": frozenset({"missing_values_share", "column_missing_share"}),
    "store_closures": frozenset({"zero_sales_store_share", "row_count_ratio"}),
    "price_shock": frozenset(
        {"rmsle_ratio", "mean_log_error", "segment_rmsle_ratio", "segment_mean_log_error"}
    ),
    "new_store": frozenset({("column_unseen_count", "store_nbr"), "row_count_ratio"}),
    "new_family": frozenset({("column_unseen_count", "family"), "row_count_ratio"}),
    "feed_stop": frozenset({("column_missing_share", "transactions_lag_1")}),
}


def names_the_cause(scenario: str, metric_name: str, column_name: str = "") -> bool:
    """Whether an alert on this metric (and column) names the scenario's cause."""
    causes = CAUSES[scenario]
    return metric_name in causes or (metric_name, column_name) in causes
