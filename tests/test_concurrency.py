"""Concurrent and killed runs (issue #12, points 4 and 5), with `salesmon` commands as a user runs them.

- Two `salesmon monitor` over the same days, started together: both exit 0, the second says that it
  waited for the first; the marts have one health row per day and unique alert ids.
- A monitor and a rescoring of its days and a dbt build, at the same time: all exit 0, and the next
  monitor recomputes exactly what changed.
- A monitor killed with SIGKILL mid-run: the rerun marks its unfinished runs abandoned, removes the
  snapshots and half-written HTML nobody points to, and stores the same metric values as a forced
  recompute (a digest of monitoring.metric_values).
- Two registrations in the same second get two version stamps.

The module's warehouse is set up as tests/test_monitor_runs.py does it (its fixtures, imported): a copy
of its own of the session's scored warehouse.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from tests import test_monitor_runs as monitor_runs
from tests.test_monitor_runs import (
    MONITOR_FROM,
    _monitor,
    _salesmon,
    _snapshots_in_runs,
    _workspace_snapshots,
)

# the same set-up as test_monitor_runs (its module-scoped fixtures: a copy of this module's own)
scored_db = monitor_runs.scored_db
salesmon_env = monitor_runs.salesmon_env

pytestmark = pytest.mark.slow

TOGETHER = (MONITOR_FROM, MONITOR_FROM + timedelta(days=7))  # 2017-06-15 .. 06-22
# 10 days in two chunks of 5 (2 workers): when three days are stored and one is computing, at least
# five are still to do, so the kill always lands mid-run (checked below all the same)
KILLED = (MONITOR_FROM + timedelta(days=8), MONITOR_FROM + timedelta(days=17))  # 06-23 .. 07-02

_DIGEST_SQL = """
select count(*), md5(string_agg(
    concat_ws('|', slice_date, metric_family, metric_name, column_name, segment_type, segment_value,
              value, stattest, threshold, detected),
    E'\\n' order by slice_date, metric_name, column_name, segment_type, segment_value))
