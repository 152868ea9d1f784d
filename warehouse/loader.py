"""The raw loader: Kaggle-format CSV files into `raw.*`, validated, idempotent, with COPY.

Each file is read whole and checked line by line: a vectorised (numpy) pass accepts the common,
plain lines (ASCII, the right number of fields, at most one quoted field such as
"LIQUOR,WINE,BEER", well-formed values); every other line goes through the same rules in plain
Python, which decide and word the rejection reason. Good lines go to PostgreSQL with COPY in one
transaction per file: lines of days (or stores) the table does not have yet straight into the raw
table, block by block while the next block is checked; the others through a staging table and an
anti-join, so that rows already present are skipped. Bad lines land in `raw.rejected_rows` with
their 1-based line number (the header is line 1), the line as read and a readable reason.

Empty lines are not rows (neither read nor rejected). CRLF line ends and a UTF-8 byte-order mark
are accepted. A quoted value may hold commas and doubled quotes but not a line break (the Kaggle
files have none): such a line is rejected as malformed.
"""

from __future__ import annotations

import csv
import io
import math
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
from psycopg import sql
from psycopg.copy import QueuedLibpqWriter

__all__ = ["FILE_SPECS", "FileLoad", "LoadError", "LoadSummary", "load_folder"]

# Widths the vectorised pass handles; longer values take the Python path (same rules, slower).
_INT_DIGITS = 9  # always within integer
_BIGINT_DIGITS = 18  # always within bigint
_NUMBER_CHARS = 24
_KEY_TEXT_CHARS = 64
_BLOCK_BYTES = 8 << 20  # checked, then sent, one block of whole lines at a time
_PADDING = 64  # >= every width the vectorised pass reads
_COPY_BLOCK = 8 << 20

_INT_LIMITS = {"int": (-(2**31), 2**31 - 1), "count": (0, 2**31 - 1), "bigint": (-(2**63), 2**63 - 1)}
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_INT_RE = re.compile(r"[+-]?[0-9]+")
_NUMBER_RE = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_MANTISSA_NONZERO_RE = re.compile(r"^[^eE]*[1-9]")
# A line whose quotes PostgreSQL's and Python's CSV readers both read the same way.
_QUOTED_LINE_RE = re.compile(r'(?:"(?:[^"]|"")*"|[^",]*)(?:,(?:"(?:[^"]|"")*"|[^",]*))*')

# Which of the first 16 bytes of a yyyy-mm-dd field must be digits, and which hyphens.
_DATE_DIGITS = np.zeros(16, dtype=bool)
_DATE_DIGITS[[0, 1, 2, 3, 5, 6, 8, 9]] = True
_DATE_HYPHENS = np.zeros(16, dtype=bool)
_DATE_HYPHENS[[4, 7]] = True
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


class LoadError(Exception):
    """A user mistake in the data folder (missing folder or file, wrong header): nothing was loaded."""


@dataclass(frozen=True)
class Column:
    """One CSV column. `kind`: date, int, bigint, count (integer >= 0), amount (number >= 0), number,
    text or bool. `required` columns may not be empty; the others load an empty value as NULL."""

    name: str
    kind: str
    required: bool = False
    store_ref: bool = False  # must name a store in raw.stores


@dataclass(frozen=True)
class FileSpec:
    """One Kaggle file: its raw table, its columns in header order and the table's key."""

    file_name: str
    table: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    required_file: bool = True

    @property
    def header(self) -> str:
        return ",".join(column.name for column in self.columns)


def _required(name: str, kind: str, *, store_ref: bool = False) -> Column:
    return Column(name, kind, required=True, store_ref=store_ref)


# In load order: stores first, because train, test and transactions are checked against raw.stores.
FILE_SPECS: tuple[FileSpec, ...] = (
    FileSpec(
        "stores.csv",
        "stores",
        (
            _required("store_nbr", "int"),
            Column("city", "text"),
            Column("state", "text"),
            Column("type", "text"),
            Column("cluster", "int"),
        ),
        key=("store_nbr",),
    ),
    FileSpec("oil.csv", "oil", (_required("date", "date"), Column("dcoilwtico", "number")), key=("date",)),
    FileSpec(
        "holidays_events.csv",
        "holidays_events",
        (
            _required("date", "date"),
            _required("type", "text"),
            _required("locale", "text"),
            _required("locale_name", "text"),
            _required("description", "text"),
            Column("transferred", "bool"),
        ),
        key=("date", "type", "locale", "locale_name", "description"),
    ),
    FileSpec(
        "transactions.csv",
        "transactions",
        (
            _required("date", "date"),
            _required("store_nbr", "int", store_ref=True),
            Column("transactions", "count"),
        ),
        key=("date", "store_nbr"),
    ),
    FileSpec(
        "train.csv",
        "train",
        (
            _required("id", "bigint"),
            _required("date", "date"),
            _required("store_nbr", "int", store_ref=True),
            _required("family", "text"),
            Column("sales", "amount"),
            Column("onpromotion", "count"),
        ),
        key=("date", "store_nbr", "family"),
    ),
    FileSpec(
        "test.csv",
        "test",
        (
            _required("id", "bigint"),
            _required("date", "date"),
            _required("store_nbr", "int", store_ref=True),
            _required("family", "text"),
            Column("onpromotion", "count"),
        ),
        key=("date", "store_nbr", "family"),
        required_file=False,
    ),
)


