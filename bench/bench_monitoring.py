"""Benchmark: `salesmon monitor` end to end against the monitoring module's own loop (issue #11).

    .venv/bin/python -m bench.bench_monitoring [--days 90] [--workers 2] [--rounds 2] [--data-dir DIR]
        [--skip-dask] [--full-history]

On the full default data set (54 stores, 2013-01-01 .. 2017-08-15: generated into `--data-dir`, loaded,
the marts built, a model trained and the monitored days scored on the first run, in the database
SALESMON_BENCH_DATABASE_URL names or in a database `salesmon_bench` of the configured server; later
runs reuse them), the last `--days` days:

(a) the module's loop (`bench.module_loop`, a process of its own): train.csv loaded once, each day
    filtered in memory, a LinearRegression, a 3-metric Evidently report, one row inserted, no sleep;
(b) `salesmon monitor --force` on the same days, a process of its own, as a user runs it: its
    Prefect server (the background one, started by the untimed first run and reused, as by a user's
    successive commands; one run below times a start with it stopped), the process pool (or the
    flow's own process when the pool would not pay for itself), every metric of every day, the
    Evidently workspace, the dbt build of the marts; and (b') the same with `--no-workspace`.
(a), (b) and (b') run interleaved, `--rounds` times, best kept (the machine is shared: noise only
adds time). Then, in this process, the pure computation: every day's metrics on slices already in
memory, serially, no I/O, with the report each run asks for (the workspace's or none), and the ratio
of (b)'s "computing the days" (the flow's own timing) to it divided by the workers. Then a one-new-day
run (the last day's results deleted first, best of `--rounds`), the Dask task runner on a local
cluster of 1 and 2 workers, and with `--full-history` every day with 28 days of history (scored
first, not counted) with `--no-workspace`.

Targets: (b) <= 0.6 x (a); computing <= 1.25 x pure / workers; one new day <= 15 s; full history < 5 min.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
import warnings
from datetime import date, timedelta
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

BENCH_DATABASE = "salesmon_bench"
STORES = 54
START = date(2013, 1, 1)
END = date(2017, 8, 15)
LOOP_RATIO_GOAL = 0.6
COMPUTE_GOAL = 1.25
ONE_DAY_GOAL_SECONDS = 15.0
FULL_HISTORY_GOAL_SECONDS = 5 * 60


def say(message: str) -> None:
    print(message, flush=True)


def bench_database() -> str:
    """The benchmark's warehouse URL (created on the configured server if needed)."""
    url = os.environ.get("SALESMON_BENCH_DATABASE_URL")
    if url:
        return url
    from warehouse.db import conninfo

    server = make_conninfo(conninfo(), dbname="postgres")
    with psycopg.connect(server, autocommit=True) as conn:
        if not conn.execute("select 1 from pg_database where datname = %s", (BENCH_DATABASE,)).fetchone():
            conn.execute(f'create database "{BENCH_DATABASE}"')
    return make_conninfo(server, dbname=BENCH_DATABASE)


def salesmon(env: dict[str, str], *args: str) -> tuple[float, str]:
    """Run a `salesmon` command in a process of its own; its wall time and output."""
    script = Path(sys.executable).with_name("salesmon")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "orchestration.cli"]
    started = time.perf_counter()
    done = subprocess.run([*command, *args], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"salesmon {' '.join(args)} failed:\n{(done.stdout + done.stderr)[-3000:]}")
    return seconds, done.stdout


def timings(output: str) -> dict[str, float]:
    """The flow's 'time: plan 0.1 s, computing the days 9.8 s, ...' line as numbers."""
    match = re.search(r"^time: (.*)$", output, re.MULTILINE)
    parts = (part.rsplit(" ", 2) for part in match.group(1).split(", ")) if match else ()
    return {name: float(value) for name, value, _unit in parts}


def prepare(env: dict[str, str], data_dir: Path, days: int) -> tuple[str, date, date]:
    """Data, marts, a champion and predictions for the last `days` days; (version, start, end)."""
    from warehouse.db import connect

    with connect() as conn:
        has_features = conn.execute("select to_regclass('marts.fct_sales_features')").fetchone()[0]
        champion = conn.execute("select model_version from ml.model_registry where is_champion").fetchone()
    if not (data_dir / "train.csv").exists():
        from datagen import generate

        generate(data_dir, stores=STORES, start=START, end=END)
        has_features = None
    if not has_features:
        for step in (("load", "--data-dir", str(data_dir)), ("dbt", "build"), ("train",)):
            seconds, _ = salesmon(env, *step)
            say(f"prepared: salesmon {' '.join(step)} in {seconds:.0f} s")
    elif champion is None:
        seconds, _ = salesmon(env, "train")
        say(f"prepared: salesmon train in {seconds:.0f} s")
    with connect() as conn:
        version = conn.execute("select model_version from ml.model_registry where is_champion").fetchone()[0]
        end = conn.execute("select max(sales_date) from marts.fct_sales_features where sales is not null")
        end = end.fetchone()[0]
    start = end - timedelta(days=days - 1)
    score_range(env, version, start, end)
    return version, start, end


