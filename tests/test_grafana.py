"""Grafana, short of running it: the provisioning files, the dashboards' and alert rules' SQL, the
read-only role they use, docker-compose.yml and the dbt exposures.

Grafana's server cannot be installed here, so the tests do what it would do with the files: parse
them, resolve every datasource uid, and, after a small real pipeline run (6 stores, a sales drop,
3 monitored days, a rejected line, a predicted day left unmonitored), expand every panel's and
alert rule's SQL with Grafana's macros replaced by a real time range and run it as salesmon_reader.

Over 400 lines: every dashboard, alert rule and provisioning file, checked against the one pipeline run.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml
from psycopg.conninfo import make_conninfo

from tests._fixtures import SALES_DROP_CHANGE, SALES_DROP_MONITOR_FROM, Template, copied_database
from warehouse.settings import READER_ROLE

ROOT = Path(__file__).resolve().parents[1]
GRAFANA = ROOT / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
PROVISIONING = sorted((GRAFANA / "provisioning").rglob("*.yml"))
EXPOSURES = ROOT / "dbt_project" / "models" / "marts" / "monitoring" / "_grafana__exposures.yml"
COMPOSE = ROOT / "docker-compose.yml"
# Grafana's own datasources: server-side expressions and the built-in annotations.
BUILT_IN_UIDS = {"__expr__", "-- Grafana --"}

CHANGE = SALES_DROP_CHANGE  # 2017-07-13; the data ends the day after
MONITOR_FROM = SALES_DROP_MONITOR_FROM  # CHANGE - 1 day: the trained template's model
MONITOR_TO = CHANGE + timedelta(days=1)
READER_PASSWORD = "reader-test-password"


# --- Grafana's macros ---------------------------------------------------------------------------


def _interval_seconds(text: str) -> int:
    text = text.strip().strip("'\"")
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    match = re.fullmatch(r"(\d+)([smhdw])", text)
    assert match, f"unknown interval {text!r}"
    return int(match[1]) * units[match[2]]


def _split_args(text: str) -> list[str]:
    return [part.strip() for part in text.split(",")]


def expand(sql: str, start: datetime, end: datetime, variables: dict[str, list[str]]) -> str:
    """The SQL Grafana's PostgreSQL datasource would send for this time range and these variables.

    Follows Grafana's macro engine (pkg/tsdb/grafana-postgresql-datasource/macros.go): $__time,
    $__timeFilter, $__timeGroup(Alias), $__timeFrom/$__timeTo, $__unixEpochFrom/To; a multi-value
    variable becomes its values quoted and joined with commas.
    """
    begin, finish = start.isoformat(), end.isoformat()

    def group(arguments: str) -> str:
        column, interval = _split_args(arguments)[:2]
        seconds = _interval_seconds(interval)
        return f"floor(extract(epoch from {column})/{seconds})*{seconds}"

    patterns = [
        (r"\$__timeGroupAlias\(([^)]*)\)", lambda m: group(m[1]) + ' AS "time"'),
        (r"\$__timeGroup\(([^)]*)\)", lambda m: group(m[1])),
        (r"\$__timeFilter\(([^)]*)\)", lambda m: f"{m[1].strip()} BETWEEN '{begin}' AND '{finish}'"),
        (r"\$__time\(([^)]*)\)", lambda m: f'{m[1].strip()} AS "time"'),
        (r"\$__timeFrom\(\)", lambda m: f"'{begin}'"),
        (r"\$__timeTo\(\)", lambda m: f"'{finish}'"),
        (r"\$__unixEpochFrom\(\)", lambda m: str(int(start.timestamp()))),
        (r"\$__unixEpochTo\(\)", lambda m: str(int(end.timestamp()))),
    ]
    for pattern, replace in patterns:
        sql = re.sub(pattern, replace, sql)
    for name, values in variables.items():
        quoted = ",".join("'" + value.replace("'", "''") + "'" for value in values)
        sql = sql.replace("${" + name + "}", quoted).replace("$" + name, quoted)
    assert "$" not in sql, f"a macro or variable left unexpanded:\n{sql}"
    return sql


# --- the files ----------------------------------------------------------------------------------


def _dashboard(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board["panels"]:
        yield from panel.get("panels", [])
        if "targets" in panel:
            yield panel


def _alert_queries() -> Iterator[tuple[str, dict[str, Any]]]:
    rules = yaml.safe_load((GRAFANA / "provisioning" / "alerting" / "rules.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            for query in rule["data"]:
                if query["datasourceUid"] not in BUILT_IN_UIDS:
                    yield rule["uid"], query


def _uids(node: Any) -> Iterator[str]:
    """Every datasource uid a provisioning file or dashboard refers to."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasource" and isinstance(value, dict) and "uid" in value:
                yield value["uid"]
            elif key in ("datasourceUid",):
                yield value
            else:
                yield from _uids(value)
    elif isinstance(node, list):
        for item in node:
            yield from _uids(item)


