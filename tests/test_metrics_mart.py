"""The metrics mart (dbt_project/models/marts/monitoring): it builds, contracted, on an empty warehouse,
pivots the engine's long-form metric values, grades breaches against the thresholds seed, catches a
gap in the monitored days, and documents every column. Metric values are written here with SQL in
the engine's documented shape (docs/monitoring.md), so these tests do not depend on the engine."""

from __future__ import annotations

import csv
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from warehouse.dbt import DBT_PROJECT_DIR, DbtError, run_dbt

MARTS = (
    "fct_model_health_daily",
    "fct_feature_drift_daily",
    "fct_segment_performance_daily",
    "fct_alerts",
    "fct_monitoring_coverage_daily",
)
SELECTION = [
    "--select",
    "source:monitoring",
    "path:models/marts/monitoring",
    "path:seeds/monitoring_thresholds.csv",
    "path:tests/marts/monitoring",
]
# The test a model version monitored on day 1 and day 3 but not day 2 must fail (and only it).
EXPECTED_FAILURES = {"assert_no_unmonitored_day_between_monitored_days": 1}

FIRST_DAY = date(2017, 6, 1)
COMPUTED_AT = datetime(2024, 3, 1, 6, 30, tzinfo=UTC)
# Metrics the seed grades, by scope: model level, per column (onpromotion) and per segment.
COLUMN_METRICS = {"column_missing_share"}
SEGMENT_METRICS = {"segment_rmsle_ratio"}
COUNT_METRICS = {"unseen_category_count"}
SHARE_METRICS = {
    "missing_values_share",
    "zero_sales_store_share",
    "drifted_columns_share",
    "column_missing_share",
}


def _thresholds() -> dict[str, dict[str, object]]:
    with (DBT_PROJECT_DIR / "seeds" / "monitoring_thresholds.csv").open(newline="") as handle:
        return {
            row["metric_name"]: {
                "comparison": row["comparison"],
                "warning": float(row["warning_threshold"]),
                "critical": float(row["critical_threshold"]),
            }
            for row in csv.DictReader(handle)
        }


def _band_values(metric: str, rule: dict[str, object]) -> dict[str, float]:
    """A value that does not breach, one between warning and critical, and one beyond critical."""
    warning, critical = float(rule["warning"]), float(rule["critical"])
    if rule["comparison"] == ">":
        values = {
            "none": warning / 2,
            "warning": (warning + critical) / 2,
            "critical": (critical + 1) / 2 if metric in SHARE_METRICS else critical * 2 + 1,
        }
    else:
        values = {
            "none": warning + (1 - warning) / 2 if warning < 1 else warning * 2,
            "warning": (warning + critical) / 2,
        }
        values["critical"] = critical / 2
    if metric in COUNT_METRICS:
        values = {
            "none": float(int(values["none"])),
            "warning": float(int(values["warning"])),
            "critical": float(int(values["critical"]) + 1),
        }
    return values


def _expected_severity(value: float, rule: dict[str, object]) -> str | None:
    beyond = (lambda limit: value > limit) if rule["comparison"] == ">" else (lambda limit: value < limit)
    if beyond(float(rule["critical"])):
        return "critical"
    if beyond(float(rule["warning"])):
        return "warning"
    return None


