"""The metrics mart (dbt_project/models/marts/monitoring): it builds, contracted, on an empty warehouse,
pivots the engine's long-form metric values, grades them against learned bounds with the seed's
sensitivity and floors, catches a gap in the monitored days, and documents every column. Metric values
and bounds are written here with SQL in the engine's documented shape (docs/monitoring.md), so these
tests do not depend on the engine or on calibration.

Over 400 lines: the mart's models share the one warehouse this module builds its rows in."""

from __future__ import annotations

import csv
import json
import math
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
    "path:models/staging/ml",
    "path:models/staging/monitoring",
    "path:models/intermediate/monitoring",
    "path:models/marts/monitoring",
    "path:seeds/monitoring_thresholds.csv",
    "path:tests/marts/monitoring",
]
# The test a model version monitored on day 1 and day 3 but not day 2 must fail (and only it).
EXPECTED_FAILURES = {"assert_no_unmonitored_day_between_monitored_days": 1}

FIRST_DAY = date(2017, 6, 1)
COMPUTED_AT = datetime(2024, 3, 1, 6, 30, tzinfo=UTC)
# The learned bounds written for model version v1: metric -> (column, segment, value scale, centre,
# spread). Each centre + 6 spreads lies beyond the seed's floors, so the bands below alert.
BOUNDS: dict[str, tuple[str, tuple[str, str], str, float, float]] = {
    "row_count_ratio": ("", ("", ""), "identity", 1.0, 0.01),
    "missing_values_share": ("", ("", ""), "identity", 0.01, 0.01),
    "unseen_category_count": ("", ("", ""), "identity", 0.0, 0.5),
    "zero_sales_store_share": ("", ("", ""), "identity", 0.02, 0.01),
    "prediction_drift_score": ("", ("", ""), "identity", 0.03, 0.01),
    "drifted_columns_share": ("", ("", ""), "identity", 0.1, 0.01),
    "rmsle_ratio": ("", ("", ""), "log", 0.0, 0.05),
    "mean_log_error": ("", ("", ""), "identity", 0.0, 0.02),
    "column_drift_score": ("onpromotion", ("", ""), "identity", 0.02, 0.02),
    "column_missing_share": ("onpromotion", ("", ""), "identity", 0.0, 0.01),
    "column_unseen_count": ("family", ("", ""), "identity", 0.0, 0.5),
    "segment_rmsle_ratio": ("", ("store_type", "A"), "log", 0.0, 0.1),
}
# A segment with a high ratio that is usual for it (a wide spread of its own): never alerts.
NOISY_SEGMENT = (("family", "BOOKS"), "log", 0.0, 1.0, 5.0)
# A segment far outside its bounds but carrying too little of the day's sales to be tested.
SMALL_SEGMENT = (("family", "MAGAZINES"), "log", 0.0, 0.1, 20.0)
ACTUALS_METRICS = {"rmsle_ratio", "mean_log_error", "zero_sales_store_share", "segment_rmsle_ratio"}
BANDS = ("none", "warning", "critical", "none")  # day 4 has no actuals


def _seed() -> dict[str, dict[str, object]]:
    with (DBT_PROJECT_DIR / "seeds" / "monitoring_thresholds.csv").open(newline="") as handle:
        return {row["metric_name"]: row for row in csv.DictReader(handle)}


def _band_z(band: str, rule: dict[str, object]) -> float:
    """Spreads from the centre: 0, between the sensitivity and the critical one, beyond the latter."""
    low, high = float(rule["sensitivity"]), float(rule["critical_sensitivity"])
    return {"none": 0.0, "warning": (low + high) / 2, "critical": high + 2}[band]


def _band_value(metric: str, band: str, rule: dict[str, object]) -> float:
    _column, _segment, scale_kind, center, spread = BOUNDS[metric]
    # two-sided metrics are pushed below their centre, the others above
    sign = -1.0 if rule["direction"] in ("below", "both") else 1.0
    on_scale = center + sign * _band_z(band, rule) * spread
    return math.exp(on_scale) if scale_kind == "log" else on_scale


def _expected_severity(metric: str, band: str, rule: dict[str, object]) -> str | None:
    """The band, unless the metric is off; a metric that must persist 2 days alerts only on day 3
    (its day 2 was unusual too), not on day 2 (day 1 was expected)."""
    if rule["enabled"] != "true" or band == "none":
        return None
    if int(rule["persistence_days"]) == 2 and band == "warning":
        return None
    return band


