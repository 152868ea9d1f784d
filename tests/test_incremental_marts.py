"""The incremental marts (int_metric_values_graded, fct_predictions_vs_actuals, and the monitored-day
marts built from the grades: fct_model_health_daily, fct_segment_performance_daily,
fct_feature_drift_daily): a build rebuilds only the days whose inputs changed (a new monitoring run,
new bounds, a rescored day, late or corrected actual sales), nothing when nothing changed, and an
incremental build holds, value for value, what a `--full-refresh` builds from the same inputs (the
marts rebuilt whole, fct_alerts and fct_monitoring_coverage_daily, too)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.test_metrics_mart import COMPUTED_AT, FIRST_DAY, _bound_rows, _metric_rows, _seed
from warehouse.dbt import run_dbt

SELECTION = [
    "--select",
    "+fct_predictions_vs_actuals",
    "path:models/staging/monitoring",
    "path:models/intermediate/monitoring",
    "path:models/marts/monitoring",
]
# the monitored-day marts: rebuilt by (slice_date, model_version, source), like the grades
DAY_MARTS = ("fct_model_health_daily", "fct_segment_performance_daily", "fct_feature_drift_daily")
INCREMENTAL = ("int_metric_values_graded", "fct_predictions_vs_actuals", *DAY_MARTS)
COMPARED = (
    "intermediate.int_metric_values_graded",
    "marts.fct_predictions_vs_actuals",
    "marts.fct_alerts",
    *(f"marts.{mart}" for mart in DAY_MARTS),
    "marts.fct_monitoring_coverage_daily",
)
NOTHING = dict.fromkeys(INCREMENTAL, 0)
STORES = (1, 2)
FAMILIES = ("BEVERAGES", "DAIRY")
LATER = datetime(2024, 3, 2, 6, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def dbt_paths(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    root = tmp_path_factory.mktemp("dbt-incremental")
    return ["--target-path", str(root / "target"), "--log-path", str(root / "logs")]


def _run(dbt_paths: list[str], *extra: str) -> dict[str, int]:
    """`dbt run` of the selection; rows each incremental model inserted."""
    run_dbt(["run", *SELECTION, *dbt_paths, *extra], quiet=True)
    target = Path(dbt_paths[dbt_paths.index("--target-path") + 1])
    results = json.loads((target / "run_results.json").read_text())["results"]
    return {
        result["unique_id"].rsplit(".", 1)[-1]: int(result["adapter_response"].get("rows_affected", -1))
        for result in results
        if result["unique_id"].rsplit(".", 1)[-1] in INCREMENTAL
    }


def _contents(conn: psycopg.Connection) -> dict[str, list[tuple]]:
    """Every row of every compared table, sorted (all columns, by name: a column an incremental
    build appended to an older table comes last there)."""
    contents = {}
    for name in COMPARED:
        schema, table = name.split(".")
        columns = [
            row[0]
            for row in conn.execute(
                "select column_name from information_schema.columns where table_schema = %s"
                " and table_name = %s order by column_name",
                (schema, table),
            )
        ]
        query = sql.SQL("select {} from {}").format(
            sql.SQL(", ").join(map(sql.Identifier, columns)), sql.Identifier(schema, table)
        )
        contents[name] = sorted(conn.execute(query).fetchall(), key=repr)
    return contents


def _day_mart_rows(conn: psycopg.Connection, days: list[date], version: str) -> dict[str, int]:
    """Rows of each monitored-day mart on these days of the version."""
    return {mart: _day_rows(conn, f"marts.{mart}", "slice_date", days, version) for mart in DAY_MARTS}


def _day_rows(conn: psycopg.Connection, table: str, column: str, days: list[date], version: str) -> int:
    schema, name = table.split(".")
    query = sql.SQL("select count(*) from {} where {} = any(%s) and model_version = %s").format(
        sql.Identifier(schema, name), sql.Identifier(column)
    )
    return conn.execute(query, (days, version)).fetchone()[0]


def _write_inputs(conn: psycopg.Connection) -> None:
    """The metrics mart's test data (4 days of v1, v-gap), and predictions of v1 on days 1 to 4 for
    two stores and two families with actual sales on days 1 to 3."""
    runs, values, _graded = _metric_rows(_seed())
    conn.cursor().executemany(
        "insert into monitoring.runs (run_id, slice_date, model_version, config_hash, reference_hash,"
        " evidently_version, status, row_count, started_at, finished_at)"
        " values (%s, %s, %s, 'cfg', 'ref', '0.7.23', 'success', %s, %s, %s)",
        [(*run, COMPUTED_AT, COMPUTED_AT) for run in runs],
    )
    conn.cursor().executemany(
        "insert into monitoring.metric_values (slice_date, model_version, metric_family, metric_name,"
        " column_name, segment_type, segment_value, value, stattest, threshold, detected, run_id,"
        " computed_at) values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        values,
    )
    conn.cursor().executemany(
        "insert into monitoring.metric_bounds (model_version, config_hash, metric_name, column_name,"
        " segment_type, segment_value, weekday, value_scale, center, scale, sample_size, seasonality,"
        " observed_min, observed_max, possible_min, possible_max)"
        " values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        _bound_rows(),
    )
    conn.cursor().executemany(
        "insert into raw.stores (store_nbr, city, state, type, cluster)"
        " values (%s, 'Quito', 'Pichincha', 'D', 13)",
        [(store,) for store in STORES],
    )
    keys = [(offset, store, family) for offset in range(4) for store in STORES for family in FAMILIES]
    conn.cursor().executemany(
        "insert into ml.predictions (sales_date, store_nbr, family, model_version, prediction)"
        " values (%s, %s, %s, 'v1', %s)",
        [(FIRST_DAY + timedelta(days=o), s, f, 10.0 + o + s) for o, s, f in keys],
    )
    conn.cursor().executemany(
        "insert into raw.train (id, date, store_nbr, family, sales, onpromotion)"
        " values (%s, %s, %s, %s, %s, 0)",
        [(i, FIRST_DAY + timedelta(days=o), s, f, 9.0 + o) for i, (o, s, f) in enumerate(keys) if o < 3],
    )


def _change_inputs(conn: psycopg.Connection) -> None:
    """Day 2 of v1 computed again by a new run (day 3's values as its own), a new day 5 (day 1's
    values), day 2 rescored, day 4's actual sales arriving late, one actual of day 1 corrected."""
    day2, day3, day5 = (FIRST_DAY + timedelta(days=offset) for offset in (1, 2, 4))
    for day, copied in ((day2, day3), (day5, FIRST_DAY)):
        run_id = uuid.uuid4()
        conn.execute(
            "insert into monitoring.runs (run_id, slice_date, model_version, config_hash, reference_hash,"
            " evidently_version, status, row_count, started_at, finished_at)"
            " values (%s, %s, 'v1', 'cfg', 'ref', '0.7.23', 'success', 1782, %s, %s)",
            (run_id, day, LATER, LATER),
        )
        conn.execute(
            "delete from monitoring.metric_values where slice_date = %s and model_version = 'v1'", (day,)
        )
        conn.execute(
            "insert into monitoring.metric_values (slice_date, model_version, source, metric_family,"
            " metric_name, column_name, segment_type, segment_value, value, stattest, threshold, detected,"
            " run_id, computed_at)"
            " select %s, model_version, source, metric_family, metric_name, column_name, segment_type,"
            " segment_value, value, stattest, threshold, detected, %s, %s"
            " from monitoring.metric_values where slice_date = %s and model_version = 'v1'",
            (day, run_id, LATER, copied),
        )
    conn.execute(
        "update ml.predictions set prediction = prediction + 5, scored_at = now() where sales_date = %s",
        (day2,),
    )
    day4 = FIRST_DAY + timedelta(days=3)
    conn.cursor().executemany(
        "insert into raw.train (id, date, store_nbr, family, sales, onpromotion)"
        " values (%s, %s, %s, %s, 30.0, 0)",
        [
            (100 + i, day4, store, family)
            for i, (store, family) in enumerate((s, f) for s in STORES for f in FAMILIES)
        ],
    )
    conn.execute(
        "update raw.train set sales = 50.0, _loaded_at = now() where date = %s and store_nbr = 1"
        " and family = 'DAIRY'",
        (FIRST_DAY,),
    )


