"""Prefect 3 flows: monitor a range of days, retraining (the daily job is in orchestration/daily.py).

The flows only order tasks (orchestration/tasks.py); the work is done by `monitoring` (planning, days,
calibration), `models_ml` (training, scoring) and `warehouse.dbt` (marts). `monitor_days` is the one
way a range of days is monitored: it plans the range, cuts the days to compute into chunks (a week at
most) and runs one `monitor-days-chunk` task per chunk on a Prefect task runner, so that Prefect's
cost per task is paid once per chunk while each day is still stored, skipped and retried on its own:

- "auto" (default): "process", or the flow's own process when the pool would not pay for its start
  (orchestration.runners.compute_in_process);
- "process": Prefect's `ProcessPoolTaskRunner`, `workers` processes on this machine, each importing
  Evidently once (the runner's initializer) and keeping its references between chunks;
- "dask": prefect-dask's `DaskTaskRunner`, on a local cluster of `workers` processes or on the
  scheduler at `dask_address` (a cluster of machines: see the README);
- "thread": Prefect's `ThreadPoolTaskRunner` in this process (one core; for debugging).

A single chunk with nothing to calibrate is computed in the flow's own process whatever the runner
(but Dask). Deployments are in `prefect.yaml` at the repository root.
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import date
from typing import Any

import psycopg
from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.futures import as_completed

from monitoring.calibration import WEEKDAYS, needs_calibration
from monitoring.day import DayOptions
from monitoring.online import SOURCES
from monitoring.planning import DayResult, Plan, RunSummary, chunks
from orchestration.runners import TASK_RUNNERS, compute_in_process, make_task_runner
from orchestration.summary import MonitoringFailed, run_problems, run_result, summary_markdown
from orchestration.tasks import (
    alert_counts,
    build_monitoring_marts,
    calibrate_task,
    calibrate_weekday,
    coverage_counts,
    last_feature_day,
    logged_range_task,
    monitor_chunk,
    notify_task,
    plan_task,
    record_failed_days_task,
    record_skipped_task,
    score_task,
    store_calibration_task,
    train_task,
)


def _api_for_workers() -> AbstractContextManager[Any]:
    """Point worker processes at this process's Prefect API.

    Without a configured server (PREFECT_API_URL unset), Prefect runs a temporary server inside this
    process, which worker processes would not know of: each would start a temporary server of its
    own (20 s, and a shared SQLite file). Export the running one's URL to them instead.
    """
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if PREFECT_API_URL.value():
        return nullcontext()
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    if not server.running:
        return nullcontext()
    return temporary_settings(updates={PREFECT_API_URL: server.api_url})


def _flow_run_id() -> str | None:
    from prefect.runtime import flow_run

    run_id = flow_run.id
    return str(run_id) if run_id else None


def _store_calibration(model_version: str, weekdays: list[Any], started: float) -> str | None:
    """Wait for the seven calibration weekdays and store the bounds; the error message on failure
    (the monitored days stay stored and the marts still build)."""
    logger = get_run_logger()
    try:
        parts = [future.result() for future in weekdays]
        logger.info(store_calibration_task(model_version, parts, started))
    except Exception as exc:  # reported at the end of the run, after the marts
        logger.error(f"calibration of {model_version} failed: {exc}")
        return str(exc)
    return None


def day_options(
    html_dir: str | None, workspace: bool, flow_run_id: str | None, source: str = "batch"
) -> DayOptions:
    """What every chunk is handed: the warehouse's connection string and the workspace's folder, read
    from this process's settings once, so that no worker reads settings of its own."""
    from monitoring.workspace import workspace_path
    from warehouse.db import conninfo

    return DayOptions(
        conninfo=conninfo(),
        html_dir=html_dir,
        workspace=str(workspace_path()) if workspace else None,
        flow_run_id=flow_run_id,
        source=source,
    )


