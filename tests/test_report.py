"""Pictures without Grafana: `salesmon report` (an HTML page of PNG charts drawn from the metrics mart)
and the Evidently project's dashboard (`salesmon ui`), after a small real pipeline run.

The run (on a copy of the session's sales-drop warehouse, tests/_fixtures.py; its one rejected line
reaches no mart the report reads): 6 stores, a sales drop on CHANGE, six monitored days (four before
the change, the change date and the day after) with the snapshots added to the Evidently workspace,
then the marts. The page is opened in headless Chromium, which must load every image; the test is
skipped, saying why, where no Chromium or Chrome is installed (`apt-get install chromium`).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from PIL import Image
from typer.testing import CliRunner

from orchestration.cli import app
from tests._fixtures import SALES_DROP_CHANGE, Template, copied_database

pytestmark = pytest.mark.slow

runner = CliRunner()
CHANGE = SALES_DROP_CHANGE  # 2017-07-13; the data ends the day after
MONITOR_FROM = CHANGE - timedelta(days=4)
MONITOR_TO = CHANGE + timedelta(days=1)
DAYS = (MONITOR_TO - MONITOR_FROM).days + 1
CHARTS = {
    "prediction_drift.png",
    "drifted_columns.png",
    "feature_drift.png",
    "missing_values.png",
    "rmsle.png",
    "rows.png",
    "worst_segments.png",
}
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def test_report_before_any_monitoring_says_what_to_run(database: str, tmp_path: Path) -> None:
    """A fresh warehouse (no mart) and then an empty mart: a clear message, no traceback, no page."""
    result = runner.invoke(app, ["report", "--out", str(tmp_path / "out")])
    assert result.exit_code == 1, result.output
    assert "the metrics mart does not exist yet" in result.output
    assert "salesmon run" in result.output and "Traceback" not in result.output
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(
            "create table marts.fct_model_health_daily (slice_date date, model_version text, source text)"
        )
    result = runner.invoke(app, ["report", "--out", str(tmp_path / "out")])
    assert result.exit_code == 1, result.output
    assert "no monitored day in marts.fct_model_health_daily yet" in result.output
    assert not (tmp_path / "out" / "index.html").exists()


@pytest.fixture(scope="module")
def pipeline_db(
    server_conninfo: str,
    sales_drop_template: Template,
    tmp_path_factory: pytest.TempPathFactory,
    prefect_harness: str,
) -> Iterator[dict]:
    """On a copy of the session's sales-drop warehouse (generated, loaded, the features mart built:
    tests/_fixtures.py), train, score, monitor (snapshots into a workspace of this module's own, not
    the session's) and build the metrics mart."""
    from models_ml.score import score
    from models_ml.train import train
    from monitoring import workspace
    from orchestration.flows import monitor_days
    from warehouse.dbt import run_dbt

    evidently_root = tmp_path_factory.mktemp("report-workspace") / "evidently"
    dbt_root = tmp_path_factory.mktemp("dbt-report")
    paths = ["--target-path", str(dbt_root / "target"), "--log-path", str(dbt_root / "logs")]
    with (
        copied_database(server_conninfo, sales_drop_template, "m_report") as module_database,
        pytest.MonkeyPatch.context() as monkeypatch,
    ):
        model_version = train(MONITOR_FROM).champion_version
        score(MONITOR_FROM, MONITOR_TO, model_version)
        monkeypatch.setattr(workspace, "workspace_path", lambda: evidently_root)
        result = monitor_days(
            MONITOR_FROM, MONITOR_TO, model_version, task_runner="thread", workspace=True, build_marts=False
        )
        assert len(result["computed"]) == DAYS, result
        run_dbt(
            [
                "build",
                "--select",
                "path:models/staging/ml",
                "path:models/staging/monitoring",
                "path:models/intermediate/monitoring",
                "path:models/marts/monitoring",
                "path:seeds/monitoring_thresholds.csv",
                *paths,
            ]
        )
        yield {"db": module_database, "model_version": model_version, "workspace": evidently_root}


@pytest.fixture(scope="module")
def reported(pipeline_db: dict, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """`salesmon report --out DIR` on the monitored warehouse."""
    out = tmp_path_factory.mktemp("report") / "out"
    result = runner.invoke(app, ["report", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return {**pipeline_db, "out": out, "output": result.output, "page": (out / "index.html").read_text()}


def _images(page: str) -> list[str]:
    return re.findall(r'<img src="([^"]+)"', page)


def test_report_writes_the_page_and_a_valid_png_per_chart(reported: dict) -> None:
    out, page = reported["out"], reported["page"]
    assert f"wrote {out / 'index.html'} (7 charts)" in reported["output"]
    assert set(_images(page)) == CHARTS == {path.name for path in out.glob("*.png")}
    for name in CHARTS:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        with Image.open(out / name) as image:
            image.verify()
        with Image.open(out / name) as image:
            pixels = image.convert("RGB")
            assert pixels.width >= 1000 and pixels.height >= 280, (name, pixels.size)
            colours = pixels.getcolors(maxcolors=1 << 20)
            non_white = sum(count for count, colour in colours if colour != (255, 255, 255))
            assert len(colours) > 100, name  # lines, bands, text: not a blank or flat image
            assert non_white > 0.05 * pixels.width * pixels.height, name
    assert f"Model version <code>{reported['model_version']}</code>" in page
    assert f"monitored days {MONITOR_FROM} to {MONITOR_TO} ({DAYS} days)" in page


def test_report_names_the_alert_days_and_the_alerting_metrics(reported: dict) -> None:
    with psycopg.connect(reported["db"]) as conn:
        alert_days = [
            row[0] for row in conn.execute("select distinct slice_date from marts.fct_alerts order by 1")
        ]
        firsts = conn.execute(
            "select metric_name, min(slice_date), count(distinct slice_date) from marts.fct_alerts group by 1"
        ).fetchall()
    assert alert_days and min(alert_days) in (CHANGE, CHANGE + timedelta(days=1))  # the sales drop alerts
    page = reported["page"]
    marked = re.search(r'data-alert-days="([^"]*)"', page)[1].split()
    assert marked == [day.isoformat() for day in alert_days]
    assert f"{len(alert_days)} of {DAYS} days had alerts</strong>" in page
    for metric, first_day, days in firsts:
        row = re.search(rf"<code>{metric}</code>.*?</tr>", page)
        assert row, metric
        assert f'<td class="day">{first_day}</td>' in row[0] and f'<td class="num">{days}</td>' in row[0]


def test_report_draws_the_learned_expected_ranges(reported: dict) -> None:
    """The bands are fct_metric_bounds' range for each day's weekday; RMSLE's is the reference RMSLE
    times the ratio's range."""
    from reporting.data import load_report_data

    with psycopg.connect(reported["db"]) as conn:
        data = load_report_data(conn)
        bounds = {
            (metric, weekday): (low, high)
            for metric, weekday, low, high in conn.execute(
                "select metric_name, weekday, expected_low, expected_high from marts.fct_metric_bounds"
                " where model_version = %s and column_name = '' and segment_type = ''",
                (reported["model_version"],),
            )
        }
    assert data.model_version == reported["model_version"] and len(data.health) == DAYS
    for day, row in data.health.iterrows():
        low, high = bounds[("prediction_drift_score", day.isoweekday())]
        assert (row["prediction_drift_score_low"], row["prediction_drift_score_high"]) == (low, high)
        low, high = bounds[("rmsle_ratio", day.isoweekday())]
        assert row["rmsle_high"] == pytest.approx(row["reference_rmsle"] * high)
        assert row["rmsle_low"] == pytest.approx(row["reference_rmsle"] * low)
    assert not data.segments.empty and data.segments["segment_rank"].max() <= 12


def test_report_rejects_an_unknown_model_version(reported: dict, tmp_path: Path) -> None:
    result = runner.invoke(app, ["report", "--out", str(tmp_path), "--model-version", "nope"])
    assert result.exit_code == 1
    assert (
        f"model version 'nope' has no monitored day in the marts; monitored: {reported['model_version']}"
        in (result.output)
    )


def _browser() -> str | None:
    return next((found for name in BROWSERS if (found := shutil.which(name))), None)


def test_report_page_loads_every_image_in_headless_chromium(reported: dict, tmp_path: Path) -> None:
    """The page from disk, no server: a copy of it beside the original, with a script that records
    how many images loaded (complete, with a width), read back from the DOM Chromium dumps."""
    browser = _browser()
    if browser is None:
        pytest.skip(
            f"no Chromium or Chrome found (looked for {', '.join(BROWSERS)}): apt-get install chromium"
        )
    out = reported["out"]
    probe = out / "_probe.html"
    script = (
        "<script>window.addEventListener('load', () => { const images = [...document.images];"
        " const loaded = images.filter((image) => image.complete && image.naturalWidth > 0);"
        " document.body.dataset.loaded = loaded.length + '/' + images.length;"
        " document.body.dataset.sizes = loaded.map((image) => image.getAttribute('src') + '='"
        " + image.naturalWidth + 'x' + image.naturalHeight).join(' '); });</script></body>"
    )
    probe.write_text(reported["page"].replace("</body>", script))
    try:
        completed = subprocess.run(
            [
                browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000",
                f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", probe.as_uri(),
            ],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
    finally:
        probe.unlink()
    assert completed.returncode == 0, completed.stderr[-2000:]
    loaded = re.search(r'data-loaded="(\d+)/(\d+)"', completed.stdout)
    assert loaded, completed.stdout[-2000:]
    assert loaded[1] == loaded[2] == str(len(CHARTS))
    sizes = dict(item.split("=") for item in re.search(r'data-sizes="([^"]*)"', completed.stdout)[1].split())
    for name in CHARTS:
        with Image.open(out / name) as image:
            assert sizes[name] == f"{image.width}x{image.height}"


# --- the Evidently project's dashboard ---------------------------------------------------------------


def test_dashboard_has_the_main_series_panels(pipeline_db: dict) -> None:
    """Created by the monitoring run: its tabs, titles and the metrics each panel reads."""
    from evidently.ui.workspace import Workspace

    from monitoring.config import DEFAULT_CONFIG
    from monitoring.dashboard import ROW_COUNT, SALESMON_METRIC, dashboard_layout
    from monitoring.workspace import PROJECT_NAME

    project = Workspace.create(str(pipeline_db["workspace"])).search_project(PROJECT_NAME)[0]
    layout = {
        title: (tab, plot, series) for tab, title, plot, series in dashboard_layout(project.dashboard.model())
    }
    assert {tab for tab, _, _ in layout.values()} == {"Model health", "Feature drift", "Data quality"}
    assert layout["Prediction drift: normed Wasserstein distance of log1p(prediction)"][2] == [
        (SALESMON_METRIC, {"metric": "prediction_drift_score"})
    ]
    assert layout["Drifted feature columns (share, at Evidently's default drift thresholds)"][2] == [
        (SALESMON_METRIC, {"metric": "drifted_columns_share"})
    ]
    assert layout["Missing values (share of cells)"][2] == [
        (SALESMON_METRIC, {"metric": "missing_values_share"})
    ]
    assert layout["Forecast error: RMSLE"][2] == [
        (SALESMON_METRIC, {"metric": "rmsle"}),
        (SALESMON_METRIC, {"metric": "reference_rmsle"}),
    ]
    assert layout["Forecast error: MAE and RMSE"][2] == [
        (SALESMON_METRIC, {"metric": "mae"}),
        (SALESMON_METRIC, {"metric": "rmse"}),
    ]
    assert layout["Rows per day (store x family)"][1:] == (
        "bar",
        [(ROW_COUNT, {}), (SALESMON_METRIC, {"metric": "expected_row_count"})],
    )
    numerical = layout["Drift of the numerical features: normed Wasserstein distance of log1p(value)"]
    assert numerical[0] == "Feature drift"
    assert [labels["column"] for _, labels in numerical[2]] == list(DEFAULT_CONFIG.numerical_columns)
    assert (SALESMON_METRIC, {"metric": "column_drift_score", "column": "onpromotion"}) in numerical[2]
    categorical = layout["Drift of the categorical features: Jensen-Shannon distance"]
    assert [labels["column"] for _, labels in categorical[2]] == list(DEFAULT_CONFIG.categorical_columns)


def _stored_metric(metric: str, labels: dict[str, str]) -> tuple[str, str]:
    """The monitoring.metric_values (metric_name, column_name) a dashboard series shows."""
    from monitoring.dashboard import MISSING_VALUES, ROW_COUNT, SALESMON_METRIC

    column = labels.get("column", "").removesuffix("__log1p")
    if metric == MISSING_VALUES:
        return "column_missing_share", column
    if metric == ROW_COUNT:
        return "row_count", ""
    assert metric == SALESMON_METRIC, metric
    return labels["metric"], labels.get("column", "")


def test_dashboard_series_are_the_stored_metric_values(pipeline_db: dict) -> None:
    """What Evidently's UI reads for every series of every panel (its own data storage, on the
    workspace's files) is, day by day, the value stored in monitoring.metric_values; the model
    health panels have a value every day."""
    from evidently.ui.service.base import SeriesFilter
    from evidently.ui.service.storage.local.base import InMemoryDataStorage

    from monitoring.dashboard import dashboard_panels
    from monitoring.workspace import ensure_project

    version = pipeline_db["model_version"]
    project_id = uuid.UUID(ensure_project(pipeline_db["workspace"]))
    storage = InMemoryDataStorage(str(pipeline_db["workspace"]))
    series_count = 0
    with psycopg.connect(pipeline_db["db"]) as conn:
        for tab, panel in dashboard_panels():
            for value in panel.values:
                name, column = _stored_metric(value.metric, value.metric_labels)
                stored = [
                    row[0]
                    for row in conn.execute(
                        "select value from monitoring.metric_values where model_version = %s"
                        " and metric_name = %s and column_name = %s and segment_type = ''"
                        " and value is not null order by slice_date",
                        (version, name, column),
                    )
                ]
                series_filter = SeriesFilter(
                    tags=[version], metadata={}, metric=value.metric, metric_labels=value.metric_labels
                )
                response = asyncio.run(storage.get_data_series(project_id, [series_filter], None, None))
                shown = [point for series in response.series for point in series.values if point is not None]
                assert len(response.series) <= 1, (panel.title, value.legend)
                assert shown == pytest.approx(stored), (panel.title, value.legend)
                if tab == "Model health":
                    assert len(shown) == DAYS, (panel.title, value.legend)
                series_count += 1
    assert series_count > 40
