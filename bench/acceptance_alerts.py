"""Acceptance of the alerts on data no choice was made on: scenario x size x seed, day of detection,
false-alarm days.

The sensitivities and floors of dbt_project/seeds/monitoring_thresholds.csv were chosen on seed 7
(6, 12 and 54 stores, no change, the last 90 days monitored; docs/alerts.md). This benchmark judges
them on other seeds (default 1201, 2302, 3403: docs/alerts.md says which seeds the development looked
at), sizes (6, 12, 54 stores) and change dates (one per size and seed, drawn inside the monitored
window, never a date used by the tests).

For each size and seed, in a fresh database of the configured server:
1. no change: generate, load, dbt build, train (monitoring from 2017-05-18), calibrate, score and
   monitor the 90 days 2017-05-18 .. 2017-08-15 (the engine), build the metrics mart; count the days
   with any row in marts.fct_alerts, of any scope and severity;
2. each scenario (the generator's nine minus none): the same seed with the change on the size and
   seed's change date. Every row before the change date is identical to the no-change data (the
   generator guarantees it), so the model, its bounds and the quiet days before the change are the
   no-change run's: only the raw files are reloaded, the features rebuilt, and the change day and
   the day after scored and monitored. The scenario is caught when an alert names its cause on one
   of those two days (monitoring/scenarios.py).

It prints a table: size, seed, change date, then per scenario the day of detection (`change`,
`+1` or `MISSED`) with the metric that named it, the no-change run's false-alarm days before the
change date and over the 90 days; and the cost of calibration against training plus a 90-day
monitor, measured in the same run.

Usage: `python -m bench.acceptance_alerts [--sizes 6 12 54] [--seeds 101 202 303] [--scenarios ...]
[--json FILE]` (about 25 minutes for everything on 2 cores). Uses SALESMON_HOME / SALESMON_PG_PORT
like every salesmon command: point them at a private server.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

from monitoring.scenarios import CAUSES, names_the_cause
from monitoring.storage import keep_results_as

SCENARIOS = tuple(CAUSES)
MONITOR_FROM = date(2017, 5, 18)
LAST_DAY = date(2017, 8, 15)
START = date(2016, 9, 1)
MARTS_SELECTION = [
    "--select",
    "source:monitoring",
    "path:models/staging/ml",
    "path:models/staging/monitoring",
    "path:models/intermediate/monitoring",
    "path:models/marts/monitoring",
    "path:seeds",
]


def _say(message: str) -> None:
    print(message, flush=True)


def change_date(stores: int, seed: int) -> date:
    """A change date inside the monitored window, different per size and seed (days 25 to 85)."""
    return MONITOR_FROM + timedelta(days=25 + (seed * 7 + stores * 13) % 61)


@dataclass
class Case:
    """One size and seed: its quiet run and its scenarios."""

    stores: int
    seed: int
    change: date
    model_version: str = ""
    quiet_alert_days: list[date] = field(default_factory=list)
    quiet_alerts: list[tuple] = field(default_factory=list)
    detections: dict[str, tuple[str, str]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def false_alarm_days_before_change(self) -> int:
        return sum(1 for day in self.quiet_alert_days if day < self.change)


@contextmanager
def fresh_database(name: str) -> Iterator[str]:
    """A new, empty database on the configured server that salesmon uses inside the block."""
    from dataclasses import replace

    from warehouse.db import conninfo
    from warehouse.settings import get_settings, use_settings

    server = make_conninfo(conninfo(), dbname="postgres")
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')
        conn.execute(f'create database "{name}"')
    info = make_conninfo(server, dbname=name)
    try:
        with use_settings(replace(get_settings(), database_url=info)):
            yield info
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


def _timed(case: Case, name: str, action):  # noqa: ANN001, ANN202
    started = time.perf_counter()
    result = action()
    case.seconds[name] = case.seconds.get(name, 0.0) + time.perf_counter() - started
    return result


def run_case(stores: int, seed: int, scenarios: tuple[str, ...], workdir: Path, workers: int) -> Case:
    """The quiet run and every scenario of one size and seed (see the module's docstring)."""
    from datagen import generate
    from models_ml.score import score
    from models_ml.train import train
    from monitoring.calibration import calibrate
    from orchestration.flows import monitor_days
    from warehouse.dbt import METRICS_MART, run_dbt
    from warehouse.loader import empty_raw_tables, load_folder

    case = Case(stores=stores, seed=seed, change=change_date(stores, seed))
    _say(f"\n== {stores} stores, seed {seed}, change on {case.change} ==")
    dbt_root = workdir / f"dbt-{stores}-{seed}"
    dbt_paths = ["--target-path", str(dbt_root / "target"), "--log-path", str(dbt_root / "logs")]
    with fresh_database(f"accept_{stores}_{seed}") as info:
        quiet = workdir / f"none-{stores}-{seed}"
        generate(quiet, stores=stores, start=START, end=LAST_DAY, seed=seed)
        _timed(case, "load", lambda: load_folder(quiet))
        _timed(
            case,
            "dbt build",
            lambda: run_dbt(["build", "--exclude", *METRICS_MART, *dbt_paths], quiet=True),
        )
        trained = _timed(case, "train", lambda: train(MONITOR_FROM))
        case.model_version = version = trained.champion_version
        _timed(case, "calibrate", lambda: calibrate(version))
        _timed(case, "score", lambda: score(MONITOR_FROM, LAST_DAY, version))
        quiet_run = {"workspace": False, "build_marts": False}
        result = _timed(
            case,
            "monitor",
            lambda: monitor_days(MONITOR_FROM, LAST_DAY, version, workers=workers, **quiet_run),
        )
        if result["failed"]:
            raise RuntimeError(f"monitoring failed: {result['failed'][0]}")
        run_dbt(["build", *MARTS_SELECTION, *dbt_paths], quiet=True)
        with psycopg.connect(info) as conn:
            case.quiet_alerts = conn.execute(
                "select slice_date, alert_scope, metric_name, column_name, segment_type, segment_value,"
                " metric_value, expected_high, severity from marts.fct_alerts where model_version = %s"
                " order by 1, 2, 3",
                (version,),
            ).fetchall()
            keep_results_as(conn, version, f"{version}@none")
        case.quiet_alert_days = sorted({row[0] for row in case.quiet_alerts})
        _say(
            f"no change: {len(case.quiet_alert_days)} alert days of 90 "
            f"({', '.join(day.isoformat() for day in case.quiet_alert_days) or 'none'}); "
            + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in case.seconds.items())
        )
        days = (case.change, case.change + timedelta(days=1))
        for scenario in scenarios:
            folder = workdir / f"{scenario}-{stores}-{seed}"
            generate(
                folder,
                stores=stores,
                start=START,
                end=LAST_DAY,
                seed=seed,
                scenario=scenario,
                change_date=case.change,
            )
            with psycopg.connect(info) as conn:
                empty_raw_tables(conn)
            load_folder(folder)
            run_dbt(["run", "--select", "fct_sales_features", "--full-refresh", *dbt_paths], quiet=True)
            score(*days, version)
            monitor_days(*days, version, workers=1, **quiet_run)
            with psycopg.connect(info) as conn:
                keep_results_as(conn, version, f"{version}@{scenario}")
        run_dbt(["build", *MARTS_SELECTION, *dbt_paths], quiet=True)
        with psycopg.connect(info) as conn:
            for scenario in scenarios:
                rows = conn.execute(
                    "select slice_date, metric_name, column_name, segment_type, segment_value, severity"
                    " from marts.fct_alerts where model_version = %s order by slice_date, metric_name",
                    (f"{version}@{scenario}",),
                ).fetchall()
                case.detections[scenario] = _detection(scenario, case.change, rows)
                _say(f"  {scenario}: {' '.join(case.detections[scenario])}")
    return case