def run_chunks(
    runner: Any, plan: Plan, options: DayOptions, workers: int, chunk_days: int | None = None
) -> list[DayResult]:
    """Submit one monitor-days-chunk task per chunk of the days to compute to a started task runner
    (the tasks belong to the calling flow run); log a line per finished chunk. A chunk whose task
    failed as a whole (its worker died) counts its days failed, except those it stored."""
    logger = get_run_logger()
    futures = {
        runner.submit(monitor_chunk, _chunk_parameters(plan, days, options)): days
        for days in chunks(plan.to_compute, workers, chunk_days)
    }
    results: list[DayResult] = []
    for future in as_completed(list(futures)):
        days = futures[future]
        try:
            done = future.result()
        except Exception as exc:  # the whole task failed: every day it did not store failed with it
            done = _lost_chunk(plan, days, options, f"{type(exc).__name__}: {exc}")
        results += done
        computed = sum(1 for result in results if result.status == "computed")
        logger.info(f"{days[0]} .. {days[-1]}: {computed} of {len(plan.to_compute)} days computed")
    return results


def _chunk_parameters(plan: Plan, days: list[date], options: DayOptions) -> dict[str, Any]:
    return {
        "days": days,
        "keys": [plan.keys[day] for day in days],
        "model_version": plan.model_version,
        "options": options,
    }


def _lost_chunk(plan: Plan, days: list[date], options: DayOptions, error: str) -> list[DayResult]:
    """The days of a chunk whose task died: those it stored in this flow run are computed, the others
    failed with the task's error."""
    from monitoring.storage import succeeded_days

    with psycopg.connect(options.conninfo) as conn:
        stored = succeeded_days(conn, plan.model_version, days, options.flow_run_id)
    return [
        DayResult(day, plan.model_version, "computed", 0.0)
        if day in stored
        else DayResult(day, plan.model_version, "failed", 0.0, error=error)
        for day in days
    ]


@dataclass(frozen=True)
class Execution:
    """How a range's days are computed: the task runner and its workers (or the Dask scheduler), and
    days per task (default: the days split evenly over the workers, a week at most)."""

    workers: int = 2
    task_runner: str = "auto"
    dask_address: str | None = None
    chunk_days: int | None = None


@flow(name="monitor-days")
def monitor_days(
    start: date,
    end: date,
    model_version: str | None = None,
    force: bool = False,
    workers: int = 2,
    task_runner: str = "auto",
    html_dir: str | None = None,
    workspace: bool = True,
    build_marts: bool = True,
    dask_address: str | None = None,
    chunk_days: int | None = None,
    source: str = "batch",
) -> dict[str, Any]:
    """Monitor every day from `start` to `end` (one task per chunk of days), then build the marts.

    `source` "batch" monitors the batch predictions (ml.predictions), "online" the requests the
    prediction service answered (ml.prediction_log), with the same metrics against the same
    reference, plus online/batch parity (the `monitor-online` flow).

    Days already computed with the same configuration, reference and inputs are skipped unless
    `force`. `task_runner`, `workers`, `dask_address` and `chunk_days`: see `Execution` and the
    module's docstring. Writes one HTML report per day into `html_dir` when given, and adds the
    snapshots to the Evidently workspace unless `workspace` is false.

    The run holds the model version's monitoring lock: another run of the same version (batch or
    online) waits for this one, and what a killed run left is cleaned up first (monitoring/locks.py).

    A day that fails does not stop the others: its failure is recorded in monitoring.runs, the
    marts are built from the days that succeeded (marts.fct_monitoring_coverage_daily names the
    failed days), the markdown artifact lists them, and only then does the flow fail, raising
    `MonitoringFailed` with the result. The next run over the range computes only the days that are
    not done (the failed ones, unless their earlier values are current).
    """
    from monitoring.locks import monitor_lock

    if task_runner not in TASK_RUNNERS:
        raise ValueError(f"unknown task_runner {task_runner!r}; expected one of {', '.join(TASK_RUNNERS)}")
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; expected one of {', '.join(SOURCES)}")
    execution = Execution(workers, task_runner, dask_address, chunk_days)
    with monitor_lock(model_version, say=get_run_logger().warning, html_dir=html_dir) as version:
        started = time.perf_counter()
        plan = plan_task(start, end, version, force, source)
        timings = {"plan": time.perf_counter() - started}
        options = day_options(html_dir, workspace, _flow_run_id(), source)
        summary, calibration_error = _compute(plan, options, execution, timings)
        return _finish(plan, summary, (start, end, source), build_marts, execution, calibration_error,
                       timings, started)  # fmt: skip


