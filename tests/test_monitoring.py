"""The monitoring engine and the monitor-days flow, end to end on small generated data.

The whole pipeline runs for real once per module (generate 4 stores x 8.5 months, load, dbt features
mart, train, score the monitored period and the forecast-request days), then the tests compute
slices with real Evidently into the real warehouse and check the stored values against numpy, the
idempotency of reruns, the skipping of finished days, and the Prefect flow on its task runners (a
process pool, threads, a local Dask cluster), which must all store the same values.

Over 400 lines: the tests share the module's one expensive set-up (the pipeline above).
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import psycopg
import pytest

from monitoring.config import DEFAULT_CONFIG, MonitoringConfig
from monitoring.day import compute_day
from monitoring.planning import plan_days
from monitoring.slices import clear_reference_cache, get_reference, load_slice, slice_query

pytestmark = pytest.mark.slow

STORES = 4
FAMILIES = 33
START = date(2016, 12, 1)
END = date(2017, 8, 15)
DAY = date(2017, 6, 1)
FIRST = date(2017, 6, 2)  # the 10 days of the backfill tests
NO_ACTUALS_DAY = date(2017, 8, 20)  # a forecast-request day: features and predictions, no sales yet


@pytest.fixture(scope="module")
def monitored_db(module_database: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Generated data loaded, features mart built, a model trained, the monitored period scored."""
    from datagen import generate
    from models_ml.score import score
    from models_ml.train import train
    from warehouse.dbt import run_dbt
    from warehouse.loader import load_folder

    data_dir: Path = tmp_path_factory.mktemp("monitoring-data")
    dbt_root = tmp_path_factory.mktemp("dbt-monitoring")
    generate(data_dir, stores=STORES, start=START, end=END, seed=11)
    load_folder(data_dir)
    run_dbt(
        [
            "run",
            "--select",
            "+fct_sales_features",
            "--target-path",
            str(dbt_root / "target"),
            "--log-path",
            str(dbt_root / "logs"),
        ],
        quiet=True,
    )
    trained = train()
    score(trained.windows.monitor_from, NO_ACTUALS_DAY)
    clear_reference_cache()
    return module_database


def _champion(conn: psycopg.Connection) -> str:
    return conn.execute("select model_version from ml.model_registry where is_champion").fetchone()[0]


def _metrics(conn: psycopg.Connection, day: date) -> dict[tuple[str, str, str, str], tuple]:
    """A slice's stored metric rows keyed by (name, column, segment type, segment value)."""
    rows = conn.execute(
        "select metric_name, column_name, segment_type, segment_value, metric_family, value, stattest,"
        " threshold, detected from monitoring.metric_values where slice_date = %s",
        (day,),
    ).fetchall()
    return {row[:4]: row[4:] for row in rows}


def _computed_at(conn: psycopg.Connection, days: list[date]) -> dict[date, object]:
    rows = conn.execute(
        "select slice_date, max(computed_at) from monitoring.metric_values"
        " where slice_date = any(%s) group by slice_date",
        (days,),
    ).fetchall()
    return dict(rows)


def _same_values(left: dict, right: dict) -> bool:
    if left.keys() != right.keys():
        return False
    for key, (family, value, stattest, threshold, detected) in left.items():
        other = right[key]
        if (family, stattest, threshold, detected) != (other[0], other[2], other[3], other[4]):
            return False
        if (value is None) != (other[1] is None):
            return False
        if value is not None and not math.isclose(value, other[1], rel_tol=1e-9, abs_tol=1e-12):
            return False
    return True


# --- slices ---------------------------------------------------------------------------------------


