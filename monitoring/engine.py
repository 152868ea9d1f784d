"""Computing slices: one day (`compute_day`), the plan of a range (`plan_days`), a range (`backfill`).

`compute_day` is the unit of work of the Prefect flow (one task per day) and of `backfill`'s process
pool: it selects the day's slice in SQL, runs the slice's one Evidently report against the cached
like-for-like reference, writes the metric rows in one transaction, and optionally an HTML report
and a snapshot in the Evidently workspace. A day already computed with the same configuration,
reference and inputs is skipped unless `force`.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.forkserver
import multiprocessing.util
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import psycopg

from monitoring.config import DEFAULT_CONFIG, MonitoringConfig
from monitoring.results import MetricValue, SliceContext
from monitoring.slices import (
    get_reference,
    load_slice,
    reference_hashes,
    resolve_model_version,
    slice_signatures,
)
from monitoring.storage import RunKey, fail_run, finished_days, record_skipped, start_run, write_slice
from warehouse.db import connect, conninfo

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DayResult:
    """What happened to one day: computed, skipped (already done), no_data (no predictions) or failed."""

    day: date
    model_version: str
    status: str
    seconds: float
    row_count: int | None = None
    metric_count: int = 0
    prediction_drift_score: float | None = None
    prediction_drift_detected: bool | None = None
    error: str | None = None


@dataclass
class Plan:
    """Which days of a range to compute, which are already done, which have no predictions."""

    model_version: str
    to_compute: list[date]
    skipped: list[date]
    no_data: list[date]
    keys: dict[date, RunKey]


@dataclass
class BackfillSummary:
    """The outcome of a range: per-day results and the wall time."""

    model_version: str
    results: list[DayResult] = field(default_factory=list)
    seconds: float = 0.0

    def days(self, status: str) -> list[DayResult]:
        """The days with the given status, in date order."""
        return sorted((result for result in self.results if result.status == status), key=lambda r: r.day)

    def render(self) -> str:
        """One line for the command line."""
        counts = {status: len(self.days(status)) for status in ("computed", "skipped", "no_data", "failed")}
        drifted = sum(1 for result in self.results if result.prediction_drift_detected)
        return (
            f"model {self.model_version}: {counts['computed']} days computed, {counts['skipped']} skipped"
            f" (already done), {counts['no_data']} without predictions, {counts['failed']} failed;"
            f" prediction drift on {drifted} days; {self.seconds:.1f} s"
        )


def date_range(start: date, end: date) -> list[date]:
    """Every day from start to end, both included."""
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    return [start + timedelta(days=offset) for offset in range((end - start).days + 1)]


def plan_days(
    start: date,
    end: date,
    model_version: str | None = None,
    *,
    force: bool = False,
    config: MonitoringConfig = DEFAULT_CONFIG,
) -> Plan:
    """Sort the days of a range into to-compute, already-done and no-predictions, with three queries."""
    with connect() as conn:
        version = resolve_model_version(conn, model_version)
        signatures = slice_signatures(conn, version, start, end)
        hashes = reference_hashes(conn, version)
        finished = finished_days(conn, version, start, end)
    config_hash = config.config_hash()
    plan = Plan(model_version=version, to_compute=[], skipped=[], no_data=[], keys={})
    for day in date_range(start, end):
        if day not in signatures:
            plan.no_data.append(day)
            continue
        key = RunKey(config_hash, hashes.get(day.isoweekday(), ""), signatures[day])
        plan.keys[day] = key
        if not force and finished.get(day) == key:
            plan.skipped.append(day)
        else:
            plan.to_compute.append(day)
    return plan


def _empty_slice_values() -> list[MetricValue]:
    """The quality rows of a day whose predictions have no feature rows (nothing else can be measured)."""
    return [MetricValue("quality", "row_count", 0.0), MetricValue("quality", "row_count_ratio", 0.0)]


# The connections `compute_day` reuses: thread ident -> (connection, warehouse URL, process id).
_CONNECTIONS: dict[int, tuple[psycopg.Connection, str, int]] = {}
_CONNECTIONS_LOCK = threading.Lock()


def _day_connection() -> psycopg.Connection:
    """This thread's connection for computing days, opened once and reused day after day.

    A new connection costs the server a process with cold catalog caches (about 10 ms a day). It is
    reopened when the warehouse URL changed, when it broke, or when it no longer answers (a server
    restart, an idle timeout: checked with a 0.1 ms round trip); a forked child never uses its
    parent's. It is in autocommit mode: reads are not left open in a transaction between days, and
    every write is an explicit `conn.transaction()`. `close_day_connections` closes them.
    """
    info, pid, thread = conninfo(), os.getpid(), threading.get_ident()
    with _CONNECTIONS_LOCK:
        entry = _CONNECTIONS.get(thread)
    if entry is not None:
        conn, entry_info, entry_pid = entry
        if entry_pid != pid:  # inherited through fork: the parent's socket, never to be touched
            entry = None
        elif conn.closed or conn.broken or entry_info != info or not _answers(conn):
            conn.close()
            entry = None
    if entry is None:
        conn = connect(autocommit=True)
        with _CONNECTIONS_LOCK:
            _CONNECTIONS[thread] = (conn, info, pid)
    return conn


def _answers(conn: psycopg.Connection) -> bool:
    """Whether a cached connection still works (rolled back first if a failure left a transaction)."""
    try:
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.rollback()
        conn.execute("select 1")
    except psycopg.Error:
        return False
    return True


def close_day_connections(*, all_threads: bool = True) -> None:
    """Close the connections this process opened for computing days: every thread's (only when no
    thread is computing a day, e.g. after a task runner finished), or the calling thread's."""
    pid, thread = os.getpid(), threading.get_ident()
    with _CONNECTIONS_LOCK:
        threads = list(_CONNECTIONS) if all_threads else [thread] if thread in _CONNECTIONS else []
        entries = [_CONNECTIONS.pop(key) for key in threads]
    for conn, _info, entry_pid in entries:
        if entry_pid == pid:
            conn.close()