def _bound_rows() -> list[tuple]:
    rows = []
    keys = [(metric, *spec) for metric, spec in BOUNDS.items()]
    keys.append(("segment_rmsle_ratio", "", *NOISY_SEGMENT[:4]))
    keys.append(("segment_rmsle_ratio", "", *SMALL_SEGMENT[:4]))
    for metric, column, segment, scale_kind, center, spread in keys:
        for weekday in range(1, 8):
            rows.append(
                ("v1", "cfg", metric, column, *segment, weekday, scale_kind, center, spread, 28, "none")
                + (center, center, 0.0, None)
            )
    return rows


def _metric_rows(seed: dict[str, dict[str, object]]) -> tuple[list[tuple], list[tuple], dict]:
    """Runs and metric values for model version v1 (4 days: expected values, warnings, criticals, no
    actuals) and v-gap (days 1 and 3 only); also each graded metric's value and band, per day."""
    runs: list[tuple] = []
    values: list[tuple] = []
    graded: dict[tuple[date, str], tuple[float, str]] = {}
    for offset, band in enumerate(BANDS):
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

        for metric, (column, segment, *_rest) in BOUNDS.items():
            if metric in ACTUALS_METRICS and not has_actuals:
                continue
            value = _band_value(metric, band, seed[metric])
            graded[(day, metric)] = (value, band)
            family = "drift" if "drift" in metric else "performance" if "rmsle" in metric else "quality"
            if metric in ("prediction_drift_score", "column_drift_score"):
                add(
                    metric,
                    family,
                    value,
                    column=column,
                    stattest="wasserstein",
                    threshold=0.1,
                    detected=False,
                )
            else:
                add(metric, family, value, column=column, segment=segment)
        add("row_count", "quality", 1782.0)
        add("expected_row_count", "quality", 1782.0)
        add("mean_prediction", "quality", 412.5)
        add("column_missing_share", "quality", 0.0, column="sales_lag_7")
        add("column_drift_score", "drift", 0.01, column="family", stattest="jensenshannon", threshold=0.1)
        if has_actuals:
            add("mean_sales", "quality", 400.0)
            for name, value in (("mae", 80.0), ("rmse", 150.0), ("rmsle", 0.5), ("reference_rmsle", 0.4)):
                add(name, "performance", value)
            ratio = graded[(day, "segment_rmsle_ratio")][0]
            segments = (
                (("store_type", "A"), ratio, 0.5),
                (NOISY_SEGMENT[0], NOISY_SEGMENT[4], 0.2),
                (SMALL_SEGMENT[0], SMALL_SEGMENT[4], 0.001),
            )
            for segment, seg_ratio, share in segments:
                add("segment_row_count", "performance", 33.0, segment=segment)
                add("segment_rmsle", "performance", 0.4 * seg_ratio, segment=segment)
                add("segment_reference_rmsle", "performance", 0.4, segment=segment)
                add("segment_sales_share", "performance", share, segment=segment)
                if segment != ("store_type", "A"):
                    add("segment_rmsle_ratio", "performance", seg_ratio, segment=segment)
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
    seed = _seed()
    runs, values, graded = _metric_rows(seed)
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
            "insert into monitoring.metric_bounds (model_version, config_hash, metric_name, column_name,"
            " segment_type, segment_value, weekday, value_scale, center, scale, sample_size, seasonality,"
            " observed_min, observed_max, possible_min, possible_max)"
            " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            _bound_rows(),
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
        "seed": seed,
        "graded": graded,
        "db": module_database,
    }


