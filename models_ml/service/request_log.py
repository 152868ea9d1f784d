"""The request log: off the request path, bounded, and never losing a row.

A request puts its log rows into a bounded in-memory queue and returns. One background thread takes
them in batches and writes each batch with one COPY into a temporary table and one insert that
ignores rows already logged (the key is the request id and the item's index), so writing a batch
twice never duplicates it.

When the database cannot take a batch, the batch goes to a spill file under `spill_dir` (one JSON
array per line) and the writer tries the database again later, with a growing pause. Rows that
cannot wait for the queue (it is full, or the service is stopping) go to the spill file as well.
Spill files are replayed, then deleted, as soon as the database answers again, including at the
next start. Counters say how many rows were written, spilled and replayed.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from models_ml.features import FEATURES

# ml.prediction_log's columns as the service writes them (logged_at is the table's default).
FEATURE_COLUMNS: tuple[str, ...] = FEATURES[2:]
LOG_COLUMNS: tuple[str, ...] = (
    "request_id",
    "item_index",
    "received_at",
    "status",
    "error",
    "inputs",
    "sales_date",
    "store_nbr",
    "family",
    "model_version",
    "prediction",
    "latency_ms",
    *FEATURE_COLUMNS,
)
Row = Sequence[Any]  # one value per LOG_COLUMNS entry, JSON-ready (text, numbers, booleans, None)
Connect = Callable[[], psycopg.Connection]

_STAGE = sql.SQL(
    "create temp table if not exists prediction_log_batch"
    " (like ml.prediction_log including defaults) on commit delete rows"
)
_COPY = sql.SQL("copy prediction_log_batch ({}) from stdin").format(
    sql.SQL(", ").join(sql.Identifier(name) for name in LOG_COLUMNS)
)
_INSERT = sql.SQL(
    "insert into ml.prediction_log ({columns}) select {columns} from prediction_log_batch"
    " on conflict (request_id, item_index) do nothing"
).format(columns=sql.SQL(", ").join(sql.Identifier(name) for name in LOG_COLUMNS))

_INLINE_INSERT = sql.SQL("insert into ml.prediction_log ({}) values ({})").format(
    sql.SQL(", ").join(sql.Identifier(name) for name in LOG_COLUMNS),
    sql.SQL(", ").join(sql.Placeholder() * len(LOG_COLUMNS)),
)


def write_rows(conn: psycopg.Connection, rows: Iterable[Row]) -> int:
    """Write log rows in one transaction; rows already in the log are left as they are."""
    count = 0
    with conn.transaction():
        conn.execute(_STAGE)
        with conn.cursor() as cursor, cursor.copy(_COPY) as copy:
            for row in rows:
                copy.write_row(row)
                count += 1
        conn.execute(_INSERT)
    return count


@dataclass
class LogCounters:
    """What happened to the log rows since the service started."""

    submitted: int = 0
    written: int = 0
    spilled: int = 0
    replayed: int = 0
    write_failures: int = 0


class RequestLog:
    """A bounded queue and one writer thread in front of `ml.prediction_log`."""

    def __init__(
        self,
        connect: Connect,
        spill_dir: Path,
        *,
        capacity: int = 20_000,
        batch_size: int = 1_000,
        flush_interval: float = 0.1,
        linger: float = 0.05,
        retry_initial: float = 0.5,
        retry_max: float = 10.0,
    ) -> None:
        self._connect = connect
        self.spill_dir = Path(spill_dir)
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.linger = linger
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._queue: queue.Queue[Row] = queue.Queue(maxsize=capacity)
        self._counters = LogCounters()
        self._count_lock = threading.Lock()
        self._spill_lock = threading.Lock()
        self._spill_file: Any = None
        self._spill_number = 0
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: psycopg.Connection | None = None
        self._retry_pause = retry_initial
        self._next_attempt = 0.0
        self.database_up: bool | None = None  # None until the writer has tried

    # --- the request side ------------------------------------------------------------------

    def submit(self, rows: Iterable[Row]) -> None:
        """Queue rows for the writer without waiting; rows the queue cannot hold are spilled."""
        overflow: list[Row] = []
        for row in rows:
            self._count(submitted=1)
            if self._stopping.is_set():
                overflow.append(row)
                continue
            try:
                self._queue.put_nowait(row)
            except queue.Full:
                overflow.append(row)
        if overflow:
            self._spill(overflow)

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()

    def counters(self) -> LogCounters:
        with self._count_lock:
            return LogCounters(**vars(self._counters))

    def spill_files(self) -> list[Path]:
        """Spill files waiting to be replayed (this process's current one included)."""
        return sorted(self.spill_dir.glob("spill-*.jsonl")) if self.spill_dir.exists() else []

    # --- life cycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the writer; it replays any spill file left by an earlier run first."""
        self._thread = threading.Thread(target=self._run, name="prediction-log-writer", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 30.0) -> None:
        """Flush everything: write what the database takes, spill the rest. Idempotent."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        leftover = self._drain(None)
        if leftover:
            self._spill(leftover)
        self._close_spill_file()
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            self._conn = None

    # --- the writer thread -----------------------------------------------------------------

    def _run(self) -> None:
        self._replay()
        while True:
            batch = self._take()
            if batch:
                self._write_or_spill(batch)
            elif self._stopping.is_set():
                break
            if time.monotonic() >= self._next_attempt and self._has_spill():
                self._replay()
        # Stopping: one last chance for the spill files while the database is up.
        if self.database_up and self._has_spill():
            self._replay()

    def _take(self) -> list[Row]:
        """Up to `batch_size` rows: waits `flush_interval` for the first, `linger` for more to come.

        While the writer lingers nobody waits on the queue, so a request's put wakes no thread;
        the rows of many requests then go in one COPY. Stopping ends the lingering.
        """
        try:
            first = self._queue.get(timeout=self.flush_interval)
        except queue.Empty:
            return []
        if self._queue.qsize() < self.batch_size - 1:
            self._stopping.wait(self.linger)
        return [first, *self._drain(self.batch_size - 1)]

    def _drain(self, limit: int | None) -> list[Row]:
        rows: list[Row] = []
        while limit is None or len(rows) < limit:
            try:
                rows.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return rows

    def _write_or_spill(self, batch: list[Row]) -> None:
        if self.database_up is False and time.monotonic() < self._next_attempt:
            self._spill(batch)
            return
        if self._write(batch):
            self._count(written=len(batch))
        else:
            self._spill(batch)

    def _write(self, rows: list[Row]) -> bool:
        """Write rows; on failure note the database as down and when to try again."""
        try:
            if self._conn is None or self._conn.closed:
                self._conn = self._connect()
            write_rows(self._conn, rows)
        except (psycopg.Error, OSError):
            self._count(write_failures=1)
            if self._conn is not None:
                with contextlib.suppress(psycopg.Error):
                    self._conn.close()
                self._conn = None
            self.database_up = False
            self._next_attempt = time.monotonic() + self._retry_pause
            self._retry_pause = min(self._retry_pause * 2, self._retry_max)
            return False
        self.database_up = True
        self._retry_pause = self._retry_initial
        return True

    # --- spill files -----------------------------------------------------------------------

    def _spill(self, rows: list[Row]) -> None:
        with self._spill_lock:
            if self._spill_file is None:
                self.spill_dir.mkdir(parents=True, exist_ok=True)
                self._spill_number += 1
                name = f"spill-{os.getpid()}-{time.time_ns()}-{self._spill_number}.jsonl"
                self._spill_file = open(self.spill_dir / name, "a", encoding="utf-8")  # noqa: SIM115
            self._spill_file.write("".join(json.dumps(list(row)) + "\n" for row in rows))
            self._spill_file.flush()
        self._count(spilled=len(rows))

    def _close_spill_file(self) -> None:
        with self._spill_lock:
            if self._spill_file is not None:
                self._spill_file.flush()
                os.fsync(self._spill_file.fileno())
                self._spill_file.close()
                self._spill_file = None

    def _has_spill(self) -> bool:
        return self._spill_file is not None or any(self._replayable())

    def _replayable(self) -> list[Path]:
        """Closed spill files: this process's finished ones, and any left by a process that is gone."""
        files = []
        for path in self.spill_files():
            owner = path.name.split("-")[1]
            if owner == str(os.getpid()) or not _alive(int(owner)):
                files.append(path)
        return files

    def _replay(self) -> None:
        """Write every closed spill file to the database, then delete it; stop at the first failure."""
        self._close_spill_file()
        for path in self._replayable():
            try:
                rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
            except FileNotFoundError:  # another process replayed it
                continue
            for start in range(0, len(rows), self.batch_size):
                if not self._write(rows[start : start + self.batch_size]):
                    return
            path.unlink(missing_ok=True)
            self._count(replayed=len(rows))

    def _count(self, **amounts: int) -> None:
        with self._count_lock:
            for name, amount in amounts.items():
                setattr(self._counters, name, getattr(self._counters, name) + amount)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class InlineRequestLog:
    """The simple alternative, kept for the benchmark: each request inserts its own rows."""

    def __init__(self, connect: Connect) -> None:
        self._connect = connect
        self._local = threading.local()
        self._counters = LogCounters()
        self._lock = threading.Lock()
        self.database_up: bool | None = None
        self.queue_depth = 0

    def submit(self, rows: Iterable[Row]) -> None:
        """Insert the rows and commit, on this thread's own connection."""
        rows = list(rows)
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        with conn.transaction(), conn.cursor() as cursor:
            cursor.executemany(_INLINE_INSERT, rows)
        with self._lock:
            self._counters.submitted += len(rows)
            self._counters.written += len(rows)
        self.database_up = True

    def counters(self) -> LogCounters:
        with self._lock:
            return LogCounters(**vars(self._counters))

    def start(self) -> None:
        return None

    def close(self, timeout: float = 30.0) -> None:
        return None