def compute_day(
    day: date,
    model_version: str | None = None,
    *,
    force: bool = False,
    config: MonitoringConfig = DEFAULT_CONFIG,
    html_dir: str | Path | None = None,
    workspace: bool = True,
    flow_run_id: str | None = None,
    planned: RunKey | None = None,
) -> DayResult:
    """Compute and store one slice (a day of one model version; default the champion).

    Skips the day when its latest successful run has the same configuration, reference and input
    fingerprints, unless `force`. `planned` is the day's key from `plan_days`, for callers that
    already sorted the range (backfill, the flow): the day is then computed without checking again,
    and `model_version` must be the plan's version.

    Writes `html_dir/<day>.html` (a fully drawn report) when `html_dir` is given and adds the snapshot
    to the Evidently workspace when `workspace` (without `html_dir`, a light snapshot: the metric
    values the UI's dashboard plots, without the per-column plots). Raises on failure after recording
    it in monitoring.runs (a transient database error is worth a retry: psycopg.OperationalError;
    the next call reconnects).
    """
    from monitoring.report import evidently_version, run_report
    from monitoring.workspace import add_snapshot, delete_snapshots, save_html

    started = time.perf_counter()
    conn = _day_connection()
    reference = None
    if planned is not None and model_version:
        version, key = model_version, planned  # the reference is read below, once the run is recorded
    else:
        version = resolve_model_version(conn, model_version)
        signature = slice_signatures(conn, version, day, day).get(day)
        if signature is None:
            return DayResult(day, version, "no_data", time.perf_counter() - started)
        reference = get_reference(conn, version, day.isoweekday(), config)
        key = RunKey(config.config_hash(), reference.reference_hash, signature)
        if not force and finished_days(conn, version, day, day).get(day) == key:
            record_skipped(
                conn,
                [day],
                model_version=version,
                keys={day: key},
                evidently_version=evidently_version(),
                flow_run_id=flow_run_id,
            )
            return DayResult(day, version, "skipped", time.perf_counter() - started)
    run_id = start_run(
        conn,
        day=day,
        model_version=version,
        key=key,
        evidently_version=evidently_version(),
        flow_run_id=flow_run_id,
    )
    snapshot_id = None
    try:
        if reference is None:
            reference = get_reference(conn, version, day.isoweekday(), config, key.reference_hash)
        current = load_slice(conn, day, version, config)
        if current.empty:
            values, snapshot = _empty_slice_values(), None
        else:
            ctx = SliceContext(
                day=day, model_version=version, config=config, current=current, reference=reference
            )
            values, snapshot = run_report(ctx, render=bool(html_dir))
        if snapshot is not None and html_dir:
            save_html(snapshot, Path(html_dir) / f"{day.isoformat()}.html")
        if snapshot is not None and workspace:
            snapshot_id = add_snapshot(snapshot)
        replaced = write_slice(
            conn,
            run_id=run_id,
            day=day,
            model_version=version,
            values=values,
            row_count=len(current),
            snapshot_id=snapshot_id,
        )
    except Exception as exc:
        with suppress(psycopg.Error):  # a dead connection must not hide the original error
            fail_run(conn, run_id, f"{type(exc).__name__}: {exc}")
        if snapshot_id:
            with suppress(OSError):
                delete_snapshots([snapshot_id])
        raise
    if workspace and replaced:
        try:
            delete_snapshots(replaced)
        except OSError as exc:  # the day is stored: a snapshot left over is not worth failing it
            logger.warning("%s: could not delete replaced workspace snapshots %s: %s", day, replaced, exc)
    drift = next((value for value in values if value.name == "prediction_drift_score"), None)
    return DayResult(
        day,
        version,
        "computed",
        time.perf_counter() - started,
        row_count=len(current),
        metric_count=len(values),
        prediction_drift_score=drift.value if drift else None,
        prediction_drift_detected=drift.detected if drift else None,
    )