@dataclass
class FileLoad:
    """What happened to one file: rows read = loaded + rejected + skipped (already present).

    A bad line counts as rejected at every load of the file, though raw.rejected_rows keeps it once.
    """

    file_name: str
    rows_read: int
    rows_loaded: int
    rows_rejected: int
    rows_skipped: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.rows_read / self.seconds if self.seconds > 0 else 0.0

    def describe(self) -> str:
        return (
            f"{self.file_name}: {self.rows_read:,} rows read, {self.rows_loaded:,} loaded, "
            f"{self.rows_rejected:,} rejected, {self.rows_skipped:,} skipped in {self.seconds:.1f} s "
            f"({self.rows_per_second:,.0f} rows/s)"
        )


@dataclass
class LoadSummary:
    """The files of one load, in load order."""

    files: list[FileLoad] = field(default_factory=list)

    def render(self) -> str:
        """A short table: file, rows read, loaded, rejected, skipped (already present), seconds, rows/s."""
        head = ("file", "read", "loaded", "rejected", "skipped", "seconds", "rows/s")
        rows = [
            (
                item.file_name,
                f"{item.rows_read:,}",
                f"{item.rows_loaded:,}",
                f"{item.rows_rejected:,}",
                f"{item.rows_skipped:,}",
                f"{item.seconds:.1f}",
                f"{item.rows_per_second:,.0f}",
            )
            for item in self.files
        ]
        widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]
        lines = [
            "  ".join(
                cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row)
            )
            for row in [head, *rows]
        ]
        return "\n".join(lines)


def load_folder(data_dir: Path, *, progress: Callable[[str], None] | None = None) -> LoadSummary:
    """Load the Kaggle CSV files of `data_dir` into raw.* and return what happened per file.

    stores, oil, holidays_events, transactions and train are required, test is loaded when present.
    All headers are checked before anything is loaded (a problem raises LoadError, one line). Each
    file loads in its own transaction: all of it or nothing. Rows whose key is already in the table
    are skipped, so loading a folder twice changes nothing, and a folder with more days adds only
    those. Bad lines go to raw.rejected_rows with a reason; one raw.load_log row is written per file.
    """
    from warehouse.db import connect

    files = _check_folder(Path(data_dir))
    summary = LoadSummary()
    with connect(autocommit=True) as conn:
        conn.execute("set temp_buffers = '512MB'")  # before the session's first temp table
        for spec, path in files:
            result = _load_file(conn, spec, path)
            summary.files.append(result)
            if progress is not None:
                progress(result.describe())
    return summary


# --- checks before loading ---------------------------------------------------------------------


def empty_raw_tables(conn: psycopg.Connection) -> None:
    """Empty every raw table (the loaded files, their rejected lines and the load log): tests and
    benchmarks load another data set into the same warehouse this way."""
    tables = [*(spec.table for spec in FILE_SPECS), "rejected_rows", "load_log"]
    conn.execute(
        sql.SQL("truncate {}").format(sql.SQL(", ").join(sql.Identifier("raw", table) for table in tables))
    )


def _check_folder(data_dir: Path) -> list[tuple[FileSpec, Path]]:
    """The files to load, in order; raises LoadError naming every missing file and wrong header."""
    if not data_dir.is_dir():
        raise LoadError(f"data folder {data_dir} does not exist (or is not a folder)")
    problems: list[str] = []
    files: list[tuple[FileSpec, Path]] = []
    for spec in FILE_SPECS:
        path = data_dir / spec.file_name
        if not path.is_file():
            if spec.required_file:
                problems.append(
                    f"{spec.file_name}: file not found in {data_dir}, expected header '{spec.header}'"
                )
            continue
        header = _read_header(path)
        if header != spec.header:
            problems.append(f"{spec.file_name}: header is '{header}', expected '{spec.header}'")
        files.append((spec, path))
    if problems:
        raise LoadError("; ".join(problems))
    return files


def _read_header(path: Path) -> str:
    """The first line of a file, without a byte-order mark or line end (shortened when very long)."""
    with open(path, "rb") as handle:
        first = handle.readline(1 << 16)
    header = first.removeprefix(b"\xef\xbb\xbf").rstrip(b"\r\n").decode("utf-8", errors="replace")
    return header if len(header) <= 200 else header[:200] + "..."


# --- one file ----------------------------------------------------------------------------------