def test_slice_query_selects_exactly_the_day_with_bound_parameters(monitored_db: str) -> None:
    with psycopg.connect(monitored_db) as conn:
        version = _champion(conn)
        text = slice_query(DEFAULT_CONFIG).as_string(conn)
        current = load_slice(conn, DAY, version, DEFAULT_CONFIG)
        plan = "\n".join(
            row[0]
            for row in conn.execute(
                psycopg.sql.SQL("explain ") + slice_query(DEFAULT_CONFIG),
                {"sales_date": DAY, "model_version": version},
            )
        )
    assert "%(sales_date)s" in text and "%(model_version)s" in text
    assert DAY.isoformat() not in text and version not in text
    assert len(current) == STORES * FAMILIES
    assert set(current["sales_date"]) == {DAY}
    assert current[["store_nbr", "family"]].drop_duplicates().shape[0] == STORES * FAMILIES
    assert current["prediction"].notna().all()
    # Both tables are read through an index on the day, never scanned whole.
    assert "Seq Scan" not in plan, plan


def test_reference_is_the_same_weekday_of_the_validation_window(monitored_db: str) -> None:
    with psycopg.connect(monitored_db) as conn:
        version = _champion(conn)
        reference = get_reference(conn, version, DAY.isoweekday(), DEFAULT_CONFIG)
        again = get_reference(conn, version, DAY.isoweekday(), DEFAULT_CONFIG)
        window = conn.execute(
            "select valid_start, valid_end from ml.model_registry where model_version = %s", (version,)
        ).fetchone()
    assert again is reference  # cached per (version, weekday) in the process
    days = sorted(set(reference.frame["sales_date"]))
    assert len(days) == 4
    assert all(day.isoweekday() == DAY.isoweekday() and window[0] <= day <= window[1] for day in days)
    assert len(reference.frame) == 4 * STORES * FAMILIES
    assert len(reference.reference_hash) == 32


# --- one day --------------------------------------------------------------------------------------


def test_day_metrics_match_the_slice(monitored_db: str) -> None:
    result = compute_day(DAY, workspace=False)
    assert result.status == "computed"
    with psycopg.connect(monitored_db) as conn:
        version = _champion(conn)
        current = load_slice(conn, DAY, version, DEFAULT_CONFIG)
        metrics = _metrics(conn, DAY)
        run = conn.execute(
            "select status, row_count, metric_count, config_hash, evidently_version, finished_at is not null"
            " from monitoring.runs where slice_date = %s and status = 'success'",
            (DAY,),
        ).fetchone()

    def value(name: str, column: str = "", segment_type: str = "", segment_value: str = "") -> float | None:
        return metrics[(name, column, segment_type, segment_value)][1]

    sales = current["sales"].to_numpy()
    prediction = current["prediction"].to_numpy()
    assert value("row_count") == len(current) == STORES * FAMILIES
    assert value("expected_row_count") == STORES * FAMILIES
    assert value("row_count_ratio") == 1.0
    assert value("mae") == pytest.approx(np.mean(np.abs(prediction - sales)), rel=1e-12)
    assert value("rmse") == pytest.approx(np.sqrt(np.mean((prediction - sales) ** 2)), rel=1e-12)
    log_error = np.log1p(np.clip(prediction, 0, None)) - np.log1p(sales)
    assert value("rmsle") == pytest.approx(np.sqrt(np.mean(log_error**2)), rel=1e-12)
    assert value("rmsle_ratio") == pytest.approx(value("rmsle") / value("reference_rmsle"), rel=1e-12)
    assert value("mean_prediction") == pytest.approx(prediction.mean(), rel=1e-12)
    assert value("missing_values_share") == pytest.approx(
        current[[*DEFAULT_CONFIG.feature_columns, "prediction"]].isna().to_numpy().mean(), abs=1e-12
    )
    _, drift, stattest, threshold, detected = metrics[("prediction_drift_score", "", "", "")]
    assert 0.0 <= drift <= 1.0
    # Evidently's own verdict at its default threshold for the method, kept as information
    assert (stattest, threshold) == ("wasserstein(log1p)", 0.1)
    assert detected is (drift >= threshold)
    column_rows = {key[1]: row for key, row in metrics.items() if key[0] == "column_drift_score"}
    assert {"onpromotion", "sales_lag_7", "family"} <= set(column_rows) <= set(DEFAULT_CONFIG.feature_columns)
    for column, row in column_rows.items():
        assert (row[2], row[3]) == (DEFAULT_CONFIG.stattest_label(column), 0.1)
    drifted = sum(1 for row in column_rows.values() if row[4])
    assert value("drifted_columns_count") == drifted
    assert value("drifted_columns_share") == pytest.approx(drifted / len(column_rows))
    families = {key[3] for key in metrics if key[0] == "segment_rmsle" and key[2] == "family"}
    assert len(families) == FAMILIES
    grocery = current[current["family"] == "GROCERY I"]
    assert value("segment_mae", "", "family", "GROCERY I") == pytest.approx(
        np.mean(np.abs(grocery["prediction"] - grocery["sales"])), rel=1e-12
    )
    ratios = {key[2:]: row[1] for key, row in metrics.items() if key[0] == "segment_rmsle_ratio"}
    assert len(ratios) >= FAMILIES
    for segment, ratio in ratios.items():
        rmsle = value("segment_rmsle", "", *segment)
        assert ratio == pytest.approx(rmsle / value("segment_reference_rmsle", "", *segment), rel=1e-12)
    unseen = {key[1]: row[1] for key, row in metrics.items() if key[0] == "column_unseen_count"}
    assert set(unseen) == {"store_nbr", *DEFAULT_CONFIG.categorical_columns}
    assert value("unseen_category_count") == sum(unseen.values()) == 0.0
    assert run[0] == "success" and run[1] == len(current) and run[2] == len(metrics) and run[5]
    assert run[3] == DEFAULT_CONFIG.config_hash()


