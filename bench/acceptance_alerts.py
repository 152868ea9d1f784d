"""Acceptance of the alerts on generated data: how often they fire with no change, and whether they fire
on each injected change (issue "Batch monitoring", point 7).

For each data set the whole pipeline runs in a fresh database of the configured server: generate, load,
dbt build, train (monitoring from `monitor_from`), score the monitored days, monitor them (the engine's
backfill), dbt build of the metrics mart. Then it prints

- with no change (default 90 monitored days, 54 stores and 6 stores): the distribution of every
  model-level metric over the monitored days (median, 95th and 99th percentile, max: what the
  thresholds in dbt_project/seeds/monitoring_thresholds.csv were chosen on), the days with a
  model-level alert in marts.fct_alerts, and, as the issue's reference measurement, on how many days
  Evidently's default drift test of the prediction flags drift against the whole 28-day reference
  versus against the same-weekday reference;
- for each scenario (promo_shift, sales_drop, missing_burst, store_closures): the alerts from the day
  before the change date to the day after, and whether one names a metric relevant to the scenario
  on the change date or the day after.

Usage: `python -m bench.acceptance_alerts [--stores 54 6] [--days 90] [--scenarios ...] [--json FILE]`
(about 10-15 minutes for everything on 2 cores). Uses SALESMON_HOME / SALESMON_PG_PORT like every
salesmon command: point them at a private server.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import psycopg
from psycopg.conninfo import make_conninfo

SCENARIOS = ("promo_shift", "sales_drop", "missing_burst", "store_closures")
# The model-level metrics whose alert counts as "naming a relevant metric" for each scenario.
RELEVANT_METRICS: dict[str, set[str]] = {
    "promo_shift": {"drifted_columns_share", "prediction_drift_score", "column_drift_score"},
    "sales_drop": {"rmsle_ratio", "segment_rmsle_ratio"},
    "missing_burst": {"missing_values_share", "column_missing_share"},
    "store_closures": {"zero_sales_store_share", "rmsle_ratio", "segment_rmsle_ratio"},
}
HEALTH_METRICS = (
    "row_count_ratio",
    "missing_values_share",
    "unseen_category_count",
    "zero_sales_store_share",
    "prediction_drift_score",
    "drifted_columns_share",
    "rmsle_ratio",
)
MARTS_SELECTION = ["--select", "source:monitoring", "path:models/marts/monitoring", "path:seeds"]
LAST_DAY = date(2017, 8, 15)
SCENARIO_START = date(2017, 1, 1)
SCENARIO_CHANGE = date(2017, 7, 20)
SCENARIO_END = date(2017, 7, 25)


def _say(message: str) -> None:
    print(message, flush=True)


@dataclass
class PipelineRun:
    """What one pipeline run produced: the model version, timings, and the database it lives in."""

    database: str
    model_version: str
    timings: dict[str, float] = field(default_factory=dict)


@contextmanager
def fresh_database(name: str, *, keep: bool = False) -> Iterator[str]:
    """A new, empty database on the configured server that salesmon uses inside the block."""
    from warehouse.db import conninfo
    from warehouse.settings import get_settings

    get_settings.cache_clear()
    server = make_conninfo(conninfo(), dbname="postgres")
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')
        conn.execute(f'create database "{name}"')
    info = make_conninfo(server, dbname=name)
    previous = os.environ.get("SALESMON_DATABASE_URL")
    os.environ["SALESMON_DATABASE_URL"] = info
    get_settings.cache_clear()
    try:
        yield info
    finally:
        if previous is None:
            os.environ.pop("SALESMON_DATABASE_URL", None)
        else:
            os.environ["SALESMON_DATABASE_URL"] = previous
        get_settings.cache_clear()
        if not keep:
            with psycopg.connect(server, autocommit=True) as conn:
                conn.execute(f'drop database if exists "{name}" with (force)')


def run_pipeline(
    data_dir: Path,
    monitor_from: date,
    monitor_to: date,
    *,
    dbt_args: list[str] | None = None,
    workers: int = 2,
    say: Callable[[str], None] = _say,
) -> PipelineRun:
    """Load `data_dir` into the current (empty) database and run the pipeline up to the metrics mart."""
    from models_ml.score import score
    from models_ml.train import train
    from monitoring.engine import backfill
    from warehouse.dbt import run_dbt
    from warehouse.loader import load_folder
    from warehouse.settings import get_settings

    timings: dict[str, float] = {}
    dbt_args = dbt_args or []

    def step(name: str, action: Callable[[], object]) -> object:
        started = time.perf_counter()
        result = action()
        timings[name] = time.perf_counter() - started
        say(f"  {name}: {timings[name]:.1f} s")
        return result

    step("load", lambda: load_folder(data_dir))
    step(
        "dbt build",
        lambda: run_dbt(["build", "--exclude", "path:models/marts/monitoring", *dbt_args], quiet=True),
    )
    trained = step("train", lambda: train(monitor_from))
    step("score", lambda: score(monitor_from, monitor_to))
    summary = step("monitor", lambda: backfill(monitor_from, monitor_to, workers=workers, workspace=False))
    failed = summary.days("failed")
    if failed:
        raise RuntimeError(f"monitoring failed on {len(failed)} days: {failed[0]}")
    step("dbt marts", lambda: run_dbt(["build", *MARTS_SELECTION, *dbt_args], quiet=True))
    database = get_settings().database_url or ""
    return PipelineRun(database=database, model_version=trained.champion_version, timings=timings)


def model_alert_days(
    conn: psycopg.Connection, model_version: str
) -> dict[date, list[tuple[str, float, str]]]:
    """The days with a model-level alert: day -> [(metric, value, severity)]."""
    rows = conn.execute(
        "select slice_date, metric_name, metric_value, severity from marts.fct_alerts"
        " where model_version = %s and alert_scope = 'model' order by slice_date, metric_name",
        (model_version,),
    ).fetchall()
    days: dict[date, list[tuple[str, float, str]]] = {}
    for day, metric, value, severity in rows:
        days.setdefault(day, []).append((metric, value, severity))
    return days


def metric_distributions(conn: psycopg.Connection, model_version: str) -> dict[str, dict[str, float]]:
    """Median, 95th and 99th percentile and max of each model-level metric over the monitored days."""
    columns = ", ".join(HEALTH_METRICS)
    rows = conn.execute(
        f"select {columns} from marts.fct_model_health_daily where model_version = %s", (model_version,)
    ).fetchall()
    result: dict[str, dict[str, float]] = {}
    for index, metric in enumerate(HEALTH_METRICS):
        values = np.array([row[index] for row in rows if row[index] is not None], dtype=float)
        if values.size == 0:
            continue
        result[metric] = {
            "days": int(values.size),
            "min": float(values.min()),
            "p01": float(np.percentile(values, 1)),
            "p50": float(np.percentile(values, 50)),
            "p95": float(np.percentile(values, 95)),
            "p99": float(np.percentile(values, 99)),
            "max": float(values.max()),
        }
    return result


def whole_versus_same_weekday(model_version: str, days: list[date]) -> dict[str, object]:
    """Evidently's default drift test of the prediction per day, against the whole reference and the
    same-weekday reference: how many days each flags (the issue's reference measurement)."""
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift

    from monitoring.config import DEFAULT_CONFIG
    from monitoring.slices import load_slice
    from warehouse.db import connect

    definition = DataDefinition(numerical_columns=["prediction"])
    flagged: dict[str, list[str]] = {"whole_reference": [], "same_weekday": []}
    with connect() as conn:
        rows = conn.execute(
            "select sales_date, prediction from ml.reference where model_version = %s", (model_version,)
        ).fetchall()
        reference = pd.DataFrame.from_records(rows, columns=["sales_date", "prediction"])
        reference["prediction"] = reference["prediction"].astype(float)
        weekdays = pd.to_datetime(reference["sales_date"]).dt.isocalendar().day.to_numpy()
        for day in days:
            current = load_slice(conn, day, model_version, DEFAULT_CONFIG)[["prediction"]]
            for name, ref in (
                ("whole_reference", reference[["prediction"]]),
                ("same_weekday", reference.loc[weekdays == day.isoweekday(), ["prediction"]]),
            ):
                metric = ValueDrift(column="prediction")
                snapshot = Report([metric], include_tests=True).run(
                    Dataset.from_pandas(current, data_definition=definition),
                    Dataset.from_pandas(ref, data_definition=definition),
                )
                result = snapshot.metric_results[metric.metric_id]
                drifted = any(
                    test.id == "drift" and str(getattr(test.status, "value", test.status)).upper() == "FAIL"
                    for test in result.tests or []
                )
                if drifted:
                    flagged[name].append(f"{day.isoformat()} ({day.strftime('%a')})")
    return {"days": len(days), "flagged": flagged}


def no_change(
    stores: int, days: int, workdir: Path, *, compare: bool, keep: bool = False
) -> dict[str, object]:
    """The no-change acceptance: `days` monitored days ending on 2017-08-15, `stores` stores."""
    from warehouse.generator import generate

    monitor_to = LAST_DAY
    monitor_from = monitor_to - timedelta(days=days - 1)
    # enough history: 28 days of lags, about 6 months of training, the 28-day validation window
    start = monitor_from - timedelta(days=28 + 28 + 200)
    data_dir = workdir / f"none-{stores}"
    _say(f"no change, {stores} stores, {start} .. {monitor_to}, monitoring {monitor_from} .. {monitor_to}")
    started = time.perf_counter()
    generate(data_dir, stores=stores, start=start, end=monitor_to, seed=42, scenario="none")
    with fresh_database(f"accept_none_{stores}", keep=keep) as info:
        run = run_pipeline(data_dir, monitor_from, monitor_to)
        with psycopg.connect(info) as conn:
            alert_days = model_alert_days(conn, run.model_version)
            distributions = metric_distributions(conn, run.model_version)
            any_scope = conn.execute(
                "select alert_scope, count(distinct slice_date), count(*) from marts.fct_alerts"
                " where model_version = %s group by alert_scope order by alert_scope",
                (run.model_version,),
            ).fetchall()
        comparison = (
            whole_versus_same_weekday(run.model_version, _days(monitor_from, monitor_to)) if compare else None
        )
    return {
        "stores": stores,
        "monitored_days": days,
        "model_alert_days": {day.isoformat(): alerts for day, alerts in alert_days.items()},
        "alert_days_by_scope": {scope: {"days": n_days, "alerts": n} for scope, n_days, n in any_scope},
        "distributions": distributions,
        "prediction_drift_default_test": comparison,
        "seconds": time.perf_counter() - started,
        "timings": run.timings,
    }


def scenario_run(scenario: str, stores: int, workdir: Path, *, keep: bool = False) -> dict[str, object]:
    """One scenario on a small data set: the alerts from the day before the change to two days after."""
    from warehouse.generator import generate

    data_dir = workdir / f"{scenario}-{stores}"
    monitor_from = SCENARIO_CHANGE - timedelta(days=1)
    monitor_to = SCENARIO_CHANGE + timedelta(days=2)
    _say(
        f"{scenario}, {stores} stores, change on {SCENARIO_CHANGE}, monitoring {monitor_from} .. {monitor_to}"
    )
    started = time.perf_counter()
    generate(
        data_dir,
        stores=stores,
        start=SCENARIO_START,
        end=SCENARIO_END,
        seed=42,
        scenario=scenario,
        change_date=SCENARIO_CHANGE,
    )
    meta = json.loads((data_dir / "scenario.json").read_text())
    change = date.fromisoformat(meta["change_date"])
    with fresh_database(f"accept_{scenario}_{stores}", keep=keep) as info:
        run = run_pipeline(data_dir, monitor_from, monitor_to)
        with psycopg.connect(info) as conn:
            alerts = conn.execute(
                "select slice_date, alert_scope, metric_name, column_name, segment_type, segment_value,"
                " metric_value, severity from marts.fct_alerts where model_version = %s"
                " order by slice_date, alert_scope, metric_name, column_name, segment_type, segment_value",
                (run.model_version,),
            ).fetchall()
    window = {change, change + timedelta(days=1)}
    fired = sorted({(row[0], row[2]) for row in alerts if row[0] in window})
    relevant = [(day.isoformat(), metric) for day, metric in fired if metric in RELEVANT_METRICS[scenario]]
    return {
        "scenario": scenario,
        "change_date": change.isoformat(),
        "alerts": [
            {
                "slice_date": row[0].isoformat(),
                "scope": row[1],
                "metric": row[2],
                "column": row[3],
                "segment": f"{row[4]}={row[5]}" if row[4] else "",
                "value": row[6],
                "severity": row[7],
            }
            for row in alerts
        ],
        "relevant_alerts_on_change_or_next_day": relevant,
        "detected": bool(relevant),
        "seconds": time.perf_counter() - started,
        "timings": run.timings,
    }


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=offset) for offset in range((end - start).days + 1)]