def _load_file(conn: psycopg.Connection, spec: FileSpec, path: Path) -> FileLoad:
    """Validate one file and load it in one transaction; returns its counts."""
    started = time.monotonic()
    table = sql.Identifier("raw", spec.table)
    with conn.transaction():
        # One loader per table at a time; readers are not blocked (except while an empty table's
        # primary key is rebuilt, see _copy_direct).
        conn.execute(sql.SQL("lock table {} in share row exclusive mode").format(table))
        known_stores = None
        if any(column.store_ref for column in spec.columns):
            known_stores = np.array(
                [row[0] for row in conn.execute("select store_nbr from raw.stores")], dtype=np.int64
            )
        check = _FileCheck(spec, path.read_bytes(), known_stores, _present_partitions(conn, spec))
        loaded = _copy_direct(conn, spec, check)
        staged = check.payload(in_table=True)
        staged_loaded = _copy_new_only(conn, spec, staged) if staged.count else 0
        _store_rejected(conn, spec.file_name, check.rejected)
        result = FileLoad(
            file_name=spec.file_name,
            rows_read=check.rows_read,
            rows_loaded=loaded + staged_loaded,
            rows_rejected=len(check.rejected),
            rows_skipped=staged.count - staged_loaded,
            seconds=time.monotonic() - started,
        )
        if result.rows_read != result.rows_loaded + result.rows_rejected + result.rows_skipped:
            raise AssertionError(f"{spec.file_name}: counts do not add up: {result}")
        conn.execute(
            """
            insert into raw.load_log
                (file_name, source_path, rows_read, rows_loaded, rows_rejected, rows_skipped, seconds)
            values (%s, %s, %s, %s, %s, %s, %s)
            """,
            (spec.file_name, str(path.resolve()), result.rows_read, result.rows_loaded, result.rows_rejected,
             result.rows_skipped, result.seconds),
        )  # fmt: skip
    result.seconds = time.monotonic() - started
    return result


def _present_partitions(conn: psycopg.Connection, spec: FileSpec) -> set[int]:
    """The values of the key's first column (days as yyyymmdd, or stores) the raw table has already.

    A loose index scan on the primary key: one probe per distinct value, not one per row.
    """
    column = sql.Identifier(spec.key[0])
    query = sql.SQL(
        """
        with recursive present (value) as (
            (select {column} from {table} order by {column} limit 1)
            union all
            select (
                select existing.{column} from {table} as existing
                where existing.{column} > present.value order by existing.{column} limit 1
            )
            from present
            where present.value is not null
        )
        select value from present where value is not null
        """
    ).format(column=column, table=sql.Identifier("raw", spec.table))
    return {_date_to_int(value) if isinstance(value, date) else value for (value,) in conn.execute(query)}


@dataclass
class _Payload:
    """CSV text for COPY and its number of rows."""

    data: bytes
    count: int


def _copy_statement(spec: FileSpec, target: sql.Composable) -> sql.Composed:
    columns = sql.SQL(", ").join(sql.Identifier(column.name) for column in spec.columns)
    return sql.SQL("copy {} ({}) from stdin with (format csv)").format(target, columns)


def _write(conn: psycopg.Connection, statement: sql.Composed, payload: _Payload) -> None:
    view = memoryview(payload.data)
    with conn.cursor() as cursor, cursor.copy(statement) as copy:
        for offset in range(0, len(view), _COPY_BLOCK):
            copy.write(view[offset : offset + _COPY_BLOCK])


class _Retry(Exception):
    """The rows already sent repeat a key: send them again, without the repeats."""


def _copy_direct(conn: psycopg.Connection, spec: FileSpec, check: _FileCheck) -> int:
    """Validate the file while COPYing its rows of days (or stores) new to the table into it.

    Validation and COPY overlap: each block of lines goes to the server as soon as it is checked,
    and a writer thread sends it while the next block is checked. Whether a key repeats is only
    known at the end; in that (rare) case the COPY is undone and done again without the repeats.
    Into an empty table, the primary key is dropped and built again after the COPY (PostgreSQL's
    advice for bulk loads: about twice as fast as maintaining the index row by row), inside the
    file's transaction, so readers never see the table without its key.
    """
    table = sql.Identifier("raw", spec.table)
    statement = _copy_statement(spec, table)
    constraint = _rebuildable_primary_key(conn, spec)
    blocks = check.run()
    try:
        with conn.transaction():  # a savepoint, undone on retry
            _drop_key(conn, table, constraint)
            with conn.cursor() as cursor, cursor.copy(statement, writer=QueuedLibpqWriter(cursor)) as copy:
                for block in blocks:
                    if block:
                        copy.write(block)
                if check.direct_duplicates:
                    raise _Retry
            _add_key(conn, table, constraint)
        return check.direct_count
    except Exception:
        for _ in blocks:  # the server may stop a COPY early on a repeated key: finish the check
            pass
        if not check.direct_duplicates:
            raise
    payload = check.payload(in_table=False)
    _drop_key(conn, table, constraint)
    _write(conn, statement, payload)
    _add_key(conn, table, constraint)
    return payload.count


def _rebuildable_primary_key(conn: psycopg.Connection, spec: FileSpec) -> tuple[str, str] | None:
    """(name, definition) of the table's primary key when the table is empty and nothing refers to it."""
    table = sql.Identifier("raw", spec.table)
    if not conn.execute(sql.SQL("select not exists (select from {})").format(table)).fetchone()[0]:
        return None
    return conn.execute(
        """
        select primary_key.conname, pg_get_constraintdef(primary_key.oid)
        from pg_constraint as primary_key
        where primary_key.conrelid = %(table)s::regclass and primary_key.contype = 'p'
            and not exists (
                select from pg_constraint as foreign_key where foreign_key.confrelid = %(table)s::regclass
            )
        """,
        {"table": f"raw.{spec.table}"},
    ).fetchone()


def _drop_key(conn: psycopg.Connection, table: sql.Identifier, constraint: tuple[str, str] | None) -> None:
    if constraint:
        conn.execute(
            sql.SQL("alter table {} drop constraint {}").format(table, sql.Identifier(constraint[0]))
        )


