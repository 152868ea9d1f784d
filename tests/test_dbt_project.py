"""The dbt project's staging layer: it builds on an empty warehouse, its tests catch bad raw rows,
every column is documented, and its SQL is lint-clean (sqlfluff with the dbt templater)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import psycopg
import pytest

from warehouse.db import dbt_env
from warehouse.dbt import DBT_PROJECT_DIR, DbtError, run_dbt

UNKNOWN_STORE = 99

# The tests a train row with an unknown store and a train row with negative sales must fail.
EXPECTED_FAILURES = {
    "source_relationships_favorita_train_store_nbr__store_nbr__source_favorita_stores_",
    "relationships_stg_favorita__sales_store_nbr__store_nbr__ref_stg_favorita__stores_",
    "not_negative_stg_favorita__sales_sales",
}


@pytest.fixture(scope="module")
def dbt_paths(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Private target and log folders, so that concurrent dbt runs never share `target/`."""
    root = tmp_path_factory.mktemp("dbt")
    return ["--target-path", str(root / "target"), "--log-path", str(root / "logs")]


@pytest.fixture(scope="module")
def built_staging(module_database: str, dbt_paths: list[str]) -> Iterator[str]:
    """`dbt build --select staging` on a freshly bootstrapped, empty warehouse (it must pass)."""
    run_dbt(["build", "--select", "staging", "--indirect-selection", "cautious", *dbt_paths], quiet=True)
    yield module_database


def _run_results(dbt_paths: list[str]) -> list[dict]:
    target = Path(dbt_paths[dbt_paths.index("--target-path") + 1])
    return json.loads((target / "run_results.json").read_text())["results"]


def _test_name(unique_id: str) -> str:
    """`test.salesmon.not_negative_stg_favorita__sales_sales.1a2b3c` -> the test's name."""
    return unique_id.split(".")[2]


def test_staging_builds_on_an_empty_warehouse(built_staging: str, dbt_paths: list[str]) -> None:
    results = _run_results(dbt_paths)
    statuses = {result["status"] for result in results}
    assert statuses <= {"success", "pass"}
    kinds = [result["unique_id"].split(".")[0] for result in results]
    # 9 of the favorita files; 3 of ml (model versions, predictions, the request log); 4 of monitoring
    # (runs, metric values, metric bounds, the alert history)
    assert kinds.count("model") == 16
    assert kinds.count("unit_test") >= 2  # a favorita rename, NaN to null in the metric values
    assert kinds.count("test") > 40
    with psycopg.connect(built_staging) as conn:
        views = {
            row[0]
            for row in conn.execute(
                "select table_name from information_schema.views where table_schema = 'staging'"
            )
        }
        assert conn.execute("select count(*) from staging.stg_favorita__sales").fetchone() == (0,)
    assert {
        "stg_favorita__sales",
        "stg_favorita__forecast_requests",
        "stg_favorita__stores",
        "stg_favorita__oil_prices",
        "stg_favorita__holidays_events",
        "stg_favorita__transactions",
        "stg_favorita__loads",
        "stg_favorita__rejected_rows",
        "stg_favorita__changed_days",
        "stg_ml__model_versions",
        "stg_ml__predictions",
        "stg_ml__prediction_log",
        "stg_monitoring__runs",
        "stg_monitoring__metric_values",
        "stg_monitoring__metric_bounds",
        "stg_monitoring__alert_history",
    } <= views