def _compute(
    plan: Plan, options: DayOptions, execution: Execution, timings: dict[str, float]
) -> tuple[RunSummary, str | None]:
    """Record the days already done, compute the others (and calibrate a new version beside them),
    record the days that failed; the run's summary and the calibration's error, if any."""
    logger = get_run_logger()
    calibrating = needs_calibration(plan.model_version)
    calibration_error: str | None = None
    summary = RunSummary(model_version=plan.model_version)
    if plan.skipped:
        record_skipped_task(plan, options.flow_run_id, options.source)
    summary.results += [DayResult(day, plan.model_version, "skipped", 0.0) for day in plan.skipped]
    summary.results += [DayResult(day, plan.model_version, "no_data", 0.0) for day in plan.no_data]
    logger.info(
        f"{len(plan.to_compute)} days to compute, {len(plan.skipped)} already done, "
        f"{len(plan.no_data)} without predictions (model {plan.model_version})"
    )
    workers, runner_name = execution.workers, execution.task_runner
    tasks = len(chunks(plan.to_compute, workers, execution.chunk_days)) + (
        len(WEEKDAYS) if calibrating else 0
    )
    clock = time.perf_counter()
    small = compute_in_process(
        len(plan.to_compute), workers, workspace=options.workspace is not None, html=bool(options.html_dir)
    )
    in_process = tasks == 1 or (runner_name == "auto" and not calibrating and small)
    if plan.to_compute and in_process and runner_name != "dask":
        # one chunk, or too few days to pay for the pool's start, and nothing to calibrate: computed here
        summary.results += monitor_chunk(**_chunk_parameters(plan, sorted(plan.to_compute), options))
    elif plan.to_compute:
        runner = make_task_runner(runner_name, min(workers, tasks), execution.dask_address)
        with _api_for_workers(), runner:
            # the version's first monitored days: its seven calibration weekdays run beside them
            started_calibration = time.perf_counter()
            weekdays = [
                runner.submit(
                    calibrate_weekday,
                    {"model_version": plan.model_version, "weekday": weekday, "conninfo": options.conninfo},
                )
                for weekday in (WEEKDAYS if calibrating else ())
            ]
            summary.results += run_chunks(runner, plan, options, workers, execution.chunk_days)
            if weekdays:
                calibration_error = _store_calibration(plan.model_version, weekdays, started_calibration)
    elif calibrating:
        state = calibrate_task(plan.model_version, return_state=True)
        calibration_error = state.message if state.is_failed() else None
    timings["compute"] = time.perf_counter() - clock
    failed = summary.days("failed")
    if failed:
        record_failed_days_task(plan, failed, options.flow_run_id, options.source, return_state=True)
    return summary, calibration_error