def _provisioned_uids() -> set[str]:
    uids = set()
    for path in (GRAFANA / "provisioning" / "datasources").glob("*.yml"):
        uids |= {source["uid"] for source in yaml.safe_load(path.read_text())["datasources"]}
    return uids


def test_every_provisioning_file_and_dashboard_parses() -> None:
    assert PROVISIONING and DASHBOARDS
    kinds = {path.parent.name for path in PROVISIONING}
    assert kinds == {"datasources", "dashboards", "alerting"}
    for path in PROVISIONING:
        content = yaml.safe_load(path.read_text())
        assert content["apiVersion"] == 1, path
    uids = [_dashboard(path)["uid"] for path in DASHBOARDS]
    assert len(uids) == len(set(uids))
    for path in DASHBOARDS:
        board = _dashboard(path)
        assert board["title"] and list(_panels(board)), path
        ids = [panel["id"] for panel in _panels(board)]
        assert len(ids) == len(set(ids)), path


def test_every_referenced_datasource_uid_is_provisioned() -> None:
    provisioned = _provisioned_uids()
    assert provisioned == {"salesmon-marts"}
    referenced = set()
    for path in [*DASHBOARDS, *PROVISIONING]:
        content = json.loads(path.read_text()) if path.suffix == ".json" else yaml.safe_load(path.read_text())
        referenced |= set(_uids(content))
    assert "salesmon-marts" in referenced
    assert referenced - BUILT_IN_UIDS <= provisioned, referenced
    # every panel names the datasource explicitly: no reliance on "the default datasource"
    for path in DASHBOARDS:
        for panel in _panels(_dashboard(path)):
            assert panel["datasource"]["uid"] == "salesmon-marts", (path.name, panel["title"])
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == "salesmon-marts", (path.name, panel["title"])


def test_the_dashboard_provider_reads_the_folder_compose_mounts() -> None:
    provider = yaml.safe_load((GRAFANA / "provisioning" / "dashboards" / "salesmon.yml").read_text())
    path = provider["providers"][0]["options"]["path"]
    mounts = _compose()["services"]["grafana"]["volumes"]
    assert f"./grafana/dashboards:{path}:ro" in mounts


def test_alert_rules_are_time_series_and_policy_groups_by_metric() -> None:
    queries = list(_alert_queries())
    assert queries
    for uid, query in queries:
        assert query["model"]["format"] == "time_series", uid
        assert query["datasourceUid"] == "salesmon-marts", uid
        assert re.search(
            r"marts\.(fct_alerts|fct_model_health_daily|fct_monitoring_coverage_daily)\b",
            query["model"]["rawSql"],
        )
    rules = yaml.safe_load((GRAFANA / "provisioning" / "alerting" / "rules.yml").read_text())
    for rule in rules["groups"][0]["rules"]:
        assert rule["condition"] in {query["refId"] for query in rule["data"]}
    policy = yaml.safe_load((GRAFANA / "provisioning" / "alerting" / "policies.yml").read_text())["policies"][
        0
    ]
    assert "metric_name" in policy["group_by"]
    points = yaml.safe_load((GRAFANA / "provisioning" / "alerting" / "contact_points.yml").read_text())
    receivers = {
        receiver["type"]: receiver["settings"] for receiver in points["contactPoints"][0]["receivers"]
    }
    assert points["contactPoints"][0]["name"] == policy["receiver"]
    assert receivers["webhook"]["url"] == "${SALESMON_ALERT_WEBHOOK_URL}"
    assert receivers["email"]["addresses"] == "${SALESMON_ALERT_EMAIL_TO}"