def _detection(scenario: str, change: date, rows: list[tuple]) -> tuple[str, str]:
    """('change' | '+1' | 'MISSED', what named it) from a scenario's alerts on its two days."""
    for day, label in ((change, "change"), (change + timedelta(days=1), "+1")):
        for slice_date, metric, column, segment_type, segment_value, severity in rows:
            if slice_date != day or not names_the_cause(scenario, metric, column):
                continue
            where = column or (f"{segment_type}={segment_value}" if segment_type else "")
            return label, f"{metric}{f'[{where}]' if where else ''} ({severity})"
    seen = sorted({f"{row[1]}[{row[2] or row[4]}]" for row in rows})
    return "MISSED", f"alerts: {', '.join(seen) or 'none'}"


def print_table(cases: list[Case], scenarios: tuple[str, ...]) -> None:
    """The scenario x size x seed table, then the quiet runs and the cost of calibration."""
    _say("\n| scenario | " + " | ".join(f"{case.stores} st. / seed {case.seed}" for case in cases) + " |")
    _say("|---|" + "---|" * len(cases))
    _say("| change date | " + " | ".join(case.change.isoformat() for case in cases) + " |")
    for scenario in scenarios:
        cells = [
            f"{case.detections[scenario][0]}: {case.detections[scenario][1]}"
            if case.detections[scenario][0] != "MISSED"
            else "**MISSED**"
            for case in cases
        ]
        _say(f"| {scenario} | " + " | ".join(cells) + " |")
    _say(
        "| false-alarm days before the change | "
        + " | ".join(str(case.false_alarm_days_before_change) for case in cases)
        + " |"
    )
    _say(
        "| no change: alert days of 90 | "
        + " | ".join(str(len(case.quiet_alert_days)) for case in cases)
        + " |"
    )
    for case in cases:
        for row in case.quiet_alerts:
            _say(
                f"  no change {case.stores} st. / seed {case.seed}: {row[0]} {row[1]} {row[2]} "
                f"{row[3] or (f'{row[4]}={row[5]}' if row[4] else '')} = {row[6]:.3f} "
                f"(expected up to {row[7]:.3f}, {row[8]})"
            )
    _say("\ncost of calibration (same run): calibrate / (train + 90-day monitor)")
    for case in cases:
        base = case.seconds["train"] + case.seconds["monitor"]
        _say(
            f"  {case.stores} stores, seed {case.seed}: {case.seconds['calibrate']:.1f} s / "
            f"({case.seconds['train']:.1f} + {case.seconds['monitor']:.1f} s) = "
            f"{case.seconds['calibrate'] / base:.1%}"
        )


