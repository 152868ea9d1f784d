"""Named PostgreSQL advisory locks, held by a connection of their own for as long as a job runs.

A lock is a pair of 32-bit keys, `hashtext(name)` and `hashtext(key)`, in the warehouse's database.
The connection is named after the holder (`application_name`: job, key, pid and host), so that a
job that has to wait can say who holds the lock. The server releases a lock when its connection
ends, so a holder killed with SIGKILL (or a machine that died) never leaves it behind.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import psycopg

from warehouse.db import connect

# pg_locks shows the two keys as unsigned object ids
_HOLDER_SQL = """
select activity.application_name, activity.backend_start
from pg_locks as locks
inner join pg_stat_activity as activity on locks.pid = activity.pid
where locks.locktype = 'advisory' and locks.granted and locks.objsubid = 2
    and locks.database = (select oid from pg_database where datname = current_database())
    and locks.classid::int8 = (hashtext(%(name)s)::int8 & 4294967295)
    and locks.objid::int8 = (hashtext(%(key)s)::int8 & 4294967295)
"""


class LockBusy(RuntimeError):
    """Another run holds the lock and the caller did not want to wait (or waited too long)."""


def holder_label(name: str, key: str = "") -> str:
    """This process's name on the lock's connection: 'salesmon monitor <key> pid=123 host=box'."""
    label = f"salesmon {name} {key} pid={os.getpid()} host={socket.gethostname()}"
    return label[:63]  # PostgreSQL truncates application_name to 63 bytes


@contextmanager
def advisory_lock(
    name: str,
    key: str = "",
    *,
    on_wait: Callable[[str], None] | None = None,
    timeout_seconds: float | None = None,
) -> Iterator[psycopg.Connection]:
    """Hold the advisory lock (`name`, `key`) in the warehouse for the length of the block.

    When another run holds it, `on_wait` is told who (once) and the call waits for it, at most
    `timeout_seconds` when given (then `LockBusy`). Yields the lock's own connection (autocommit).
    """
    conn = connect(autocommit=True)
    try:
        conn.execute("select set_config('application_name', %s, false)", (holder_label(name, key),))
        params = {"name": f"salesmon.{name}", "key": key}
        acquired = conn.execute(
            "select pg_try_advisory_lock(hashtext(%(name)s), hashtext(%(key)s))", params
        ).fetchone()[0]
        if not acquired:
            holder = conn.execute(_HOLDER_SQL, params).fetchone()
            who = (
                f"{holder[0] or 'a session'} since {holder[1]:%Y-%m-%d %H:%M:%S}" if holder else "another run"
            )
            what = f"{name} {key}".strip()
            if on_wait:
                on_wait(f"another salesmon run holds {what} ({who}): waiting for it to finish")
            if timeout_seconds is not None:
                conn.execute(
                    "select set_config('lock_timeout', %s, false)", (f"{int(timeout_seconds * 1000)}ms",)
                )
            try:
                conn.execute("select pg_advisory_lock(hashtext(%(name)s), hashtext(%(key)s))", params)
            except psycopg.errors.LockNotAvailable as exc:
                raise LockBusy(f"{what} is held by {who}; gave up after {timeout_seconds:g} s") from exc
        yield conn
    finally:
        conn.close()  # releases the lock
