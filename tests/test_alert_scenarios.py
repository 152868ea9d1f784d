"""Alerts that mean something, end to end on small generated data.

Each generator scenario (promo_shift, sales_drop, missing_burst, store_closures, price_shock,
new_store, new_family, feed_stop) must raise an alert naming its cause (monitoring/scenarios.py) on
its change date or the day after, and rerunning the same monitoring must
leave the metrics mart unchanged. The whole pipeline runs for real (generate, load, dbt, train, score,
monitor with Evidently, dbt build of the mart), on 6 stores over about 7 months, monitoring only the
day before the change, the change date and the day after.

To stay affordable, one trained model serves every scenario: with the same seed, the generator leaves
every row before the change date identical to the no-change data, and training and validation end
before the monitored window, so every scenario would train exactly the same model. The module works
on a copy of the session's sales-drop warehouse with that model trained (tests/_fixtures.py, shared
with tests/test_grafana.py), so sales_drop runs first, on the data as copied. The scenarios run
one after the other in one database; after each, its monitoring results are kept under the label
`<model version>@<scenario>` (runs and metric values), and one `dbt build` of the mart covers all.
The 90-day no-change acceptance (at most 2 alert days) is too slow for the suite: see
bench/acceptance_alerts.py and docs/alerts.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import psycopg
import pytest

from monitoring.scenarios import CAUSES, names_the_cause
from monitoring.storage import keep_results_as
from tests._fixtures import (
    SALES_DROP_CHANGE,
    SALES_DROP_END,
    SALES_DROP_MONITOR_FROM,
    SALES_DROP_SEED,
    SALES_DROP_START,
    SALES_DROP_STORES,
    Template,
    copied_database,
)
from warehouse.dbt import run_dbt

pytestmark = pytest.mark.slow

SCENARIOS = tuple(CAUSES)
# the order they run in: first the one the session's template holds (tests/_fixtures.py)
ORDER = ("sales_drop", *(scenario for scenario in SCENARIOS if scenario != "sales_drop"))
# The sales-drop warehouse's: 6 stores, seed 31, 2017-01-01 .. 2017-07-14, the change on 2017-07-13.
# Neither the seed nor the change date was used to choose the seed's sensitivities (docs/alerts.md).
STORES = SALES_DROP_STORES
SEED = SALES_DROP_SEED
START = SALES_DROP_START
CHANGE = SALES_DROP_CHANGE
MONITOR_FROM = SALES_DROP_MONITOR_FROM  # the day before the change: the template's model's monitor_from
MONITOR_TO = SALES_DROP_END  # the day after the change
MARTS = (
    "fct_model_health_daily",
    "fct_feature_drift_daily",
    "fct_segment_performance_daily",
    "fct_alerts",
)
MARTS_SELECTION = [
    "--select",
    "source:monitoring",
    "path:models/staging/ml",
    "path:models/staging/monitoring",
    "path:models/intermediate/monitoring",
    "path:models/marts/monitoring",
    "path:seeds/monitoring_thresholds.csv",
    "path:tests/marts/monitoring",
]


def _label(model_version: str, scenario: str) -> str:
    return f"{model_version}@{scenario}"


def _mart_contents(conn: psycopg.Connection) -> dict[str, list[tuple]]:
    return {
        mart: conn.execute(f"select * from marts.{mart} order by 1, 2, 3, 4, 5, 6").fetchall()
        for mart in MARTS
    }


@pytest.fixture(scope="module")
def dbt_paths(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Private target and log folders, so that concurrent dbt runs never share `target/`."""
    root = tmp_path_factory.mktemp("dbt-scenarios")
    return ["--target-path", str(root / "target"), "--log-path", str(root / "logs")]


@pytest.fixture(scope="module")
def scenario_runs(
    server_conninfo: str,
    sales_drop_trained_template: Template,
    dbt_paths: list[str],
    tmp_path_factory: pytest.TempPathFactory,
    prefect_harness: str,
) -> Iterator[dict]:
    """Every scenario through the pipeline, one shared model; the mart built once over all of them."""
    with copied_database(server_conninfo, sales_drop_trained_template, "m_scenarios") as module_database:
        yield _run_scenarios(module_database, sales_drop_trained_template, dbt_paths, tmp_path_factory)


