"""What calibration adds to `salesmon train` plus a 90-day `salesmon monitor`, as a user runs them.

In a private warehouse: generate and load a data set, build the features, then per round: train a
new version (`salesmon train`, timed), score the 90 monitored days, monitor them once as the new
version's first run (`salesmon monitor`: the flow calibrates the version in seven weekday tasks
beside the days) and once more with `--force` (the same days, already calibrated). Calibration's
cost is the difference of the two monitor runs; the ratio is that cost over train + the forced
monitor, measured in the same round. The verdict is on the median of the rounds (goal: at most 0.20).

Usage: `python -m bench.bench_calibration [--stores 54] [--rounds 2] [--seed 7]`. Uses SALESMON_HOME /
SALESMON_PG_PORT like every salesmon command: point them at a private server.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

MONITOR_FROM = date(2017, 5, 18)
LAST_DAY = date(2017, 8, 15)
START = date(2016, 9, 1)
GOAL = 0.20


def _salesmon(*args: str) -> float:
    """Run a salesmon command as a user would; its wall time in seconds (raises when it fails)."""
    command = [str(Path(sys.executable).with_name("salesmon")), *args]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return seconds


def main(argv: list[str] | None = None) -> int:
    """Set up the data, run the rounds, print each round and the median ratio."""
    from warehouse.dbt import METRICS_MART

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=54)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    days = ["--start", MONITOR_FROM.isoformat(), "--end", LAST_DAY.isoformat()]
    with tempfile.TemporaryDirectory(prefix="salesmon-bench-calibration-") as tmp:
        data = Path(tmp) / "data"
        _salesmon(
            "data",
            "generate",
            "--out",
            str(data),
            "--stores",
            str(args.stores),
            "--start",
            START.isoformat(),
            "--seed",
            str(args.seed),
        )
        _salesmon("load", "--data-dir", str(data))
        _salesmon("dbt", "build", "--exclude", *METRICS_MART, "-q")
        ratios = []
        for number in range(1, args.rounds + 1):
            train = _salesmon("train", "--monitor-from", MONITOR_FROM.isoformat())
            _salesmon("score", *days)
            first = _salesmon("monitor", *days)
            forced = _salesmon("monitor", *days, "--force")
            ratio = (first - forced) / (train + forced)
            ratios.append(ratio)
            print(
                f"round {number}: train {train:.1f} s, first monitor {first:.1f} s (calibrates),"
                f" forced monitor {forced:.1f} s: calibration adds {first - forced:.1f} s = {ratio:.1%}",
                flush=True,
            )
    median = statistics.median(ratios)
    verdict = "PASS" if median <= GOAL else "FAIL"
    print(f"{args.stores} stores: calibration adds {median:.1%} (median of {len(ratios)}) {verdict}")
    return 0 if median <= GOAL else 1


if __name__ == "__main__":
    raise SystemExit(main())
