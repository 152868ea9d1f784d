"""The Prefect tasks of salesmon's flows (orchestration/flows.py, orchestration/daily.py).

Each task is a thin call of the module that owns the work: `monitoring` (planning, days, calibration,
storage, marts), `models_ml` (training, scoring), `warehouse.dbt` (the marts) and `notifications`.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import psycopg
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from monitoring.config import DEFAULT_CONFIG
from monitoring.day import DayOptions, compute_days, evidently_version
from monitoring.planning import DayResult, Plan
from monitoring.storage import RunKey
from warehouse.dbt import FLOW_EXCLUDE, METRICS_MART, PYTHON_STAGING

# After monitoring: the thresholds seed, the staging views over ml.* and monitoring.*, the metrics
# mart, and the ml marts (predictions vs actuals, model versions), which the scoring and training
# before it changed.
MONITORING_SELECTION = ["monitoring_thresholds", *PYTHON_STAGING, "path:models/marts/ml", *METRICS_MART]


def retry_on_transient_db_error(task: Any, task_run: Any, state: Any) -> bool:
    """Retry a failed task only when the database connection failed (psycopg.OperationalError)."""
    try:
        state.result()
    except psycopg.OperationalError:
        return True
    except Exception:
        return False
    return False


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
            conn, plan, evidently_version=evidently_version(), flow_run_id=flow_run_id, source=source
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


def _dbt_task(name: str) -> Any:
    """A task running a dbt build: tried once more, 10 s later, only when dbt could not reach the
    warehouse."""
    return task(
        name=name,
        retries=1,
        retry_delay_seconds=10,
        retry_condition_fn=retry_on_dbt_connection_error,
        cache_policy=NO_CACHE,
    )


@_dbt_task("build-monitoring-marts")
def build_monitoring_marts() -> str:
    """`dbt build` of the thresholds seed, the staging views over ml.* and monitoring.*, the ml marts
    and the metrics mart (models/intermediate/monitoring, models/marts/monitoring)."""
    from warehouse.dbt import run_dbt

    return run_dbt(["build", "--select", *MONITORING_SELECTION, *FLOW_EXCLUDE], quiet=True)


@_dbt_task("dbt-build")
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


@task(name="logged-range", cache_policy=NO_CACHE)
def logged_range_task(model_version: str | None) -> tuple[date, date] | None:
    """The first and last forecast day of the requests the service answered."""
    from monitoring.online import logged_range
    from warehouse.db import connect

    with connect() as conn:
        return logged_range(conn, model_version)
