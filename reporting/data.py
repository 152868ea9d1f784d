"""What the report shows, read from the metrics mart (marts.*) with SQL.

Everything comes from the dbt marts that Grafana and the analysts read, never from the engine's
tables: the report shows what `dbt build` graded, with the alerts of `marts.fct_alerts` and the
expected ranges of `marts.fct_metric_bounds`. It shows the batch monitoring (source 'batch').
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandas as pd
import psycopg

# The model-level metrics drawn against their expected range (fct_metric_bounds, per ISO weekday).
BOUNDED_METRICS = ("prediction_drift_score", "missing_values_share", "rmsle_ratio", "row_count_ratio")
WORST_SEGMENTS = 12


class ReportError(Exception):
    """The report cannot be drawn (no mart, no monitored day, unknown model version): say what to do."""


@dataclass
class ReportData:
    """The series of one model version, one row per monitored day unless said otherwise."""

    model_version: str
    health: pd.DataFrame  # fct_model_health_daily, indexed by slice_date, with the expected ranges
    alerts: pd.DataFrame  # fct_alerts, one row per breach
    features: pd.DataFrame  # fct_feature_drift_daily of the drift-tested columns
    segments: pd.DataFrame  # fct_segment_performance_daily of the worst segments

    @property
    def first_day(self) -> date:
        return self.health.index.min()

    @property
    def last_day(self) -> date:
        return self.health.index.max()

    @property
    def alert_days(self) -> list[date]:
        """Days with at least one row in fct_alerts, at any scope."""
        return sorted(set(self.alerts["slice_date"]))

    @property
    def critical_days(self) -> list[date]:
        return sorted(set(self.alerts.loc[self.alerts["severity"] == "critical", "slice_date"]))

    def metric_alert_days(self, metric: str) -> list[date]:
        """Days on which a given metric alerted (any column or segment)."""
        return sorted(set(self.alerts.loc[self.alerts["metric_name"] == metric, "slice_date"]))


def _frame(conn: psycopg.Connection, sql: str, params: tuple | dict = ()) -> pd.DataFrame:
    cursor = conn.execute(sql, params)
    return pd.DataFrame(cursor.fetchall(), columns=[column.name for column in cursor.description])


def _choose_version(conn: psycopg.Connection, requested: str | None) -> str:
    """The requested version, else the champion when it was monitored, else the latest monitored one."""
    versions = _frame(
        conn,
        "select model_version, max(slice_date) as last_day from marts.fct_model_health_daily"
        " where source = 'batch' group by model_version order by last_day desc, model_version",
    )
    if versions.empty:
        raise ReportError(
            "no monitored day in marts.fct_model_health_daily yet: monitor some days first"
            " (`salesmon run`, or `salesmon monitor --start DAY --end DAY`), then run `salesmon report` again"
        )
    known = list(versions["model_version"])
    if requested is not None:
        if requested not in known:
            raise ReportError(
                f"model version {requested!r} has no monitored day in the marts;"
                f" monitored: {', '.join(known)}"
            )
        return requested
    champion = conn.execute("select model_version from ml.model_registry where is_champion").fetchone()
    return champion[0] if champion and champion[0] in known else known[0]


def _with_expected_ranges(health: pd.DataFrame, bounds: pd.DataFrame) -> pd.DataFrame:
    """Add `<metric>_low`/`_high` per day (the range learned for the day's weekday), and the RMSLE's
    and row count's range in their own unit (reference RMSLE x ratio range, expected rows x ratio)."""
    weekday = pd.Series([day.isoweekday() for day in health.index], index=health.index)
    for metric in BOUNDED_METRICS:
        rows = bounds[bounds["metric_name"] == metric].set_index("weekday")
        for side in ("low", "high"):
            mapping = rows[f"expected_{side}"].to_dict() if not rows.empty else {}
            health[f"{metric}_{side}"] = weekday.map(mapping).astype(float)
    for side in ("low", "high"):
        health[f"rmsle_{side}"] = health["reference_rmsle"] * health[f"rmsle_ratio_{side}"]
        health[f"row_count_{side}"] = health["expected_row_count"] * health[f"row_count_ratio_{side}"]
    return health


def _worst_segments(conn: psycopg.Connection, model_version: str) -> pd.DataFrame:
    """The WORST_SEGMENTS segments with alerts on most days, then with the highest error ratio: every
    day's RMSLE ratio, and whether the segment alerted that day (any segment metric), ranked."""
    return _frame(
        conn,
        """
        with alerts as (
            select distinct slice_date, segment_type, segment_value
            from marts.fct_alerts
            where model_version = %(version)s and source = 'batch' and alert_scope = 'segment'
        ),

        segments as (
            select performance.slice_date, performance.segment_type, performance.segment_value,
                performance.rmsle_ratio, alerts.slice_date is not null as alerted
            from marts.fct_segment_performance_daily as performance
            left join alerts using (slice_date, segment_type, segment_value)
            where performance.model_version = %(version)s and performance.source = 'batch'
        ),

        ranked as (
            select segment_type, segment_value,
                row_number() over (
                    order by count(*) filter (where alerted) desc, max(rmsle_ratio) desc nulls last,
                        segment_type, segment_value
                ) as segment_rank
            from segments
            group by segment_type, segment_value
        )

        select segments.*, ranked.segment_rank
        from segments
        inner join ranked using (segment_type, segment_value)
        where ranked.segment_rank <= %(limit)s and segments.rmsle_ratio is not null
        order by ranked.segment_rank, segments.slice_date
        """,
        {"version": model_version, "limit": WORST_SEGMENTS},
    )


def load_report_data(conn: psycopg.Connection, model_version: str | None = None) -> ReportData:
    """Read one model version's series from the marts (default: the champion, if monitored).

    Raises ReportError when the marts do not exist or hold no monitored day (of that version).
    """
    try:
        version = _choose_version(conn, model_version)
    except psycopg.errors.UndefinedTable as exc:
        raise ReportError(
            "the metrics mart does not exist yet (marts.fct_model_health_daily): run `salesmon run`,"
            " or `salesmon dbt build` after monitoring some days"
        ) from exc
    health = _frame(
        conn,
        """
        select slice_date, row_count, expected_row_count, prediction_drift_score,
            prediction_drift_threshold, drifted_columns_count, drifted_columns_share,
            missing_values_share, rmsle, reference_rmsle, mae, rmse, alerts_count,
            critical_alerts_count
        from marts.fct_model_health_daily
        where model_version = %s and source = 'batch'
        order by slice_date
        """,
        (version,),
    ).set_index("slice_date")
    health = health.astype(float)
    bounds = _frame(
        conn,
        "select metric_name, weekday, expected_low, expected_high from marts.fct_metric_bounds"
        " where model_version = %s and column_name = '' and segment_type = '' and metric_name = any(%s)",
        (version, list(BOUNDED_METRICS)),
    )
    alerts = _frame(
        conn,
        """
        select slice_date, alert_scope, metric_name, column_name, segment_type, segment_value,
            metric_value, expected_low, expected_high, severity
        from marts.fct_alerts
        where model_version = %s and source = 'batch'
        order by slice_date, metric_name, column_name, segment_type, segment_value
        """,
        (version,),
    )
    features = _frame(
        conn,
        "select slice_date, column_name, drift_score, threshold, drift_detected"
        " from marts.fct_feature_drift_daily where model_version = %s and source = 'batch'"
        " and drift_score is not null"
        " order by slice_date, column_name",
        (version,),
    )
    return ReportData(
        model_version=version,
        health=_with_expected_ranges(health, bounds),
        alerts=alerts,
        features=features,
        segments=_worst_segments(conn, version),
    )