def test_rerun_replaces_the_slice_with_identical_values(monitored_db: str) -> None:
    with psycopg.connect(monitored_db) as conn:
        before = _metrics(conn, DAY)
        before_at = _computed_at(conn, [DAY])
    result = compute_day(DAY, force=True, workspace=False)
    assert result.status == "computed"
    with psycopg.connect(monitored_db) as conn:
        after = _metrics(conn, DAY)
        after_at = _computed_at(conn, [DAY])
        total, distinct_runs = conn.execute(
            "select count(*), count(distinct run_id) from monitoring.metric_values where slice_date = %s",
            (DAY,),
        ).fetchone()
    assert total == len(before) and distinct_runs == 1  # replaced, not duplicated
    assert _same_values(before, after)
    assert after_at[DAY] > before_at[DAY]


def test_day_without_actuals_has_null_performance(monitored_db: str) -> None:
    result = compute_day(NO_ACTUALS_DAY, workspace=False)
    assert result.status == "computed"
    with psycopg.connect(monitored_db) as conn:
        metrics = _metrics(conn, NO_ACTUALS_DAY)
        # Leave the monitored days contiguous: the mart's gap test would fail the flow's dbt build.
        conn.execute("delete from monitoring.metric_values where slice_date = %s", (NO_ACTUALS_DAY,))
        conn.execute("delete from monitoring.runs where slice_date = %s", (NO_ACTUALS_DAY,))
    for name in ("mae", "rmse", "rmsle", "rmsle_ratio", "mean_sales", "zero_sales_store_share"):
        assert metrics[(name, "", "", "")][1] is None, name
    assert not [key for key in metrics if key[0].startswith("segment_")]
    assert metrics[("row_count", "", "", "")][1] == STORES * FAMILIES
    assert metrics[("prediction_drift_score", "", "", "")][1] is not None


def test_day_without_predictions_is_reported_not_computed(monitored_db: str) -> None:
    result = compute_day(START + timedelta(days=40), workspace=False)
    assert result.status == "no_data"