def _add_key(conn: psycopg.Connection, table: sql.Identifier, constraint: tuple[str, str] | None) -> None:
    if constraint:
        conn.execute(
            sql.SQL("alter table {} add constraint {} {}").format(
                table, sql.Identifier(constraint[0]), sql.SQL(constraint[1])
            )
        )


def _copy_new_only(conn: psycopg.Connection, spec: FileSpec, payload: _Payload) -> int:
    """COPY rows into a staging table and insert those whose key is not in the raw table yet."""
    table = sql.Identifier("raw", spec.table)
    columns = sql.SQL(", ").join(sql.Identifier(column.name) for column in spec.columns)
    conn.execute(
        sql.SQL("create temp table loader_stage on commit drop as select {} from {} with no data").format(
            columns, table
        )
    )
    _write(conn, _copy_statement(spec, sql.Identifier("loader_stage")), payload)
    matches = sql.SQL(" and ").join(
        sql.SQL("existing.{name} = staged.{name}").format(name=sql.Identifier(name)) for name in spec.key
    )
    cursor = conn.execute(
        sql.SQL(
            "insert into {table} ({columns}) select {columns} from loader_stage as staged "
            "where not exists (select from {table} as existing where {matches})"
        ).format(table=table, columns=columns, matches=matches)
    )
    return cursor.rowcount


def _store_rejected(conn: psycopg.Connection, file_name: str, rejected: list[tuple[int, str, str]]) -> None:
    """Record bad lines; one already recorded by an earlier load (same line, same text) is not added again."""
    if not rejected:
        return
    conn.execute(
        "create temp table loader_rejected (line_number integer, raw_line text, reason text) on commit drop"
    )
    with (
        conn.cursor() as cursor,
        cursor.copy("copy loader_rejected (line_number, raw_line, reason) from stdin") as copy,
    ):
        for row in rejected:
            copy.write_row(row)
    conn.execute(
        """
        insert into raw.rejected_rows (file_name, line_number, raw_line, reason)
        select %s, line_number, raw_line, reason from loader_rejected
        on conflict do nothing
        """,
        (file_name,),
    )


# --- validation --------------------------------------------------------------------------------


class _Reject(Exception):
    """A line breaks a rule; the message is the reason."""