def _finish(
    plan: Plan,
    summary: RunSummary,
    range_: tuple[date, date, str],
    build_marts: bool,
    execution: Execution,
    calibration_error: str | None,
    timings: dict[str, float],
    started: float,
) -> dict[str, Any]:
    """Build the marts, count the range's alerts and coverage, send the notifications, write the
    markdown artifact; the run's result, or `MonitoringFailed` with it when anything failed."""
    logger = get_run_logger()
    start, end, source = range_
    marts_error = None
    if build_marts:
        clock = time.perf_counter()
        marts_state = build_monitoring_marts(return_state=True)
        timings["marts"] = time.perf_counter() - clock
        if marts_state.is_failed():
            marts_error = marts_state.message or "dbt build of the metrics mart failed"
    alerts = alert_counts(start, end, plan.model_version, source) if build_marts else None
    coverage = coverage_counts(start, end, plan.model_version) if build_marts and source == "batch" else None
    notifications = _notify(logger) if build_marts and not marts_error else None
    summary.seconds = time.perf_counter() - started
    logger.info(summary.render())
    markdown = summary_markdown(
        summary, start, end, alerts, execution.task_runner, execution.workers, coverage
    )
    if marts_error:
        markdown += f"\nThe dbt build of the metrics mart failed: {marts_error}\n"
    if calibration_error:
        markdown += (
            f"\nThe calibration of the model version failed (no alerts without it): {calibration_error}\n"
        )
    create_markdown_artifact(
        markdown=markdown, key="monitoring-summary", description=f"Monitoring of {start} .. {end}"
    )
    result = run_result(summary, source, alerts, coverage, notifications, marts_error, calibration_error)
    result["timings"] = timings  # where the time went: planning, the days (workers started included), marts
    problems = run_problems(summary, build_marts, marts_error, calibration_error)
    if problems:
        raise MonitoringFailed("; ".join(problems), result)
    return result


def _notify(logger: Any) -> dict[str, Any]:
    """Send the new alerts; a failed send (or a broken channel) never fails the monitoring run: it
    stays due for the next one."""
    notify_state = notify_task(return_state=True)
    if notify_state.is_failed():
        notifications = {"error": notify_state.message or "notify failed"}
        logger.warning(f"notifications: {notifications['error']}")
        return notifications
    notifications = notify_state.result()
    if notifications["failed"]:
        logger.warning(f"notifications failed, tried again next run: {notifications['failed']}")
    return notifications


@flow(name="monitor-online")
def monitor_online(
    start: date | None = None,
    end: date | None = None,
    model_version: str | None = None,
    force: bool = False,
    workers: int = 2,
    task_runner: str = "auto",
    workspace: bool = False,
    build_marts: bool = True,
) -> dict[str, Any]:
    """Monitor the prediction service's request log (ml.prediction_log) day by day, like the batch
    predictions: the same metrics against the same reference, stored with source 'online', plus the
    parity of each answered request with its batch twin. The range defaults to the days the log has
    answered requests for. Days already done with the same requests are skipped unless `force`.
    The Evidently workspace (`salesmon ui`) shows the batch monitoring; the online days' snapshots
    are added to it only with `workspace` (they would share its panels' days with the batch ones).
    """
    if start is None or end is None:
        logged = logged_range_task(model_version)
        if logged is None:
            get_run_logger().info("the request log has no answered request yet: nothing to monitor")
            return {"model_version": model_version, "source": "online", "computed": [], "skipped": [],
                    "no_data": [], "failed": [], "alerts": None, "seconds": 0.0}  # fmt: skip
        start, end = start or logged[0], end or logged[1]
    return monitor_days(
        start,
        end,
        model_version,
        force=force,
        workers=workers,
        task_runner=task_runner,
        workspace=workspace,
        build_marts=build_marts,
        source="online",
    )


@flow(name="retrain")
def retrain(monitor_from: date | None = None, score_until: date | None = None) -> dict[str, Any]:
    """Train and register a new champion for a monitored period starting at `monitor_from`.

    Then scores the monitored period (from `monitor_from` to `score_until`, default the last day of
    the features mart) with the new champion, ready for a backfill.
    """
    trained = train_task(monitor_from)
    if score_until is None:
        score_until = last_feature_day()
    if score_until is not None and score_until >= trained["monitor_from"]:
        score_task(trained["monitor_from"], score_until, trained["champion_version"])
    return {**trained, "scored_until": score_until}