def test_drawn_report_agrees_with_stored_values_and_fills_the_workspace(
    monitored_db: str, tmp_path: Path
) -> None:
    """Evidently's own metrics (only in the reports that are shown) give what the engine stored:
    every ValueDrift its score, threshold and verdict, DriftedColumnsCount, RowCount,
    MissingValueCount, MAE and RMSE. Drift scores come from Evidently's registered statistical tests
    (evidently.legacy.calculations.stattests, pinned with evidently): this fails if they change."""
    from evidently.ui.workspace import Workspace

    from monitoring.report import run_report
    from monitoring.results import SliceContext
    from monitoring.workspace import PROJECT_NAME, workspace_path

    with psycopg.connect(monitored_db) as conn:
        version = _champion(conn)
        ctx = SliceContext(
            DAY,
            version,
            DEFAULT_CONFIG,
            load_slice(conn, DAY, version, DEFAULT_CONFIG),
            get_reference(conn, version, DAY.isoweekday(), DEFAULT_CONFIG),
        )
    values, snapshot = run_report(ctx, view="full")
    assert run_report(ctx)[1] is None  # values alone: no Evidently report is run
    assert run_report(ctx)[0] == values  # and they are the same values
    stored = {value.name: value.value for value in values if not value.column_name and not value.segment_type}
    by_name = {metric["metric_name"].split("(")[0]: metric["value"] for metric in snapshot.dict()["metrics"]}
    assert by_name["DriftedColumnsCount"]["count"] == stored["drifted_columns_count"]
    assert by_name["MAE"]["mean"] == pytest.approx(stored["mae"], rel=1e-9)
    assert by_name["RMSE"] == pytest.approx(stored["rmse"], rel=1e-9)
    assert by_name["RowCount"] == stored["row_count"]
    drift_results = {}
    missing_results = {}
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if config["type"].endswith("ValueDrift"):
            drift_results[config["column"]] = (metric["value"], config["method"])
        elif config["type"].endswith("MissingValueCount"):
            missing_results[config["column"]] = metric["value"]["share"]
    drift_values = {
        DEFAULT_CONFIG.drift_column(value.column_name or "prediction"): value
        for value in values
        if value.name in ("prediction_drift_score", "column_drift_score") and value.value is not None
    }
    assert set(drift_results) == set(drift_values) and len(drift_values) > 10
    tests = {
        test.metric_config.params["column"]: test
        for result in snapshot.metric_results.values()
        for test in (getattr(result, "tests", None) or [])
        if test.id == "drift"
    }
    for column, value in drift_values.items():
        assert drift_results[column][0] == pytest.approx(value.value, rel=1e-12, abs=1e-15), column
        assert tests[column].metric_config.params["threshold"] == value.threshold, column
        assert (str(tests[column].status.value).upper() == "FAIL") is value.detected, column
    shares = {value.column_name: value.value for value in values if value.name == "column_missing_share"}
    assert {DEFAULT_CONFIG.drift_column(column): share for column, share in shares.items()} == pytest.approx(
        missing_results, abs=1e-12
    )

    html_dir = tmp_path / "html"
    compute_day(DAY, force=True, html_dir=html_dir, workspace=True)
    compute_day(DAY, force=True, html_dir=html_dir, workspace=True)
    assert (html_dir / f"{DAY.isoformat()}.html").stat().st_size > 100_000
    workspace = Workspace.create(str(workspace_path()))  # what `salesmon ui` shows
    project = workspace.search_project(PROJECT_NAME)[0]
    assert len(workspace.list_runs(project.id)) == 1  # the recomputed day replaced its snapshot


# --- ranges ---------------------------------------------------------------------------------------