# --- docker compose -----------------------------------------------------------------------------


def _compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


SERVICE_KEYS = {
    "image",
    "command",
    "environment",
    "ports",
    "volumes",
    "healthcheck",
    "depends_on",
    "restart",
    "env_file",
}


def test_compose_file_passes_the_compose_specification_schema() -> None:
    """compose-pydantic's models are generated from the compose-spec JSON schema (unknown keys are
    refused): the file validates, and a misspelt key does not."""
    from compose_pydantic.models import ComposeSpecification
    from pydantic import ValidationError

    compose = _compose()
    assert set(ComposeSpecification.model_validate(compose).services) == set(compose["services"])
    misspelt = {
        **compose,
        "services": {**compose["services"], "grafana": {**compose["services"]["grafana"], "healthchek": {}}},
    }
    with pytest.raises(ValidationError, match="healthchek"):
        ComposeSpecification.model_validate(misspelt)


def test_compose_file_structure() -> None:
    """A structural check of the parts of the compose specification the file uses (no schema file
    is vendored): known keys, pinned images, health checks, named volumes declared, dependencies on
    healthy services that exist."""
    compose = _compose()
    assert set(compose) <= {"services", "volumes", "name"}
    services = compose["services"]
    assert set(services) == {"postgres", "adminer", "grafana", "prefect"}
    declared = set(compose.get("volumes") or {})
    for name, service in services.items():
        assert set(service) <= SERVICE_KEYS, (name, set(service) - SERVICE_KEYS)
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository and re.fullmatch(r"\d+(\.\d+)+[\w.-]*", tag), f"{name}: image {image} is not pinned"
        check = service["healthcheck"]
        assert isinstance(check["test"], list) and check["test"][0] in ("CMD", "CMD-SHELL"), name
        for key in ("interval", "timeout", "retries"):
            assert key in check, (name, key)
        for port in service.get("ports", []):
            assert re.fullmatch(r"127\.0\.0\.1:\d+:\d+", port), (name, port)
        for dependency, condition in (service.get("depends_on") or {}).items():
            assert dependency in services and condition == {"condition": "service_healthy"}, (
                name,
                dependency,
            )
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if not source.startswith((".", "/")):
                assert source in declared, (name, source)
        environment = service.get("environment") or {}
        assert isinstance(environment, dict), name
    assert declared and all(value is None or isinstance(value, dict) for value in compose["volumes"].values())


def test_every_path_compose_mounts_exists() -> None:
    mounts = [
        volume.split(":")[0]
        for service in _compose()["services"].values()
        for volume in service.get("volumes", [])
        if volume.startswith((".", "/"))
    ]
    assert mounts
    for source in mounts:
        assert (ROOT / source).exists(), source


def test_each_password_is_one_variable_on_both_sides() -> None:
    """salesmon's role and Grafana's datasource, the server's owner and salesmon's URL: one variable
    each, read from .env, and .env.example holds no real secret."""
    compose = COMPOSE.read_text()
    services = _compose()["services"]
    assert services["grafana"]["environment"]["SALESMON_READER_PASSWORD"].startswith(
        "${SALESMON_READER_PASSWORD"
    )
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD")
    datasource = (GRAFANA / "provisioning" / "datasources" / "salesmon.yml").read_text()
    assert "password: ${SALESMON_READER_PASSWORD}" in datasource
    # no hard-coded fallback password: compose stops with a message when .env lacks one
    for variable in ("POSTGRES_PASSWORD", "SALESMON_READER_PASSWORD", "GRAFANA_ADMIN_PASSWORD"):
        assert re.search(r"\$\{" + variable + r":\?[^}]+\}", compose), variable
    example = (ROOT / ".env.example").read_text()
    values = dict(
        line.split("=", 1) for line in example.splitlines() if line.strip() and not line.startswith("#")
    )
    for variable in ("POSTGRES_PASSWORD", "SALESMON_READER_PASSWORD", "GRAFANA_ADMIN_PASSWORD"):
        assert values[variable].startswith("change-me"), variable
    assert "${POSTGRES_PASSWORD}" in values["SALESMON_DATABASE_URL"]


# --- dbt exposures ------------------------------------------------------------------------------


