"""Benchmark: generate a full-size Kaggle-format data set, load it into raw.*, load it again.

    .venv/bin/python -m bench.bench_generate_load [--stores 54] [--start 2013-01-01] [--end 2017-08-15]

Uses the server SALESMON_DATABASE_URL names when set (its raw tables should be empty for a fair
first load); otherwise a private embedded PostgreSQL in a temporary SALESMON_HOME on a free port,
stopped and removed at the end. Prints one table: step, rows, seconds, rows/s, goal, PASS/MISS.
Goals: generation under 60 s; train.csv loads at 200,000 rows/s or more.
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import date
from pathlib import Path

from bench._common import private_warehouse

GENERATE_GOAL_SECONDS = 60.0
LOAD_GOAL_ROWS_PER_SECOND = 200_000


def _row(step: str, rows: int, seconds: float, goal: str, passed: bool | None) -> tuple[str, ...]:
    rate = f"{rows / seconds:,.0f}" if seconds > 0 else "-"
    verdict = "" if passed is None else ("PASS" if passed else "MISS")
    return (step, f"{rows:,}", f"{seconds:.1f}", rate, goal, verdict)


def _table(rows: list[tuple[str, ...]]) -> str:
    head = ("step", "rows", "seconds", "rows/s", "goal", "")
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]
    return "\n".join(
        "  ".join(
            cell.ljust(widths[i]) if i in (0, 4) else cell.rjust(widths[i]) for i, cell in enumerate(row)
        )
        for row in [head, *rows]
    )


def run(stores: int, start: date, end: date, work: Path) -> list[tuple[str, ...]]:
    """Generate into `work`, load twice, and return the table rows."""
    from datagen import generate
    from warehouse.loader import load_folder

    data_dir = work / "data"
    started = time.monotonic()
    generated = generate(data_dir, stores=stores, start=start, end=end, progress=print)
    generate_seconds = time.monotonic() - started
    generated_rows = sum(generated.files.values())

    first = load_folder(data_dir, progress=print)
    second = load_folder(data_dir, progress=print)

    train = next(item for item in first.files if item.file_name == "train.csv")
    total_rows = sum(item.rows_read for item in first.files)
    total_seconds = sum(item.seconds for item in first.files)
    reload_rows = sum(item.rows_read for item in second.files)
    reload_seconds = sum(item.seconds for item in second.files)
    all_skipped = all(item.rows_skipped == item.rows_read for item in second.files)
    return [
        _row("generate (6 files)", generated_rows, generate_seconds, f"< {GENERATE_GOAL_SECONDS:.0f} s",
             generate_seconds < GENERATE_GOAL_SECONDS),
        _row("load train.csv", train.rows_read, train.seconds, f">= {LOAD_GOAL_ROWS_PER_SECOND:,} rows/s",
             train.rows_per_second >= LOAD_GOAL_ROWS_PER_SECOND),
        _row("load all files", total_rows, total_seconds, "", None),
        _row("reload (all skipped)", reload_rows, reload_seconds, "nothing loaded twice", all_skipped),
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stores", type=int, default=54)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2013, 1, 1))
    parser.add_argument("--end", type=date.fromisoformat, default=date(2017, 8, 15))
    args = parser.parse_args()

    with private_warehouse("salesmon-bench-") as work:
        rows = run(args.stores, args.start, args.end, work)
    print()
    print(_table(rows))
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"({os.cpu_count()} CPUs, load average {load}: other work on the machine slows every step)")


if __name__ == "__main__":
    main()