def test_interrupted_range_resumes_and_every_runner_stores_the_same_values(
    monitored_db: str, prefect_harness: None
) -> None:
    """Days 1-5 computed, then the flow on days 1-10 with 2 processes computes only 6-10 (in chunks),
    with the values of a run on one thread; a second run skips everything; force recomputes."""
    from orchestration.flows import monitor_days

    days = [FIRST + timedelta(days=offset) for offset in range(10)]
    quiet = {"workspace": False, "build_marts": False}
    first = monitor_days(days[0], days[4], workers=1, **quiet)
    assert first["computed"] == [day.isoformat() for day in days[:5]]
    with psycopg.connect(monitored_db) as conn:
        first_at = _computed_at(conn, days[:5])
        first_values = {day: _metrics(conn, day) for day in days[:2]}

    result = monitor_days(days[0], days[-1], workers=2, task_runner="process", workspace=False)
    assert result["computed"] == [day.isoformat() for day in days[5:]]
    assert result["skipped"] == [day.isoformat() for day in days[:5]]
    with psycopg.connect(monitored_db) as conn:
        assert _computed_at(conn, days[:5]) == first_at
        flow_values = {day: _metrics(conn, day) for day in days[5:]}
        flow_runs = conn.execute(
            "select count(*), count(distinct flow_run_id) from monitoring.runs where slice_date = any(%s)"
            " and status = 'success' and flow_run_id is not null",
            (days[5:],),
        ).fetchone()
        marts = conn.execute("select count(*) from marts.fct_model_health_daily").fetchone()[0]
        champion = conn.execute(
            "select model_version from marts.dim_model_versions where is_champion"
        ).fetchone()
    assert flow_runs == (5, 1)  # one flow run, its days in chunks
    assert marts >= 10  # the flow built the metrics mart afterwards
    assert champion == (result["model_version"],)  # and the ml marts, which training and scoring changed

    serial = monitor_days(days[5], days[-1], workers=1, force=True, task_runner="thread", **quiet)
    assert len(serial["computed"]) == 5
    with psycopg.connect(monitored_db) as conn:
        for day in days[5:]:
            assert _same_values(flow_values[day], _metrics(conn, day)), day
        all_at = _computed_at(conn, days)

    again = monitor_days(days[0], days[-1], workers=2, **quiet)
    assert len(again["skipped"]) == 10 and not again["computed"]
    with psycopg.connect(monitored_db) as conn:
        assert _computed_at(conn, days) == all_at
        skipped_runs = conn.execute(
            "select count(*) from monitoring.runs where slice_date = any(%s) and status = 'skipped'", (days,)
        ).fetchone()[0]
    assert skipped_runs >= 15

    forced = monitor_days(days[0], days[1], workers=1, force=True, **quiet)
    assert len(forced["computed"]) == 2
    with psycopg.connect(monitored_db) as conn:
        forced_at = _computed_at(conn, days[:2])
        forced_values = {day: _metrics(conn, day) for day in days[:2]}
    assert all(forced_at[day] > all_at[day] for day in days[:2])
    for day in days[:2]:
        assert _same_values(forced_values[day], first_values[day]), day


def test_salesmon_monitor_on_a_dask_cluster_stores_the_process_pool_values(
    monitored_db: str, prefect_harness: None
) -> None:
    """`salesmon monitor --task-runner dask` on a local Dask cluster (2 worker processes, one chunk
    each) stores exactly the values the process pool stored, and runs the chunks on the cluster."""
    from typer.testing import CliRunner

    from orchestration.cli import app

    days = [FIRST + timedelta(days=offset) for offset in range(4)]
    span = ["--start", days[0].isoformat(), "--end", days[-1].isoformat(), "--force", "--no-workspace"]
    runner = CliRunner()
    pool = runner.invoke(app, ["monitor", *span, "--task-runner", "process", "--workers", "2"])
    assert pool.exit_code == 0, pool.output[-3000:]
    with psycopg.connect(monitored_db) as conn:
        pool_values = {day: _metrics(conn, day) for day in days}
        pool_at = _computed_at(conn, days)
    dask = runner.invoke(app, ["monitor", *span, "--task-runner", "dask", "--workers", "2"])
    assert dask.exit_code == 0, dask.output[-3000:]
    assert "4 days computed" in dask.output and " 0 failed" in dask.output
    with psycopg.connect(monitored_db) as conn:
        dask_at = _computed_at(conn, days)
        for day in days:
            assert dask_at[day] > pool_at[day], day  # recomputed by the Dask run
            assert _same_values(pool_values[day], _metrics(conn, day)), day


