"""One day's computation: select the slice in SQL, compute its metrics against the like-for-like
reference, store them in one transaction, and optionally draw an HTML report and keep a snapshot in
the Evidently workspace.

Everything a worker needs comes in its arguments (`DayOptions`: the warehouse's connection string,
the configuration, where reports and snapshots go): a worker reads no settings and changes no
environment, so the same function runs in this process, in a process pool or on a Dask worker.
`compute_days` is the unit of work of the `monitor-days` flow: a chunk of planned days on one
connection, each day stored, failed and retried on its own.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import psycopg

from monitoring.config import DEFAULT_CONFIG, MonitoringConfig
from monitoring.online import ONLINE, parity_values
from monitoring.online import load_slice as online_slice
from monitoring.planning import DayResult, progress_line
from monitoring.results import MetricValue, SliceContext
from monitoring.slices import get_reference, load_slice
from monitoring.storage import RunKey, fail_run, record_skipped, start_run, write_slice

logger = logging.getLogger(__name__)

# A day whose connection failed (psycopg.OperationalError) is tried again this often, on a new
# connection, after this many seconds; any other error fails the day at once.
DAY_RETRIES = 2
RETRY_DELAY_SECONDS = 5.0


@dataclass(frozen=True)
class DayOptions:
    """How the days of a run are computed and kept (picklable: handed to every worker).

    `conninfo` is the warehouse's connection string, `workspace` the folder of the Evidently workspace
    (None: no snapshots), `html_dir` where drawn reports go (None: none). `source` is what a day's
    slice is: 'batch', the day's rows of ml.predictions, or 'online', the day's answered requests in
    ml.prediction_log (monitoring.online; its values include the online/batch parity).
    """

    conninfo: str
    config: MonitoringConfig = DEFAULT_CONFIG
    html_dir: str | None = None
    workspace: str | None = None
    flow_run_id: str | None = None
    source: str = "batch"

    @property
    def view(self) -> str | None:
        """Who looks at the day's Evidently report (monitoring.report): nobody, the workspace's
        dashboard, or an HTML file."""
        if self.html_dir:
            return "full"
        return "dashboard" if self.workspace else None


def evidently_version() -> str:
    """The installed Evidently version, without importing it."""
    from importlib.metadata import version

    return version("evidently")


def _empty_slice_values() -> list[MetricValue]:
    """The quality rows of a day whose predictions have no feature rows (nothing else can be measured)."""
    return [MetricValue("quality", "row_count", 0.0), MetricValue("quality", "row_count_ratio", 0.0)]


def compute_planned_day(
    conn: psycopg.Connection, day: date, model_version: str, key: RunKey, options: DayOptions
) -> DayResult:
    """Compute and store one planned day (its key from `plan_days`), on an autocommit connection.

    Records a 'running' run first, then the day's metric rows and the run's success in one
    transaction. On failure, marks the run failed with the error, removes the snapshot it added, and
    raises (a psycopg.OperationalError is worth a retry on a new connection).
    """
    from monitoring.report import run_report
    from monitoring.workspace import add_snapshot, delete_snapshots, save_html

    started = time.perf_counter()
    config = options.config
    run_id = start_run(
        conn,
        day=day,
        model_version=model_version,
        key=key,
        evidently_version=evidently_version(),
        flow_run_id=options.flow_run_id,
        source=options.source,
    )
    snapshot_id = None
    try:
        reference = get_reference(conn, model_version, day.isoweekday(), config, key.reference_hash)
        online = options.source == ONLINE
        current = (online_slice if online else load_slice)(conn, day, model_version, config)
        if current.empty:
            values, snapshot = _empty_slice_values(), None
        else:
            ctx = SliceContext(day, model_version, config, current, reference)
            values, snapshot = run_report(ctx, view=options.view)
        if online:
            values = [*values, *parity_values(conn, day, model_version)]
        if snapshot is not None and options.html_dir:
            save_html(snapshot, Path(options.html_dir) / f"{day.isoformat()}.html")
        if snapshot is not None and options.workspace:
            snapshot_id = add_snapshot(snapshot, options.workspace, values=values)
        replaced = write_slice(
            conn,
            run_id=run_id,
            day=day,
            model_version=model_version,
            values=values,
            row_count=len(current),
            snapshot_id=snapshot_id,
            source=options.source,
        )
    except Exception as exc:
        with suppress(psycopg.Error):  # a dead connection must not hide the original error
            fail_run(conn, run_id, f"{type(exc).__name__}: {exc}")
        if snapshot_id:
            with suppress(OSError):
                delete_snapshots([snapshot_id], options.workspace)
        raise
    if options.workspace and replaced:
        try:
            delete_snapshots(replaced, options.workspace)
        except OSError as exc:  # the day is stored: a snapshot left over is not worth failing it
            logger.warning("%s: could not delete replaced workspace snapshots %s: %s", day, replaced, exc)
    drift = next((value for value in values if value.name == "prediction_drift_score"), None)
    return DayResult(
        day,
        model_version,
        "computed",
        time.perf_counter() - started,
        row_count=len(current),
        metric_count=len(values),
        prediction_drift_score=drift.value if drift else None,
        prediction_drift_detected=drift.detected if drift else None,
    )


def compute_days(
    days: list[tuple[date, RunKey]],
    model_version: str,
    options: DayOptions,
    *,
    progress: Callable[[str], None] | None = None,
    retries: int = DAY_RETRIES,
    retry_delay: float = RETRY_DELAY_SECONDS,
) -> list[DayResult]:
    """Compute a chunk of planned days on one connection, day by day.

    Each day is stored (or fails) on its own: a failed day becomes a 'failed' result (its run records
    the error) and the next day goes on. A day whose connection failed is tried again `retries` times
    on a new connection, `retry_delay` seconds apart. `progress` gets a line per finished day.
    """
    results: list[DayResult] = []
    conn: psycopg.Connection | None = None
    try:
        for number, (day, key) in enumerate(days, start=1):
            started = time.perf_counter()
            for attempt in range(retries + 1):
                try:
                    if conn is None or conn.closed or conn.broken:
                        conn = psycopg.connect(options.conninfo, autocommit=True)
                    result = compute_planned_day(conn, day, model_version, key, options)
                    break
                except psycopg.OperationalError as exc:
                    if attempt < retries:
                        logger.warning("%s: %s; trying again in %.0f s", day, exc, retry_delay)
                        with suppress(psycopg.Error):
                            conn.close()
                        conn = None
                        time.sleep(retry_delay)
                        continue
                    result = _failed(day, model_version, started, exc)
                except Exception as exc:  # one bad day must not stop the others
                    result = _failed(day, model_version, started, exc)
                    break
            results.append(result)
            if progress:
                progress(progress_line(result, number, len(days)))
    finally:
        if conn is not None:
            conn.close()
    return results


def _failed(day: date, model_version: str, started: float, exc: BaseException) -> DayResult:
    error = f"{type(exc).__name__}: {exc}"
    return DayResult(day, model_version, "failed", time.perf_counter() - started, error=error)


def compute_day(
    day: date,
    model_version: str | None = None,
    *,
    force: bool = False,
    config: MonitoringConfig = DEFAULT_CONFIG,
    html_dir: str | Path | None = None,
    workspace: bool = True,
) -> DayResult:
    """Plan and compute one day in this process, with the configured warehouse and workspace (for
    scripts and tests; the flow plans whole ranges and computes chunks).

    Skips the day when its latest successful run has the same fingerprints, unless `force`; returns a
    'no_data' result for a day without predictions. Raises on failure, after recording it.
    """
    from monitoring.planning import plan_days
    from monitoring.workspace import workspace_path
    from warehouse.db import connect, conninfo

    options = DayOptions(
        conninfo=conninfo(),
        config=config,
        html_dir=str(html_dir) if html_dir else None,
        workspace=str(workspace_path()) if workspace else None,
    )
    started = time.perf_counter()
    with connect(autocommit=True) as conn:
        plan = plan_days(conn, day, day, model_version, force=force, config=config)
        if plan.no_data:
            return DayResult(day, plan.model_version, "no_data", time.perf_counter() - started)
        if plan.skipped:
            record_skipped(conn, plan, evidently_version=evidently_version(), flow_run_id=None)
            return DayResult(day, plan.model_version, "skipped", time.perf_counter() - started)
        return compute_planned_day(conn, day, plan.model_version, plan.keys[day], options)
