"""`salesmon report`: the metrics mart as one HTML page with PNG charts, opened without a server.

The page (`index.html`) and its images are written into one folder; the page refers to them by
relative names, so the folder can be opened from disk, zipped or mailed. It says which model version
and period it covers, lists the alerts by metric with their first day, and puts a caption under
each chart.
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from reporting.charts import Chart, draw_charts
from reporting.data import ReportData, ReportError, load_report_data

__all__ = ["ReportError", "ReportResult", "default_out_dir", "write_report"]

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1120px;
       padding: 0 1rem; color: #222; line-height: 1.45; }
h1 { margin-bottom: 0.2rem; } .meta { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 0.92rem; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3rem 0.7rem; text-align: left; }
th { background: #f4f4f4; } td.num { text-align: right; } td.day { white-space: nowrap; }
.critical { color: #b30000; font-weight: 600; } .warning { color: #a05a00; }
figure { margin: 1.5rem 0 2rem; } figure img { width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #444; font-size: 0.92rem; margin-top: 0.3rem; }
code { background: #f4f4f4; padding: 0 0.25rem; }
"""


@dataclass
class ReportResult:
    """What `write_report` wrote."""

    index: Path
    images: list[Path]
    model_version: str
    days: int
    alert_days: list = field(default_factory=list)

    def render(self) -> str:
        alerts = f"{len(self.alert_days)} with alerts" if self.alert_days else "no alert"
        return (
            f"wrote {self.index} ({len(self.images)} charts) for model version {self.model_version}:"
            f" {self.days} monitored days, {alerts}. Open it in a browser: file://{self.index}"
        )


def default_out_dir() -> Path:
    """`$SALESMON_HOME/report`."""
    from warehouse.settings import get_settings

    return get_settings().home / "report"


def _alert_summary(alerts: pd.DataFrame) -> pd.DataFrame:
    """One row per metric: scope, what it concerned, first and last day, days, worst severity."""
    alerts = alerts.assign(
        target=(
            alerts["column_name"] + " " + alerts["segment_type"] + " " + alerts["segment_value"]
        ).str.strip(),
        critical=alerts["severity"] == "critical",
    )
    grouped = alerts.groupby(["metric_name", "alert_scope"], sort=False)
    summary = grouped.agg(
        first_day=("slice_date", "min"),
        last_day=("slice_date", "max"),
        days=("slice_date", "nunique"),
        breaches=("slice_date", "size"),
        critical=("critical", "any"),
        targets=("target", lambda values: sorted({value for value in values if value})),
    ).reset_index()
    return summary.sort_values(["first_day", "critical", "metric_name"], ascending=[True, False, True])


def _alerts_table(data: ReportData) -> str:
    if data.alerts.empty:
        return "<p>No alert in this period: every graded metric stayed within its expected range.</p>"
    rows = []
    for item in _alert_summary(data.alerts).itertuples():
        severity = "critical" if item.critical else "warning"
        targets = ", ".join(item.targets[:6]) + (
            f" and {len(item.targets) - 6} more" if len(item.targets) > 6 else ""
        )
        rows.append(
            "<tr>"
            f"<td><code>{html.escape(item.metric_name)}</code></td><td>{html.escape(item.alert_scope)}</td>"
            f"<td>{html.escape(targets) or '&ndash;'}</td>"
            f'<td class="day">{item.first_day}</td><td class="day">{item.last_day}</td>'
            f'<td class="num">{item.days}</td><td class="{severity}">{severity}</td>'
            "</tr>"
        )
    return (
        "<table><thead><tr><th>metric</th><th>scope</th><th>column or segment</th><th>first day</th>"
        "<th>last day</th><th>days</th><th>worst severity</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )


def _page(data: ReportData, charts: list[Chart]) -> str:
    alert_days = data.alert_days
    days_text = ", ".join(str(day) for day in alert_days[:10]) + (" ..." if len(alert_days) > 10 else "")
    days_text = f": {days_text}" if alert_days else ""
    figures = "".join(
        f'<figure id="{html.escape(chart.file.removesuffix(".png"))}"><h2>{html.escape(chart.title)}</h2>'
        f'<img src="{html.escape(chart.file)}" alt="{html.escape(chart.title)}">'
        f"<figcaption>{html.escape(chart.caption)}</figcaption></figure>"
        for chart in charts
    )
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>salesmon report: {html.escape(data.model_version)}, {data.first_day} to {data.last_day}</title>
<style>{STYLE}</style></head>
<body data-alert-days="{" ".join(str(day) for day in alert_days)}">
<h1>Sales forecast monitoring</h1>
<p class="meta">Model version <code>{html.escape(data.model_version)}</code> &middot;
monitored days {data.first_day} to {data.last_day} ({len(data.health)} days) &middot; generated {generated}
from the dbt metrics mart (<code>marts.fct_model_health_daily</code>, <code>fct_alerts</code>, ...).</p>
<p>Each day the model's inputs and predictions are compared with its reference: the validation days on
the same weekday. A value alerts when it leaves the range the model version showed on days with no
incident (<code>marts.fct_metric_bounds</code>).
<strong>{len(alert_days)} of {len(data.health)} days had alerts</strong>{days_text}.</p>
<h2>Alerts by metric</h2>
{_alerts_table(data)}
{figures}
<p class="meta">Query the same numbers with <code>psql "$(salesmon db url)"</code>, e.g.
<code>select * from marts.fct_alerts order by slice_date</code>.</p>
</body></html>
"""


def write_report(out_dir: Path | None = None, model_version: str | None = None) -> ReportResult:
    """Write `index.html` and its PNG charts into `out_dir` (default `$SALESMON_HOME/report`) for a
    model version (default: the champion, when monitored). Raises ReportError when there is nothing
    to show yet."""
    from warehouse.db import connect

    out_dir = (out_dir or default_out_dir()).resolve()
    with connect() as conn:
        data = load_report_data(conn, model_version)
    out_dir.mkdir(parents=True, exist_ok=True)
    charts = draw_charts(data, out_dir)
    index = out_dir / "index.html"
    partial = out_dir / ".index.html.part"
    partial.write_text(_page(data, charts), encoding="utf-8")
    os.replace(partial, index)  # a reader sees the old page or the new one, never half of one
    return ReportResult(
        index=index,
        images=[out_dir / chart.file for chart in charts],
        model_version=data.model_version,
        days=len(data.health),
        alert_days=data.alert_days,
    )