def _metric_rows(thresholds: dict[str, dict[str, object]]) -> tuple[list[tuple], list[tuple], dict]:
    """Runs and metric values for model version v1 (4 days: no breach, warnings, criticals, no actuals)
    and v-gap (days 1 and 3 only); also what each graded metric's value is, per day."""
    runs: list[tuple] = []
    values: list[tuple] = []
    graded: dict[tuple[date, str], float] = {}
    bands = ("none", "warning", "critical", "none")
    for offset, band in enumerate(bands):
        day = FIRST_DAY + timedelta(days=offset)
        run_id = uuid.uuid4()
        runs.append((run_id, day, "v1", 1782))
        has_actuals = offset < 3

        def add(
            name: str,
            family: str,
            value: float | None,
            *,
            column: str = "",
            segment: tuple[str, str] = ("", ""),
            stattest: str | None = None,
            threshold: float | None = None,
            detected: bool | None = None,
            slice_key: tuple[date, uuid.UUID] = (day, run_id),
        ) -> None:
            values.append(
                (slice_key[0], "v1", family, name, column, *segment, value, stattest, threshold, detected)
                + (slice_key[1], COMPUTED_AT)
            )

        for metric, rule in thresholds.items():
            if metric in SEGMENT_METRICS:
                continue
            if metric in {"rmsle_ratio", "zero_sales_store_share"} and not has_actuals:
                continue
            value = _band_values(metric, rule)[band]
            graded[(day, metric)] = value
            if metric in COLUMN_METRICS:
                add(metric, "quality", value, column="onpromotion")
            elif metric == "prediction_drift_score":
                add(metric, "drift", value, stattest="wasserstein", threshold=0.1, detected=value > 0.1)
            else:
                add(metric, "drift" if "drift" in metric else "quality", value)
        add("row_count", "quality", 1782.0)
        add("expected_row_count", "quality", 1782.0)
        add("mean_prediction", "quality", 412.5)
        add(
            "column_drift_score",
            "drift",
            0.05 * (offset + 1),
            column="onpromotion",
            stattest="wasserstein",
            threshold=0.1,
            detected=offset >= 1,
        )
        add("column_missing_share", "quality", 0.0, column="sales_lag_7")
        add(
            "column_drift_score",
            "drift",
            0.01,
            column="family",
            stattest="jensenshannon",
            threshold=0.1,
            detected=False,
        )
        if has_actuals:
            add("mean_sales", "quality", 400.0)
            for name, value in (("mae", 80.0), ("rmse", 150.0), ("rmsle", 0.5), ("reference_rmsle", 0.4)):
                add(name, "performance", value)
            segment_rule = thresholds["segment_rmsle_ratio"]
            ratio = _band_values("segment_rmsle_ratio", segment_rule)[band]
            graded[(day, "segment_rmsle_ratio")] = ratio
            for segment, seg_ratio, q_value in (
                (("store_type", "A"), ratio, 0.01),
                (("family", "BOOKS"), 5.0, 0.4),
            ):
                add("segment_row_count", "performance", 33.0, segment=segment)
                add("segment_rmsle", "performance", 0.4 * seg_ratio, segment=segment)
                add("segment_reference_rmsle", "performance", 0.4, segment=segment)
                add("segment_p_value", "performance", q_value / 2, segment=segment)
                add(
                    "segment_q_value",
                    "performance",
                    q_value,
                    segment=segment,
                    threshold=0.05,
                    detected=q_value < 0.05 and band != "none",
                )
    for offset in (0, 2):  # a model version with predictions on days 1 to 3 but monitored on 1 and 3
        day = FIRST_DAY + timedelta(days=offset)
        run_id = uuid.uuid4()
        runs.append((run_id, day, "v-gap", 10))
        values.append(
            (day, "v-gap", "quality", "row_count", "", "", "", 10.0, None, None, None, run_id, COMPUTED_AT)
        )
    return runs, values, graded