def _print_no_change(result: dict[str, object]) -> None:
    _say(f"\n== no change: {result['stores']} stores, {result['monitored_days']} monitored days ==")
    _say(f"{'metric':<24}{'days':>5}{'min':>9}{'p01':>9}{'p50':>9}{'p95':>9}{'p99':>9}{'max':>9}")
    for metric, stats in result["distributions"].items():  # type: ignore[union-attr]
        cells = "".join(f"{stats[key]:>9.3f}" for key in ("min", "p01", "p50", "p95", "p99", "max"))
        _say(f"{metric:<24}{stats['days']:>5}{cells}")
    alert_days = result["model_alert_days"]
    _say(f"days with a model-level alert: {len(alert_days)}")  # type: ignore[arg-type]
    for day, alerts in alert_days.items():  # type: ignore[union-attr]
        _say(
            f"  {day}: "
            + ", ".join(f"{metric}={value:.3f} ({severity})" for metric, value, severity in alerts)
        )
    _say(f"alert days by scope: {result['alert_days_by_scope']}")
    comparison = result.get("prediction_drift_default_test")
    if comparison:
        flagged = comparison["flagged"]  # type: ignore[index]
        _say(
            f"Evidently default prediction drift test: whole 28-day reference flags "
            f"{len(flagged['whole_reference'])} of {comparison['days']} days {flagged['whole_reference']}; "  # type: ignore[index]
            f"same-weekday reference flags {len(flagged['same_weekday'])} {flagged['same_weekday']}"
        )
    _say(
        f"pipeline {result['seconds']:.0f} s: "
        + ", ".join(f"{k} {v:.0f} s" for k, v in result["timings"].items())
    )  # type: ignore[union-attr]