@pytest.fixture(scope="module")
def built(module_database: str, dbt_paths: list[str]) -> Iterator[str]:
    """The selection built once on a bootstrapped warehouse with the first inputs."""
    run_dbt(["seed", "--select", "monitoring_thresholds", *dbt_paths], quiet=True)
    run_dbt(["run", *SELECTION, *dbt_paths], quiet=True)  # the schemas and the sources' views
    with psycopg.connect(module_database) as conn:
        _write_inputs(conn)
    _run(dbt_paths, "--full-refresh")
    yield module_database


def test_incremental_builds_rebuild_the_changed_days_only_and_equal_a_full_refresh(
    built: str, dbt_paths: list[str]
) -> None:
    assert _run(dbt_paths) == NOTHING
    with psycopg.connect(built, autocommit=True) as conn:
        _change_inputs(conn)
    inserted = _run(dbt_paths)
    with psycopg.connect(built) as conn:
        incremental = _contents(conn)
        day = [FIRST_DAY + timedelta(days=offset) for offset in range(5)]
        # graded again: day 2 (new run) and day 3 (it reads day 2), day 5 (new) - not days 1 and 4
        graded = _day_rows(
            conn, "intermediate.int_metric_values_graded", "slice_date", [day[1], day[2], day[4]], "v1"
        )
        # rebuilt: day 1 (corrected actual), day 2 (rescored), day 4 (late actuals) - not day 3
        compared = _day_rows(
            conn, "marts.fct_predictions_vs_actuals", "sales_date", [day[0], day[1], day[3]], "v1"
        )
        total_graded = conn.execute("select count(*) from intermediate.int_metric_values_graded").fetchone()[
            0
        ]
        # the marts rebuild the days graded again, and only those
        day_marts = _day_mart_rows(conn, [day[1], day[2], day[4]], "v1")
        late = conn.execute(
            "select count(*) from marts.fct_predictions_vs_actuals"
            " where sales_date = %s and actual_sales = 30",
            (day[3],),
        ).fetchone()[0]
    assert inserted == {
        "int_metric_values_graded": graded,
        "fct_predictions_vs_actuals": compared,
        **day_marts,
    }
    assert day_marts["fct_model_health_daily"] == 3 and all(rows > 0 for rows in day_marts.values())
    assert 0 < graded < total_graded and compared == 3 * len(STORES) * len(FAMILIES) and late == 4
    _run(dbt_paths, "--full-refresh")
    with psycopg.connect(built) as conn:
        assert _contents(conn) == incremental


