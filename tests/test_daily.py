"""The daily deployment's flow end to end (issue #13, point 6): a new day's files dropped into the
landing folder appear in the marts after one run of `daily`; a second run changes nothing.

Set-up, for real: 3 generated stores from 2017-01-01 to 2017-07-20, all but the last day loaded,
the features built, a model trained for a period monitored from 2017-07-16, and a first run of
`daily` with no landing folder, which scores and monitors the four days there are (16-19 July). Then
the last day's rows of train.csv and transactions.csv are dropped into the landing folder.
"""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import psycopg
import pytest

pytestmark = pytest.mark.slow

START, END = date(2017, 1, 1), date(2017, 7, 20)
MONITOR_FROM = date(2017, 7, 16)
NEW_DAY = END


def _split(source: Path, name: str, initial: Path, landing: Path) -> int:
    """Copy `name` into `initial` without the new day's rows, and those rows into `landing`."""
    with (source / name).open(newline="") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1:]
    column = header.index("date")
    new = [row for row in body if row[column] == NEW_DAY.isoformat()]
    for folder, part in (
        (initial, [row for row in body if row[column] != NEW_DAY.isoformat()]),
        (landing, new),
    ):
        with (folder / name).open("w", newline="") as handle:
            csv.writer(handle).writerows([header, *part])
    return len(new)


@pytest.fixture(scope="module")
def warehouse_before(
    module_database: str, prefect_harness: str, tmp_path_factory: pytest.TempPathFactory
) -> dict:
    """Everything up to the day before the new one, monitored by a first run of `daily`."""
    from datagen import generate
    from models_ml.train import train
    from orchestration.daily import daily
    from warehouse.dbt import run_dbt
    from warehouse.loader import load_folder

    root = tmp_path_factory.mktemp("daily")
    full, initial, drop = root / "full", root / "initial", root / "drop"
    for folder in (initial, drop):
        folder.mkdir()
    generate(full, stores=3, start=START, end=END, seed=31)
    for name in ("stores.csv", "oil.csv", "holidays_events.csv"):
        (initial / name).write_bytes((full / name).read_bytes())
    new_rows = {name: _split(full, name, initial, drop) for name in ("train.csv", "transactions.csv")}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DBT_TARGET_PATH", str(root / "dbt-target"))
        patch.setenv("DBT_LOG_PATH", str(root / "dbt-logs"))
        patch.setenv("SALESMON_HOME", str(root / "home"))
        load_folder(initial)
        run_dbt(["run", "--select", "+fct_sales_features"], quiet=True)
        version = train(MONITOR_FROM).champion_version
        first = daily(workspace=False)
        yield {"version": version, "first": first, "drop": drop, "root": root, "new_rows": new_rows}


def _state(conn: psycopg.Connection) -> dict[str, object]:
    """What a run of the flow could change: raw loads, predictions, monitoring runs, the marts."""
    queries = {
        "loads": "select count(*), sum(rows_loaded) from raw.load_log",
        "train": "select count(*), max(date) from raw.train",
        "predictions": "select count(*), max(sales_date), max(scored_at) from ml.predictions",
        "runs": "select count(*), max(finished_at) from monitoring.runs",
        "health": "select count(*), max(slice_date) from marts.fct_model_health_daily",
        "alerts": "select count(*) from marts.fct_alerts",
        "features": "select count(*), max(sales_date) from marts.fct_sales_features where sales is not null",
    }
    return {name: conn.execute(query).fetchone() for name, query in queries.items()}


def test_a_new_day_dropped_into_the_landing_folder_reaches_the_marts_once(
    warehouse_before: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestration.daily import LOADED, daily
    from warehouse.db import connect

    root, version = warehouse_before["root"], warehouse_before["version"]
    first = warehouse_before["first"]
    assert first["status"] == "processed"
    assert first["days"] == ["2017-07-16", "2017-07-19"]
    assert sorted(first["monitoring"]["computed"]) == ["2017-07-16", "2017-07-17", "2017-07-18", "2017-07-19"]
    monkeypatch.setenv("DBT_TARGET_PATH", str(root / "dbt-target"))
    monkeypatch.setenv("DBT_LOG_PATH", str(root / "dbt-logs"))
    monkeypatch.setenv("SALESMON_HOME", str(root / "home"))
    landing = root / "landing"
    landing.mkdir()
    for path in warehouse_before["drop"].iterdir():
        (landing / path.name).write_bytes(path.read_bytes())

    result = daily(landing_dir=str(landing), workspace=False)

    assert result["status"] == "processed"
    assert result["days"] == [NEW_DAY.isoformat(), NEW_DAY.isoformat()]
    assert result["loaded"]["files"] == ["train.csv", "transactions.csv"]
    assert result["loaded"]["rows_new"] == sum(warehouse_before["new_rows"].values()) == 3 * 33 + 3
    assert result["monitoring"]["computed"] == [NEW_DAY.isoformat()]
    assert not list(landing.glob("*.csv"))  # moved, so that they are loaded once
    assert sorted(path.name for path in (landing / LOADED).glob("*/*.csv")) == [
        "train.csv",
        "transactions.csv",
    ]
    with connect() as conn:
        health = conn.execute(
            "select row_count, rmsle from marts.fct_model_health_daily"
            " where slice_date = %s and model_version = %s and source = 'batch'",
            (NEW_DAY, version),
        ).fetchone()
        predictions = conn.execute(
            "select count(*) from ml.predictions where sales_date = %s and model_version = %s",
            (NEW_DAY, version),
        ).fetchone()[0]
        coverage = conn.execute(
            "select monitoring_status from marts.fct_monitoring_coverage_daily where slice_date = %s",
            (NEW_DAY,),
        ).fetchone()
        before = _state(conn)
    assert health is not None and health[0] == 3 * 33 and health[1] > 0
    assert predictions == 3 * 33
    assert coverage == ("computed",)

    again = daily(landing_dir=str(landing), workspace=False)

    assert again["status"] == "nothing new"
    assert again["loaded"]["files"] == []
    with connect() as conn:
        assert _state(conn) == before


def test_a_bad_file_stays_in_the_landing_folder_with_the_loaders_message(
    warehouse_before: dict, tmp_path: Path
) -> None:
    from orchestration.daily import daily
    from warehouse.loader import LoadError

    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "train.csv").write_text("id,when,store_nbr\n1,2017-07-21,1\n")
    with pytest.raises(LoadError, match="train.csv: header is"):
        daily(landing_dir=str(landing), workspace=False)
    assert (landing / "train.csv").exists()