def test_a_failed_day_of_a_chunk_loses_no_other_day(monitored_db: str) -> None:
    """compute_days (one task's chunk): the warehouse refuses one day's rows; that day fails with its
    error recorded, the days before and after it are stored."""
    from monitoring.day import DayOptions, compute_days

    days = [FIRST + timedelta(days=offset) for offset in range(3)]
    with psycopg.connect(monitored_db, autocommit=True) as conn:
        plan = plan_days(conn, days[0], days[-1], force=True)
    chunk = [(day, plan.keys[day]) for day in days]
    options = DayOptions(conninfo=monitored_db)
    assert [result.status for result in compute_days(chunk, plan.model_version, options)] == ["computed"] * 3
    with psycopg.connect(monitored_db, autocommit=True) as conn:
        before = _computed_at(conn, days)
        conn.execute(
            psycopg.sql.SQL(
                "alter table monitoring.metric_values"
                " add constraint refuse_one_day check (slice_date <> {}) not valid"
            ).format(psycopg.sql.Literal(days[1]))
        )
    try:
        lines: list[str] = []
        results = compute_days(chunk, plan.model_version, options, progress=lines.append)
    finally:
        with psycopg.connect(monitored_db, autocommit=True) as conn:
            conn.execute("alter table monitoring.metric_values drop constraint refuse_one_day")
    assert [result.status for result in results] == ["computed", "failed", "computed"]
    assert results[1].error.startswith("CheckViolation")
    assert lines[1].startswith(f"{days[1].isoformat()} FAILED") and lines[2].endswith("(3 of 3)")
    with psycopg.connect(monitored_db) as conn:
        after = _computed_at(conn, days)
        failed = conn.execute(
            "select error from monitoring.runs where slice_date = %s order by started_at desc limit 1",
            (days[1],),
        ).fetchone()[0]
    assert after[days[0]] > before[days[0]] and after[days[2]] > before[days[2]]
    assert after[days[1]] == before[days[1]]  # its earlier rows stay until a computation succeeds
    assert "refuse_one_day" in failed


def test_a_new_configuration_recomputes(monitored_db: str) -> None:
    days = (FIRST, FIRST + timedelta(days=1))
    with psycopg.connect(monitored_db) as conn:
        assert plan_days(conn, *days).to_compute == []
        other = MonitoringConfig(numerical_stattest="psi")
        assert other.config_hash() != DEFAULT_CONFIG.config_hash()
        assert plan_days(conn, *days, config=other).to_compute == list(days)