class _FileCheck:
    """One file's validation: which lines load (and how they are sent), which are rejected and why.

    `run()` checks the file block by block and yields, per block, the CSV bytes of its accepted rows
    whose first key value (a day, or a store) is not in the table yet; after it, `rejected`,
    `payload()` and the counts are final. Lines the vectorised pass accepts are sent as read; the
    others as rewritten by the Python path.
    """

    def __init__(self, spec: FileSpec, data: bytes, known_stores: np.ndarray | None, present: set[int]):
        if b"\r\n" in data:
            data = data.replace(b"\r\n", b"\n")
        if not data.endswith(b"\n"):
            data += b"\n"
        self.spec = spec
        self.data = data
        # Zero padding lets the vectorised pass read a fixed width past any field.
        self.padded = np.zeros(len(data) + _PADDING, dtype=np.uint8)
        self.padded[: len(data)] = np.frombuffer(data, dtype=np.uint8)
        self.known_stores = known_stores
        self.present = np.array(sorted(present), dtype=np.int64)
        self.present_set = set(present)
        self.key_positions = [i for i, column in enumerate(spec.columns) if column.name in spec.key]
        self.codes = _TextCodes()
        self.fast = _FastPass(spec, self.padded, known_stores, self.codes)
        # Filled by run():
        self.rows_read = 0
        self.starts = np.zeros(0, dtype=np.int64)  # where each body line starts in data
        self.ends = np.zeros(0, dtype=np.int64)  # where it ends (its newline)
        self.fast_lines = np.zeros(0, dtype=np.int64)  # line indexes the vectorised pass accepted
        self.fast_keys = np.zeros((0, len(self.key_positions)), dtype=np.int64)  # their key codes
        self.slow_rows: list[tuple[int, int, str]] = []  # (line index, first key code, CSV line): Python path
        self.rejected: list[tuple[int, str, str]] = []  # (line number, raw line, reason)
        self.direct_count = 0  # rows run() yielded
        self.direct_duplicates = False  # whether a repeated key was among them

    def run(self) -> Iterator[bytes]:
        """Check the file block by block, yielding the accepted rows new to the table as CSV bytes.

        Line indexes count body lines from 0: line index i is line number i + 2 in the file.
        """
        known = set(self.known_stores.tolist()) if self.known_stores is not None else None
        starts, ends, fast_parts, key_parts, slow_rows, slow_keys = [], [], [], [], [], []
        rejected: dict[int, tuple[int, str, str]] = {}
        base = 0  # line index of the block's first line
        begin = self.data.index(b"\n") + 1  # after the header
        while begin < len(self.data):
            end = self.data.index(b"\n", min(begin + _BLOCK_BYTES, len(self.data)) - 1) + 1
            scan = _Scan(self.padded, begin, end, len(self.spec.columns))
            # Vectorised pass over the block's candidate lines.
            chunk = scan.candidates()
            field_begin, field_length, ok = scan.fields(chunk)
            column_ok, keys = self.fast.check(field_begin, field_length, self.key_positions)
            ok &= column_ok
            fast_lines, keys = chunk[ok], keys[ok]
            # Python path for every other non-blank line of the block.
            others = scan.nonblank.copy()
            others[fast_lines] = False
            block_slow = []
            for local in np.flatnonzero(others).tolist():
                raw = self.data[scan.starts[local] : scan.ends[local]]
                try:
                    values = _check_line(self.spec, raw, known)
                except _Reject as problem:
                    rejected[base + local] = (base + local + 2, _printable(raw), str(problem))
                    continue
                codes = [_key_code(values[i], self.codes) for i in self.key_positions]
                block_slow.append((base + local, codes[0], _to_csv(values)))
                slow_keys.append(codes)
            new = ~np.isin(keys[:, 0], self.present)
            new_slow = [row[2] for row in block_slow if row[1] not in self.present_set]
            self.direct_count += int(new.sum()) + len(new_slow)
            yield _line_bytes(self.data, scan.starts, scan.ends, fast_lines[new]) + "".join(new_slow).encode()
            self.rows_read += int(scan.nonblank.sum())
            starts.append(scan.starts)
            ends.append(scan.ends)
            fast_parts.append(fast_lines + base)
            key_parts.append(keys)
            slow_rows.extend(block_slow)
            base += scan.count
            begin = end
        self.starts = np.concatenate([self.starts, *starts])
        self.ends = np.concatenate([self.ends, *ends])
        self.fast_lines = np.concatenate([self.fast_lines, *fast_parts])
        self.fast_keys = np.concatenate([self.fast_keys, *key_parts])
        self.slow_rows = slow_rows
        self._drop_repeated_keys(
            np.array(slow_keys, dtype=np.int64).reshape(-1, len(self.key_positions)), rejected
        )
        self.rejected = sorted(rejected.values())

    def line(self, index: int) -> bytes:
        """A body line as read (without its newline)."""
        return self.data[self.starts[index] : self.ends[index]]

    def _drop_repeated_keys(self, slow_keys: np.ndarray, rejected: dict[int, tuple[int, str, str]]) -> None:
        """Reject every later occurrence of a key (in line order) among the accepted rows."""
        slow_index = np.array([row[0] for row in self.slow_rows], dtype=np.int64)
        all_lines = np.concatenate([self.fast_lines, slow_index])
        all_keys = np.concatenate([self.fast_keys, slow_keys])
        if len(slow_index):
            order = np.argsort(all_lines, kind="stable")
            all_lines, all_keys = all_lines[order], all_keys[order]
        duplicate = _later_occurrences(all_keys)
        if not duplicate.any():
            return
        frame = pd.DataFrame(all_keys)
        firsts = frame[~duplicate].assign(first_line=all_lines[~duplicate])
        repeated = frame[duplicate].assign(dup_line=all_lines[duplicate])
        pairs = repeated.merge(firsts, on=list(frame.columns))
        for index, first in zip(pairs["dup_line"].tolist(), pairs["first_line"].tolist(), strict=True):
            raw = self.line(index)
            rejected[index] = (index + 2, _printable(raw), _duplicate_reason(self.spec, raw, first + 2))
        self.direct_duplicates = bool((~np.isin(all_keys[duplicate, 0], self.present)).any())
        keep_fast = ~np.isin(self.fast_lines, all_lines[duplicate])
        self.fast_lines, self.fast_keys = self.fast_lines[keep_fast], self.fast_keys[keep_fast]
        self.slow_rows = [row for row in self.slow_rows if row[0] not in rejected]

    def payload(self, *, in_table: bool) -> _Payload:
        """The accepted rows whose first key value the table has (in_table) or has not, as CSV."""
        fast = np.isin(self.fast_keys[:, 0], self.present) == in_table
        slow = [row[2] for row in self.slow_rows if (row[1] in self.present_set) == in_table]
        data = _line_bytes(self.data, self.starts, self.ends, self.fast_lines[fast]) + "".join(slow).encode()
        return _Payload(data, int(fast.sum()) + len(slow))


def _line_bytes(data: bytes, starts: np.ndarray, ends: np.ndarray, lines: np.ndarray) -> bytes:
    """The bytes of these lines (ascending indexes into starts/ends), newlines included, run by run."""
    if len(lines) == 0:
        return b""
    breaks = np.flatnonzero(np.diff(lines) != 1)
    run_first = lines[np.r_[0, breaks + 1]]
    run_last = lines[np.r_[breaks, len(lines) - 1]]
    view = memoryview(data)
    return b"".join(
        view[begin : end + 1]
        for begin, end in zip(starts[run_first].tolist(), ends[run_last].tolist(), strict=True)
    )


def _date_to_int(value: date) -> int:
    return value.year * 10000 + value.month * 100 + value.day


def _parse(
    spec: FileSpec, data: bytes, known_stores: np.ndarray | None, present: set[int] | None = None
) -> _FileCheck:
    """Check a whole file without sending anything (tests, tools)."""
    check = _FileCheck(spec, data, known_stores, present or set())
    for _ in check.run():
        pass
    return check