# What a fork server imports once, before it forks slice workers: Evidently and the engine.
FORK_SERVER_PRELOAD = [
    "evidently",
    "evidently.metrics",
    "scipy.stats",
    "monitoring.engine",
    "monitoring.report",
]


def worker_init(environ: dict[str, str] | None = None) -> None:
    """Process-pool initializer: import Evidently once in the worker (a no-op when it was inherited).

    `environ` is the parent's environment at the time the pool started. A fork server's children
    inherit the environment the fork server started with, which may be older (the warehouse URL
    of an earlier run, in tests); the pool hands the current one instead.
    """
    from monitoring.report import warm_up

    if environ is not None and environ != dict(os.environ):
        from warehouse.settings import get_settings

        os.environ.clear()
        os.environ.update(environ)
        get_settings.cache_clear()
    warm_up()
    # Close this worker's connection when the pool shuts the worker down (it exits with os._exit,
    # which skips atexit handlers but runs multiprocessing's finalizers).
    multiprocessing.util.Finalize(None, close_day_connections, exitpriority=10)


def process_context() -> multiprocessing.context.BaseContext:
    """The start method for slice workers.

    fork when this process is single-threaded: the workers inherit the Evidently it imported.
    Otherwise (a Prefect flow's process runs threads, and forking a threaded process is unsafe) a
    fork server: one clean process that imports Evidently once and forks the workers from itself,
    instead of each spawned worker importing it again (about 5 s of CPU each).
    """
    methods = multiprocessing.get_all_start_methods()
    if threading.active_count() == 1 and "fork" in methods:
        return multiprocessing.get_context("fork")
    if "forkserver" in methods:
        return _fork_server_context()
    return multiprocessing.get_context("spawn")


def _fork_server_context() -> multiprocessing.context.BaseContext:
    """The fork-server start method, its server preloading Evidently (see `_fork_server_preload`)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_fork_server_preload())
    return context


def _fork_server_preload() -> list[str]:
    """FORK_SERVER_PRELOAD, and the package of this process's main module when it runs as a named
    module (a Prefect worker's `python -m prefect.engine`): every child re-runs that module as
    `__mp_main__`, which is cheap only when the fork server already imported what it imports."""
    import sys

    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    name = getattr(spec, "name", None)
    if name and name != "__main__":
        # Its top package only: a child finding the main module itself already imported would warn.
        return [*FORK_SERVER_PRELOAD, name.split(".")[0]]
    return list(FORK_SERVER_PRELOAD)


def start_fork_server(*, wait: bool = False) -> None:
    """Start the fork server now (it lives as long as this process), so that its import of Evidently
    runs beside other start-up work, such as Prefect starting its temporary server. With `wait`,
    return only once it has imported Evidently (it has then forked a first, empty process)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return
    context = _fork_server_context()
    multiprocessing.forkserver.ensure_running()
    if wait:
        child = context.Process(target=os.getpid)
        child.start()
        child.join()


def slice_pool(
    workers: int, context: multiprocessing.context.BaseContext | None = None
) -> ProcessPoolExecutor:
    """A pool of `workers` slice processes (started as `process_context` says unless `context` is
    given), each with Evidently imported and this process's current environment."""
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context or process_context(),
        initializer=worker_init,
        initargs=(dict(os.environ),),
    )


