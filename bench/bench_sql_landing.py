"""Benchmark: the loader against the warehouse-centric way (COPY into a text landing table, then
split and validate the rows in SQL) on the same full-size train.csv, in the same run.

    .venv/bin/python -m bench.bench_sql_landing [--stores 54] [--rounds 2]

The SQL way: COPY every line into `landing (line_number identity, line text)` (CSV format with
a delimiter and quote that never occur, so a line is one value), split with string_to_array, check
each field with the same strictness as the loader's rules (regular expressions for the formats,
pg_input_is_valid for calendar days and ranges, length limits, the plausible date range), and insert
the good rows into an empty copy of raw.train, whose primary key is built afterwards. The loader's
figure is its first load of train.csv into an empty raw.train. Prints rows/s of both and their ratio,
best of `--rounds`; the goal for either is 200,000 rows/s.
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import date
from pathlib import Path

from bench._common import private_warehouse

GOAL_ROWS_PER_SECOND = 200_000
_INTEGER = r"^[+-]?[0-9]+$"
_NUMBER = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
_VALIDATE = f"""
insert into bench_checked (line_number, fields, reason)
select line_number, fields, case
    when cardinality(fields) <> 6 then 'expected 6 columns, got ' || cardinality(fields)
    when fields[1] = '' then 'id is empty'
    when length(fields[1]) > 32 then 'id is too long'
    when fields[1] !~ '{_INTEGER}' then 'id is not an integer: ' || quote_literal(fields[1])
    when not pg_input_is_valid(fields[1], 'bigint') then 'id is out of range: ' || fields[1]
    when fields[2] !~ '^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}$' or not pg_input_is_valid(fields[2], 'date')
        then 'bad date ' || quote_literal(fields[2])
    when fields[2]::date not between date '2000-01-01' and current_date
        then 'date ' || fields[2] || ' is outside the plausible range'
    when fields[3] !~ '{_INTEGER}' then 'store_nbr is not an integer: ' || quote_literal(fields[3])
    when not pg_input_is_valid(fields[3], 'integer') then 'store_nbr is out of range: ' || fields[3]
    when fields[4] = '' then 'family is empty'
    when length(fields[4]) > 100 then 'family is too long'
    when fields[5] <> '' and fields[5] !~ '{_NUMBER}'
        then 'sales is not a number: ' || quote_literal(fields[5])
    when fields[5] <> '' and not pg_input_is_valid(fields[5], 'double precision')
        then 'sales is out of range: ' || fields[5]
    when fields[5] like '-%' and fields[5]::double precision < 0 then 'sales is negative: ' || fields[5]
    when fields[6] <> '' and fields[6] !~ '{_INTEGER}'
        then 'onpromotion is not an integer: ' || quote_literal(fields[6])
    when fields[6] <> '' and not pg_input_is_valid(fields[6], 'integer')
        then 'onpromotion is out of range: ' || fields[6]
    when fields[6] like '-%' and fields[6]::integer < 0 then 'onpromotion is negative: ' || fields[6]
end
from (
    select line_number, case
        when strpos(line, '"') = 0 then string_to_array(line, ',')
        else array(
            select trim(both '"' from value)
            from regexp_split_to_table(line, ',(?=(?:[^"]*"[^"]*")*[^"]*$)') as value
        )
    end as fields
    from bench_landing
    where line is not null
) as split
"""


def sql_landing(path: Path) -> float:
    """Seconds to land, split, validate and insert train.csv the warehouse-centric way."""
    import psycopg

    from warehouse.db import conninfo

    data = path.read_bytes()
    with psycopg.connect(conninfo(), autocommit=True) as conn:
        conn.execute("set temp_buffers = '512MB'")
        conn.execute("set work_mem = '256MB'")
        conn.execute("drop table if exists public.bench_train")
        conn.execute("create table public.bench_train (like raw.train including defaults)")
        started = time.monotonic()
        with conn.transaction():
            conn.execute(
                "create temp table bench_landing (line_number bigint generated always as identity"
                " (start with 2), line text) on commit drop"
            )
            conn.execute(
                "create temp table bench_checked (line_number bigint, fields text[], reason text)"
                " on commit drop"
            )
            copy = (
                "copy bench_landing (line) from stdin"
                " with (format csv, header true, delimiter E'\\x01', quote E'\\x02')"
            )
            with conn.cursor() as cursor, cursor.copy(copy) as writer:
                view = memoryview(data)
                for offset in range(0, len(view), 8 << 20):
                    writer.write(view[offset : offset + (8 << 20)])
            conn.execute(_VALIDATE)
            conn.execute(
                "insert into public.bench_train (id, date, store_nbr, family, sales, onpromotion)"
                " select fields[1]::bigint, fields[2]::date, fields[3]::integer, fields[4],"
                " nullif(fields[5], '')::double precision, nullif(fields[6], '')::integer"
                " from bench_checked where reason is null"
            )
            conn.execute("alter table public.bench_train add primary key (date, store_nbr, family)")
        seconds = time.monotonic() - started
        conn.execute("drop table public.bench_train")
    return seconds


def loader_first_load(folder: Path) -> tuple[int, float]:
    """(rows, seconds) of the loader's first load of train.csv into empty raw tables."""
    from warehouse.db import connect
    from warehouse.loader import empty_raw_tables, load_folder

    with connect(autocommit=True) as conn:
        empty_raw_tables(conn)
    summary = load_folder(folder)
    train = next(item for item in summary.files if item.file_name == "train.csv")
    return train.rows_read, train.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stores", type=int, default=54)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    from datagen import generate

    with private_warehouse("salesmon-bench-landing-") as work:
        folder = work / "data"
        generate(folder, stores=args.stores, start=date(2013, 1, 1), end=date(2017, 8, 15))
        loader_best, landing_best, rows = float("inf"), float("inf"), 0
        for _ in range(args.rounds):  # interleaved
            rows, seconds = loader_first_load(folder)
            loader_best = min(loader_best, seconds)
            landing_best = min(landing_best, sql_landing(folder / "train.csv"))
    loader_rate, landing_rate = rows / loader_best, rows / landing_best
    print(f"train.csv, {rows:,} rows, best of {args.rounds}:")
    print(f"  loader (numpy rules, COPY)         {loader_best:6.1f} s  {loader_rate:>10,.0f} rows/s")
    print(f"  SQL landing table, checks in SQL   {landing_best:6.1f} s  {landing_rate:>10,.0f} rows/s")
    verdict = {True: "PASS", False: "MISS"}
    print(
        f"  SQL landing / loader time: {landing_best / loader_best:.1f}x; goal {GOAL_ROWS_PER_SECOND:,}"
        f" rows/s: loader {verdict[loader_rate >= GOAL_ROWS_PER_SECOND]},"
        f" SQL landing {verdict[landing_rate >= GOAL_ROWS_PER_SECOND]}"
    )
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"({os.cpu_count()} CPUs, load average {load})")


if __name__ == "__main__":
    main()
