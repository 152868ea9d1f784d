"""Storage of slices' results: monitoring.runs (one row per computation) and monitoring.metric_values.

A slice's metric rows are replaced as a whole in ONE transaction (delete the slice's rows, COPY the new
ones, mark the run successful), under an advisory lock on the slice so that two workers computing
the same day cannot interleave. A day whose latest successful run has the same configuration hash,
reference hash and input signature is "done" and skipped by backfills unless forced.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

import psycopg
from psycopg import sql

from monitoring.results import MetricValue

if TYPE_CHECKING:
    from monitoring.planning import Plan

METRIC_COLUMNS = (
    "slice_date",
    "model_version",
    "source",
    "metric_family",
    "metric_name",
    "column_name",
    "segment_type",
    "segment_value",
    "value",
    "stattest",
    "threshold",
    "detected",
    "run_id",
)

METRIC_TYPES = (
    "date",
    "text",
    "text",
    "text",
    "text",
    "text",
    "text",
    "text",
    "float8",
    "text",
    "float8",
    "bool",
    "uuid",
)

# Binary COPY: nothing to format on this side, nothing to parse on the server's.
_COPY_SQL = f"copy monitoring.metric_values ({', '.join(METRIC_COLUMNS)}) from stdin (format binary)"

_LATEST_SUCCESS_SQL = """
select distinct on (runs.slice_date)
    runs.slice_date,
    runs.config_hash,
    runs.reference_hash,
    runs.slice_signature
from monitoring.runs as runs
where runs.model_version = %(model_version)s
    and runs.source = %(source)s
    and runs.slice_date between %(start)s and %(end)s
    and runs.status = 'success'
order by runs.slice_date, runs.finished_at desc
"""


@dataclass(frozen=True)
class RunKey:
    """What makes a computed slice reusable: configuration, reference and input fingerprints."""

    config_hash: str
    reference_hash: str
    slice_signature: str


def finished_days(
    conn: psycopg.Connection, model_version: str, start: date, end: date, source: str = "batch"
) -> dict[date, RunKey]:
    """The days of a range whose latest successful run (of the source) exists, with its fingerprints."""
    params = {"model_version": model_version, "start": start, "end": end, "source": source}
    rows = conn.execute(_LATEST_SUCCESS_SQL, params)
    return {day: RunKey(config, reference, signature or "") for day, config, reference, signature in rows}


def succeeded_days(
    conn: psycopg.Connection,
    model_version: str,
    days: Sequence[date],
    flow_run_id: str | None,
    source: str = "batch",
) -> set[date]:
    """The days among `days` that a flow run stored (a successful run of that flow run)."""
    if not flow_run_id:
        return set()
    rows = conn.execute(
        "select distinct slice_date from monitoring.runs where model_version = %s and slice_date = any(%s)"
        " and flow_run_id = %s and status = 'success' and source = %s",
        (model_version, list(days), flow_run_id, source),
    ).fetchall()
    return {row[0] for row in rows}


def start_run(
    conn: psycopg.Connection,
    *,
    day: date,
    model_version: str,
    key: RunKey,
    evidently_version: str,
    flow_run_id: str | None,
    source: str = "batch",
) -> uuid.UUID:
    """Record the start of a slice's computation (committed at once, so a crash leaves 'running')."""
    with conn.transaction():
        return _insert_run(conn, (day, model_version, source, key, evidently_version, flow_run_id), "running")


def _insert_run(
    conn: psycopg.Connection,
    run: tuple[date, str, str, RunKey, str, str | None],
    status: str,
    error: str | None = None,
) -> uuid.UUID:
    """Insert one monitoring.runs row for (day, model version, source, key, Evidently version, flow
    run): 'running' (started now), or a finished 'failed' one."""
    day, model_version, source, key, evidently_version, flow_run_id = run
    run_id = uuid.uuid4()
    conn.execute(
        "insert into monitoring.runs (run_id, flow_run_id, slice_date, model_version, source, config_hash,"
        " reference_hash, slice_signature, evidently_version, status, error, started_at, finished_at)"
        " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, clock_timestamp(),"
        " case when %s::text = 'running' then null else clock_timestamp() end)",
        (
            run_id,
            flow_run_id,
            day,
            model_version,
            source,
            key.config_hash,
            key.reference_hash,
            key.slice_signature,
            evidently_version,
            status,
            error,
            status,
        ),
    )
    return run_id