@pytest.fixture(scope="module")
def dbt_paths(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Private target and log folders, so that concurrent dbt runs never share `target/`."""
    root = tmp_path_factory.mktemp("dbt-mart")
    return ["--target-path", str(root / "target"), "--log-path", str(root / "logs")]


def _run_results(dbt_paths: list[str]) -> list[dict]:
    target = Path(dbt_paths[dbt_paths.index("--target-path") + 1])
    return json.loads((target / "run_results.json").read_text())["results"]


@pytest.fixture(scope="module")
def empty_build(module_database: str, dbt_paths: list[str]) -> Iterator[list[dict]]:
    """`dbt build` of the metrics mart on a freshly bootstrapped warehouse, before any monitoring run."""
    run_dbt(["build", *SELECTION, *dbt_paths], quiet=True)
    yield _run_results(dbt_paths)


@pytest.fixture(scope="module")
def loaded_build(empty_build: list[dict], module_database: str, dbt_paths: list[str]) -> Iterator[dict]:
    """The mart rebuilt on metric values written in the engine's shape (one version with a gap)."""
    thresholds = _thresholds()
    runs, values, graded = _metric_rows(thresholds)
    with psycopg.connect(module_database) as conn:
        conn.cursor().executemany(
            "insert into monitoring.runs (run_id, slice_date, model_version, config_hash, reference_hash,"
            " evidently_version, status, row_count, started_at, finished_at)"
            " values (%s, %s, %s, 'cfg', 'ref', '0.7.23', 'success', %s, %s, %s)",
            [(*run, COMPUTED_AT, COMPUTED_AT) for run in runs],
        )
        conn.cursor().executemany(
            "insert into monitoring.metric_values (slice_date, model_version, metric_family, metric_name,"
            " column_name, segment_type, segment_value, value, stattest, threshold, detected, run_id,"
            " computed_at)"
            " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            values,
        )
        conn.cursor().executemany(
            "insert into ml.predictions (sales_date, store_nbr, family, model_version, prediction)"
            " values (%s, %s, %s, %s, %s)",
            [(FIRST_DAY + timedelta(days=offset), 1, "BEVERAGES", "v-gap", 10.0) for offset in range(3)]
            + [(FIRST_DAY + timedelta(days=offset), 1, "BEVERAGES", "v-gap", 10.0) for offset in (10, 11)],
        )
    with pytest.raises(DbtError):
        run_dbt(["build", *SELECTION, *dbt_paths], quiet=True)
    yield {
        "results": _run_results(dbt_paths),
        "thresholds": thresholds,
        "graded": graded,
        "db": module_database,
    }


def test_mart_builds_empty_on_a_fresh_warehouse(empty_build: list[dict], module_database: str) -> None:
    statuses = {result["status"] for result in empty_build}
    assert statuses <= {"success", "pass", "no-op"}  # no-op: the exposures
    kinds = [result["unique_id"].split(".")[0] for result in empty_build]
    assert kinds.count("model") == 7  # the 5 marts, fct_alerts_first_seen, int_metric_values_graded
    assert kinds.count("seed") == 1
    assert kinds.count("unit_test") >= 4
    assert kinds.count("test") > 50
    with psycopg.connect(module_database) as conn:
        for mart in MARTS:
            assert conn.execute(f"select count(*) from marts.{mart}").fetchone() == (0,)
        assert conn.execute("select count(*) from marts.monitoring_thresholds").fetchone()[0] == len(
            _thresholds()
        )


def test_only_the_gap_test_fails_and_unit_tests_pass(loaded_build: dict) -> None:
    results = loaded_build["results"]
    failed = {
        result["unique_id"].split(".")[2]: result["failures"]
        for result in results
        if result["status"] not in {"pass", "success", "no-op"}
    }
    assert failed == EXPECTED_FAILURES
    unit_tests = [result for result in results if result["unique_id"].startswith("unit_test.")]
    assert len(unit_tests) >= 4
    assert {result["status"] for result in unit_tests} == {"pass"}


def test_model_health_pivots_one_row_per_day_and_version(loaded_build: dict) -> None:
    with psycopg.connect(loaded_build["db"]) as conn:
        rows = conn.execute(
            "select slice_date, row_count, expected_row_count, prediction_drift_stattest,"
            " prediction_drift_threshold, mae, rmsle, reference_rmsle, mean_sales, degraded_segments_count,"
            " model_alerts_count, has_alert, computed_at"
            " from marts.fct_model_health_daily where model_version = %s order by slice_date",
            ("v1",),
        ).fetchall()
        versions = conn.execute(
            "select model_version, count(*) from marts.fct_model_health_daily"
            " group by model_version order by model_version"
        ).fetchall()
    assert versions == [("v-gap", 2), ("v1", 4)]
    assert [row[0] for row in rows] == [FIRST_DAY + timedelta(days=offset) for offset in range(4)]
    first = rows[0]
    assert first[1:5] == (1782, 1782, "wasserstein", 0.1)
    assert first[5:8] == (80.0, 0.5, 0.4)
    assert first[12] == COMPUTED_AT
    assert [row[9] for row in rows] == [0, 1, 1, 0]  # store type A is degraded on days 2 and 3
    no_actuals = rows[3]
    assert no_actuals[5] is None and no_actuals[6] is None and no_actuals[8] is None
    model_level = {
        metric for metric in loaded_build["thresholds"] if metric not in COLUMN_METRICS | SEGMENT_METRICS
    }
    assert rows[0][10] == 0 and rows[0][11] is False
    assert rows[1][10] == len(model_level) and rows[2][10] == len(model_level)
    assert rows[3][10] == 0 and rows[3][11] is False


def test_alerts_follow_the_thresholds_seed(loaded_build: dict) -> None:
    thresholds, graded = loaded_build["thresholds"], loaded_build["graded"]
    with psycopg.connect(loaded_build["db"]) as conn:
        alerts = conn.execute(
            "select slice_date, metric_name, alert_scope, column_name, segment_type, segment_value,"
            " metric_value, threshold, severity, first_seen_at"
            " from marts.fct_alerts where model_version = %s",
            ("v1",),
        ).fetchall()
    found = {(row[0], row[1]): row for row in alerts}
    assert len(found) == len(alerts)
    expected = {}
    for (day, metric), value in graded.items():
        severity = _expected_severity(value, thresholds[metric])
        if severity:
            expected[(day, metric)] = severity
    assert {key: row[8] for key, row in found.items()} == expected
    assert {row[8] for row in alerts} == {"warning", "critical"}
    for (_day, metric), row in found.items():
        rule = thresholds[metric]
        assert row[7] == pytest.approx(rule[row[8]])
        assert row[9] == COMPUTED_AT
        if metric in COLUMN_METRICS:
            assert row[2:6] == ("column", "onpromotion", "", "")
        elif metric in SEGMENT_METRICS:
            assert row[2:6] == ("segment", "", "store_type", "A")  # BOOKS: a high ratio but not significant
        else:
            assert row[2:6] == ("model", "", "", "")


def test_feature_drift_and_segments_pivot_per_column_and_segment(loaded_build: dict) -> None:
    with psycopg.connect(loaded_build["db"]) as conn:
        drift = conn.execute(
            "select column_name, drift_score, stattest, threshold, drift_detected, missing_share"
            " from marts.fct_feature_drift_daily where model_version = %s and slice_date = %s"
            " order by column_name",
            ("v1", FIRST_DAY + timedelta(days=1)),
        ).fetchall()
        segments = conn.execute(
            "select segment_type, segment_value, row_count, rmsle, reference_rmsle, rmsle_ratio, q_value,"
            " degraded"
            " from marts.fct_segment_performance_daily where model_version = %s and slice_date = %s"
            " order by segment_type",
            ("v1", FIRST_DAY + timedelta(days=1)),
        ).fetchall()
    missing = _band_values("column_missing_share", _thresholds()["column_missing_share"])["warning"]
    assert drift[0] == ("family", 0.01, "jensenshannon", 0.1, False, None)
    assert drift[1][:5] == ("onpromotion", 0.1, "wasserstein", 0.1, True)
    assert drift[1][5] == pytest.approx(missing)
    assert drift[2] == ("sales_lag_7", None, None, None, None, 0.0)
    ratio = _band_values("segment_rmsle_ratio", _thresholds()["segment_rmsle_ratio"])["warning"]
    assert segments[0][:3] == ("family", "BOOKS", 33) and segments[0][7] is False
    assert segments[1][:3] == ("store_type", "A", 33) and segments[1][7] is True
    assert segments[1][5] == pytest.approx(ratio)


def test_every_mart_column_is_documented(loaded_build: dict, dbt_paths: list[str]) -> None:
    run_dbt(["docs", "generate", "--no-compile", *SELECTION, *dbt_paths], quiet=True)
    target = Path(dbt_paths[dbt_paths.index("--target-path") + 1])
    manifest = json.loads((target / "manifest.json").read_text())
    catalog = json.loads((target / "catalog.json").read_text())
    for mart in (*MARTS, "fct_alerts_first_seen", "int_metric_values_graded", "monitoring_thresholds"):
        kind = "seed" if mart == "monitoring_thresholds" else "model"
        unique_id = f"{kind}.salesmon.{mart}"
        node = manifest["nodes"][unique_id]
        assert "One row per" in node["description"], unique_id
        in_database = set(catalog["nodes"][unique_id]["columns"])
        described = {name for name, column in node["columns"].items() if column["description"].strip()}
        assert in_database == described, f"{unique_id}: undocumented {in_database - described}"
    exposures = {exposure["label"] for exposure in manifest["exposures"].values()}
    assert {"Model health", "Feature drift", "Alert rules"} <= exposures