def _run_scenarios(
    module_database: str, template: Template, dbt_paths: list[str], tmp_path_factory: pytest.TempPathFactory
) -> dict:
    """sales_drop first, on the copy as it is (its data loaded, the features mart built, the shared
    model trained: the session's template); then each other scenario generated, loaded in place of
    the previous one, its features rebuilt from scratch."""
    from datagen import generate
    from models_ml.score import score
    from orchestration.flows import monitor_days
    from warehouse.loader import empty_raw_tables, load_folder

    root = tmp_path_factory.mktemp("scenario-data")
    model_version = template.model_version
    change_dates: dict[str, date] = {}
    for number, scenario in enumerate(ORDER):
        data_dir = template.data_dir
        if number:
            data_dir = root / scenario
            generate(
                data_dir,
                stores=STORES,
                start=START,
                end=MONITOR_TO,
                seed=SEED,
                scenario=scenario,
                change_date=CHANGE,
            )
            with psycopg.connect(module_database) as conn:
                empty_raw_tables(conn)
            load_folder(Path(data_dir))
            run_dbt(["run", "--select", "fct_sales_features", "--full-refresh", *dbt_paths], quiet=True)
        change_dates[scenario] = date.fromisoformat(
            json.loads((data_dir / "scenario.json").read_text())["change_date"]
        )
        score(MONITOR_FROM, MONITOR_TO, model_version)
        result = monitor_days(
            MONITOR_FROM, MONITOR_TO, model_version, task_runner="thread", workspace=False, build_marts=False
        )
        assert len(result["computed"]) == 3, result
        if scenario != ORDER[-1]:
            with psycopg.connect(module_database) as conn:
                keep_results_as(conn, model_version, _label(model_version, scenario))
    run_dbt(["build", *MARTS_SELECTION, *dbt_paths], quiet=True)
    with psycopg.connect(module_database) as conn:
        rows = conn.execute(
            "select model_version, slice_date, alert_scope, metric_name, severity, column_name"
            " from marts.fct_alerts"
        ).fetchall()
    labels = {_label(model_version, scenario): scenario for scenario in ORDER[:-1]}
    labels[model_version] = ORDER[-1]
    alerts: dict[str, list[tuple]] = {scenario: [] for scenario in SCENARIOS}
    for version, *alert in rows:
        alerts[labels[version]].append(tuple(alert))
    return {
        "db": module_database,
        "model_version": model_version,
        "alerts": alerts,
        "change_dates": change_dates,
    }


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scenario_alerts_on_a_relevant_metric_at_the_change(scenario_runs: dict, scenario: str) -> None:
    assert scenario_runs["change_dates"][scenario] == CHANGE
    window = {CHANGE, CHANGE + timedelta(days=1)}
    relevant = [
        alert
        for alert in scenario_runs["alerts"][scenario]
        if alert[0] in window and names_the_cause(scenario, alert[2], alert[4])
    ]
    assert relevant, f"{scenario}: no relevant alert; alerts were {scenario_runs['alerts'][scenario]}"


def test_no_model_alert_the_day_before_the_change(scenario_runs: dict) -> None:
    """The day before the change has the same data in every scenario, and nothing is wrong with it."""
    before = [
        (scenario, alert)
        for scenario, alerts in scenario_runs["alerts"].items()
        for alert in alerts
        if alert[0] == MONITOR_FROM and alert[1] == "model"
    ]
    assert before == []


def test_rerunning_the_monitoring_leaves_the_mart_identical(
    scenario_runs: dict, dbt_paths: list[str]
) -> None:
    from orchestration.flows import monitor_days

    with psycopg.connect(scenario_runs["db"]) as conn:
        before = _mart_contents(conn)
    result = monitor_days(
        MONITOR_FROM,
        MONITOR_TO,
        scenario_runs["model_version"],
        task_runner="thread",
        workspace=False,
        build_marts=False,
    )
    assert len(result["skipped"]) == 3
    run_dbt(["build", *MARTS_SELECTION, *dbt_paths], quiet=True)
    with psycopg.connect(scenario_runs["db"]) as conn:
        after = _mart_contents(conn)
    assert all(before[mart] for mart in ("fct_model_health_daily", "fct_feature_drift_daily", "fct_alerts"))
    assert after == before
