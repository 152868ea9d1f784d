"""Prefect 3 flows: monitor a range of days, retraining (the daily job is in orchestration/daily.py).

The flows only order tasks; the work is done by `monitoring` (planning, days, calibration),
`models_ml` (training, scoring) and `warehouse.dbt` (marts). `monitor_days` is the one way a range of
days is monitored: it plans the range, cuts the days to compute into chunks (a week at most) and
runs one `monitor-days-chunk` task per chunk on a Prefect task runner, so that Prefect's cost per
task is paid once per chunk while each day is still stored, skipped and retried on its own:

- "auto" (default): "process", or the flow's own process when the pool would not pay for its start
  (orchestration.runners.compute_in_process);
- "process": Prefect's `ProcessPoolTaskRunner`, `workers` processes on this machine, each
  importing Evidently once (the runner's initializer) and keeping its references between chunks;
- "dask": prefect-dask's `DaskTaskRunner`, on a local cluster of `workers` processes or on the
  scheduler at `dask_address` (a cluster of machines: see the README);
- "thread": Prefect's `ThreadPoolTaskRunner` in this process (one core; for debugging).

A run with a single chunk to compute and nothing to calibrate computes it in the flow's own process:
no pool is started for one day. Deployments are in `prefect.yaml` at the repository root.
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager, nullcontext
from datetime import date
from typing import Any

import psycopg
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed

from monitoring.calibration import WEEKDAYS, needs_calibration
from monitoring.config import DEFAULT_CONFIG
from monitoring.day import DayOptions, compute_days, evidently_version
from monitoring.online import SOURCES
from monitoring.planning import DayResult, Plan, RunSummary, chunks
from monitoring.storage import RunKey
from orchestration.runners import TASK_RUNNERS, compute_in_process, make_task_runner
from warehouse.dbt import FLOW_EXCLUDE, METRICS_MART, PYTHON_STAGING

# After monitoring: the thresholds seed, the staging views over ml.* and monitoring.*, the metrics
# mart, and the ml marts (predictions vs actuals, model versions), which the scoring and training
# before it changed.
MONITORING_SELECTION = ["monitoring_thresholds", *PYTHON_STAGING, "path:models/marts/ml", *METRICS_MART]
# unit tests and the full_scan tests run in full builds, not in every production build (warehouse/dbt.py)
NO_UNIT_TESTS = FLOW_EXCLUDE
COVERAGE_STATUSES = ("computed", "failed", "running", "not_monitored")


class MonitoringFailed(RuntimeError):
    """Days failed (or the dbt build of the marts did), raised by `monitor_days` once the other days
    are stored, the marts built and the summary written. `result` is what the flow would have
    returned, with the failed days and their errors (the command line prints it)."""

    def __init__(self, message: str, result: dict[str, Any]) -> None:
        super().__init__(message, result)
        self.result = result

    def __str__(self) -> str:
        return str(self.args[0])


def retry_on_transient_db_error(task: Any, task_run: Any, state: Any) -> bool:
    """Retry a failed task only when the database connection failed (psycopg.OperationalError)."""
    try:
        state.result()
    except psycopg.OperationalError:
        return True
    except Exception:
        return False
    return False


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


# --- tasks -----------------------------------------------------------------------------------------


def _chunk_name() -> str:
    from prefect.runtime import task_run

    days = task_run.parameters.get("days") or []
    return f"monitor {days[0]} .. {days[-1]}" if days else "monitor no day"


@task(name="monitor-days-chunk", task_run_name=_chunk_name, cache_policy=NO_CACHE)
def monitor_chunk(
    days: list[date], keys: list[RunKey], model_version: str, options: DayOptions
) -> list[DayResult]:
    """Compute and store a chunk of planned days: each day on its own (stored, or failed with its
    error; a dropped connection retried for that day), so one bad day loses no other."""
    logger = get_run_logger()
    return compute_days(list(zip(days, keys, strict=True)), model_version, options, progress=logger.info)


@task(
    name="plan-days",
    retries=2,
    retry_delay_seconds=5,
    retry_condition_fn=retry_on_transient_db_error,
    cache_policy=NO_CACHE,
)
def plan_task(start: date, end: date, model_version: str | None, force: bool, source: str = "batch") -> Plan:
    """Sort the range into days to compute, days already done and days without predictions (or, for
    the online source, without answered requests; its parity bounds are written first)."""
    from monitoring import online
    from monitoring.planning import plan_days
    from warehouse.db import connect

    with connect() as conn:
        plan = plan_days(conn, start, end, model_version, force=force, source=source)
        if source == online.ONLINE:
            online.ensure_parity_bounds(conn, plan.model_version, DEFAULT_CONFIG.config_hash())
            conn.commit()
        return plan


@task(
    name="calibrate",
    retries=2,
    retry_delay_seconds=5,
    retry_condition_fn=retry_on_transient_db_error,
    cache_policy=NO_CACHE,
)
def calibrate_task(model_version: str) -> str:
    """Learn the model version's bounds in this process, unless it has them already."""
    from monitoring.calibration import calibrate

    return calibrate(model_version).render()


