"""`salesmon monitor` as a user runs it, end to end on small generated data (issue #8, points 4 and 5).

The pipeline runs for real once per session (generate 3 stores x 6.5 months, load, dbt features mart,
train, score 34 days: the session's scored warehouse of tests/_fixtures.py), and this module works on
a copy of its own; then the tests run the command line in a subprocess with its default settings (2
worker processes, the Evidently workspace on, the dbt build of the marts), against the test
warehouse, a workspace of their own and the session's Prefect test server (PREFECT_API_URL, as a user
with a Prefect server has it: no temporary server to start per command).

- The stress test: three runs in a row over 30 days (fresh, then twice `--force`) with no failed day,
  the workspace holding exactly the snapshots monitoring.runs points to.
- One failed day: the warehouse refuses one day's metric rows (a check constraint, added for the
  test); the other days are stored, the marts built, the day named as failed in the command's output,
  the run's Prefect artifact and marts.fct_monitoring_coverage_daily, the command exits 1; once the
  constraint is gone, the same command computes that day only.
- A day whose worker died (its run left 'running') or that failed before its run was recorded gets
  its 'failed' run from the flow.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests._fixtures import SCORED_LAST, SCORED_MONITOR_FROM, Template, command_env, copied_database

pytestmark = pytest.mark.slow

MONITOR_FROM = SCORED_MONITOR_FROM  # 2017-06-15; the warehouse is scored up to 2017-07-18
STRESS_DAYS = 30  # 2017-06-15 .. 2017-07-14
FAILURE_FIRST = MONITOR_FROM + timedelta(days=STRESS_DAYS)  # 2017-07-15 .. 2017-07-18, after the stress range
FAILURE_LAST = FAILURE_FIRST + timedelta(days=3)
assert FAILURE_LAST == SCORED_LAST  # the last day the warehouse has scored
FAILING_DAY = FAILURE_FIRST + timedelta(days=1)


@pytest.fixture(scope="module")
def scored_db(server_conninfo: str, scored_template: Template) -> Iterator[str]:
    """Generated data loaded, features mart built, a model trained, the monitored days scored: a copy
    of the session's scored warehouse (tests/_fixtures.py), this module's own."""
    with copied_database(server_conninfo, scored_template, "m_scored") as info:
        yield info


@pytest.fixture(scope="module")
def salesmon_env(
    scored_db: str, prefect_harness: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """The environment of a user's `salesmon` command: the test warehouse, a home (and so an Evidently
    workspace) of its own, the session's Prefect server, private dbt target and log folders."""
    home = tmp_path_factory.mktemp("monitor-runs-home")
    return command_env(scored_db, home, prefect_harness)


