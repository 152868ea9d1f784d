"""Computing slices: one day (`compute_day`), the plan of a range (`plan_days`), a range (`backfill`).

`compute_day` is the unit of work of the Prefect flow (one task per day) and of `backfill`'s process
pool: it selects the day's slice in SQL, runs the slice's one Evidently report against the cached
like-for-like reference, writes the metric rows in one transaction, and optionally an HTML report
and a snapshot in the Evidently workspace. A day already computed with the same configuration,
reference and inputs is skipped unless `force`.
"""

from __future__ import annotations

import multiprocessing
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
from warehouse.db import connect


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


def compute_day(
    day: date,
    model_version: str | None = None,
    *,
    force: bool = False,
    config: MonitoringConfig = DEFAULT_CONFIG,
    html_dir: str | Path | None = None,
    workspace: bool = True,
    flow_run_id: str | None = None,
) -> DayResult:
    """Compute and store one slice (a day of one model version; default the champion).

    Skips the day when its latest successful run has the same configuration, reference and input
    fingerprints, unless `force`. Writes `html_dir/<day>.html` (a fully drawn report) when `html_dir`
    is given and adds the snapshot to the Evidently workspace when `workspace` (without `html_dir`, a
    light snapshot: the metric values the UI's dashboard plots, without the per-column plots). Raises
    on failure after recording it in monitoring.runs (a transient database error is worth a retry:
    psycopg.OperationalError).
    """
    from monitoring.report import evidently_version, run_report
    from monitoring.workspace import add_snapshot, delete_snapshots

    started = time.perf_counter()
    with connect() as conn:
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
            current = load_slice(conn, day, version, config)
            if current.empty:
                values, snapshot = _empty_slice_values(), None
            else:
                ctx = SliceContext(
                    day=day, model_version=version, config=config, current=current, reference=reference
                )
                values, snapshot = run_report(ctx, render=bool(html_dir))
            if snapshot is not None and html_dir:
                Path(html_dir).mkdir(parents=True, exist_ok=True)
                snapshot.save_html(str(Path(html_dir) / f"{day.isoformat()}.html"))
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
                delete_snapshots([snapshot_id])
            raise
    if workspace:
        delete_snapshots(replaced)
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


def worker_init() -> None:
    """Process-pool initializer: import Evidently once in the worker."""
    from monitoring.report import warm_up

    warm_up()


def process_context() -> multiprocessing.context.BaseContext:
    """The start method for slice workers: fork when this process is single-threaded (the workers
    inherit an already imported Evidently), spawn otherwise (forking a threaded process is unsafe)."""
    if threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


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
    from monitoring.report import evidently_version

    started = time.perf_counter()
    plan = plan_days(start, end, model_version, force=force, config=config)
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

    if workers <= 1 or total <= 1:
        for day in plan.to_compute:
            record(_safe_compute(day, plan.model_version, options))
    else:
        with ProcessPoolExecutor(
            max_workers=min(workers, total), mp_context=process_context(), initializer=worker_init
        ) as pool:
            futures: dict[Future[DayResult], date] = {
                pool.submit(_safe_compute, day, plan.model_version, options): day for day in plan.to_compute
            }
            for future in as_completed(futures):
                record(future.result())
    summary.seconds = time.perf_counter() - started
    return summary


def _safe_compute(day: date, model_version: str, options: dict) -> DayResult:
    """compute_day for a pool: a failure becomes a 'failed' result instead of stopping the range."""
    started = time.perf_counter()
    try:
        return compute_day(day, model_version, **options)
    except Exception as exc:  # one bad day must not stop the backfill
        return DayResult(
            day, model_version, "failed", time.perf_counter() - started, error=f"{type(exc).__name__}: {exc}"
        )