from monitoring.metric_values
where model_version = %s and slice_date between %s and %s
"""


def _version(conn: psycopg.Connection) -> str:
    return conn.execute("select model_version from ml.model_registry where is_champion").fetchone()[0]


def _digest(conn: psycopg.Connection, first: date, last: date) -> tuple[int, str]:
    return conn.execute(_DIGEST_SQL, (_version(conn), first, last)).fetchone()


def _monitor_command(first: date, last: date, *options: str) -> list[str]:
    import sys

    return [sys.executable, "-m", "orchestration.cli", "monitor", "--start", first.isoformat(), "--end",
            last.isoformat(), *options]  # fmt: skip


def test_two_monitors_started_together_both_finish_and_store_each_day_once(
    scored_db: str, salesmon_env: dict
) -> None:
    first, last = TOGETHER
    with_threads: list[subprocess.CompletedProcess[str]] = []
    threads = [
        threading.Thread(target=lambda: with_threads.append(_monitor(salesmon_env, first, last)))
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    outputs = [result.stdout + result.stderr for result in with_threads]
    assert [result.returncode for result in with_threads] == [0, 0], outputs
    assert sum("waiting for it to finish" in output for output in outputs) == 1, outputs
    assert sum("8 days computed" in output for output in outputs) == 1
    assert sum("0 days computed, 8 skipped" in output for output in outputs) == 1
    with psycopg.connect(scored_db) as conn:
        version = _version(conn)
        health = conn.execute(
            "select slice_date, count(*) from marts.fct_model_health_daily"
            " where model_version = %s and slice_date between %s and %s group by slice_date",
            (version, first, last),
        ).fetchall()
        runs = conn.execute(
            "select status, count(*) from monitoring.runs where slice_date between %s and %s group by status",
            (first, last),
        ).fetchall()
        alert_ids = [row[0] for row in conn.execute("select alert_id from marts.fct_alerts")]
        history = [row[0] for row in conn.execute("select alert_id from monitoring.alert_history")]
    assert len(health) == 8 and {count for _day, count in health} == {1}
    assert dict(runs) == {"success": 8, "skipped": 8}
    assert len(alert_ids) == len(set(alert_ids)) and len(history) == len(set(history))
    assert set(alert_ids) <= set(history)


def test_rescoring_and_a_dbt_build_beside_a_monitor(scored_db: str, salesmon_env: dict) -> None:
    first, last = TOGETHER
    monitor = subprocess.Popen(
        _monitor_command(first, last, "--force"),
        env=salesmon_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    score = _salesmon(salesmon_env, "score", "--start", first.isoformat(), "--end", last.isoformat())
    build = _salesmon(salesmon_env, "dbt", "build", "--select", "fct_sales_features")
    output, _ = monitor.communicate(timeout=600)
    assert monitor.returncode == 0, output
    assert score.returncode == 0, score.stdout + score.stderr
    assert build.returncode == 0, build.stdout + build.stderr
    # the rescoring changed every day's inputs (their scoring time): days the monitor computed before
    # it are computed again by the next run, the others are current
    again = _monitor(salesmon_env, first, last)
    assert again.returncode == 0, again.stdout + again.stderr
    with psycopg.connect(scored_db) as conn:
        stored = _digest(conn, first, last)
        assert conn.execute("select count(*) from monitoring.runs where status = 'running'").fetchone() == (
            0,
        )
    forced = _monitor(salesmon_env, first, last, "--force")
    assert forced.returncode == 0
    with psycopg.connect(scored_db) as conn:
        assert _digest(conn, first, last) == stored


def _wait_for(predicate, timeout: float, what: str) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_monitor_killed_mid_run_leaves_nothing_behind(
    scored_db: str, salesmon_env: dict, tmp_path: Path
) -> None:
    first, last = KILLED
    html = tmp_path / "html"
    started = datetime.now(UTC)
    victim = subprocess.Popen(
        _monitor_command(first, last, "--html", str(html)),
        env=salesmon_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )

    def successes() -> int:
        with psycopg.connect(scored_db) as conn:
            return conn.execute(
                "select count(*) from monitoring.runs where status = 'success' and started_at > %s"
                " and slice_date between %s and %s",
                (started, first, last),
            ).fetchone()[0]

    def running() -> int:
        with psycopg.connect(scored_db) as conn:
            return conn.execute("select count(*) from monitoring.runs where status = 'running'").fetchone()[0]

    try:
        _wait_for(lambda: successes() >= 3 and running() >= 1, 300, "three days computed, one computing")
    finally:
        os.killpg(victim.pid, signal.SIGKILL)  # the monitor and its worker processes, mid-day
        victim.wait()
    _wait_for(lambda: not _group_alive(victim.pid), 30, "the killed processes to go")
    done_before = successes()
    assert done_before < (last - first).days + 1, "the monitor finished before it was killed"

    # what a killed run can leave besides: a snapshot no run points to, a half-written HTML report
    snapshots = next((Path(salesmon_env["SALESMON_HOME"]) / "evidently").glob("*/snapshots"))
    orphan = snapshots / f"{uuid.uuid4()}.json"
    shutil.copy(next(snapshots.glob("*.json")), orphan)
    half_written = html / f".{first.isoformat()}.html.{uuid.uuid4().hex}.part"
    half_written.write_text("<html><body>half")
    left_running = running()
    assert left_running >= 1

    rerun = _monitor(salesmon_env, first, last, "--html", str(html))
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert f"{left_running} unfinished runs of" in rerun.stdout + rerun.stderr
    with psycopg.connect(scored_db) as conn:
        statuses = dict(
            conn.execute(
                "select status, count(*) from monitoring.runs where started_at > %s group by status",
                (started,),
            ).fetchall()
        )
        after_rerun = _digest(conn, first, last)
        in_runs = _snapshots_in_runs(conn)
    assert "running" not in statuses and statuses.get("abandoned", 0) == left_running
    assert _workspace_snapshots(salesmon_env) == in_runs  # the orphan is gone
    assert not orphan.exists() and not half_written.exists()
    assert sorted(path.name for path in html.iterdir()) == [
        f"{first + timedelta(days=offset)}.html" for offset in range((last - first).days + 1)
    ]

    forced = _monitor(salesmon_env, first, last, "--force", "--no-workspace")
    assert forced.returncode == 0
    with psycopg.connect(scored_db) as conn:
        assert _digest(conn, first, last) == after_rerun
    assert after_rerun[0] > 0


def test_two_registrations_in_the_same_second_get_two_stamps(scored_db: str) -> None:
    """The registry lock version_stamp takes holds until the registering transaction ends: the
    second training of the same second waits, then sees the first one's versions."""
    from models_ml.registry import version_stamp
    from warehouse.db import connect

    now = datetime(2031, 1, 2, 3, 4, 5, tzinfo=UTC)
    stamps: list[str] = []
    errors: list[BaseException] = []

    def register() -> None:
        try:
            with connect(autocommit=True) as conn, conn.transaction():
                stamp = version_stamp(conn, now)
                time.sleep(0.5)  # fitting and serialising, in a real training
                conn.execute(
                    "insert into ml.model_registry (model_version, algorithm, features, train_start,"
                    " train_end, valid_start, valid_end, monitor_from, artifact, artifact_sha256)"
                    " select %s, 'probe', '[]', d, d, d, d, d, '', ''"
                    " from (select current_date as d) as today",
                    (f"{stamp}-probe",),
                )
                stamps.append(stamp)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=register) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with psycopg.connect(scored_db, autocommit=True) as conn:
        conn.execute("delete from ml.model_registry where algorithm = 'probe'")
    assert not errors
    assert sorted(stamps) == ["20310102T030405", "20310102T030405.2"]
