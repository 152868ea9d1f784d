"""The "salesmon" project's dashboard in Evidently's UI (`salesmon ui`), and the values it reads.

The dashboard shows the series of the metrics mart, one point per monitored day, in three tabs:
"Model health" (prediction drift, drifted columns, missing values, RMSLE / MAE / RMSE, rows),
"Feature drift" (each monitored column's drift score) and "Data quality" (each column's missing
share, unseen categories, stores selling nothing). Evidently's UI draws a panel from the metric
results stored in the project's snapshots:

- what the slice's Evidently report computes is read as Evidently stored it (`RowCount`,
  `MissingValueCount` of each column);
- what salesmon computes besides (the prediction's and each column's drift score, by Evidently's own
  statistical tests, the share of drifted columns by
  Evidently's own verdicts, the share of missing cells, RMSLE, MAE, RMSE and their reference values,
  ...) is added to the snapshot by `salesmon_results` as single values of the metric type
  `SalesmonMetric`, labelled with `metric` = the metric_name of monitoring.metric_values (and
  `column` for a column's value): the same numbers as the marts.

Alerts are graded later, by dbt (marts.fct_alerts), against bounds learned per model version, so
the dashboard has no alert marks and its drifted-columns share counts Evidently's verdicts at its
default thresholds, where the marts count the columns that alerted: `salesmon report` and Grafana
show the graded view.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from monitoring.config import DEFAULT_CONFIG, MonitoringConfig

# Evidently's dashboards read only metric types named "evidently:metric_v2:<name>" (a custom metric
# class gets that alias too): salesmon's values are the type "SalesmonMetric".
SALESMON_METRIC = "evidently:metric_v2:SalesmonMetric"
# Per-column values salesmon adds to a snapshot: the drift score of every tested column (the slice's
# report asks Evidently for no ValueDrift, which draws while it computes: only --html reports do).
COLUMN_METRICS = ("column_drift_score",)
ROW_COUNT = "evidently:metric_v2:RowCount"
MISSING_VALUES = "evidently:metric_v2:MissingValueCount"


def salesmon_results(values: Iterable[Any]) -> dict[str, Any]:
    """The slice's model-level metric values (MetricValue rows without column or segment), and its
    per-column drift scores (COLUMN_METRICS), as Evidently single-value results keyed by metric id, to
    add to the snapshot's `metric_results`."""
    from evidently.core.metric_types import MetricConfig, SingleValue, single_value_location

    results: dict[str, Any] = {}
    for value in values:
        if value.value is None or value.segment_type:
            continue
        params = {"type": SALESMON_METRIC, "metric": value.name}
        if value.column_name:
            if value.name not in COLUMN_METRICS:
                continue
            params["column"] = value.column_name
        metric_id = ":".join(("salesmon", value.name, value.column_name)).rstrip(":")
        config = MetricConfig(metric_id=metric_id, params=params)
        results[metric_id] = SingleValue(
            value=float(value.value),
            display_name=value.name,
            metric_value_location=single_value_location(config),
        )
    return results


def _salesmon(name: str, legend: str, column: str = "") -> Any:
    from evidently.sdk.models import PanelMetric

    labels = {"metric": name, "column": column} if column else {"metric": name}
    return PanelMetric(legend=legend, metric=SALESMON_METRIC, metric_labels=labels)


def _evidently(metric: str, legend: str, **labels: str) -> Any:
    from evidently.sdk.models import PanelMetric

    return PanelMetric(legend=legend, metric=metric, metric_labels=labels)


def _half(title: str, *series: tuple[str, str]) -> Any:
    """A half-width line plot of salesmon metrics, one (metric, legend) a series."""
    from evidently.sdk.panels import line_plot_panel

    return line_plot_panel(
        title=title, size="half", values=[_salesmon(name, legend) for name, legend in series]
    )


def dashboard_panels(config: MonitoringConfig = DEFAULT_CONFIG) -> list[tuple[str, Any]]:
    """The dashboard's panels, each with the title of its tab, in display order."""
    from evidently.sdk.panels import bar_plot_panel, line_plot_panel, text_panel

    health = "Model health"
    panels = [
        text_panel(
            title="salesmon: daily monitoring of the sales forecast",
            description="One point per monitored day, against the same weekdays of the validation window."
            " Alerts are graded by dbt (marts.fct_alerts): see `salesmon report` or Grafana.",
        ),
        line_plot_panel(
            title="Prediction drift: normed Wasserstein distance of log1p(prediction)",
            values=[_salesmon("prediction_drift_score", "prediction drift")],
        ),
        _half(
            "Drifted feature columns (share, at Evidently's default drift thresholds)",
            ("drifted_columns_share", "share of columns drifted"),
        ),
        _half("Missing values (share of cells)", ("missing_values_share", "missing cells")),
        _half(
            "Forecast error: RMSLE",
            ("rmsle", "RMSLE of the day"),
            ("reference_rmsle", "RMSLE on the reference days"),
        ),
        _half("Forecast error: MAE and RMSE", ("mae", "MAE"), ("rmse", "RMSE")),
        bar_plot_panel(
            title="Rows per day (store x family)",
            values=[
                _evidently(ROW_COUNT, "rows"),
                _salesmon("expected_row_count", "rows expected"),
            ],
        ),
    ]
    tabs = [(health, panel) for panel in panels]
    for kind, columns, test in (
        ("numerical", config.numerical_columns, "normed Wasserstein distance of log1p(value)"),
        ("categorical", config.categorical_columns, "Jensen-Shannon distance"),
    ):
        tabs.append(
            (
                "Feature drift",
                line_plot_panel(
                    title=f"Drift of the {kind} features: {test}",
                    values=[_salesmon("column_drift_score", column, column) for column in columns],
                ),
            )
        )
    missing_columns = [*config.feature_columns, config.prediction_column]
    quality = [
        line_plot_panel(
            title="Missing values per column (share)",
            values=[
                _evidently(MISSING_VALUES, column, column=config.drift_column(column), value_type="share")
                for column in missing_columns
            ],
        ),
        _half("Category values never seen in the reference", ("unseen_category_count", "unseen values")),
        _half(
            "Stores selling nothing (share)",
            ("zero_sales_store_share", "that day"),
            ("zero_sales_store_share_reference", "on the reference days"),
        ),
    ]
    tabs += [("Data quality", panel) for panel in quality]
    return tabs


def dashboard_model(config: MonitoringConfig = DEFAULT_CONFIG) -> Any:
    """The whole dashboard as Evidently's `DashboardModel` (tabs in order, each with its panels)."""
    from evidently.sdk.models import DashboardModel, DashboardTabModel

    panels = dashboard_panels(config)
    tabs: dict[str, Any] = {}
    for tab, panel in panels:
        tabs.setdefault(tab, DashboardTabModel(title=tab, panels=[])).panels.append(panel.id)
    return DashboardModel(tabs=list(tabs.values()), panels=[panel for _, panel in panels])


def dashboard_layout(dashboard: Any) -> list[tuple[str | None, str, str, list[tuple[str, dict]]]]:
    """What a dashboard shows, without its random ids: per tab, per panel, the plot type, the title
    and the (metric, labels) of each series. Two dashboards with the same layout look the same."""
    panels = {panel.id: panel for panel in dashboard.panels}
    return [
        (
            tab.title,
            panels[panel_id].title,
            str(panels[panel_id].plot_params.get("plot_type")),
            [(value.metric, dict(value.metric_labels)) for value in panels[panel_id].values],
        )
        for tab in dashboard.tabs
        for panel_id in tab.panels
    ]