def _salesmon(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run the `salesmon` command (the console script beside this Python) as a user would."""
    script = Path(sys.executable).with_name("salesmon")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "orchestration.cli"]
    return subprocess.run([*command, *args], env=env, capture_output=True, text=True, timeout=600)


def _monitor(env: dict[str, str], first: date, last: date, *options: str) -> subprocess.CompletedProcess[str]:
    return _salesmon(env, "monitor", "--start", first.isoformat(), "--end", last.isoformat(), *options)


def _runs(conn: psycopg.Connection, first: date, last: date) -> dict[str, int]:
    rows = conn.execute(
        "select status, count(*) from monitoring.runs where slice_date between %s and %s group by status",
        (first, last),
    ).fetchall()
    return dict(rows)


def _coverage(conn: psycopg.Connection, first: date, last: date) -> dict[date, tuple]:
    rows = conn.execute(
        "select slice_date, monitoring_status, has_metrics, last_error"
        " from marts.fct_monitoring_coverage_daily where slice_date between %s and %s order by slice_date",
        (first, last),
    ).fetchall()
    return {row[0]: row[1:] for row in rows}


def _snapshots_in_runs(conn: psycopg.Connection) -> set[str]:
    rows = conn.execute("select snapshot_id from monitoring.runs where snapshot_id is not null").fetchall()
    return {row[0] for row in rows}


def _workspace_snapshots(env: dict[str, str]) -> set[str]:
    """The snapshots of the "salesmon" project, as Evidently's UI sees them."""
    from evidently.ui.workspace import Workspace

    from monitoring.workspace import PROJECT_NAME

    workspace = Workspace.create(str(Path(env["SALESMON_HOME"]) / "evidently"))
    projects = workspace.search_project(PROJECT_NAME)
    assert len(projects) == 1
    return {str(snapshot_id) for snapshot_id in workspace.list_runs(projects[0].id)}


def test_monitor_runs_again_and_again_without_a_failed_day(scored_db: str, salesmon_env: dict) -> None:
    first, last = MONITOR_FROM, MONITOR_FROM + timedelta(days=STRESS_DAYS - 1)
    for number, options in enumerate([(), ("--force",), ("--force",)], start=1):
        completed = _monitor(salesmon_env, first, last, *options)
        output = completed.stdout + completed.stderr
        assert completed.returncode == 0, f"run {number}: {output[-3000:]}"
        assert f"{STRESS_DAYS} days computed" in completed.stdout and " 0 failed" in completed.stdout, output
        assert f"coverage of the range (marts.fct_monitoring_coverage_daily): {STRESS_DAYS} computed" in (
            completed.stdout
        )
        with psycopg.connect(scored_db) as conn:
            runs = _runs(conn, first, last)
            coverage = _coverage(conn, first, last)
            in_runs = _snapshots_in_runs(conn)
        assert runs == {"success": number * STRESS_DAYS}, f"run {number}: {runs}"
        assert {status for status, *_ in coverage.values()} == {"computed"} and len(coverage) == STRESS_DAYS
        # one snapshot per day, exactly those the runs point to: none lost, none left over
        assert len(in_runs) == STRESS_DAYS
        assert _workspace_snapshots(salesmon_env) == in_runs, f"run {number}"


def test_a_failed_day_is_named_and_only_it_is_computed_again(
    scored_db: str, salesmon_env: dict, prefect_harness: str
) -> None:
    first, last = FAILURE_FIRST, FAILURE_LAST
    with psycopg.connect(scored_db) as conn:
        # the warehouse refuses this day's metric rows (as a constraint or a full disk would)
        conn.execute(
            sql.SQL(
                "alter table monitoring.metric_values add constraint refuse_one_day check (slice_date <> {})"
            ).format(sql.Literal(FAILING_DAY))
        )
    try:
        failed = _monitor(salesmon_env, first, last)
    finally:
        with psycopg.connect(scored_db) as conn:
            conn.execute("alter table monitoring.metric_values drop constraint refuse_one_day")
    output = failed.stdout + failed.stderr
    assert failed.returncode == 1, output[-3000:]
    assert "3 days computed" in failed.stdout and "1 failed" in failed.stdout, output
    assert f"  {FAILING_DAY.isoformat()}  CheckViolation" in failed.stdout, output
    assert f"1 days failed ({FAILING_DAY.isoformat()}: CheckViolation" in failed.stderr, output
    assert "the marts were built from the days that succeeded" in failed.stderr, output
    assert "3 computed, 1 failed" in failed.stdout, output

    with psycopg.connect(scored_db) as conn:
        coverage = _coverage(conn, first, last)
        health_days = {
            row[0]
            for row in conn.execute(
                "select slice_date from marts.fct_model_health_daily where slice_date between %s and %s",
                (first, last),
            )
        }
        failed_runs = conn.execute(
            "select count(*) from monitoring.runs"
            " where slice_date = %s and status = 'failed' and error like %s",
            (FAILING_DAY, "CheckViolation%"),
        ).fetchone()[0]
        in_runs = _snapshots_in_runs(conn)
    assert coverage[FAILING_DAY][:2] == ("failed", False)
    assert "refuse_one_day" in coverage[FAILING_DAY][2]
    assert {day: status for day, (status, *_) in coverage.items() if day != FAILING_DAY} == {
        day: "computed" for day in (first, first + timedelta(days=2), last)
    }
    assert health_days == {first, first + timedelta(days=2), last}  # the marts were built without it
    assert failed_runs == 1
    assert _workspace_snapshots(salesmon_env) == in_runs  # the failed day's snapshot was removed

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["monitoring-summary"]))
        )
    latest = max(artifacts, key=lambda artifact: artifact.created)
    assert "## Failed days" in latest.data and f"- {FAILING_DAY}: CheckViolation" in latest.data

    rerun = _monitor(salesmon_env, first, last)
    assert rerun.returncode == 0, (rerun.stdout + rerun.stderr)[-3000:]
    assert "1 days computed, 3 skipped (already done)" in rerun.stdout and " 0 failed" in rerun.stdout
    with psycopg.connect(scored_db) as conn:
        coverage = _coverage(conn, first, last)
        computed_again = conn.execute(
            "select slice_date from monitoring.runs where slice_date between %s and %s and status = 'success'"
            " group by slice_date having count(*) > 1",
            (first, last),
        ).fetchall()
    assert {status for status, *_ in coverage.values()} == {"computed"}
    assert coverage[FAILING_DAY][2] is not None  # the recovered failure stays explained
    assert computed_again == []  # only the failed day was computed (again)


def test_a_day_that_died_with_its_worker_is_recorded_as_failed(database: str) -> None:
    """A worker killed mid-day leaves its run 'running', and a day can fail before its run is
    recorded: the flow's net marks the one failed and records the other, once."""
    from monitoring.storage import RunKey, record_failed_day, start_run
    from warehouse.db import connect

    key = RunKey("cfg", "ref", "sig")
    died, never_started = date(2017, 6, 1), date(2017, 6, 2)
    options = {"model_version": "v1", "key": key, "evidently_version": "0.7", "flow_run_id": "flow-1"}
    with connect(autocommit=True) as conn:
        start_run(conn, day=died, **options)
        start_run(
            conn, day=never_started, model_version="v1", key=key, evidently_version="0.7", flow_run_id="other"
        )
        outcomes = [
            record_failed_day(conn, day=died, error="BrokenProcessPool: worker died", **options),
            record_failed_day(conn, day=never_started, error="OperationalError: no server", **options),
            record_failed_day(conn, day=died, error="again", **options),
        ]
        rows = conn.execute(
            "select slice_date, flow_run_id, status, error from monitoring.runs"
            " order by slice_date, flow_run_id"
        ).fetchall()
    assert outcomes == ["marked", "inserted", "recorded"]
    assert rows == [
        (died, "flow-1", "failed", "BrokenProcessPool: worker died"),
        (never_started, "flow-1", "failed", "OperationalError: no server"),
        (never_started, "other", "running", None),  # another flow run's attempt is not ours to judge
    ]