def _marts_read(board: dict[str, Any]) -> set[str]:
    sql = [target["rawSql"] for panel in _panels(board) for target in panel["targets"]]
    sql += [
        annotation["target"]["rawSql"]
        for annotation in board["annotations"]["list"]
        if "target" in annotation
    ]
    sql += [variable["query"] for variable in board["templating"]["list"] if variable["type"] == "query"]
    return {name for text in sql for name in re.findall(r"marts\.(\w+)", text)}


def test_exposures_are_the_dashboards_that_exist_with_the_models_they_read() -> None:
    exposures = yaml.safe_load(EXPOSURES.read_text())["exposures"]
    dashboards = {e["url"].rsplit("/d/", 1)[1]: e for e in exposures if e["type"] == "dashboard"}
    boards = {_dashboard(path)["uid"]: _dashboard(path) for path in DASHBOARDS}
    assert set(dashboards) == set(boards)
    for uid, exposure in dashboards.items():
        refs = {re.fullmatch(r"ref\('(\w+)'\)", ref)[1] for ref in exposure["depends_on"]}
        assert refs == _marts_read(boards[uid]), uid
        assert exposure["label"] == boards[uid]["title"].removeprefix("salesmon / ")
    others = [e for e in exposures if e["type"] != "dashboard"]
    assert [e["name"] for e in others] == ["grafana_alert_rules"]
    rules_read = {
        name
        for _, query in _alert_queries()
        for name in re.findall(r"marts\.(\w+)", query["model"]["rawSql"])
    }
    assert {re.fullmatch(r"ref\('(\w+)'\)", ref)[1] for ref in others[0]["depends_on"]} == rules_read


# --- the SQL, against a real pipeline run ----------------------------------------------------------


def _log_requests(conninfo: str, model_version: str) -> None:
    """The request log of a service that answered every scored key of the monitored days once (what
    `salesmon serve` writes; tests/test_service.py runs the real service), with one day's promotion
    counts off by one: the online-service panels get traffic, batch/online series and a parity break."""
    from models_ml.service.request_log import FEATURE_COLUMNS

    features = ", ".join(
        f"features.{name} + case when features.sales_date = %(changed)s then 1 else 0 end"
        if name == "onpromotion"
        else f"features.{name}"
        for name in FEATURE_COLUMNS
    )
    with psycopg.connect(conninfo) as conn:
        conn.execute(
            f"insert into ml.prediction_log (request_id, item_index, received_at, status, inputs,"
            " sales_date, store_nbr, family, model_version, prediction, latency_ms,"
            f" {', '.join(FEATURE_COLUMNS)})"
            f" select gen_random_uuid(), 0, now(), 'ok', '{{}}'::jsonb, features.sales_date,"
            f" features.store_nbr, features.family, predictions.model_version, predictions.prediction,"
            f" 4.2, {features}"
            " from marts.fct_sales_features as features"
            " inner join ml.predictions as predictions using (sales_date, store_nbr, family)"
            " where predictions.model_version = %(version)s"
            " and features.sales_date between %(start)s and %(end)s",
            {"version": model_version, "start": MONITOR_FROM, "end": MONITOR_TO, "changed": MONITOR_TO},
        )


@pytest.fixture(scope="module")
def pipeline_db(
    server_conninfo: str,
    sales_drop_trained_template: Template,
    tmp_path_factory: pytest.TempPathFactory,
    prefect_harness: str,
) -> Iterator[str]:
    """A small real pipeline run whose marts give every panel something to show, on a copy of the
    session's sales-drop warehouse with its trained model (tests/_fixtures.py: generated, one line
    rejected, loaded, the features mart built, trained for MONITOR_FROM)."""
    from models_ml.score import score
    from orchestration.flows import monitor_days
    from warehouse.dbt import run_dbt

    with (
        pytest.MonkeyPatch.context() as monkeypatch,
        copied_database(server_conninfo, sales_drop_trained_template, "m_grafana") as module_database,
    ):
        monkeypatch.setenv("SALESMON_READER_PASSWORD", READER_PASSWORD)
        dbt_root = tmp_path_factory.mktemp("dbt-grafana")
        paths = ["--target-path", str(dbt_root / "target"), "--log-path", str(dbt_root / "logs")]
        model_version = sales_drop_trained_template.model_version
        # the day before the monitored ones is scored but never monitored: a gap
        score(MONITOR_FROM - timedelta(days=1), MONITOR_TO, model_version)
        result = monitor_days(
            MONITOR_FROM, MONITOR_TO, model_version, task_runner="thread", workspace=False, build_marts=False
        )
        assert len(result["computed"]) == 3, result
        _log_requests(module_database, model_version)
        online = monitor_days(
            MONITOR_FROM,
            MONITOR_TO,
            model_version,
            task_runner="thread",
            workspace=False,
            build_marts=False,
            source="online",
        )
        assert len(online["computed"]) == 3, online
        run_dbt(
            [
                "build",
                "--select",
                "path:models/staging/ml",
                "path:models/staging/monitoring",
                "path:models/intermediate/monitoring",
                "path:models/marts/monitoring",
                "path:models/marts/ml",
                "path:models/marts/integrity+",
                "+fct_raw_loads",
                "+fct_rejected_rows_daily",
                "path:seeds/monitoring_thresholds.csv",
                *paths,
            ],
            quiet=True,
        )
        yield module_database


