"""The raw loader: Kaggle-format CSV files into `raw.*`, validated, idempotent, with COPY.

Modules: `specs` (the files, their columns and keys, the plausible dates, the folder checks),
`lines` (a line's structure: encoding, control characters, quotes, columns), `rules` (the one set of
value rules, vectorised), `check` (a file's lines through both, repeated keys), `store` (COPY,
comparison with the stored rows, rejected lines, the load log and the changed days), `summary`
(what a load did). Each file loads in its own transaction, all or nothing.

Why validation runs in numpy and not in SQL after a COPY into a text landing table: measured by
bench/bench_sql_landing.py on the full train.csv (3 million lines, 2 busy cores), the SQL way (split
with string_to_array, the same checks as regular expressions and pg_input_is_valid) ran at 23,000
rows/s, ten times slower than this loader (235,000) and far below the 200,000 rows/s it must keep.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import numpy as np
import psycopg
from psycopg import sql

from warehouse.loader.check import FileCheck
from warehouse.loader.rules import Context
from warehouse.loader.specs import FILE_SPECS, DateRange, FileSpec, LoadError, check_folder
from warehouse.loader.store import copy_direct, merge_staged, present_partitions, record_load, store_rejected
from warehouse.loader.summary import FileLoad, LoadSummary

__all__ = [
    "FILE_SPECS",
    "DateRange",
    "FileLoad",
    "LoadError",
    "LoadSummary",
    "empty_raw_tables",
    "load_folder",
]


def load_folder(
    data_dir: Path,
    *,
    update: bool = False,
    partial: bool = False,
    dates: DateRange | None = None,
    progress: Callable[[str], None] | None = None,
) -> LoadSummary:
    """Load the Kaggle CSV files of `data_dir` into raw.* and return what happened per file.

    stores, oil, holidays_events, transactions and train are required, test is loaded when present.
    All headers are checked before anything is loaded (a problem raises LoadError, one line). Each
    file loads in its own transaction: all of it or nothing. A row whose key is new is inserted; one
    already stored with the same values is skipped; one stored with other values is counted per day
    and, with `update`, replaces the stored row (otherwise skipped). Bad lines go to
    raw.rejected_rows with a reason, among them dates outside `dates` (default DateRange.from_env():
    2000-01-01 .. today, and up to a year ahead for test.csv). One raw.load_log row is written per
    file, and the days inserted or replaced go to raw.changed_days. With `partial` (a landing folder
    with a day's new files), only the files present are loaded, none is required.
    """
    from warehouse.db import connect

    files = check_folder(Path(data_dir), partial=partial)
    dates = dates or DateRange.from_env()
    summary = LoadSummary()
    with connect(autocommit=True) as conn:
        conn.execute("set temp_buffers = '512MB'")  # before the session's first temp table
        conn.execute("set work_mem = '256MB'")  # the comparison with stored rows hashes them in memory
        for spec, path in files:
            result = _load_file(conn, spec, path, dates, update=update)
            summary.files.append(result)
            if progress is not None:
                progress(result.describe())
    return summary


def empty_raw_tables(conn: psycopg.Connection) -> None:
    """Empty every raw table (the loaded files, their rejected lines, the load log and the changed
    days): tests and benchmarks load another data set into the same warehouse this way."""
    tables = [*(spec.table for spec in FILE_SPECS), "rejected_rows", "load_log", "changed_days"]
    conn.execute(
        sql.SQL("truncate {}").format(sql.SQL(", ").join(sql.Identifier("raw", table) for table in tables))
    )


def _load_file(
    conn: psycopg.Connection, spec: FileSpec, path: Path, dates: DateRange, *, update: bool
) -> FileLoad:
    """Validate one file and load it in one transaction; returns its counts."""
    started = time.monotonic()
    table = sql.Identifier("raw", spec.table)
    with conn.transaction():
        # One loader per table at a time; readers are not blocked (except while an empty table's
        # primary key is rebuilt, see store.copy_direct).
        conn.execute(sql.SQL("lock table {} in share row exclusive mode").format(table))
        known_stores = None
        if any(column.store_ref for column in spec.columns):
            known_stores = np.array(
                [row[0] for row in conn.execute("select store_nbr from raw.stores")], dtype=np.int64
            )
        first_day, last_day = dates.bounds(spec)
        context = Context(first_day, last_day, known_stores)
        check = FileCheck(spec, path.read_bytes(), context, present_partitions(conn, spec))
        loaded = copy_direct(conn, spec, check)
        staged = check.payload(in_table=True)
        merge = merge_staged(conn, spec, staged, update=update) if staged.count else None
        store_rejected(conn, spec.file_name, check.rejected)
        inserted = (merge.inserted if merge else 0) + (merge.changed if merge and update else 0)
        changed = merge.changed if merge else 0
        result = FileLoad(
            file_name=spec.file_name,
            rows_read=check.rows_read,
            rows_loaded=loaded + inserted,
            rows_rejected=len(check.rejected),
            rows_skipped=staged.count - inserted,
            seconds=time.monotonic() - started,
            rows_changed=changed,
            updated=update,
            changed_days=dict(merge.changed_days) if merge else {},
        )
        if not result.adds_up():
            raise AssertionError(f"{spec.file_name}: counts do not add up: {result}")
        inserted_days = {_day(key): count for key, count in check.direct_days.items()}
        if merge:
            for day, count in merge.inserted_days.items():
                inserted_days[day] = inserted_days.get(day, 0) + count
        record_load(
            conn,
            spec,
            str(path.resolve()),
            (result.rows_read, result.rows_loaded, result.rows_rejected, result.rows_skipped, changed),
            result.seconds,
            inserted_days,
            result.changed_days,
            update=update,
        )
    result.seconds = time.monotonic() - started
    return result


def _day(value: int) -> date:
    return date(value // 10000, value // 100 % 100, value % 100)