def score_range(env: dict[str, str], version: str, start: date, end: date) -> None:
    """Score the days of a range that have no prediction of the version yet."""
    from warehouse.db import connect

    with connect() as conn:
        scored = conn.execute(
            "select count(distinct sales_date) from ml.predictions"
            " where model_version = %s and sales_date between %s and %s",
            (version, start, end),
        ).fetchone()[0]
    if scored < (end - start).days + 1:
        seconds, _ = salesmon(env, "score", "--start", start.isoformat(), "--end", end.isoformat())
        say(f"prepared: scored {start} .. {end} in {seconds:.0f} s")


def module_loop(url: str, data_dir: Path, start: date, end: date) -> float:
    """(a): the module's loop in a process of its own; its wall time."""
    command = [sys.executable, "-m", "bench.module_loop", "--data-dir", str(data_dir)]
    command += ["--start", start.isoformat(), "--end", end.isoformat(), "--database", url]
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started


def pure(version: str, days: list[date], view: str | None) -> float:
    """Every day's metrics on slices already in memory, serially, no I/O (references read first)."""
    from monitoring.config import DEFAULT_CONFIG
    from monitoring.report import run_report, warm_up
    from monitoring.results import SliceContext
    from monitoring.slices import get_reference, load_slice
    from warehouse.db import connect

    warm_up()
    with connect() as conn:
        contexts = [
            SliceContext(
                day,
                version,
                DEFAULT_CONFIG,
                load_slice(conn, day, version, DEFAULT_CONFIG),
                get_reference(conn, version, day.isoweekday(), DEFAULT_CONFIG),
            )
            for day in days
        ]
    for ctx in contexts[:7]:
        run_report(ctx, view=view)  # reference-derived values cached, as in a worker
    started = time.perf_counter()
    for ctx in contexts:
        run_report(ctx, view=view)
    return time.perf_counter() - started


def forget_day(day: date) -> None:
    """Delete a day's monitoring results, so that the next run computes it as a new day."""
    from warehouse.db import connect

    with connect() as conn:
        conn.execute("delete from monitoring.metric_values where slice_date = %s", (day,))
        conn.execute("delete from monitoring.runs where slice_date = %s", (day,))


def one_new_day(env: dict[str, str], end: date, rounds: int) -> None:
    """The daily run of one new day, with dbt started ahead (the default) and without, interleaved."""
    one_day: dict[str, list[float]] = {"on": [], "off": []}
    for _ in range(rounds):
        for ahead in ("on", "off"):
            forget_day(end)
            span = ("--start", end.isoformat(), "--end", end.isoformat())
            seconds, output = salesmon({**env, "SALESMON_DBT_AHEAD": ahead}, "monitor", *span)
            one_day[ahead].append(seconds)
            say(f"one new day ({end}), dbt ahead {ahead}: {seconds:.1f} s end to end; {timings(output)}")
    best, plain = min(one_day["on"]), min(one_day["off"])
    met = verdict(best <= ONE_DAY_GOAL_SECONDS)
    say(
        f"one new day, best of {rounds}: {best:.1f} s; {plain:.1f} s with SALESMON_DBT_AHEAD=off"
        f" ({plain / best:.2f} x); target <= {ONE_DAY_GOAL_SECONDS:g} s: {met}"
    )


def verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--data-dir", type=Path, default=None, help="default: $SALESMON_HOME/bench-data")
    parser.add_argument("--skip-dask", action="store_true")
    parser.add_argument("--full-history", action="store_true")
    parser.add_argument("--one-day-only", action="store_true", help="only the one-new-day runs")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    from dataclasses import replace

    from warehouse.settings import get_settings, use_settings

    url = bench_database()
    env = {**os.environ, "SALESMON_DATABASE_URL": url, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env["DO_NOT_TRACK"] = "1"
    with use_settings(replace(get_settings(), database_url=url)):  # this process reads the same warehouse
        run(args, env)


def run(args: argparse.Namespace, env: dict[str, str]) -> None:
    """The benchmark's runs, against the warehouse `env` names (this process's settings name it too)."""
    from warehouse.settings import get_settings

    data_dir = args.data_dir or get_settings().home / "bench-data"
    version, start, end = prepare(env, data_dir, args.days)
    days = [start + timedelta(days=offset) for offset in range((end - start).days + 1)]
    span = ["--start", start.isoformat(), "--end", end.isoformat(), "--workers", str(args.workers)]
    say(f"model {version}; {start} .. {end} ({len(days)} days), {args.workers} workers, {args.rounds} rounds")
    if args.one_day_only:
        one_new_day(env, end, args.rounds)
        return
    salesmon(env, "monitor", *span)  # calibrated and computed once, so that every timed run is alike

    runs: dict[str, list[float]] = {"loop": [], "monitor": [], "monitor --no-workspace": []}
    computing: dict[str, list[float]] = {"monitor": [], "monitor --no-workspace": []}
    for number in range(1, args.rounds + 1):
        runs["loop"].append(module_loop(env["SALESMON_DATABASE_URL"], data_dir, start, end))
        say(f"round {number}: (a) the module's loop: {runs['loop'][-1]:.1f} s")
        for name, extra in (("monitor", ()), ("monitor --no-workspace", ("--no-workspace",))):
            seconds, output = salesmon(env, "monitor", *span, "--force", *extra)
            runs[name].append(seconds)
            computing[name].append(timings(output).get("computing the days", float("nan")))
            say(f"round {number}: (b) salesmon {name}: {seconds:.1f} s end to end; {timings(output)}")

    loop = min(runs["loop"])
    say("")
    say(f"(a) the module's loop, best of {args.rounds}: {loop:.1f} s")
    for name in ("monitor", "monitor --no-workspace"):
        ratio = min(runs[name]) / loop
        say(
            f"(b) salesmon {name}: {min(runs[name]):.1f} s = {ratio:.2f} x the loop"
            f" (target <= {LOOP_RATIO_GOAL}: {verdict(ratio <= LOOP_RATIO_GOAL)})"
        )
    for name, view in (("monitor", "dashboard"), ("monitor --no-workspace", None)):
        seconds = pure(version, days, view)
        ratio = min(computing[name]) / (seconds / args.workers)
        say(
            f"computing the days, salesmon {name}: {min(computing[name]):.1f} s; pure computation, serial,"
            f" in memory: {seconds:.1f} s ({seconds / len(days) * 1000:.0f} ms a day); computing /"
            f" (pure / {args.workers}) = {ratio:.2f}"
            f" (target <= {COMPUTE_GOAL}: {verdict(ratio <= COMPUTE_GOAL)})"
        )

    one_new_day(env, end, args.rounds)
    # the same with the background Prefect server stopped first: the first command after it stopped
    # (idle, or `salesmon server stop`) boots it again
    forget_day(end)
    salesmon(env, "server", "stop")
    seconds, output = salesmon(env, "monitor", "--start", end.isoformat(), "--end", end.isoformat())
    say(f"one new day, the background Prefect server stopped first: {seconds:.1f} s; {timings(output)}")

    if not args.skip_dask:
        for workers in (1, 2):
            dask = ["--task-runner", "dask", "--workers", str(workers), "--force", "--no-workspace"]
            seconds, output = salesmon(
                env, "monitor", "--start", start.isoformat(), "--end", end.isoformat(), *dask
            )
            say(
                f"Dask, local cluster of {workers} worker(s): {seconds:.1f} s end to end,"
                f" computing the days {timings(output).get('computing the days', float('nan')):.1f} s"
            )

    if args.full_history:
        full_history(env, version, args.workers)
    salesmon(env, "server", "stop")  # the background Prefect server the runs above used


def full_history(env: dict[str, str], version: str, workers: int) -> None:
    """Every day with 28 days of history, scored first (not counted), then monitored end to end."""
    from warehouse.db import connect

    with connect() as conn:
        first = conn.execute("select min(sales_date) from marts.fct_sales_features").fetchone()[0]
        last = conn.execute("select max(sales_date) from marts.fct_sales_features where sales is not null")
        first, last = first + timedelta(days=28), last.fetchone()[0]
    score_range(env, version, first, last)
    span = ["--start", first.isoformat(), "--end", last.isoformat(), "--workers", str(workers)]
    seconds, output = salesmon(env, "monitor", *span, "--force", "--no-workspace")
    say(
        f"full history {first} .. {last} ({(last - first).days + 1} days), --no-workspace:"
        f" {seconds / 60:.1f} min end to end ({timings(output)})"
        f" (target < 5 min: {verdict(seconds < FULL_HISTORY_GOAL_SECONDS)})"
    )


if __name__ == "__main__":
    main()