def _print_scenario(result: dict[str, object]) -> None:
    _say(f"\n== {result['scenario']}: change on {result['change_date']} ==")
    for alert in result["alerts"]:  # type: ignore[union-attr]
        where = alert["column"] or alert["segment"]
        _say(
            f"  {alert['slice_date']} {alert['scope']:<8}{alert['metric']:<24}{where:<28}"
            f"{alert['value']:>9.3f} {alert['severity']}"
        )
    verdict = "DETECTED" if result["detected"] else "MISSED"
    _say(
        f"{verdict}: relevant alerts on the change date or the day after: "
        f"{result['relevant_alerts_on_change_or_next_day']}"
    )
    _say(
        f"pipeline {result['seconds']:.0f} s: "
        + ", ".join(f"{k} {v:.0f} s" for k, v in result["timings"].items())
    )  # type: ignore[union-attr]


def main(argv: list[str] | None = None) -> int:
    """Run the acceptance runs asked for and print (and optionally save) what they measured."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--stores", type=int, nargs="*", default=[54, 6], help="store counts of the no-change runs"
    )
    parser.add_argument("--days", type=int, default=90, help="monitored days of the no-change runs")
    parser.add_argument("--scenarios", nargs="*", default=list(SCENARIOS), choices=SCENARIOS)
    parser.add_argument("--scenario-stores", type=int, default=6)
    parser.add_argument("--no-compare", action="store_true", help="skip the whole-vs-same-weekday drift test")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--keep", action="store_true", help="keep the databases (accept_*) for inspection")
    args = parser.parse_args(argv)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    results: dict[str, object] = {"no_change": [], "scenarios": []}
    with tempfile.TemporaryDirectory(prefix="salesmon-acceptance-") as tmp:
        workdir = Path(tmp)
        for stores in args.stores:
            result = no_change(stores, args.days, workdir, compare=not args.no_compare, keep=args.keep)
            _print_no_change(result)
            results["no_change"].append(result)  # type: ignore[union-attr]
        for scenario in args.scenarios:
            result = scenario_run(scenario, args.scenario_stores, workdir, keep=args.keep)
            _print_scenario(result)
            results["scenarios"].append(result)  # type: ignore[union-attr]
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
    missed = [item["scenario"] for item in results["scenarios"] if not item["detected"]]  # type: ignore[union-attr]
    noisy = [item["stores"] for item in results["no_change"] if len(item["model_alert_days"]) > 2]  # type: ignore[union-attr]
    _say(
        f"\nscenarios missed: {missed or 'none'}; "
        f"no-change runs with more than 2 alert days: {noisy or 'none'}"
    )
    return 1 if missed or noisy else 0


if __name__ == "__main__":
    raise SystemExit(main())