def progress_line(result: DayResult, done: int, total: int) -> str:
    """'2017-06-01 done in 0.6 s (3 of 90)' and the like."""
    word = {"computed": "done", "skipped": "skipped", "no_data": "has no predictions"}.get(
        result.status, "FAILED"
    )
    return f"{result.day.isoformat()} {word} in {result.seconds:.1f} s ({done} of {total})"


def backfill(
    start: date,
    end: date,
    model_version: str | None = None,
    *,
    force: bool = False,
    workers: int = 2,
    config: MonitoringConfig = DEFAULT_CONFIG,
    html_dir: str | Path | None = None,
    workspace: bool = True,
    progress: Callable[[str], None] | None = None,
) -> BackfillSummary:
    """Compute every day of a range that is not done yet, on `workers` processes (1: in this process).

    This is the engine without Prefect (the bench and scripts use it); the `monitor_days` flow does the
    same with one Prefect task per day.
    """
    from monitoring.calibration import calibrate
    from monitoring.report import evidently_version

    started = time.perf_counter()
    plan = plan_days(start, end, model_version, force=force, config=config)
    if plan.to_compute:
        calibrate(plan.model_version, config=config)
    summary = BackfillSummary(model_version=plan.model_version)
    if plan.skipped:
        with connect() as conn:
            record_skipped(
                conn,
                plan.skipped,
                model_version=plan.model_version,
                keys=plan.keys,
                evidently_version=evidently_version(),
                flow_run_id=None,
            )
    summary.results += [DayResult(day, plan.model_version, "skipped", 0.0) for day in plan.skipped]
    summary.results += [DayResult(day, plan.model_version, "no_data", 0.0) for day in plan.no_data]
    total = len(plan.to_compute)
    options = {"force": True, "config": config, "html_dir": html_dir, "workspace": workspace}

    def record(result: DayResult) -> None:
        summary.results.append(result)
        if progress:
            progress(
                progress_line(result, len(summary.days("computed")) + len(summary.days("failed")), total)
            )

    def day_options(day: date) -> dict:
        return {**options, "planned": plan.keys[day]}

    if workers <= 1 or total <= 1:
        for day in plan.to_compute:
            record(_safe_compute(day, plan.model_version, day_options(day)))
    else:
        context = process_context()
        if context.get_start_method() == "fork":
            _load_references(plan, config)  # once here, inherited by every worker
        with slice_pool(min(workers, total), context) as pool:
            futures: dict[Future[DayResult], date] = {
                pool.submit(_safe_compute, day, plan.model_version, day_options(day)): day
                for day in plan.to_compute
            }
            for future in as_completed(futures):
                record(future.result())
    close_day_connections(all_threads=False)
    summary.seconds = time.perf_counter() - started
    return summary


def _load_references(plan: Plan, config: MonitoringConfig) -> None:
    """Read the references of the weekdays a plan computes, with their Evidently datasets, into this
    process's cache (forked workers then share them instead of each building its own)."""
    from monitoring.report import reference_dataset

    conn = _day_connection()
    digests = {day.isoweekday(): plan.keys[day].reference_hash for day in plan.to_compute}
    for weekday, digest in sorted(digests.items()):
        reference_dataset(get_reference(conn, plan.model_version, weekday, config, digest), config)


def _safe_compute(day: date, model_version: str, options: dict) -> DayResult:
    """compute_day for a pool: a failure becomes a 'failed' result instead of stopping the range."""
    started = time.perf_counter()
    try:
        return compute_day(day, model_version, **options)
    except Exception as exc:  # one bad day must not stop the backfill
        return DayResult(
            day, model_version, "failed", time.perf_counter() - started, error=f"{type(exc).__name__}: {exc}"
        )