def main(argv: list[str] | None = None) -> int:
    """Run the cases asked for, print the table; exit 1 when a scenario is missed or a run is noisy."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[6, 12, 54], help="store counts")
    parser.add_argument("--seeds", type=int, nargs="*", default=[1201, 2302, 3403], help="generator seeds")
    parser.add_argument("--scenarios", nargs="*", default=list(SCENARIOS), choices=SCENARIOS)
    parser.add_argument("--workers", type=int, default=2, help="monitoring processes")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args(argv)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    scenarios = tuple(args.scenarios)
    cases: list[Case] = []
    with tempfile.TemporaryDirectory(prefix="salesmon-acceptance-") as tmp:
        for stores in args.sizes:
            for seed in args.seeds:
                cases.append(run_case(stores, seed, scenarios, Path(tmp), args.workers))
    print_table(cases, scenarios)
    if args.json:
        payload = [
            {
                "stores": case.stores,
                "seed": case.seed,
                "change_date": case.change.isoformat(),
                "quiet_alert_days": [day.isoformat() for day in case.quiet_alert_days],
                "false_alarm_days_before_change": case.false_alarm_days_before_change,
                "detections": case.detections,
                "seconds": case.seconds,
            }
            for case in cases
        ]
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    missed = [
        (case.stores, case.seed, name)
        for case in cases
        for name, (when, _) in case.detections.items()
        if when == "MISSED"
    ]
    noisy = [(case.stores, case.seed) for case in cases if len(case.quiet_alert_days) > 2]
    _say(f"\nmissed: {missed or 'none'}; no-change runs with more than 2 alert days: {noisy or 'none'}")
    return 1 if missed or noisy else 0


if __name__ == "__main__":
    raise SystemExit(main())