@task(
    name="calibrate-weekday",
    task_run_name="calibrate weekday {weekday}",
    retries=2,
    retry_delay_seconds=5,
    retry_condition_fn=retry_on_transient_db_error,
    cache_policy=NO_CACHE,
)
def calibrate_weekday(model_version: str, weekday: int, conninfo: str) -> Any:
    """The metrics of one weekday's calibration days (a DataFrame)."""
    from monitoring.calibration import weekday_values

    return weekday_values(model_version, weekday, conninfo=conninfo)


@task(name="store-calibration", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def store_calibration_task(model_version: str, parts: list[Any], started: float) -> str:
    """Fit the bounds from the seven weekdays' values and store them."""
    from monitoring.calibration import store_calibration

    return store_calibration(model_version, parts, started=started).render()


@task(name="record-skipped", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def record_skipped_task(plan: Plan, flow_run_id: str | None, source: str = "batch") -> int:
    """Record a 'skipped' run for each day already done."""
    from monitoring.storage import record_skipped
    from warehouse.db import connect

    with connect() as conn:
        return record_skipped(
            conn,
            plan.skipped,
            model_version=plan.model_version,
            keys=plan.keys,
            evidently_version=evidently_version(),
            flow_run_id=flow_run_id,
            source=source,
        )


def retry_on_dbt_connection_error(task: Any, task_run: Any, state: Any) -> bool:
    """Retry a dbt build only when it could not reach the warehouse: a failed data test fails the same
    way again (the 10 s wait and the second build were pure cost)."""
    try:
        state.result()
    except Exception as exc:
        text = str(exc).lower()
        return "could not connect" in text or "connection refused" in text or "server closed" in text
    return False


@task(
    name="build-monitoring-marts",
    retries=1,
    retry_delay_seconds=10,
    retry_condition_fn=retry_on_dbt_connection_error,
    cache_policy=NO_CACHE,
)
def build_monitoring_marts() -> str:
    """`dbt build` of the thresholds seed, the staging views over ml.* and monitoring.*, the ml marts
    and the metrics mart (models/intermediate/monitoring, models/marts/monitoring)."""
    from warehouse.dbt import run_dbt

    return run_dbt(["build", "--select", *MONITORING_SELECTION, *NO_UNIT_TESTS], quiet=True)


@task(
    name="dbt-build",
    retries=1,
    retry_delay_seconds=10,
    retry_condition_fn=retry_on_dbt_connection_error,
    cache_policy=NO_CACHE,
)
def build_marts_except_monitoring() -> str:
    """`dbt build` of everything but the metrics mart (features first, so that scoring sees new days)."""
    from warehouse.dbt import run_dbt

    return run_dbt(["build", "--exclude", *METRICS_MART, "test_type:unit"], quiet=True)


@task(name="score", retries=2, retry_delay_seconds=5, retry_condition_fn=retry_on_transient_db_error)
def score_task(start: date, end: date, model_version: str | None = None) -> str:
    """Score a range with the champion (or the given version); returns the version used."""
    from models_ml.score import score

    return score(start, end, model_version).model_version


@task(name="train", cache_policy=NO_CACHE)
def train_task(monitor_from: date | None = None) -> dict[str, Any]:
    """Train the candidates and register the champion; returns its version and monitored period start."""
    from models_ml.train import train

    result = train(monitor_from)
    return {"champion_version": result.champion_version, "monitor_from": result.windows.monitor_from}


@task(name="alert-counts", cache_policy=NO_CACHE)
def alert_counts(start: date, end: date, model_version: str, source: str = "batch") -> dict[str, int] | None:
    """Alerts per severity in marts.fct_alerts for the range, or None when that mart does not exist."""
    from monitoring import marts
    from warehouse.db import connect

    with connect() as conn:
        return marts.alert_counts(conn, start, end, model_version, source)


@task(name="notify", cache_policy=NO_CACHE)
def notify_task() -> dict[str, Any]:
    """Send the mart's new alerts (notifications.send.notify: never raises for a failed send)."""
    from notifications.send import notify

    summary = notify()
    return {"channels": list(summary.channels), "sent": summary.sent, "failed": summary.failed}


@task(name="coverage-counts", cache_policy=NO_CACHE)
def coverage_counts(start: date, end: date, model_version: str) -> dict[str, int] | None:
    """Days per monitoring status in marts.fct_monitoring_coverage_daily for the range, or None when
    that mart does not exist."""
    from monitoring import marts
    from warehouse.db import connect

    with connect() as conn:
        return marts.coverage_counts(conn, start, end, model_version)


@task(name="record-failed-days", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def record_failed_days_task(
    plan: Plan, failed: list[DayResult], flow_run_id: str | None, source: str = "batch"
) -> int:
    """Make sure every day that failed in this flow run has its 'failed' run in monitoring.runs, with
    the error (a worker that died leaves 'running'; a day can fail before its run is recorded)."""
    from monitoring.storage import record_failed_day
    from warehouse.db import connect

    if not flow_run_id or not failed:
        return 0
    with connect() as conn:
        for result in failed:
            record_failed_day(
                conn,
                day=result.day,
                model_version=plan.model_version,
                key=plan.keys[result.day],
                evidently_version=evidently_version(),
                flow_run_id=flow_run_id,
                error=result.error or "failed",
                source=source,
            )
    return len(failed)


@task(name="last-feature-day", cache_policy=NO_CACHE)
def last_feature_day() -> date | None:
    """The last day of the features mart (forecast requests included), None when it is empty."""
    from models_ml.features import last_feature_date
    from warehouse.db import connect

    with connect() as conn:
        return last_feature_date(conn)


# --- flows -----------------------------------------------------------------------------------------


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
    """Monitor every day from `start` to `end`, then build the metrics mart (`monitor_range`), holding
    the model version's monitoring lock: another run of the same version (batch or online) waits for
    this one, and what a killed run left is cleaned up first (monitoring/locks.py)."""
    from monitoring.locks import monitor_lock

    with monitor_lock(model_version, say=get_run_logger().warning, html_dir=html_dir) as version:
        return monitor_range(
            start,
            end,
            version,
            force,
            workers,
            task_runner,
            html_dir,
            workspace,
            build_marts,
            dask_address,
            chunk_days,
            source,
        )


def monitor_range(
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
    `force`. `task_runner` is "process", "dask" or "thread" with `workers` workers, or the Dask
    scheduler at `dask_address` (see the module's docstring); `chunk_days` days per task (default:
    the days split evenly over the workers, a week at most). Writes one HTML report per day into
    `html_dir` when given, and adds the snapshots to the Evidently workspace unless `workspace` is
    false.

    A day that fails does not stop the others: its failure is recorded in monitoring.runs, the
    marts are built from the days that succeeded (marts.fct_monitoring_coverage_daily names the
    failed days), the markdown artifact lists them, and only then does the flow fail, raising
    `MonitoringFailed` with the result. The next run over the range computes only the days that are
    not done (the failed ones, unless their earlier values are current).
    """
    if task_runner not in TASK_RUNNERS:
        raise ValueError(f"unknown task_runner {task_runner!r}; expected one of {', '.join(TASK_RUNNERS)}")
    logger = get_run_logger()
    started = time.perf_counter()
    flow_run_id = _flow_run_id()
    if source not in SOURCES:
        raise ValueError(f"unknown source {source!r}; expected one of {', '.join(SOURCES)}")
    plan = plan_task(start, end, model_version, force, source)
    timings = {"plan": time.perf_counter() - started}
    calibrating = needs_calibration(plan.model_version)
    calibration_error: str | None = None
    summary = RunSummary(model_version=plan.model_version)
    if plan.skipped:
        record_skipped_task(plan, flow_run_id, source)
    summary.results += [DayResult(day, plan.model_version, "skipped", 0.0) for day in plan.skipped]
    summary.results += [DayResult(day, plan.model_version, "no_data", 0.0) for day in plan.no_data]
    logger.info(
        f"{len(plan.to_compute)} days to compute, {len(plan.skipped)} already done, "
        f"{len(plan.no_data)} without predictions (model {plan.model_version})"
    )
    options = day_options(html_dir, workspace, flow_run_id, source)
    tasks = len(chunks(plan.to_compute, workers, chunk_days)) + (len(WEEKDAYS) if calibrating else 0)
    clock = time.perf_counter()
    small = compute_in_process(len(plan.to_compute), workers, workspace=workspace, html=bool(html_dir))
    in_process = tasks == 1 or (task_runner == "auto" and not calibrating and small)
    if plan.to_compute and in_process and task_runner != "dask":
        # one chunk, or too few days to pay for the pool's start, and nothing to calibrate: computed here
        summary.results += monitor_chunk(**_chunk_parameters(plan, sorted(plan.to_compute), options))
    elif plan.to_compute:
        runner = make_task_runner(task_runner, min(workers, tasks), dask_address)
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
            summary.results += run_chunks(runner, plan, options, workers, chunk_days)
            if weekdays:
                calibration_error = _store_calibration(plan.model_version, weekdays, started_calibration)
    elif calibrating:
        state = calibrate_task(plan.model_version, return_state=True)
        calibration_error = state.message if state.is_failed() else None
    timings["compute"] = time.perf_counter() - clock
    failed = summary.days("failed")
    if failed:
        record_failed_days_task(plan, failed, flow_run_id, source, return_state=True)
    marts_error = None
    if build_marts:
        clock = time.perf_counter()
        marts_state = build_monitoring_marts(return_state=True)
        timings["marts"] = time.perf_counter() - clock
        if marts_state.is_failed():
            marts_error = marts_state.message or "dbt build of the metrics mart failed"
    alerts = alert_counts(start, end, plan.model_version, source) if build_marts else None
    coverage = coverage_counts(start, end, plan.model_version) if build_marts and source == "batch" else None
    notifications: dict[str, Any] | None = None
    if build_marts and not marts_error:
        # a failed send (or a broken channel) never fails the monitoring run: it stays due
        notify_state = notify_task(return_state=True)
        if notify_state.is_failed():
            notifications = {"error": notify_state.message or "notify failed"}
            logger.warning(f"notifications: {notifications['error']}")
        else:
            notifications = notify_state.result()
            if notifications["failed"]:
                logger.warning(f"notifications failed, tried again next run: {notifications['failed']}")
    summary.seconds = time.perf_counter() - started
    logger.info(summary.render())
    markdown = summary_markdown(summary, start, end, alerts, task_runner, workers, coverage)
    if marts_error:
        markdown += f"\nThe dbt build of the metrics mart failed: {marts_error}\n"
    if calibration_error:
        markdown += (
            f"\nThe calibration of the model version failed (no alerts without it): {calibration_error}\n"
        )
    create_markdown_artifact(
        markdown=markdown,
        key="monitoring-summary",
        description=f"Monitoring of {start} .. {end}",
    )
    result = {
        "model_version": plan.model_version,
        "source": source,
        "computed": [day.day.isoformat() for day in summary.days("computed")],
        "skipped": [day.day.isoformat() for day in summary.days("skipped")],
        "no_data": [day.day.isoformat() for day in summary.days("no_data")],
        "failed": [{"day": day.day.isoformat(), "error": day.error or ""} for day in failed],
        "alerts": alerts,
        "coverage": coverage,
        "notifications": notifications,
        "marts_error": marts_error,
        "calibration_error": calibration_error,
        "seconds": summary.seconds,
        # where the time went: planning, computing the days (workers started included), the marts
        "timings": timings,
    }
    if failed or marts_error or calibration_error:
        problems = []
        if failed:
            details = "; ".join(f"{day.day}: {day.error}" for day in failed[:5])
            more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
            problems.append(f"{len(failed)} days failed ({details}{more})")
        if marts_error:
            problems.append(f"the dbt build of the metrics mart failed: {marts_error}")
        elif build_marts:
            problems.append("the marts were built from the days that succeeded")
        if calibration_error:
            problems.append(
                f"calibrating {plan.model_version} failed, so nothing can alert"
                f" (retry with salesmon calibrate): {calibration_error}"
            )
        raise MonitoringFailed("; ".join(problems), result)
    return result


def summary_markdown(
    summary: RunSummary,
    start: date,
    end: date,
    alerts: dict[str, int] | None,
    task_runner: str,
    workers: int,
    coverage: dict[str, int] | None = None,
) -> str:
    """The run's markdown artifact: counts, failed days, drifted days, alerts, coverage of the range."""
    drifted = sorted(result.day.isoformat() for result in summary.results if result.prediction_drift_detected)
    computed = summary.days("computed")
    failed = summary.days("failed")
    mean_seconds = sum(result.seconds for result in computed) / len(computed) if computed else 0.0
    lines = [
        f"# Monitoring {start} .. {end}",
        "",
        f"Model version `{summary.model_version}`, task runner `{task_runner}` with {workers} workers, "
        f"{summary.seconds:.1f} s in all ({mean_seconds:.2f} s per computed day).",
        "",
        "| days | count |",
        "|---|---|",
        f"| computed | {len(computed)} |",
        f"| skipped (already done) | {len(summary.days('skipped'))} |",
        f"| without predictions | {len(summary.days('no_data'))} |",
        f"| failed | {len(failed)} |",
        f"| with prediction drift | {len(drifted)} |",
        "",
    ]
    if failed:
        lines += [
            "## Failed days",
            "",
            "Not monitored by this run (named in `marts.fct_monitoring_coverage_daily`); the next run"
            " over the range computes them again.",
            "",
            *(f"- {result.day}: {result.error}" for result in failed),
            "",
        ]
    if drifted:
        lines += [f"Prediction drift on: {', '.join(drifted)}", ""]
    if alerts is None:
        lines.append("Alerts: marts.fct_alerts does not exist yet.")
    else:
        total = sum(alerts.values())
        per_severity = (
            ", ".join(f"{severity} {count}" for severity, count in sorted(alerts.items())) or "none"
        )
        lines.append(f"Alerts in marts.fct_alerts for the range: {total} ({per_severity}).")
    if coverage is not None:
        lines += [
            "",
            f"Coverage of the range in marts.fct_monitoring_coverage_daily: {render_coverage(coverage)}.",
        ]
    return "\n".join(lines) + "\n"


def render_coverage(coverage: dict[str, int]) -> str:
    """'88 computed, 2 failed' from days per monitoring status (statuses in their usual order)."""
    ordered = [status for status in COVERAGE_STATUSES if status in coverage]
    ordered += sorted(status for status in coverage if status not in COVERAGE_STATUSES)
    return ", ".join(f"{coverage[status]} {status.replace('_', ' ')}" for status in ordered) or "no days"


@task(name="logged-range", cache_policy=NO_CACHE)
def logged_range_task(model_version: str | None) -> tuple[date, date] | None:
    """The first and last forecast day of the requests the service answered."""
    from monitoring.online import logged_range
    from warehouse.db import connect

    with connect() as conn:
        return logged_range(conn, model_version)


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