def test_calibration_learns_once_per_model_version(monitored_db: str) -> None:
    from monitoring.calibration import BACKCAST, BACKCAST_DAYS, LEAVE_ONE_OUT, calibrate

    with psycopg.connect(monitored_db) as conn:
        version = conn.execute("select model_version from ml.model_registry where is_champion").fetchone()[0]
        valid_start, valid_end = conn.execute(
            "select valid_start, valid_end from ml.model_registry where model_version = %s", (version,)
        ).fetchone()
    # the backfills above calibrated the champion before their first day: forced, it learns again
    with psycopg.connect(monitored_db) as conn:
        before = conn.execute("select count(*) from monitoring.metric_bounds").fetchone()[0]
    summary = calibrate(version, force=True)
    assert not summary.skipped and summary.bound_count == before
    assert summary.leave_one_out_days == (valid_end - valid_start).days + 1 == 28
    assert summary.backcast_days == BACKCAST_DAYS // 2  # every other week
    assert calibrate(version).skipped  # stored for this model version and configuration
    with psycopg.connect(monitored_db) as conn:
        kinds = dict(
            conn.execute(
                "select calibration_kind, count(distinct calibration_date) from monitoring.calibration_values"
                " where model_version = %s group by 1",
                (version,),
            ).fetchall()
        )
        first_backcast, last_backcast = conn.execute(
            "select min(calibration_date), max(calibration_date) from monitoring.calibration_values"
            " where calibration_kind = %s",
            (BACKCAST,),
        ).fetchone()
        error_kinds = conn.execute(
            "select distinct calibration_kind from monitoring.calibration_values"
            " where metric_name in ('rmsle_ratio', 'segment_rmsle_ratio')"
        ).fetchall()
        bounds = conn.execute(
            "select metric_name, count(distinct weekday), min(sample_size), max(scale)"
            " from monitoring.metric_bounds where model_version = %s and column_name = ''"
            " and segment_type = '' group by 1",
            (version,),
        ).fetchall()
        segments = conn.execute(
            "select count(distinct (segment_type, segment_value)) from monitoring.metric_bounds"
            " where metric_name = 'segment_rmsle_ratio'"
        ).fetchone()[0]
    assert kinds == {LEAVE_ONE_OUT: 28, BACKCAST: BACKCAST_DAYS // 2}
    assert (first_backcast, last_backcast) == (
        valid_start - timedelta(days=BACKCAST_DAYS - 7),
        valid_start - timedelta(1),
    )
    assert error_kinds == [(LEAVE_ONE_OUT,)]  # errors only out of sample
    by_metric = {metric: (weekdays, samples, scale) for metric, weekdays, samples, scale in bounds}
    assert by_metric["rmsle_ratio"][:2] == (7, 28)
    assert by_metric["prediction_drift_score"][:2] == (7, 28 + BACKCAST_DAYS // 2)
    assert by_metric["prediction_drift_score"][2] > 0
    assert by_metric["row_count_ratio"][2] == 0  # every calibration day has every store and family
    assert segments >= 33  # every family, and the store types, clusters and cities of 4 stores


def test_the_flow_calibrates_a_new_version_in_weekday_tasks(monitored_db: str, prefect_harness: None) -> None:
    """An uncalibrated version: the flow computes the seven weekdays as tasks beside the days (on the
    process pool) and stores exactly the bounds a serial calibration learns."""
    from monitoring.calibration import calibrate
    from orchestration.flows import monitor_days

    calibrate(force=True)
    query = (
        "select metric_name, column_name, segment_type, segment_value, weekday, center, scale, sample_size"
        " from monitoring.metric_bounds order by 1, 2, 3, 4, 5"
    )
    with psycopg.connect(monitored_db) as conn:
        serial = conn.execute(query).fetchall()
        conn.execute("delete from monitoring.calibration_runs")
    result = monitor_days(
        FIRST, FIRST, force=True, workers=2, task_runner="process", workspace=False, build_marts=False
    )
    assert result["computed"] == [FIRST.isoformat()]
    with psycopg.connect(monitored_db) as conn:
        in_tasks = conn.execute(query).fetchall()
        runs = conn.execute(
            "select leave_one_out_days, backcast_days from monitoring.calibration_runs"
        ).fetchall()
    assert runs == [(28, 28)]
    assert len(in_tasks) == len(serial) > 7 * 30
    for flow_row, serial_row in zip(in_tasks, serial, strict=True):
        assert flow_row[:5] == serial_row[:5] and flow_row[7] == serial_row[7]
        assert flow_row[5:7] == pytest.approx(serial_row[5:7], rel=1e-9, abs=1e-12)


# --- units ----------------------------------------------------------------------------------------


def test_only_connection_errors_are_retried() -> None:
    from prefect.states import Failed

    from orchestration.runners import make_task_runner
    from orchestration.tasks import retry_on_transient_db_error

    assert retry_on_transient_db_error(None, None, Failed(data=psycopg.OperationalError("server closed")))
    assert not retry_on_transient_db_error(None, None, Failed(data=ValueError("bad slice")))
    with pytest.raises(ValueError, match="unknown task_runner"):
        make_task_runner("fibers", 2)


def test_drift_values_are_prepared_as_pandas_would() -> None:
    """drift.drift_values and drift._clean work on numpy arrays (a day's values 18 % cheaper): the
    values Evidently's tests get must be those of the pandas expressions they replaced, index and
    order included, whatever the column holds."""
    import pandas as pd

    from monitoring.drift import _clean, drift_values

    amounts = [3.0, -2.0, np.nan, np.inf, -np.inf, 0.0, 1e9]
    frame = pd.DataFrame(
        {
            "prediction": amounts,
            "onpromotion": pd.array([1.0, None, 4.0, 0.0, 2.0, -1.0, 7.0], dtype="Float64"),
            "family": ["A", None, "B", "A", "C", "B", "A"],
            "is_holiday": [True, False, True, False, True, False, True],
        },
        index=[10, 11, 12, 13, 14, 15, 16],
    )
    for column in ["prediction", "onpromotion", "family", "is_holiday"]:
        expected = frame[column]
        if DEFAULT_CONFIG.on_log_scale(column):
            expected = np.log1p(expected.clip(lower=0.0))
        prepared = drift_values(frame, column, DEFAULT_CONFIG)
        assert list(prepared.index) == list(expected.index), column
        if column in ("prediction", "onpromotion"):  # a nullable column's <NA> is NaN here
            as_floats = {"dtype": "float64", "na_value": np.nan}
            np.testing.assert_array_equal(prepared.to_numpy(**as_floats), expected.to_numpy(**as_floats))
        else:
            assert prepared.equals(expected), column
        cleaned = _clean(prepared)
        old = expected.replace([-np.inf, np.inf], np.nan).dropna()
        assert list(cleaned.index) == list(old.index), column
        assert cleaned.astype(object).tolist() == old.astype(object).tolist(), column
    # log1p of the amounts clipped at 0, without NaN (12) and infinity (13): -inf counts as 0 (14)
    assert list(_clean(drift_values(frame, "prediction", DEFAULT_CONFIG)).index) == [10, 11, 14, 15, 16]


def test_prefect_yaml_deploys_the_three_flows() -> None:
    import yaml
    from prefect.flows import load_flow_from_entrypoint

    root = Path(__file__).resolve().parent.parent
    config = yaml.safe_load((root / "prefect.yaml").read_text())
    deployments = {deployment["name"]: deployment for deployment in config["deployments"]}
    assert set(deployments) == {"daily", "backfill", "retrain"}
    assert deployments["daily"]["schedules"][0]["cron"] == "0 6 * * *"
    assert "schedules" not in deployments["retrain"]
    for deployment in deployments.values():
        flow = load_flow_from_entrypoint(str(root / deployment["entrypoint"]))
        assert set(deployment.get("parameters", {})) <= set(flow.parameters.properties)


def test_cli_monitor_rejects_bad_arguments_before_running() -> None:
    from typer.testing import CliRunner

    from orchestration.cli import app

    runner = CliRunner()
    reversed_range = runner.invoke(app, ["monitor", "--start", "2017-06-10", "--end", "2017-06-01"])
    assert reversed_range.exit_code == 1 and "before" in reversed_range.output
    bad_runner = runner.invoke(
        app, ["monitor", "--start", "2017-06-01", "--end", "2017-06-02", "--task-runner", "fibers"]
    )
    assert bad_runner.exit_code == 1 and "process, dask, thread" in bad_runner.output
    address_alone = runner.invoke(
        app,
        ["monitor", "--start", "2017-06-01", "--end", "2017-06-02", "--dask-address", "tcp://127.0.0.1:1"],
    )
    assert address_alone.exit_code == 1 and "--dask-address needs --task-runner dask" in address_alone.output