def test_mart_builds_empty_on_a_fresh_warehouse(empty_build: list[dict], module_database: str) -> None:
    statuses = {result["status"] for result in empty_build}
    assert statuses <= {"success", "pass", "no-op"}  # no-op: the exposures
    kinds = [result["unique_id"].split(".")[0] for result in empty_build]
    # the 5 marts, fct_online_parity_daily, fct_metric_bounds, int_metric_values_graded, the staging
    # views of monitoring (alert history, runs, metric values, metric bounds) and of ml (model
    # versions, predictions, request log)
    assert kinds.count("model") == 15
    assert kinds.count("seed") == 1
    assert kinds.count("unit_test") >= 4
    assert kinds.count("test") > 50
    with psycopg.connect(module_database) as conn:
        for mart in (*MARTS, "fct_metric_bounds"):
            assert conn.execute(f"select count(*) from marts.{mart}").fetchone() == (0,)
        assert conn.execute("select count(*) from marts.monitoring_thresholds").fetchone()[0] == len(_seed())


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
    seed = loaded_build["seed"]
    with psycopg.connect(loaded_build["db"]) as conn:
        rows = conn.execute(
            "select slice_date, row_count, expected_row_count, prediction_drift_stattest,"
            " prediction_drift_threshold, mae, rmsle, reference_rmsle, mean_sales, degraded_segments_count,"
            " model_alerts_count, has_alert, computed_at, prediction_drift_detected, drifted_columns_count,"
            " drifted_columns_share"
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
    # where the prediction's drift starts to alert: centre + sensitivity x spread, or the floor if higher
    _column, _segment, _kind, center, spread = BOUNDS["prediction_drift_score"]
    rule = seed["prediction_drift_score"]
    alert_above = max(center + float(rule["sensitivity"]) * spread, float(rule["floor_high"]))
    assert first[1:4] == (1782, 1782, "wasserstein")
    assert first[4] == pytest.approx(alert_above)
    assert first[5:8] == (80.0, 0.5, 0.4)
    assert first[12] == COMPUTED_AT
    # store type A is unusual on days 2 and 3: degraded on day 3, the second day in a row (the seed
    # asks segment metrics to persist 2 days)
    assert [row[9] for row in rows] == [0, 0, 1, 0]
    assert [row[13] for row in rows] == [False, True, True, False]
    # onpromotion drifts on days 2 and 3, of the 1 column with bounds (family has none): counted on day 3
    assert [(row[14], row[15]) for row in rows] == [(0, 0.0), (0, 0.0), (1, 1.0), (0, 0.0)]
    no_actuals = rows[3]
    assert no_actuals[5] is None and no_actuals[6] is None and no_actuals[8] is None
    model_level = {
        metric
        for metric, (column, segment, *_rest) in BOUNDS.items()
        if not column and not segment[0] and seed[metric]["enabled"] == "true"
    }
    assert rows[0][10] == 0 and rows[0][11] is False
    assert rows[1][10] == len(model_level) and rows[2][10] == len(model_level)
    assert rows[3][10] == 0 and rows[3][11] is False


def test_alerts_follow_the_learned_bounds_and_explain_themselves(loaded_build: dict) -> None:
    seed, graded = loaded_build["seed"], loaded_build["graded"]
    with psycopg.connect(loaded_build["db"]) as conn:
        alerts = conn.execute(
            "select slice_date, metric_name, alert_scope, column_name, segment_type, segment_value,"
            " metric_value, threshold, severity, first_seen_at, expected_low, expected_high, z_score,"
            " distance_outside, comparison"
            " from marts.fct_alerts where model_version = %s",
            ("v1",),
        ).fetchall()
    found = {(row[0], row[1]): row for row in alerts}
    assert len(found) == len(alerts)
    expected = {
        key: _expected_severity(key[1], band, seed[key[1]])
        for key, (_value, band) in graded.items()
        if _expected_severity(key[1], band, seed[key[1]])
    }
    assert {key: row[8] for key, row in found.items()} == expected
    assert {row[8] for row in alerts} == {"warning", "critical"}
    assert "drifted_columns_share" not in {row[1] for row in alerts}  # switched off in the seed
    for (_day, metric), row in found.items():
        rule = seed[metric]
        column, segment, scale_kind, center, spread = BOUNDS[metric]
        sensitivity = float(rule["sensitivity"])
        low, high = center - sensitivity * spread, center + sensitivity * spread
        if scale_kind == "log":
            low, high = math.exp(low), math.exp(high)
        assert row[10] == pytest.approx(max(low, 0.0))
        assert row[11] == pytest.approx(high)
        if row[14] == "<":
            assert row[7] == pytest.approx(min(row[10], float(rule["floor_low"] or row[10])))
            assert row[6] < row[7] and row[13] == pytest.approx(row[7] - row[6])
        else:
            assert row[7] == pytest.approx(max(row[11], float(rule["floor_high"] or row[11])))
            assert row[6] > row[7] and row[13] == pytest.approx(row[6] - row[7])
        assert abs(row[12]) == pytest.approx(_band_z(row[8], rule))
        assert row[9] == COMPUTED_AT
        assert row[2:6] == (
            "segment" if segment[0] else "column" if column else "model",
            column,
            *segment,
        )


def test_feature_drift_and_segments_pivot_per_column_and_segment(loaded_build: dict) -> None:
    seed = loaded_build["seed"]
    with psycopg.connect(loaded_build["db"]) as conn:
        drift = conn.execute(
            "select column_name, drift_score, stattest, threshold, drift_detected, missing_share,"
            " unseen_count"
            " from marts.fct_feature_drift_daily where model_version = %s and slice_date = %s"
            " order by column_name",
            ("v1", FIRST_DAY + timedelta(days=2)),
        ).fetchall()
        segments = conn.execute(
            "select segment_type, segment_value, row_count, rmsle, reference_rmsle, rmsle_ratio, q_value,"
            " degraded"
            " from marts.fct_segment_performance_daily where model_version = %s and slice_date = %s"
            " order by segment_type, segment_value",
            ("v1", FIRST_DAY + timedelta(days=2)),
        ).fetchall()
    drift_rule = seed["column_drift_score"]
    _column, _segment, _kind, center, spread = BOUNDS["column_drift_score"]
    drift_threshold = max(center + float(drift_rule["sensitivity"]) * spread, float(drift_rule["floor_high"]))
    critical_unseen = _band_value("column_unseen_count", "critical", seed["column_unseen_count"])
    assert drift[0] == ("family", 0.01, "jensenshannon", None, None, None, int(critical_unseen))
    assert drift[1][:5] == (
        "onpromotion",
        pytest.approx(_band_value("column_drift_score", "critical", drift_rule)),
        "wasserstein",
        pytest.approx(drift_threshold),
        True,
    )
    assert drift[1][5] == pytest.approx(
        _band_value("column_missing_share", "critical", seed["column_missing_share"])
    )
    assert drift[2] == ("sales_lag_7", None, None, None, None, 0.0, None)
    ratio = _band_value("segment_rmsle_ratio", "critical", seed["segment_rmsle_ratio"])
    assert segments[0][:3] == ("family", "BOOKS", 33) and segments[0][7] is False
    assert segments[0][5] == pytest.approx(NOISY_SEGMENT[4]) and segments[0][6] > 0.01
    # 20 times its reference error, but 0.1 % of the day's sales: below the seed's minimum, not tested
    assert segments[1][:3] == ("family", "MAGAZINES", 33) and segments[1][7] is False
    assert segments[1][5] == pytest.approx(SMALL_SEGMENT[4]) and segments[1][6] is None
    assert segments[2][:3] == ("store_type", "A", 33) and segments[2][7] is True
    assert segments[2][5] == pytest.approx(ratio) and segments[2][6] < 1e-6


def test_a_monitoring_run_counts_alerts_and_coverage_from_the_marts(loaded_build: dict) -> None:
    """monitoring.marts: what the flow's summary reports (alerts per severity, days per status)."""
    from monitoring import marts

    seed, graded = loaded_build["seed"], loaded_build["graded"]
    severities = [_expected_severity(key[1], band, seed[key[1]]) for key, (_value, band) in graded.items()]
    expected = {severity: severities.count(severity) for severity in ("warning", "critical")}
    last = FIRST_DAY + timedelta(days=30)
    with psycopg.connect(loaded_build["db"]) as conn:
        assert marts.alert_counts(conn, FIRST_DAY, last, "v1") == expected
        assert marts.alert_counts(conn, FIRST_DAY, last, "v1", source="online") == {}
        assert marts.alert_counts(conn, FIRST_DAY, last, "v-gap") == {}
        # v-gap: predictions on days 1-3, 11 and 12, computed on days 1 and 3
        assert marts.coverage_counts(conn, FIRST_DAY, last, "v-gap") == {"computed": 2, "not_monitored": 3}
        assert marts.coverage_counts(conn, FIRST_DAY, FIRST_DAY + timedelta(days=1), "v-gap") == {
            "computed": 1,
            "not_monitored": 1,
        }
        # before the first dbt build the marts do not exist: None, not an error (rolled back)
        conn.execute("alter table marts.fct_alerts rename to fct_alerts_hidden")
        conn.execute("alter table marts.fct_monitoring_coverage_daily rename to coverage_hidden")
        assert marts.alert_counts(conn, FIRST_DAY, last, "v1") is None
        assert marts.coverage_counts(conn, FIRST_DAY, last, "v-gap") is None
        conn.rollback()


def test_every_mart_column_is_documented(loaded_build: dict, dbt_paths: list[str]) -> None:
    run_dbt(["docs", "generate", "--no-compile", *SELECTION, *dbt_paths], quiet=True)
    target = Path(dbt_paths[dbt_paths.index("--target-path") + 1])
    manifest = json.loads((target / "manifest.json").read_text())
    catalog = json.loads((target / "catalog.json").read_text())
    for mart in (
        *MARTS,
        "fct_metric_bounds",
        "int_metric_values_graded",
        "monitoring_thresholds",
    ):
        kind = "seed" if mart == "monitoring_thresholds" else "model"
        unique_id = f"{kind}.salesmon.{mart}"
        node = manifest["nodes"][unique_id]
        assert "One row per" in node["description"], unique_id
        in_database = set(catalog["nodes"][unique_id]["columns"])
        described = {name for name, column in node["columns"].items() if column["description"].strip()}
        assert in_database == described, f"{unique_id}: undocumented {in_database - described}"
    exposures = {exposure["label"] for exposure in manifest["exposures"].values()}
    assert {"Model health", "Feature drift", "Alert rules"} <= exposures


def test_a_full_refresh_keeps_the_alert_history(loaded_build: dict, dbt_paths: list[str]) -> None:
    """monitoring.alert_history belongs to the warehouse, not to dbt: after the values are recomputed
    (a later computed_at) and `dbt build --full-refresh`, every alert keeps its first_seen_at, and
    none is recorded twice."""
    later = COMPUTED_AT + timedelta(days=2)
    history_sql = "select alert_id, first_seen_at from monitoring.alert_history"
    with psycopg.connect(loaded_build["db"], autocommit=True) as conn:
        before = dict(conn.execute(history_sql).fetchall())
        alerts = {row[0] for row in conn.execute("select alert_id from marts.fct_alerts")}
        conn.execute("update monitoring.metric_values set computed_at = %s", (later,))
    assert before and set(before) == alerts
    assert set(before.values()) == {COMPUTED_AT}
    try:
        with pytest.raises(DbtError) as failed:  # the one expected test failure, as in loaded_build
            run_dbt(["build", "--full-refresh", *SELECTION, *dbt_paths], quiet=True)
        assert "assert_no_unmonitored_day_between_monitored_days" in str(failed.value)
        with psycopg.connect(loaded_build["db"]) as conn:
            after = conn.execute(history_sql).fetchall()
            rebuilt = conn.execute("select alert_id, first_seen_at from marts.fct_alerts").fetchall()
    finally:
        with psycopg.connect(loaded_build["db"], autocommit=True) as conn:
            conn.execute("update monitoring.metric_values set computed_at = %s", (COMPUTED_AT,))
    assert dict(after) == before and len(after) == len(before)
    assert len(rebuilt) == len({alert_id for alert_id, _ in rebuilt})
    assert dict(rebuilt) == before  # first seen before the recompute, not at it


def test_the_warehouse_enforces_each_column_rule_of_the_contracted_marts(
    loaded_build: dict, dbt_paths: list[str]
) -> None:
    """A contracted mart's column rules (not null, not negative, a range, accepted values) are
    constraints of its table, checked by PostgreSQL on every build, not data tests run afterwards:
    every check the YAML declares is on the table, and a row breaking one is refused."""
    target = Path(dbt_paths[dbt_paths.index("--target-path") + 1])
    manifest = json.loads((target / "manifest.json").read_text())
    with psycopg.connect(loaded_build["db"]) as conn:
        for mart in MARTS:
            node = manifest["nodes"][f"model.salesmon.{mart}"]
            declared = sum(
                constraint["type"] == "check"
                for column in node["columns"].values()
                for constraint in column["constraints"]
            )
            on_table = conn.execute(
                "select count(*) from pg_constraint where contype = 'c' and conrelid = %s::regclass",
                (f"marts.{mart}",),
            ).fetchone()[0]
            assert declared > 0 and on_table == declared, mart
        row = conn.execute("select * from marts.fct_model_health_daily limit 1").fetchone()
        columns = [
            column.name
            for column in conn.execute("select * from marts.fct_model_health_daily limit 0").description
        ]
        assert row is not None
        for column, bad in (("row_count", -1), ("source", "nightly"), ("missing_values_share", 1.5)):
            broken = dict(zip(columns, row, strict=True)) | {column: bad}
            with (
                pytest.raises(psycopg.errors.CheckViolation, match=column),
                conn.transaction(force_rollback=True),
            ):
                conn.execute(
                    f"insert into marts.fct_model_health_daily ({', '.join(columns)})"
                    f" values ({', '.join(['%s'] * len(columns))})",
                    list(broken.values()),
                )