def write_slice(
    conn: psycopg.Connection,
    *,
    run_id: uuid.UUID,
    day: date,
    model_version: str,
    values: Sequence[MetricValue],
    row_count: int,
    snapshot_id: str | None,
    source: str = "batch",
) -> list[str]:
    """Replace the slice's metric rows and mark its run successful, in one transaction.

    Returns the workspace snapshot ids of the slice's earlier runs, which the new snapshot replaces.
    """
    with conn.transaction():
        conn.execute(
            "select pg_advisory_xact_lock(hashtext('salesmon.slice'), hashtext(%s))",
            (f"{model_version}|{day.isoformat()}|{source}",),
        )
        conn.execute(
            "delete from monitoring.metric_values where slice_date = %s and model_version = %s"
            " and source = %s",
            (day, model_version, source),
        )
        with conn.cursor().copy(_COPY_SQL) as copy:
            copy.set_types(METRIC_TYPES)
            for value in values:
                copy.write_row(
                    (
                        day,
                        model_version,
                        source,
                        value.family,
                        value.name,
                        value.column_name,
                        value.segment_type,
                        value.segment_value,
                        value.value,
                        value.stattest,
                        value.threshold,
                        value.detected,
                        run_id,
                    )
                )
        replaced = conn.execute(
            "with earlier as ("
            " select run_id, snapshot_id from monitoring.runs"
            " where slice_date = %s and model_version = %s and source = %s and run_id <> %s"
            " and snapshot_id is not null for update)"
            " update monitoring.runs as runs set snapshot_id = null from earlier"
            " where runs.run_id = earlier.run_id returning earlier.snapshot_id",
            (day, model_version, source, run_id),
        ).fetchall()
        conn.execute(
            "update monitoring.runs set status = 'success', finished_at = clock_timestamp(), row_count = %s,"
            " metric_count = %s, snapshot_id = %s where run_id = %s",
            (row_count, len(values), snapshot_id, run_id),
        )
    return [row[0] for row in replaced]


def fail_run(conn: psycopg.Connection, run_id: uuid.UUID, error: str) -> None:
    """Mark a run failed with its error (the slice's previous metric rows stay as they were)."""
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        conn.rollback()
    with conn.transaction():
        conn.execute(
            "update monitoring.runs set status = 'failed', finished_at = clock_timestamp(), error = %s"
            " where run_id = %s",
            (error[:4000], run_id),
        )


def record_skipped(
    conn: psycopg.Connection,
    plan: Plan,
    *,
    evidently_version: str,
    flow_run_id: str | None,
    source: str = "batch",
) -> int:
    """Record one 'skipped' run per day of the plan that is already done; returns how many."""
    model_version, keys = plan.model_version, plan.keys
    rows = [
        (
            uuid.uuid4(),
            flow_run_id,
            day,
            model_version,
            source,
            keys[day].config_hash,
            keys[day].reference_hash,
            keys[day].slice_signature,
            evidently_version,
        )
        for day in plan.skipped
    ]
    if not rows:
        return 0
    with conn.transaction(), conn.cursor() as cursor:
        cursor.executemany(
            "insert into monitoring.runs (run_id, flow_run_id, slice_date, model_version, source,"
            " config_hash, reference_hash, slice_signature, evidently_version, status, started_at,"
            " finished_at) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, 'skipped', clock_timestamp(),"
            " clock_timestamp())",
            rows,
        )
    return len(rows)


def record_failed_day(
    conn: psycopg.Connection,
    *,
    day: date,
    model_version: str,
    key: RunKey,
    evidently_version: str,
    flow_run_id: str,
    error: str,
    source: str = "batch",
) -> str:
    """Make sure a day that failed in a flow run has that run's 'failed' row, whatever killed it.

    `compute_day` records its own failures; this covers the rest: a worker process that died leaves
    its run 'running' (marked failed here), and a day that failed before its run was recorded (the
    database unreachable, the worker pool broken) gets a failed run. Returns what it did: 'recorded'
    (the day's failure was already there), 'marked' or 'inserted'.
    """
    params = {
        "flow_run_id": flow_run_id,
        "day": day,
        "model_version": model_version,
        "error": error[:4000],
        "source": source,
    }
    with conn.transaction():
        marked = conn.execute(
            "update monitoring.runs set status = 'failed', finished_at = clock_timestamp(), error = %(error)s"
            " where flow_run_id = %(flow_run_id)s and slice_date = %(day)s"
            " and model_version = %(model_version)s and source = %(source)s and status = 'running'"
            " returning run_id",
            params,
        ).fetchall()
        if marked:
            return "marked"
        recorded = conn.execute(
            "select 1 from monitoring.runs where flow_run_id = %(flow_run_id)s and slice_date = %(day)s"
            " and model_version = %(model_version)s and source = %(source)s and status = 'failed'",
            params,
        ).fetchone()
        if recorded:
            return "recorded"
        run = (day, model_version, source, key, evidently_version, flow_run_id)
        _insert_run(conn, run, "failed", error[:4000])
    return "inserted"


def keep_results_as(conn: psycopg.Connection, model_version: str, label: str) -> None:
    """Move a model version's monitoring results (runs and metric values) under another label, with a
    copy of its learned bounds: tests and benchmarks keep several scenarios monitored by one model
    apart this way, and build the marts once over all of them."""
    from monitoring.calibration_store import copy_bounds

    copy_bounds(conn, model_version, label)
    for table in ("runs", "metric_values"):
        conn.execute(
            sql.SQL("update {} set model_version = %s where model_version = %s").format(
                sql.Identifier("monitoring", table)
            ),
            (label, model_version),
        )
