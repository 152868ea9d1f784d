"""One monitoring run per model version at a time, and what a killed run left behind.

`monitor_lock` holds the advisory lock ('monitor', model version) for a whole monitoring run: plan,
days, calibration, the dbt build of the marts and notifications. A second run of the same version
(over the same or other days) waits for the first and then finds the days it computed done; runs of
different versions go side by side (dbt builds are serialised by `warehouse.dbt`). The lock lives
as long as the holder's connection, so a killed run releases it.

Holding it also proves that no live run computes that version: every 'running' row of the version
left in monitoring.runs is a killed run's, and is marked 'abandoned' (`abandon_stale_runs`), with the
workspace snapshots and HTML files nobody points to (monitoring/workspace.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg

from warehouse.db import connect
from warehouse.locks import advisory_lock

LOCK_NAME = "monitor"
ABANDONED_ERROR = "abandoned: the run that computed this day ended before it finished (killed or crashed)"


def abandon_stale_runs(conn: psycopg.Connection, model_version: str) -> int:
    """Mark the version's 'running' runs 'abandoned' (call only while holding its monitor lock)."""
    with conn.transaction():
        rows = conn.execute(
            "update monitoring.runs set status = 'abandoned', finished_at = clock_timestamp(), error = %s"
            " where model_version = %s and status = 'running' returning run_id",
            (ABANDONED_ERROR, model_version),
        ).fetchall()
    return len(rows)


@contextmanager
def monitor_lock(
    model_version: str | None, *, say: Callable[[str], None] | None = None, html_dir: str | None = None
) -> Iterator[str]:
    """Hold the monitoring lock of `model_version` (default: the champion), yielding the version.

    Once held: the version's stale 'running' runs are marked abandoned, and orphaned workspace
    snapshots and HTML files (a killed run's) are removed. `say` hears, once, that another run holds
    the version and that this one waits for it, and what was cleaned up.
    """
    from monitoring.slices import resolve_model_version
    from monitoring.workspace import remove_orphans

    with connect() as conn:
        version = resolve_model_version(conn, model_version)
    with advisory_lock(LOCK_NAME, version, on_wait=say) as conn:
        abandoned = abandon_stale_runs(conn, version)
        others_live = other_monitors_running(conn)
        removed = remove_orphans(
            _referenced_snapshots(conn), html_dir=html_dir, all_unreferenced=not others_live
        )
        if say and (abandoned or removed):
            say(
                f"cleaned up after a killed run: {abandoned} unfinished runs of {version} marked abandoned,"
                f" {removed} orphaned snapshot or HTML files removed"
            )
        yield version


def other_monitors_running(conn: psycopg.Connection) -> bool:
    """Whether another session holds a monitor lock (another model version's run is live)."""
    row = conn.execute(
        "select count(*) from pg_locks where locktype = 'advisory' and granted and objsubid = 2"
        " and pid <> pg_backend_pid()"
        " and database = (select oid from pg_database where datname = current_database())"
        " and classid::int8 = (hashtext(%s)::int8 & 4294967295)",
        (f"salesmon.{LOCK_NAME}",),
    ).fetchone()
    return bool(row[0])


def _referenced_snapshots(conn: psycopg.Connection) -> set[str]:
    rows = conn.execute("select snapshot_id from monitoring.runs where snapshot_id is not null").fetchall()
    return {row[0] for row in rows}