@pytest.fixture(scope="module")
def reader(pipeline_db: str) -> Iterator[psycopg.Connection]:
    """A connection as salesmon_reader, logging in with its password (the embedded server trusts
    127.0.0.1, so the password is not checked here; the role's LOGIN is)."""
    info = make_conninfo(pipeline_db, user=READER_ROLE, password=READER_PASSWORD)
    with psycopg.connect(info, autocommit=True) as conn:
        assert conn.execute("select current_user").fetchone()[0] == READER_ROLE
        yield conn


def _run(conn: psycopg.Connection, sql: str) -> tuple[list[str], list[tuple]]:
    cursor = conn.execute(sql)
    return [column.name for column in cursor.description], cursor.fetchall()


def _variables(conn: psycopg.Connection, board: dict[str, Any]) -> dict[str, list[str]]:
    """Each query variable set to "All": every value its query returns, as the reader."""
    values = {}
    for variable in board["templating"]["list"]:
        assert variable["type"] == "query", variable["name"]
        _, rows = _run(conn, variable["query"])
        values[variable["name"]] = [str(row[0]) for row in rows]
        assert values[variable["name"]], variable["name"]
    return values


# The dashboards' range: the monitored days and today (loads and rejections are stamped now).
RANGE = (datetime(2017, 6, 1, tzinfo=UTC), datetime.now(UTC) + timedelta(days=1))


@pytest.mark.slow
@pytest.mark.parametrize("path", DASHBOARDS, ids=[path.stem for path in DASHBOARDS])
def test_every_panel_query_returns_the_columns_it_uses(reader: psycopg.Connection, path: Path) -> None:
    board = _dashboard(path)
    variables = _variables(reader, board)
    for panel in _panels(board):
        names: set[str] = set()
        for target in panel["targets"]:
            where = f"{path.name} / {panel['title']} / {target['refId']}"
            columns, rows = _run(reader, expand(target["rawSql"], *RANGE, variables))
            assert rows, f"{where}: no rows"
            names |= set(columns)
            if target["format"] == "time_series":
                assert columns[0] == "time", f"{where}: the time column comes first, got {columns}"
                # epoch seconds (numeric, from $__timeGroup) or a date/timestamp
                assert all(isinstance(row[0], (int, float, Decimal, date, type(None))) for row in rows), where
                assert any(row[0] is not None for row in rows)
                if "metric" in columns:  # long format: time, metric, value
                    assert columns == ["time", "metric", "value"], where
                numeric = [index for index, name in enumerate(columns) if name not in ("time", "metric")]
                assert numeric and any(row[index] is not None for row in rows for index in numeric), where
            else:
                assert target["format"] == "table", where
        for override in panel["fieldConfig"]["overrides"]:
            assert override["matcher"]["options"] in names, f"{path.name} / {panel['title']}: {override}"
            for prop in override["properties"]:
                if prop["id"] == "custom.fillBelowTo":
                    assert prop["value"] in names
    for annotation in board["annotations"]["list"]:
        if "target" not in annotation:
            continue
        columns, rows = _run(reader, expand(annotation["target"]["rawSql"], *RANGE, variables))
        assert columns[:3] == ["time", "text", "tags"] and rows, annotation["name"]