def test_new_bounds_grade_every_day_of_the_version_again(built: str, dbt_paths: list[str]) -> None:
    with psycopg.connect(built, autocommit=True) as conn:
        conn.execute(
            "update monitoring.metric_bounds set center = center + scale"
            " where model_version = 'v1' and metric_name = 'prediction_drift_score'"
        )
    inserted = _run(dbt_paths)
    with psycopg.connect(built) as conn:
        incremental = _contents(conn)
        version_rows = conn.execute(
            "select count(*) from intermediate.int_metric_values_graded where model_version = 'v1'"
        ).fetchone()[0]
        version_days = [
            row[0]
            for row in conn.execute(
                "select distinct slice_date from monitoring.runs where model_version = 'v1'"
            )
        ]
        day_marts = _day_mart_rows(conn, version_days, "v1")
    assert inserted == {**NOTHING, "int_metric_values_graded": version_rows, **day_marts}
    assert day_marts["fct_model_health_daily"] == len(version_days) == 5
    _run(dbt_paths, "--full-refresh")
    with psycopg.connect(built) as conn:
        assert _contents(conn) == incremental


def test_a_day_deleted_from_monitoring_leaves_the_graded_rows(built: str, dbt_paths: list[str]) -> None:
    """A day whose runs and values are deleted (no batch replaces it) loses its graded rows too."""
    day = FIRST_DAY + timedelta(days=4)
    with psycopg.connect(built, autocommit=True) as conn:
        before = _day_rows(conn, "intermediate.int_metric_values_graded", "slice_date", [day], "v1")
        conn.execute("delete from monitoring.metric_values where slice_date = %s", (day,))
        conn.execute("delete from monitoring.runs where slice_date = %s", (day,))
    _run(dbt_paths)
    with psycopg.connect(built) as conn:
        after = _day_rows(conn, "intermediate.int_metric_values_graded", "slice_date", [day], "v1")
        marts_after = _day_mart_rows(conn, [day], "v1")
        incremental = _contents(conn)
    assert before > 0 and after == 0 and marts_after == dict.fromkeys(DAY_MARTS, 0)
    _run(dbt_paths, "--full-refresh")
    with psycopg.connect(built) as conn:
        assert _contents(conn) == incremental


def test_a_mart_built_before_it_was_incremental_is_rebuilt_once(built: str, dbt_paths: list[str]) -> None:
    """A monitored-day mart without bounds_hash (a table an older build made) gets the column and
    every day rebuilt on its next build, then nothing."""
    with psycopg.connect(built, autocommit=True) as conn:
        for mart in DAY_MARTS:
            conn.execute(
                sql.SQL("alter table {} drop column bounds_hash").format(sql.Identifier("marts", mart))
            )
        rows = {
            mart: conn.execute(
                sql.SQL("select count(*) from {}").format(sql.Identifier("marts", mart))
            ).fetchone()[0]
            for mart in DAY_MARTS
        }
    assert _run(dbt_paths) == {**NOTHING, **rows}
    assert _run(dbt_paths) == NOTHING
    with psycopg.connect(built) as conn:
        incremental = _contents(conn)
    _run(dbt_paths, "--full-refresh")
    with psycopg.connect(built) as conn:
        assert _contents(conn) == incremental
