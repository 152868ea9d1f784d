"""The report's charts as PNG files, drawn with matplotlib's object API on the Agg canvas (no display,
no pyplot state: safe in a server or a worker).

Every daily chart shades the days with an alert in marts.fct_alerts (light: warnings only, darker: a
critical one) and puts a red marker on the days its own metric alerted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import TwoSlopeNorm
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import PercentFormatter

from reporting.data import ReportData

WIDTH, HEIGHT, DPI = 10.0, 3.4, 110
LINE, BAND, ALERT, CRITICAL = "#1f5fa8", "#9ecae1", "#fdd0a2", "#fc9272"


@dataclass(frozen=True)
class Chart:
    """One image of the page: its file, its title and what it shows (the caption)."""

    file: str
    title: str
    caption: str


def _figure(height: float = HEIGHT) -> tuple[Figure, object]:
    figure = Figure(figsize=(WIDTH, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def _dates(days: pd.Index) -> list:
    return [pd.Timestamp(day) for day in days]


def _mark_alert_days(axes: object, data: ReportData) -> list[Patch]:
    """Shade each alert day (a whole day wide); return the legend entries that apply."""
    critical = set(data.critical_days)
    for day in data.alert_days:
        start = pd.Timestamp(day) - timedelta(hours=12)
        colour = CRITICAL if day in critical else ALERT
        axes.axvspan(start, start + timedelta(days=1), color=colour, alpha=0.55, linewidth=0, zorder=1)
    entries = []
    if set(data.alert_days) - critical:
        entries.append(Patch(color=ALERT, alpha=0.6, label="day with alerts"))
    if critical:
        entries.append(Patch(color=CRITICAL, alpha=0.6, label="day with a critical alert"))
    return entries


def _time_axes(axes: object, data: ReportData, ylabel: str) -> None:
    locator = AutoDateLocator(minticks=4, maxticks=12)
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    first, last = pd.Timestamp(data.first_day), pd.Timestamp(data.last_day)
    axes.set_xlim(first - timedelta(days=1), last + timedelta(days=1))
    axes.set_ylabel(ylabel)
    axes.grid(axis="y", color="#dddddd", linewidth=0.8)
    axes.set_axisbelow(True)


def _series_chart(
    data: ReportData,
    path: Path,
    *,
    column: str,
    metric: str,
    label: str,
    ylabel: str,
    band: str | None = None,
    extra: Callable[[object], object] | None = None,
    share: bool = False,
) -> None:
    """A daily line with its expected range (`band`_low/_high) shaded and the alert days marked; a
    `share` is drawn from 0, in percent."""
    health = data.health
    figure, axes = _figure()
    days = _dates(health.index)
    handles = _mark_alert_days(axes, data)
    if band is not None and health[f"{band}_high"].notna().any():
        handles.append(
            axes.fill_between(
                days,
                health[f"{band}_low"],
                health[f"{band}_high"],
                step="mid",
                color=BAND,
                alpha=0.45,
                zorder=0.5,
                linewidth=0,
                label="expected range (learned for the weekday)",
            )
        )
    if extra is not None:
        handles.append(extra(axes))
    (line,) = axes.plot(
        days, health[column], color=LINE, marker="o", markersize=3, linewidth=1.6, label=label
    )
    handles.insert(0, line)
    alerted = [day for day in data.metric_alert_days(metric) if day in health.index]
    if alerted:
        handles.append(
            axes.scatter(
                _dates(pd.Index(alerted)),
                health.loc[alerted, column],
                color="#cb181d",
                zorder=5,
                s=36,
                label=f"{metric} alerted",
            )
        )
    _time_axes(axes, data, ylabel)
    if share:  # from 0, in percent, at least up to 5% (a flat 0 is a line at the bottom)
        tops = [health[column].max()] + ([health[f"{band}_high"].max()] if band is not None else [])
        top = max([value for value in tops if pd.notna(value)], default=0.0)
        axes.set_ylim(0, max(top * 1.3, 0.05))
        axes.yaxis.set_major_formatter(PercentFormatter(1.0))
    axes.legend(handles=handles, loc="upper left", fontsize=8, framealpha=0.9)
    figure.savefig(path)


def _rows_chart(data: ReportData, path: Path) -> None:
    health = data.health
    figure, axes = _figure()
    days = _dates(health.index)
    handles = _mark_alert_days(axes, data)
    handles.insert(0, axes.bar(days, health["row_count"], width=0.7, color=LINE, label="rows in the slice"))
    (expected,) = axes.plot(
        days,
        health["expected_row_count"],
        color="black",
        linestyle="--",
        drawstyle="steps-mid",
        linewidth=1.2,
        label="rows expected (stores x families of the reference)",
    )
    handles.insert(1, expected)
    _time_axes(axes, data, "rows (store x family)")
    axes.set_ylim(0, max(health["row_count"].max(), health["expected_row_count"].max()) * 1.3)
    axes.legend(handles=handles, loc="upper left", ncols=3, fontsize=8, framealpha=0.9)
    figure.savefig(path)


def _heatmap(
    path: Path,
    data: ReportData,
    frame: pd.DataFrame,
    *,
    row: str,
    value: str,
    flag: str,
    norm: TwoSlopeNorm,
    colour_label: str,
    order: list[str] | None = None,
) -> None:
    """Rows (columns or segments, in `order` or by their highest value) x monitored days, coloured by
    `value`; a black dot where `flag` is true; a strip on top marks the alert days."""
    days = pd.Index(sorted(data.health.index))
    grid = frame.pivot_table(index=row, columns="slice_date", values=value, aggfunc="first")
    order = order or list(grid.max(axis=1).sort_values(ascending=False).index)
    grid = grid.reindex(index=order, columns=days)
    flags = frame.pivot_table(index=row, columns="slice_date", values=flag, aggfunc="max")
    flags = flags.reindex(index=order, columns=days).fillna(False).astype(bool)
    figure, axes = _figure(height=max(2.6, 1.2 + 0.27 * len(grid)))
    image = axes.imshow(
        np.ma.masked_invalid(grid.to_numpy(dtype=float)),
        aspect="auto",
        cmap="RdBu_r",
        norm=norm,
        interpolation="nearest",
    )
    image.set_cmap(image.get_cmap().with_extremes(bad="#e8e8e8"))
    marked_rows, marked_columns = np.nonzero(flags.to_numpy())
    handles = [axes.scatter(marked_columns, marked_rows, s=14, color="black", label="alerted that day")]
    critical = set(data.critical_days)
    for index, day in enumerate(days):
        if day in set(data.alert_days):
            colour = CRITICAL if day in critical else ALERT
            axes.add_patch(Rectangle((index - 0.5, -1.6), 1, 0.9, color=colour, clip_on=False))
    handles.append(Patch(color=ALERT, label="day with alerts (top strip)"))
    axes.set_ylim(len(grid) - 0.5, -1.7)
    labels = ["alert days", *(str(name) for name in grid.index)]
    axes.set_yticks([-1.15, *range(len(grid))], labels, fontsize=8)
    step = max(1, len(days) // 12)
    ticks = range(0, len(days), step)
    axes.set_xticks(ticks, [days[index].strftime("%b %d") for index in ticks], fontsize=8)
    figure.colorbar(image, ax=axes, label=colour_label, shrink=0.9)
    axes.legend(
        handles=handles, loc="upper left", bbox_to_anchor=(0, -0.08), ncols=2, fontsize=8, frameon=False
    )
    figure.savefig(path)


SHADED = " Shaded days had alerts (darker: a critical one); red points: the days this metric alerted."

CHARTS = {
    "prediction_drift": Chart(
        "prediction_drift.png",
        "Prediction drift",
        "How far the day's predictions moved from the reference days (the validation days on the same "
        "weekday): Evidently's normed Wasserstein distance on log1p(prediction). The blue band is the "
        "range this model version showed on days with no incident; above the dotted line the day alerts."
        + SHADED,
    ),
    "drifted_columns": Chart(
        "drifted_columns.png",
        "Drifted feature columns (share)",
        "The share of the drift-tested feature columns whose drift score was unusual for this model that "
        "day (each such column alerts on column_drift_score). The next chart names the columns." + SHADED,
    ),
    "feature_drift": Chart(
        "feature_drift.png",
        "Drift by feature column",
        "Each drift-tested column's drift score over its alert threshold (red above 1: beyond the "
        "threshold); a black dot marks a column that alerted that day, the strip on top the days with "
        "alerts. Grey: not tested that day.",
    ),
    "missing_values": Chart(
        "missing_values.png",
        "Missing values (share of cells)",
        "The share of missing cells over the monitored feature columns and the prediction, with the "
        "range expected for the weekday. A broken feed shows here first." + SHADED,
    ),
    "rmsle": Chart(
        "rmsle.png",
        "Forecast error (RMSLE) against its expected range",
        "The day's root mean squared logarithmic error (the competition metric), once the day's actual "
        "sales exist. The band is the reference days' RMSLE times the error ratio this model version "
        "showed on days with no incident; a day above it alerts on rmsle_ratio." + SHADED,
    ),
    "rows": Chart(
        "rows.png",
        "Rows per day",
        "The rows (store x family pairs) scored each day against the pairs the reference had. Fewer "
        "rows mean stores or families missing from the feed. Shaded days had alerts.",
    ),
    "worst_segments": Chart(
        "worst_segments.png",
        "The worst segments",
        "The segments (stores, store types, clusters, cities, families) with alerts on most days, then "
        "with the highest error ratio: each day's RMSLE over the segment's RMSLE on the reference days, "
        "on a log2 scale (red: worse than the reference, +1 = twice the error). A black dot marks an "
        "alert of the segment that day (its error ratio or its bias); grey: no actual sales yet.",
    ),
}


def _reference_line(health: pd.DataFrame, column: str, label: str, style: str) -> Callable[[object], object]:
    def draw(axes: object) -> object:
        (line,) = axes.plot(
            _dates(health.index), health[column], color="#555555", linestyle=style,
            drawstyle="steps-mid", linewidth=1.2, label=label,
        )  # fmt: skip
        return line

    return draw


def draw_charts(data: ReportData, out_dir: Path) -> list[Chart]:
    """Draw every chart of the report into `out_dir`; return them in page order."""
    health = data.health
    series = {
        "prediction_drift": {
            "column": "prediction_drift_score", "metric": "prediction_drift_score",
            "label": "prediction drift score", "ylabel": "drift score", "band": "prediction_drift_score",
            "extra": _reference_line(health, "prediction_drift_threshold", "alert threshold", ":"),
        },
        "drifted_columns": {
            "column": "drifted_columns_share", "metric": "column_drift_score",
            "label": "share of columns drifted", "ylabel": "share of columns", "share": True,
        },
        "missing_values": {
            "column": "missing_values_share", "metric": "missing_values_share",
            "label": "missing cells (share)", "ylabel": "share of cells", "band": "missing_values_share",
            "share": True,
        },
        "rmsle": {
            "column": "rmsle", "metric": "rmsle_ratio", "label": "RMSLE of the day", "ylabel": "RMSLE",
            "band": "rmsle",
            "extra": _reference_line(health, "reference_rmsle", "RMSLE on the reference days", "--"),
        },
    }  # fmt: skip
    drawers: dict[str, Callable[[Path], None]] = {
        name: (lambda path, options=options: _series_chart(data, path, **options))
        for name, options in series.items()
    }
    drawers["rows"] = lambda path: _rows_chart(data, path)
    if not data.features.empty:
        features = data.features.assign(ratio=data.features["drift_score"] / data.features["threshold"])
        top = max(2.0, float(features["ratio"].max()))
        drawers["feature_drift"] = lambda path: _heatmap(
            path, data, features, row="column_name", value="ratio", flag="drift_detected",
            norm=TwoSlopeNorm(vmin=0, vcenter=1, vmax=top), colour_label="drift score / threshold",
        )  # fmt: skip
    if not data.segments.empty:
        segments = data.segments.assign(
            segment=data.segments["segment_type"].str.replace("store_nbr", "store").str.replace("_", " ")
            + " "
            + data.segments["segment_value"],
            log_ratio=np.log2(data.segments["rmsle_ratio"].astype(float).clip(lower=1 / 8)),
        )
        drawers["worst_segments"] = lambda path: _heatmap(
            path, data, segments, row="segment", value="log_ratio", flag="alerted",
            norm=TwoSlopeNorm(vmin=-1.5, vcenter=0, vmax=1.5), colour_label="log2(RMSLE / reference)",
            order=list(dict.fromkeys(segments.sort_values("segment_rank")["segment"])),
        )  # fmt: skip
    charts = []
    for name, chart in CHARTS.items():
        if name in drawers:
            drawers[name](out_dir / chart.file)
            charts.append(chart)
    return charts