@pytest.mark.slow
def test_model_health_band_surrounds_quiet_days(reader: psycopg.Connection) -> None:
    """The band is the learned range: the drift score of a quiet day lies inside it."""
    board = _dashboard(GRAFANA / "dashboards" / "model_health.json")
    variables = _variables(reader, board)
    panel = next(panel for panel in _panels(board) if panel["title"] == "Prediction drift score")
    (_, series), (_, band) = (_run(reader, expand(t["rawSql"], *RANGE, variables)) for t in panel["targets"])
    band_by_time = {row[0]: row[1:] for row in band}
    quiet = series[0]  # the day before the change
    low, high = band_by_time[quiet[0]]
    assert low <= quiet[1] <= high


@pytest.mark.slow
def test_every_alert_query_runs_as_the_reader(reader: psycopg.Connection) -> None:
    now = datetime.now(UTC)
    for uid, query in _alert_queries():
        relative = query["relativeTimeRange"]
        start, end = now - timedelta(seconds=relative["from"]), now - timedelta(seconds=relative["to"])
        columns, rows = _run(reader, expand(query["model"]["rawSql"], start, end, {}))
        assert columns[0] == "time", uid
        assert len(columns) == 3, uid  # time, one label column, one value
    # the mart's alerts were first seen during this run: the new-alerts rule has something to count
    query = dict(_alert_queries())["salesmon-new-alerts"]
    _, rows = _run(reader, expand(query["model"]["rawSql"], now - timedelta(days=1), now, {}))
    assert sum(row[2] for row in rows) > 0


# --- the reader role ----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "statement",
    [
        "select * from raw.train limit 1",
        "select * from raw.rejected_rows limit 1",
        "select * from ml.predictions limit 1",
        "select * from ml.model_registry limit 1",
        "select * from monitoring.metric_values limit 1",
        "select * from monitoring.runs limit 1",
        "select * from intermediate.int_metric_values_graded limit 1",
        "insert into marts.fct_alerts select * from marts.fct_alerts limit 1",
        "select * from monitoring.alert_history limit 1",
        "update marts.fct_model_health_daily set row_count = 0",
        "delete from marts.fct_alerts",
        "truncate marts.fct_alerts",
        "create table marts.reader_table (x int)",
        "create table public.reader_table (x int)",
        "create table reader_table (x int)",
        "create view marts.reader_view as select 1 as x",
        "create schema reader_schema",
        "drop table marts.fct_alerts",
        "alter table marts.fct_alerts add column x int",
    ],
)
def test_the_reader_can_do_nothing_but_read_the_marts(reader: psycopg.Connection, statement: str) -> None:
    # 3 days, batch and online
    assert _run(reader, "select count(*) from marts.fct_model_health_daily")[1][0][0] == 6
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        reader.execute(statement)


def test_a_reader_without_password_on_another_server_cannot_log_in(
    database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not the embedded server (another port than the settings'), no SALESMON_READER_PASSWORD: the
    role is left NOLOGIN with a warning, never a silent role without a password."""
    from dataclasses import replace

    from warehouse import db
    from warehouse.settings import get_settings, use_settings

    db.bootstrap(database)  # the reader role exists (whichever tests ran before)
    monkeypatch.delenv("SALESMON_READER_PASSWORD", raising=False)
    # another port in the settings: the URL's server is then not "the embedded one"
    try:
        with use_settings(replace(get_settings(), pg_port=1)):
            with psycopg.connect(database, autocommit=True) as conn:
                conn.execute(f"alter role {READER_ROLE} password null")
            with pytest.warns(db.ReaderPasswordWarning, match="SALESMON_READER_PASSWORD"):
                db.bootstrap(database)
            with psycopg.connect(database) as conn:
                assert conn.execute(
                    "select rolcanlogin from pg_roles where rolname = %s", (READER_ROLE,)
                ).fetchone() == (False,)
            monkeypatch.setenv("SALESMON_READER_PASSWORD", READER_PASSWORD)
            db.bootstrap(database)
            with psycopg.connect(database) as conn:
                assert conn.execute(
                    "select rolcanlogin from pg_roles where rolname = %s", (READER_ROLE,)
                ).fetchone() == (True,)
    finally:
        db.bootstrap(database)  # the embedded default again: the role logs in
