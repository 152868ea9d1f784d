"""Writing a checked file into the warehouse, in the file's transaction.

Rows of days (or stores) the table does not have yet go straight into the raw table with COPY,
block by block while the next block is checked. The others go through a staging table and are
compared with the stored rows by key: new ones are inserted, identical ones skipped, and those whose
values differ are counted per day and, with `update`, replace the stored ones. Rejected lines go to
raw.rejected_rows (keyed by file, line number and a hash of the line), the counts to raw.load_log,
and the days whose rows were inserted or replaced to raw.changed_days, which downstream steps read
to rebuild what depends on them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import psycopg
from psycopg import sql
from psycopg.copy import QueuedLibpqWriter

from warehouse.loader.check import FileCheck, Payload
from warehouse.loader.rules import day_number
from warehouse.loader.specs import FileSpec

_COPY_BLOCK = 8 << 20


class Retry(Exception):
    """The rows already sent repeat a key: send them again, without the repeats."""


@dataclass
class Merge:
    """What the staged rows did: inserted (new keys), changed (values differ), per day of each."""

    inserted: int = 0
    changed: int = 0
    inserted_days: dict[date, int] = field(default_factory=dict)
    changed_days: dict[date, int] = field(default_factory=dict)


def present_partitions(conn: psycopg.Connection, spec: FileSpec) -> set[int]:
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
    return {day_number(value) if isinstance(value, date) else value for (value,) in conn.execute(query)}


def _copy_statement(spec: FileSpec, target: sql.Composable) -> sql.Composed:
    columns = sql.SQL(", ").join(sql.Identifier(column.name) for column in spec.columns)
    return sql.SQL("copy {} ({}) from stdin with (format csv)").format(target, columns)


def _write(conn: psycopg.Connection, statement: sql.Composed, payload: Payload) -> None:
    view = memoryview(payload.data)
    with conn.cursor() as cursor, cursor.copy(statement) as copy:
        for offset in range(0, len(view), _COPY_BLOCK):
            copy.write(view[offset : offset + _COPY_BLOCK])


def copy_direct(conn: psycopg.Connection, spec: FileSpec, check: FileCheck) -> int:
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
                    raise Retry
            _add_key(conn, table, constraint)
        return check.direct_count
    except Exception:
        for _ in blocks:  # the server may stop a COPY early on a repeated key: finish the check
            pass
        if not check.direct_duplicates:
            raise
    payload = check.payload(in_table=False)
    check.direct_days = payload.days  # without the repeated keys
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


def merge_staged(conn: psycopg.Connection, spec: FileSpec, payload: Payload, *, update: bool) -> Merge:
    """COPY rows of days (or stores) the table has into a staging table and compare them by key:
    insert the new ones, count those whose values differ per day, and replace them with `update`."""
    table = sql.Identifier("raw", spec.table)
    columns = [column.name for column in spec.columns]
    others = [name for name in columns if name not in spec.key]
    listed = sql.SQL(", ").join(map(sql.Identifier, columns))
    conn.execute(
        sql.SQL("create temp table loader_stage on commit drop as select {} from {} with no data").format(
            listed, table
        )
    )
    _write(conn, _copy_statement(spec, sql.Identifier("loader_stage")), payload)
    matches = sql.SQL(" and ").join(
        sql.SQL("existing.{name} = staged.{name}").format(name=sql.Identifier(name)) for name in spec.key
    )
    staged_values = sql.SQL(", ").join(sql.SQL("staged.{}").format(sql.Identifier(n)) for n in others)
    existing_values = sql.SQL(", ").join(sql.SQL("existing.{}").format(sql.Identifier(n)) for n in others)
    day = sql.Identifier(spec.day_column) if spec.day_column else sql.SQL("null::date")
    conn.execute(
        sql.SQL(
            """
            create temp table loader_changes on commit drop as
            select {keys}, existing.{first} is null as is_new
            from loader_stage as staged
            left join {table} as existing on {matches}
            where existing.{first} is null or row({staged_values}) is distinct from row({existing_values})
            """
        ).format(
            keys=sql.SQL(", ").join(sql.SQL("staged.{}").format(sql.Identifier(n)) for n in spec.key),
            first=sql.Identifier(spec.key[0]),
            table=table,
            matches=matches,
            staged_values=staged_values,
            existing_values=existing_values,
        )
    )
    merge = Merge()
    for day_value, is_new, count in conn.execute(
        sql.SQL("select {day}, is_new, count(*) from loader_changes group by 1, 2").format(day=day)
    ):
        if is_new:
            merge.inserted += count
            if day_value is not None:
                merge.inserted_days[day_value] = count
        else:
            merge.changed += count
            if day_value is not None:
                merge.changed_days[day_value] = count
    using = sql.SQL(", ").join(map(sql.Identifier, spec.key))
    if merge.inserted:
        conn.execute(
            sql.SQL(
                "insert into {table} ({columns}) select {columns} from loader_stage"
                " join loader_changes using ({using}) where loader_changes.is_new"
            ).format(table=table, columns=listed, using=using)
        )
    if merge.changed and update:
        assignments = sql.SQL(", ").join(
            sql.SQL("{name} = staged.{name}").format(name=sql.Identifier(name)) for name in others
        )
        conn.execute(
            sql.SQL(
                """
                update {table} as existing set {assignments}, _loaded_at = now()
                from loader_stage as staged
                join loader_changes using ({using})
                where not loader_changes.is_new and {matches}
                """
            ).format(table=table, assignments=assignments, using=using, matches=matches)
        )
    return merge


def store_rejected(conn: psycopg.Connection, file_name: str, rejected: list[tuple[int, str, str]]) -> None:
    """Record bad lines; a line already recorded by an earlier load (same number, same text) is kept
    once, with the latest reason. The key is the file, the line number and the line's md5, so a line
    of any length fits the index."""
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
        insert into raw.rejected_rows (file_name, line_number, raw_line_md5, raw_line, reason)
        select %s, line_number, md5(raw_line), raw_line, reason from loader_rejected
        on conflict (file_name, line_number, raw_line_md5) do update
        set reason = excluded.reason, rejected_at = excluded.rejected_at
        """,
        (file_name,),
    )


def record_load(
    conn: psycopg.Connection,
    spec: FileSpec,
    source_path: str,
    counts: tuple[int, int, int, int, int],
    seconds: float,
    inserted_days: dict[date, int],
    changed_days: dict[date, int],
    *,
    update: bool,
) -> int:
    """One raw.load_log row for the file, and the days whose rows it inserted or replaced (or, without
    `update`, found different) in raw.changed_days. Returns the load_id."""
    read, loaded, rejected, skipped, changed = counts
    load_id = conn.execute(
        """
        insert into raw.load_log (file_name, source_path, rows_read, rows_loaded, rows_rejected,
            rows_skipped, rows_changed, updated, seconds)
        values (%s, %s, %s, %s, %s, %s, %s, %s, %s)
        returning load_id
        """,
        (spec.file_name, source_path, read, loaded, rejected, skipped, changed, update, seconds),
    ).fetchone()[0]
    days = sorted(set(inserted_days) | set(changed_days))
    if days:
        with conn.cursor() as cursor:
            cursor.executemany(
                """
                insert into raw.changed_days (load_id, table_name, day, rows_inserted, rows_changed, replaced)
                values (%s, %s, %s, %s, %s, %s)
                """,
                [
                    (load_id, spec.table, day, inserted_days.get(day, 0), changed_days.get(day, 0), update)
                    for day in days
                ],
            )
    return load_id