def _later_occurrences(keys: np.ndarray) -> np.ndarray:
    """For rows of integer key codes in line order: True where the same key came earlier."""
    if len(keys) == 0:
        return np.zeros(0, dtype=bool)
    low, high = keys.min(axis=0), keys.max(axis=0)
    spans = [int(span) for span in high - low + 1]
    if math.prod(spans) >= 2**62:
        return pd.DataFrame(keys).duplicated(keep="first").to_numpy()
    combined = np.zeros(len(keys), dtype=np.int64)
    for position, span in enumerate(spans):
        combined = combined * span + (keys[:, position] - low[position])
    # A stable sort keeps equal keys in line order; files sorted by key make it near linear.
    order = np.argsort(combined, kind="stable")
    ordered = combined[order]
    later = np.zeros(len(keys), dtype=bool)
    later[order[1:][ordered[1:] == ordered[:-1]]] = True
    return later


class _Scan:
    """Where the lines, commas and quotes of one block of whole lines are (positions in the file)."""

    def __init__(self, padded: np.ndarray, begin: int, end: int, columns: int) -> None:
        self.columns = columns
        buf = padded[begin:end]
        newlines = np.flatnonzero(buf == 10) + begin
        self.starts = np.concatenate([[begin], newlines[:-1] + 1])
        self.ends = newlines
        self.count = len(newlines)
        self.nonblank = self.ends > self.starts  # empty lines are not rows: neither read nor rejected
        self.commas = np.flatnonzero(buf == 44) + begin
        self.first_comma, self.comma_count = self._per_line(self.commas)
        self.quotes = np.flatnonzero(buf == 34) + begin
        self.first_quote, self.quote_count = self._per_line(self.quotes)
        # Lines with CR, NUL or non-ASCII bytes always take the Python path.
        odd = np.flatnonzero((buf >= 128) | (buf == 13) | (buf == 0)) + begin
        self.special = np.zeros(self.count, dtype=bool)
        self.special[np.searchsorted(self.starts, odd, side="right") - 1] = True

    def _per_line(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For sorted byte positions: the index of each line's first one, and how many each line has."""
        first = np.searchsorted(positions, self.starts)
        # a line runs up to the next line's start (its newline is neither a comma nor a quote)
        return first, np.diff(first, append=len(positions))

    def candidates(self) -> np.ndarray:
        """Lines the vectorised pass may accept: plain, with no quotes or one quoted field."""
        plain = self.nonblank & ~self.special & ((self.quote_count == 0) | (self.quote_count == 2))
        return np.flatnonzero(plain & (self.comma_count >= self.columns - 1))

    def fields(self, lines: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(begin, length) of every field of these lines, and whether the split is certain.

        A line with two quotes qualifies when they wrap one whole, non-empty field (like
        "LIQUOR,WINE,BEER"): the commas between them are not separators, the quotes not content.
        """
        count, commas = self.columns, self.commas
        separators = self.first_comma[lines, None] + np.arange(count - 1)  # index into commas
        ok = self.comma_count[lines] == count - 1
        quoted = np.flatnonzero(self.quote_count[lines] == 2)
        if len(quoted):
            first_quote = self.first_quote[lines[quoted]]
            open_at, close_at = self.quotes[first_quote], self.quotes[first_quote + 1]
            comma_after_open = np.searchsorted(commas, open_at)
            inside = np.searchsorted(commas, close_at) - comma_after_open
            ok[quoted] = self.comma_count[lines[quoted]] - inside == count - 1
            shifted = separators[quoted]
            separators[quoted] = np.where(
                shifted >= comma_after_open[:, None], shifted + inside[:, None], shifted
            )
        at = commas[np.minimum(separators, max(len(commas) - 1, 0))] if len(commas) else separators
        begin = np.empty((len(lines), count), dtype=np.int64)
        end = np.empty((len(lines), count), dtype=np.int64)
        begin[:, 0] = self.starts[lines]
        begin[:, 1:] = at + 1
        end[:, :-1] = at
        end[:, -1] = self.ends[lines]
        if len(quoted):
            wraps = (
                (begin[quoted] == open_at[:, None])
                & (end[quoted] == close_at[:, None] + 1)
                & (close_at > open_at + 1)[:, None]
            )
            ok[quoted] &= wraps.any(axis=1)
            begin[quoted] += wraps
            end[quoted] -= wraps
        return begin, end - begin, ok


def _printable(raw: bytes) -> str:
    """The line as text for raw.rejected_rows (which cannot hold NUL or invalid UTF-8)."""
    return raw.decode("utf-8", errors="replace").replace("\x00", "\ufffd")


def _duplicate_reason(spec: FileSpec, raw: bytes, first_line: int) -> str:
    fields = _split(raw.decode("utf-8"))
    names = [column.name for column in spec.columns]
    shown = ", ".join(fields[names.index(name)] for name in spec.key)
    return f"duplicate key ({', '.join(spec.key)}) = ({shown}), first on line {first_line}"


def _split(text: str) -> list[str]:
    if '"' not in text:
        return text.split(",")
    if not _QUOTED_LINE_RE.fullmatch(text):
        raise _Reject("malformed quotes")
    return next(csv.reader([text]))


def _check_line(spec: FileSpec, raw: bytes, known_stores: set[int] | None) -> list[object]:
    """The typed values of one line, or _Reject with the reason (the first rule it breaks)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _Reject("not valid UTF-8 text") from None
    if "\x00" in text:
        raise _Reject("contains a NUL character")
    if "\r" in text:
        raise _Reject("contains a carriage return")
    fields = _split(text)
    if len(fields) != len(spec.columns):
        raise _Reject(f"expected {len(spec.columns)} columns, got {len(fields)}")
    values = [_convert(column, value) for column, value in zip(spec.columns, fields, strict=True)]
    for column, value in zip(spec.columns, values, strict=True):
        if column.store_ref and known_stores is not None and value not in known_stores:
            raise _Reject(f"unknown {column.name} {value}")
    return values


def _convert(column: Column, text: str) -> object:
    """One value as Python: None for an empty optional value; _Reject when it breaks the column's rule."""
    name, kind = column.name, column.kind
    if text == "":
        if column.required:
            raise _Reject(f"{name} is empty")
        return None
    if kind == "date":
        try:
            if not _DATE_RE.fullmatch(text):
                raise ValueError
            return date.fromisoformat(text)
        except ValueError:
            raise _Reject(f"bad {name} {text!r}") from None
    if kind in _INT_LIMITS:
        if not _INT_RE.fullmatch(text):
            raise _Reject(f"{name} is not an integer: {text!r}")
        value = int(text)
        low, high = _INT_LIMITS[kind]
        if value < 0 and kind == "count":
            raise _Reject(f"{name} is negative: {text}")
        if not low <= value <= high:
            raise _Reject(f"{name} is out of range: {text}")
        return value
    if kind in ("amount", "number"):
        if not _NUMBER_RE.fullmatch(text):
            raise _Reject(f"{name} is not a number: {text!r}")
        number = float(text)
        if not math.isfinite(number) or (number == 0 and _MANTISSA_NONZERO_RE.match(text)):
            raise _Reject(f"{name} is out of range: {text}")
        if kind == "amount" and number < 0:
            raise _Reject(f"{name} is negative: {text}")
        return number
    if kind == "bool":
        if text.lower() not in ("true", "false"):
            raise _Reject(f"{name} is not True or False: {text!r}")
        return text.lower() == "true"
    return text


def _to_csv(values: list[object]) -> str:
    """Values from the Python path as one CSV line that COPY reads back exactly."""
    cells = []
    for value in values:
        if value is None:
            cells.append("")
        elif isinstance(value, bool):
            cells.append("true" if value else "false")
        elif isinstance(value, float):
            cells.append(repr(value))
        elif isinstance(value, date):
            cells.append(value.isoformat())
        else:
            cells.append(str(value))
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(cells)
    return out.getvalue()


def _key_code(value: object, codes: _TextCodes) -> int:
    """An integer standing for a key value: yyyymmdd for dates, the number, or a text's code."""
    if isinstance(value, date):
        return _date_to_int(value)
    if isinstance(value, int):
        return value
    return codes.code(str(value))


class _TextCodes:
    """Exact integer codes for key texts, shared by the vectorised and the Python path."""

    def __init__(self) -> None:
        self.by_text: dict[str, int] = {}
        self.by_hash: dict[int, tuple[int, bytes]] = {}

    def code(self, text: str) -> int:
        return self.by_text.setdefault(text, len(self.by_text))

    def codes_for(self, matrix: np.ndarray, length: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Codes for rows of bytes (zero-padded); `exact` is False where a hash collision was seen."""
        words = matrix.view(np.uint64)
        hashes = length.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        for column in range(words.shape[1]):
            hashes ^= words[:, column]
            hashes *= np.uint64(0xBF58476D1CE4E5B9)
            hashes ^= hashes >> np.uint64(31)
        unique, first, inverse = np.unique(hashes, return_index=True, return_inverse=True)
        codes = np.empty(len(unique), dtype=np.int64)
        representatives = np.zeros((len(unique), matrix.shape[1]), dtype=np.uint8)
        rep_length = np.empty(len(unique), dtype=np.int64)
        for position, (value, row) in enumerate(zip(unique.tolist(), first.tolist(), strict=True)):
            if value not in self.by_hash:
                text = bytes(matrix[row, : length[row]])
                self.by_hash[value] = (self.code(text.decode("ascii")), text)
            code, text = self.by_hash[value]
            codes[position] = code
            width = min(len(text), matrix.shape[1])
            representatives[position, :width] = np.frombuffer(text, dtype=np.uint8)[:width]
            rep_length[position] = len(text)
        exact = (matrix == representatives[inverse]).all(axis=1) & (length == rep_length[inverse])
        return codes[inverse], exact


class _FastPass:
    """The vectorised check of plain fields: it only accepts, never rejects.

    A line it does not accept goes to the Python path, which applies the same rules and says
    why. What it accepts, PostgreSQL's COPY reads as the Python path would.
    """

    def __init__(
        self, spec: FileSpec, padded: np.ndarray, known_stores: np.ndarray | None, codes: _TextCodes
    ):
        self.spec = spec
        self.padded = padded
        self.known_stores = known_stores
        self.codes = codes

    def check(
        self, begin: np.ndarray, length: np.ndarray, key_positions: list[int]
    ) -> tuple[np.ndarray, np.ndarray]:
        """(ok per line, key codes per line) for one chunk of lines, given their fields' (begin, length)."""
        ok = np.ones(len(begin), dtype=bool)
        keys = np.zeros((len(begin), len(key_positions)), dtype=np.int64)
        for position, column in enumerate(self.spec.columns):
            column_ok, value = self._check_column(
                column, begin[:, position], length[:, position], need_value=position in key_positions
            )
            ok &= column_ok
            if position in key_positions:
                keys[:, key_positions.index(position)] = value
        return ok, keys

    def _gather(self, begin: np.ndarray, width: int) -> np.ndarray:
        """The `width` bytes from each field's start (past its end: whatever follows, see _inside)."""
        return np.lib.stride_tricks.sliding_window_view(self.padded, width)[begin]

    def _check_column(
        self, column: Column, begin: np.ndarray, length: np.ndarray, *, need_value: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        kind = column.kind
        empty = length == 0
        value = np.zeros(len(begin), dtype=np.int64)
        if kind == "date":
            ok, value = self._date(begin, length)
        elif kind in _INT_LIMITS:
            need_value = need_value or (column.store_ref and self.known_stores is not None)
            ok, value = self._digits(
                begin, length, _BIGINT_DIGITS if kind == "bigint" else _INT_DIGITS, need_value
            )
            if column.store_ref and self.known_stores is not None:
                ok &= np.isin(value, self.known_stores)
        elif kind in ("amount", "number"):
            ok = self._decimal(begin, length)
        elif kind == "text":
            ok = np.ones(len(begin), dtype=bool)
            if need_value:
                ok, value = self._text_codes(begin, length)
        else:  # bool: the Python path (holidays_events is small)
            ok = np.zeros(len(begin), dtype=bool)
        if column.required:
            ok &= ~empty
        else:
            ok |= empty
        return ok, value

    def _date(self, begin: np.ndarray, length: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """yyyy-mm-dd, a real calendar day; the value is yyyymmdd."""
        matrix = self._gather(begin, 16)
        bad = ((matrix - np.uint8(48)) > 9) & _DATE_DIGITS  # wraps below '0': one comparison
        bad |= (matrix != 45) & _DATE_HYPHENS
        ok = (length == 10) & ~_any_per_row(bad)
        digits = matrix[:, [0, 1, 2, 3, 5, 6, 8, 9]].astype(np.int32) - 48
        year = digits[:, 0] * 1000 + digits[:, 1] * 100 + digits[:, 2] * 10 + digits[:, 3]
        month = digits[:, 4] * 10 + digits[:, 5]
        day = digits[:, 6] * 10 + digits[:, 7]
        leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
        month_days = _DAYS_IN_MONTH[np.clip(month, 0, 12)] + (leap & (month == 2))
        ok &= (year >= 1) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= month_days)
        return ok, (year * 10000 + month * 100 + day).astype(np.int64)

    def _digits(
        self, begin: np.ndarray, length: np.ndarray, max_digits: int, need_value: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """1 to max_digits ASCII digits (a sign takes the Python path); the value as int64 if needed."""
        width = _round8(min(max_digits, int(length.max(initial=1))))
        matrix = self._gather(begin, width)
        digits = matrix - np.uint8(48)
        inside = _inside(length, width)
        ok = (length >= 1) & (length <= max_digits) & ~_any_per_row((digits > 9) & inside)
        value = np.zeros(len(begin), dtype=np.int64)
        if need_value:
            for position in range(min(width, max_digits)):
                value = np.where(inside[:, position], value * 10 + digits[:, position], value)
        return ok, value

    def _decimal(self, begin: np.ndarray, length: np.ndarray) -> np.ndarray:
        """A plain non-negative decimal: a digit first, then digits and at most one point."""
        width = _round8(min(_NUMBER_CHARS, int(length.max(initial=1))))
        matrix = self._gather(begin, width)
        inside = _inside(length, width)
        is_digit = (matrix - np.uint8(48)) <= 9
        is_point = (matrix == 46) & inside
        ok = (length >= 1) & (length <= _NUMBER_CHARS) & is_digit[:, 0]
        ok &= ~_any_per_row(~(is_digit | is_point) & inside)
        ok &= np.bitwise_count(is_point.view(np.uint64)).sum(axis=1) <= 1
        return ok

    def _text_codes(self, begin: np.ndarray, length: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact codes for key texts up to _KEY_TEXT_CHARS bytes (longer ones: the Python path)."""
        fits = length <= _KEY_TEXT_CHARS
        codes = np.zeros(len(begin), dtype=np.int64)
        ok = np.zeros(len(begin), dtype=bool)
        if fits.any():
            width = _round8(int(length[fits].max()))
            matrix = self._gather(begin[fits], width) * _inside(length[fits], width)  # zero past the end
            codes[fits], ok[fits] = self.codes.codes_for(matrix, length[fits])
        return ok, codes


def _round8(width: int) -> int:
    """A width of at least 8, rounded up to whole 8-byte words."""
    return max(8, -(-width // 8) * 8)


def _inside(length: np.ndarray, width: int) -> np.ndarray:
    """Per field (row) and byte (column): whether the byte belongs to the field."""
    return _inside_table(width)[np.minimum(length, width)]


@lru_cache(maxsize=16)
def _inside_table(width: int) -> np.ndarray:
    """Row n: n True values, then False, `width` in all (a lookup is faster than a comparison)."""
    return np.arange(width) < np.arange(width + 1)[:, None]


def _any_per_row(mask: np.ndarray) -> np.ndarray:
    """Row-wise any() of a C-ordered boolean matrix whose width is a multiple of 8, a word at a time."""
    words = mask.view(np.uint64)
    result = words[:, 0] != 0
    for column in range(1, words.shape[1]):
        result |= words[:, column] != 0
    return result
