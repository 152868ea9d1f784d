"""Corrections end to end: the sales of one old day are corrected in train.csv, and `salesmon load
--update`, `salesmon dbt run`, `salesmon score --changed` and `salesmon monitor` bring the features,
predictions and metrics of exactly the days that depend on it up to date, and nothing else.

The corrected day's features change (its sales), and so do those of the 28 days after it (lags and
rolling windows read it); every other day keeps its rows, predictions (not even rescored) and
monitoring runs.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import psycopg
import pytest

from tests._fixtures import command_env

pytestmark = pytest.mark.slow

STORES = 3
START = date(2017, 1, 1)
END = date(2017, 6, 30)
MONITOR_FROM = date(2017, 5, 15)
CORRECTED_DAY = date(2017, 5, 20)
CORRECTED_STORE = 2
AFFECTED = {CORRECTED_DAY + timedelta(days=offset) for offset in range(29)}  # the day and 28 after it

FEATURES = """
select sales_date, md5(string_agg(features::text, '|' order by store_nbr, family))
from marts.fct_sales_features as features
where not is_forecast_request
group by sales_date
"""
PREDICTIONS = """
select sales_date, md5(string_agg(prediction::text, '|' order by store_nbr, family)), min(scored_at)
from ml.predictions
group by sales_date
"""
METRICS = """
select slice_date, md5(string_agg(
    concat_ws(':', metric_name, column_name, segment_type, segment_value, value, detected), '|'
    order by metric_name, column_name, segment_type, segment_value
)), min(run_id::text)
from monitoring.metric_values
group by slice_date
"""


def _salesmon(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("salesmon")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "orchestration.cli"]
    completed = subprocess.run([*command, *args], env=env, capture_output=True, text=True, timeout=900)
    assert completed.returncode == 0, (
        f"salesmon {' '.join(args)}: {(completed.stdout + completed.stderr)[-3000:]}"
    )
    return completed


def _state(database: str) -> dict[str, dict[date, tuple]]:
    with psycopg.connect(database) as conn:
        return {
            name: {row[0]: tuple(row[1:]) for row in conn.execute(query)}
            for name, query in (("features", FEATURES), ("predictions", PREDICTIONS), ("metrics", METRICS))
        }


@pytest.fixture(scope="module")
def corrected(module_database: str, prefect_harness: str, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The pipeline on generated data, a state snapshot, the correction through the commands, and a
    second snapshot."""
    from datagen import generate

    root = tmp_path_factory.mktemp("corrections")
    data = root / "data"
    generate(data, stores=STORES, start=START, end=END, seed=31)
    env = command_env(module_database, root / "home", prefect_harness, dbt_root=root)
    monitored = ("--start", MONITOR_FROM.isoformat(), "--end", END.isoformat())
    _salesmon(env, "load", "--data-dir", str(data))
    _salesmon(env, "dbt", "run", "--select", "+fct_sales_features")
    _salesmon(env, "train", "--monitor-from", MONITOR_FROM.isoformat())
    _salesmon(env, "score", *monitored)
    _salesmon(env, "monitor", *monitored, "--no-workspace")
    before = _state(module_database)

    train = pd.read_csv(data / "train.csv", dtype={"date": str}, keep_default_na=False)
    rows = (train["date"] == CORRECTED_DAY.isoformat()) & (train["store_nbr"] == CORRECTED_STORE)
    train.loc[rows, "sales"] = (pd.to_numeric(train.loc[rows, "sales"]) * 3 + 1).round(3)
    train.to_csv(data / "train.csv", index=False)
    outputs = {
        "plain": _salesmon(env, "load", "--data-dir", str(data)).stdout,
        "update": _salesmon(env, "load", "--data-dir", str(data), "--update").stdout,
        "dbt": _salesmon(env, "dbt", "run", "--select", "fct_sales_features").stdout,
        "score": _salesmon(env, "score", "--changed").stdout,
        "monitor": _salesmon(env, "monitor", *monitored, "--no-workspace").stdout,
        "score again": _salesmon(env, "score", "--changed").stdout,
    }
    return {"before": before, "after": _state(module_database), "outputs": outputs, "rows": int(rows.sum())}


def test_loads_report_the_corrected_rows_per_day(corrected: dict) -> None:
    outputs, rows = corrected["outputs"], corrected["rows"]
    assert rows == 33
    assert f"{rows} rows differ from what is stored (not replaced" in outputs["plain"]
    assert f"{rows} rows differ from what is stored (replaced)" in outputs["update"]
    assert f"on 1 day(s): {CORRECTED_DAY}: {rows}" in outputs["update"]


def test_features_change_on_the_corrected_day_and_the_28_after_it_only(corrected: dict) -> None:
    before, after = corrected["before"]["features"], corrected["after"]["features"]
    assert before.keys() == after.keys()
    changed = {day for day in before if before[day] != after[day]}
    assert changed == {day for day in AFFECTED if day in before}
    assert max(changed) == CORRECTED_DAY + timedelta(days=28) and min(changed) == CORRECTED_DAY


def test_predictions_are_rescored_for_the_affected_days_only(corrected: dict) -> None:
    before, after = corrected["before"]["predictions"], corrected["after"]["predictions"]
    assert before.keys() == after.keys()
    scored_days = set(before)
    rescored = {day for day in before if before[day][1] != after[day][1]}
    changed = {day for day in before if before[day][0] != after[day][0]}
    expected = {day for day in AFFECTED if day in scored_days}
    assert rescored == expected
    assert changed - {CORRECTED_DAY} == expected - {CORRECTED_DAY}  # the day itself: same inputs but sales
    assert "no scored day has changed inputs" in corrected["outputs"]["score again"]


def test_metrics_are_recomputed_for_the_affected_days_only(corrected: dict) -> None:
    before, after = corrected["before"]["metrics"], corrected["after"]["metrics"]
    assert before.keys() == after.keys() and MONITOR_FROM in before
    recomputed = {day for day in before if before[day][1] != after[day][1]}
    changed = {day for day in before if before[day][0] != after[day][0]}
    expected = {day for day in AFFECTED if day in before}
    assert recomputed == expected
    assert changed == expected
    assert f"{len(expected)} days computed" in corrected["outputs"]["monitor"]