def test_every_staging_and_source_column_is_described(built_staging: str, dbt_paths: list[str]) -> None:
    run_dbt(["docs", "generate", "--select", "staging", "source:favorita", *dbt_paths], quiet=True)
    target = Path(dbt_paths[dbt_paths.index("--target-path") + 1])
    manifest = json.loads((target / "manifest.json").read_text())
    catalog = json.loads((target / "catalog.json").read_text())

    documented = {**manifest["nodes"], **manifest["sources"]}
    in_database = {**catalog["nodes"], **catalog["sources"]}
    checked = [
        unique_id
        for unique_id in in_database
        if unique_id.startswith("source.salesmon.favorita.") or unique_id.startswith("model.salesmon.stg_")
    ]
    assert len(checked) == 16 + 9  # the staging models (9 favorita, 3 ml, 4 monitoring) and the raw tables
    for unique_id in checked:
        node = documented[unique_id]
        assert node["description"].strip(), f"{unique_id} has no description"
        actual = set(in_database[unique_id]["columns"])
        described = {name for name, column in node["columns"].items() if column["description"].strip()}
        assert actual == described, (
            f"{unique_id}: undocumented {actual - described}, stale {described - actual}"
        )
    grains = [documented[uid]["description"] for uid in checked if uid.startswith("model.")]
    assert all("One row per" in description for description in grains)


def test_staging_tests_catch_bad_raw_rows(built_staging: str, dbt_paths: list[str]) -> None:
    """Rows written past the loader: an unknown store and negative sales fail the right tests only."""
    with psycopg.connect(built_staging) as conn:
        conn.execute(
            "insert into raw.stores (store_nbr, city, state, type, cluster) values (%s, %s, %s, %s, %s)",
            (1, "Quito", "Pichincha", "D", 13),
        )
        conn.cursor().executemany(
            "insert into raw.train (id, date, store_nbr, family, sales, onpromotion)"
            " values (%s, %s, %s, %s, %s, %s)",
            [
                (0, date(2017, 1, 2), 1, "BEVERAGES", 1520.0, 3),
                (1, date(2017, 1, 2), 1, "DAIRY", -4.0, 0),
                (2, date(2017, 1, 2), UNKNOWN_STORE, "BEVERAGES", 12.0, 0),
            ],
        )
        conn.execute(
            "insert into raw.holidays_events (date, type, locale, locale_name, description, transferred)"
            " values (%s, %s, %s, %s, %s, %s)",
            (date(2017, 1, 1), "Holiday", "National", "Ecuador", "Primer dia del ano", None),
        )
        conn.commit()
        assert conn.execute(
            "select is_transferred from staging.stg_favorita__holidays_events"
        ).fetchall() == [(False,)]

    with pytest.raises(DbtError):
        run_dbt(["test", "--select", "staging", "--indirect-selection", "cautious", *dbt_paths], quiet=True)
    results = _run_results(dbt_paths)
    failed = {
        _test_name(result["unique_id"]): result["failures"]
        for result in results
        if result["status"] != "pass"
    }
    assert failed == dict.fromkeys(EXPECTED_FAILURES, 1)

    with psycopg.connect(built_staging) as conn:
        conn.execute("delete from raw.train where store_nbr = %s or sales < %s", (UNKNOWN_STORE, 0))
        conn.commit()
    run_dbt(["test", "--select", *sorted(EXPECTED_FAILURES), *dbt_paths], quiet=True)
    results = _run_results(dbt_paths)
    assert {_test_name(result["unique_id"]): result["status"] for result in results} == dict.fromkeys(
        EXPECTED_FAILURES, "pass"
    )


def test_staging_sql_is_lint_clean(built_staging: str, tmp_path: Path) -> None:
    """sqlfluff (dbt templater, the project's .sqlfluff) finds nothing in models/staging."""
    env = {
        **os.environ,
        **dbt_env(),
        "DBT_TARGET_PATH": str(tmp_path / "target"),
        "DBT_LOG_PATH": str(tmp_path),
    }
    sqlfluff = Path(sys.executable).with_name("sqlfluff")
    result = subprocess.run(
        [str(sqlfluff), "lint", "models/staging", "--format", "json", "--nofail"],
        cwd=DBT_PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    linted = {Path(entry["filepath"]).name for entry in report}
    assert {f"stg_favorita__{name}.sql" for name in ("sales", "stores", "holidays_events")} <= linted
    violations = [
        f"{entry['filepath']}:{violation['start_line_no']} {violation['code']} {violation['description']}"
        for entry in report
        for violation in entry["violations"]
    ]
    assert violations == []
