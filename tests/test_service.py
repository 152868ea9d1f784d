"""The online prediction service, run as a user runs it (`salesmon serve`, a real uvicorn process),
against a PostgreSQL of its own that a test stops and starts again.

The module generates 3 stores, builds the features mart, trains and scores the last two weeks with
sales; the service answers from the champion and logs to `ml.prediction_log`.

Over 400 lines: the tests share that one warehouse and its server (the outage test stops it).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path

import httpx
import numpy as np
import psycopg
import pytest

from models_ml.service.request_log import FEATURE_COLUMNS, LOG_COLUMNS, RequestLog
from warehouse.settings import Settings, get_settings, use_settings

STORES = 3
START = date(2016, 11, 1)
END = date(2017, 8, 15)  # the generator adds 16 forecast-request days after it
SCORED = (END - timedelta(days=13), END)
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Warehouse:
    settings: Settings
    conninfo: str
    home: Path

    def stop(self) -> None:
        from warehouse import embedded

        embedded.stop(self.settings)

    def start(self) -> None:
        from warehouse import embedded

        embedded.start(self.settings)

    def query(self, statement: str, params: tuple = ()) -> list[tuple]:
        with psycopg.connect(self.conninfo) as conn:
            return conn.execute(statement, params).fetchall()


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    """A PostgreSQL of the module's own (so that a test may stop it), with a trained, scored model."""
    from datagen import generate
    from models_ml.score import score
    from models_ml.train import train
    from warehouse import embedded
    from warehouse.dbt import run_dbt
    from warehouse.loader import load_folder

    # Not under pytest's basetemp: the server runs as another user when we are root, and a second
    # pytest process may prune old basetemps while this one runs.
    home = Path(tempfile.mkdtemp(prefix="salesmon-service-"))
    settings = Settings(home=home, pg_port=_free_port(), database_url=None)
    embedded.start(settings)
    info = embedded.conninfo(settings)
    data = tmp_path_factory.mktemp("service-data")
    generate(data, stores=STORES, start=START, end=END, seed=11)
    with use_settings(replace(get_settings(), database_url=info)):
        load_folder(data)
        target = tmp_path_factory.mktemp("service-dbt")
        run_dbt(
            [
                "build",
                "--select",
                "+fct_sales_features",
                "--target-path",
                str(target / "t"),
                "--log-path",
                str(target / "l"),
            ],
            quiet=True,
        )
        train()
        score(*SCORED)
    try:
        yield Warehouse(settings, info, home)
    finally:
        embedded.stop(settings)
        shutil.rmtree(home, ignore_errors=True)


class Server:
    """`salesmon serve` as a child process."""

    def __init__(self, warehouse: Warehouse, *, check_every: float = 1.0) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "SALESMON_DATABASE_URL": warehouse.conninfo,
            "SALESMON_HOME": str(warehouse.home),
            "SALESMON_READER_PASSWORD": "reader-test-password",
        }
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "orchestration.cli",
                "serve",
                "--port",
                str(self.port),
                "--check-every",
                str(check_every),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.client = httpx.Client(base_url=self.url, timeout=30)
        deadline = time.monotonic() + 120
        while True:
            try:
                if self.client.get("/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"the service did not start:\n{self.output()}")
            time.sleep(0.3)

    def output(self) -> str:
        if self.process.poll() is None:
            return ""
        return self.process.stdout.read() if self.process.stdout else ""

    def stop(self) -> str:
        """A graceful stop (SIGTERM, as a process manager sends it); returns what it printed."""
        self.client.close()
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)
        # uvicorn shuts down gracefully, then ends by the signal it received (so does its exit status)
        assert self.process.returncode in (0, -signal.SIGTERM), self.output()
        return self.output()


def _champion(warehouse: Warehouse) -> str:
    return warehouse.query("select model_version from ml.model_registry where is_champion")[0][0]


def _items(warehouse: Warehouse, start: date, end: date) -> list[dict]:
    rows = warehouse.query(
        "select sales_date, store_nbr, family, onpromotion from marts.fct_sales_features"
        " where sales_date between %s and %s order by 1, 2, 3",
        (start, end),
    )
    return [
        {"date": day.isoformat(), "store_nbr": store, "family": family, "onpromotion": promo}
        for day, store, family, promo in rows
    ]


def _logged(warehouse: Warehouse, request_ids: list[str]) -> int:
    return warehouse.query(
        "select count(*) from ml.prediction_log where status = 'ok' and request_id = any(%s::uuid[])",
        (request_ids,),
    )[0][0]


def _ok_count(warehouse: Warehouse, since: float) -> int:
    return warehouse.query(
        "select count(*) from ml.prediction_log where status = 'ok' and received_at >= to_timestamp(%s)",
        (since,),
    )[0][0]


BAD_REQUESTS: list[tuple[str, str | bytes, str, str]] = [
    # (name, body, the field named, a word of the problem)
    ("malformed JSON", b'{"date": "2017-08-16", "store_nbr": 1,', "body", "malformed JSON"),
    (
        "missing field",
        json.dumps({"date": "2017-08-16", "store_nbr": 1, "onpromotion": 0}),
        "family",
        "required",
    ),
    (
        "wrong type",
        json.dumps({"date": "2017-08-16", "store_nbr": "one", "family": "BEVERAGES", "onpromotion": 0}),
        "store_nbr",
        "integer",
    ),
    (
        "unknown store",
        json.dumps({"date": "2017-08-16", "store_nbr": 99, "family": "BEVERAGES", "onpromotion": 0}),
        "store_nbr",
        "unknown store 99",
    ),
    (
        "unknown family",
        json.dumps({"date": "2017-08-16", "store_nbr": 1, "family": "SPACESHIPS", "onpromotion": 0}),
        "family",
        "unknown family",
    ),
    (
        "impossible date",
        json.dumps({"date": "2017-02-30", "store_nbr": 1, "family": "BEVERAGES", "onpromotion": 0}),
        "date",
        "date",
    ),
    (
        "date without features",
        json.dumps({"date": "2030-01-01", "store_nbr": 1, "family": "BEVERAGES", "onpromotion": 0}),
        "date",
        "no features for 2030-01-01",
    ),
    (
        "negative promotion",
        json.dumps({"date": "2017-08-16", "store_nbr": 1, "family": "BEVERAGES", "onpromotion": -3}),
        "onpromotion",
        "greater than or equal to 0",
    ),
    (
        "too many items",
        json.dumps(
            {
                "items": [{"date": "2017-08-16", "store_nbr": 1, "family": "BEVERAGES", "onpromotion": 0}]
                * 1001
            }
        ),
        "items",
        "at most 1000",
    ),
    (
        "a bad item in a batch",
        json.dumps(
            {
                "items": [
                    {"date": "2017-08-16", "store_nbr": 1, "family": "BEVERAGES", "onpromotion": 0},
                    {"date": "2017-08-16", "store_nbr": 1, "family": "BEVERAGES"},
                ]
            }
        ),
        "items[1].onpromotion",
        "required",
    ),
]


def test_good_and_bad_requests_are_answered_and_every_good_one_is_logged(warehouse: Warehouse) -> None:
    since = time.time() - 1
    server = Server(warehouse)
    champion = _champion(warehouse)
    future = _items(warehouse, END + timedelta(days=1), END + timedelta(days=2))
    good_items = 0
    for item in future[:40]:
        answer = server.client.post("/predict", json=item)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["model_version"] == champion
        assert uuid.UUID(body["request_id"])
        assert body["prediction"] >= 0 and body["prediction"] == body["predictions"][0]["prediction"]
        assert body["predictions"][0]["family"] == item["family"]
        good_items += 1
    batch = server.client.post("/predict", json={"items": future[40:140]})
    assert batch.status_code == 200, batch.text
    assert [row["store_nbr"] for row in batch.json()["predictions"]] == [
        item["store_nbr"] for item in future[40:140]
    ]
    good_items += 100

    for name, body, field, word in BAD_REQUESTS:
        answer = server.client.post("/predict", content=body, headers={"content-type": "application/json"})
        assert answer.status_code == 422, (name, answer.status_code, answer.text)
        payload = answer.json()
        assert "Traceback" not in answer.text, name
        assert any(error["field"] == field for error in payload["errors"]), (name, payload)
        assert word.lower() in answer.text.lower(), (name, payload)

    assert server.client.get("/docs").status_code == 200
    assert "/predict" in server.client.get("/openapi.json").json()["paths"]
    metrics = server.client.get("/metrics").text
    assert 'salesmon_requests_total{endpoint="/predict",status="422"} 10.0' in metrics
    assert 'salesmon_requests_total{endpoint="/predict",status="200"} 41.0' in metrics
    assert "salesmon_request_latency_seconds_bucket" in metrics
    assert "salesmon_log_queue_depth" in metrics

    server.stop()
    assert _ok_count(warehouse, since) == good_items
    rejected = warehouse.query(
        "select error from ml.prediction_log where status = 'rejected' and received_at >= to_timestamp(%s)",
        (since,),
    )
    assert len(rejected) == len(BAD_REQUESTS)
    logged = warehouse.query(
        "select store_nbr, family, onpromotion, prediction, model_version, latency_ms, sales_lag_7"
        " from ml.prediction_log where status = 'ok' and received_at >= to_timestamp(%s)"
        " and item_index = 0 order by received_at limit 1",
        (since,),
    )[0]
    first = future[0]
    assert logged[:3] == (first["store_nbr"], first["family"], first["onpromotion"])
    assert logged[4] == champion and logged[5] > 0 and logged[6] is not None


def test_a_database_outage_loses_no_request(warehouse: Warehouse) -> None:
    items = _items(warehouse, END + timedelta(days=3), END + timedelta(days=3))
    server = Server(warehouse)
    requests = [items[index % len(items)] for index in range(500)]
    warehouse.stop()
    try:
        with ThreadPoolExecutor(10) as pool:
            answers = list(pool.map(lambda item: server.client.post("/predict", json=item), requests))
        assert [answer.status_code for answer in answers] == [200] * 500
        request_ids = [answer.json()["request_id"] for answer in answers]
        health = server.client.get("/health").json()
        assert health["database"] == "down" and health["model_loaded"] is True
        server.stop()
    finally:
        warehouse.start()
    spilled = list((warehouse.home / "service" / "spill").glob("spill-*.jsonl"))
    assert sum(len(path.read_text().splitlines()) for path in spilled) == 500

    restarted = Server(warehouse)
    deadline = time.monotonic() + 30
    while _logged(warehouse, request_ids) < 500 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "salesmon_log_rows_replayed_total 500.0" in restarted.client.get("/metrics").text
    restarted.stop()
    assert _logged(warehouse, request_ids) == 500
    assert not list((warehouse.home / "service" / "spill").glob("spill-*.jsonl"))


def test_a_new_champion_is_served_without_a_restart(warehouse: Warehouse) -> None:
    server = Server(warehouse, check_every=0.5)
    item = _items(warehouse, END + timedelta(days=1), END + timedelta(days=1))[0]
    before = server.client.post("/predict", json=item).json()["model_version"]
    other = warehouse.query(
        "select model_version from ml.model_registry where not is_champion order by model_version limit 1"
    )[0][0]
    try:
        _set_champion(warehouse, other)
        deadline = time.monotonic() + 20
        served = before
        while served != other and time.monotonic() < deadline:
            time.sleep(0.2)
            served = server.client.post("/predict", json=item).json()["model_version"]
        assert served == other
    finally:
        _set_champion(warehouse, before)
        server.stop()


def test_prediction_tables_answer_what_the_pipeline_answers(warehouse: Warehouse) -> None:
    """The service's tables give the full pipeline's prediction for every row and promotion count."""
    from models_ml.features import read_features
    from models_ml.registry import load_model
    from models_ml.service.state import LoadedModel
    from models_ml.service.tables import TreeTables

    with psycopg.connect(warehouse.conninfo) as conn:
        days = [read_features(conn, day, day) for day in (END - timedelta(days=1), END + timedelta(days=1))]
        days.append(read_features(conn, END + timedelta(days=5), END + timedelta(days=5)))
        champion = LoadedModel(*load_model(conn=conn))
        other = conn.execute("select model_version from ml.model_registry where not is_champion").fetchone()
        linear = load_model(other[0], conn=conn)
    compiled = TreeTables.build(champion.version, champion.pipeline, champion.features, days[0])
    assert compiled is not None and len(compiled.thresholds) > 0
    # chunks of two days and one: the rows of several days are evaluated together
    tables = compiled.tables(days, chunk_rows=len(days[0]) + len(days[1]))
    bounds = compiled.thresholds
    assert [table.values.shape for table in tables] == [(len(day), len(bounds) + 1) for day in days]
    promotions = sorted({0.0, 1.0, 2.0, 1e6, *bounds, *(bounds + 0.5), *(bounds + 1.0)})
    for frame, table in zip(days, tables, strict=True):
        for promotion in promotions:
            expected = champion.predict(frame.assign(onpromotion=promotion))
            answered = [table.lookup(position, promotion) for position in range(len(frame))]
            np.testing.assert_allclose(answered, expected, rtol=1e-12, atol=0)
    # the linear candidate has no tables: the service predicts it through its pipeline
    assert linear[0].endswith("-linear") and TreeTables.build(*linear, days[0]) is None


def _set_champion(warehouse: Warehouse, version: str) -> None:
    with psycopg.connect(warehouse.conninfo) as conn:
        conn.execute("update ml.model_registry set is_champion = false where is_champion")
        conn.execute("update ml.model_registry set is_champion = true where model_version = %s", (version,))


def test_rows_the_queue_cannot_hold_are_spilled_then_replayed_once(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    request_id = str(uuid.uuid4())
    rows = [
        [request_id, index, "2017-08-16T00:00:00+00:00", "rejected", "test", "{}"]
        + [None] * (len(LOG_COLUMNS) - 6)
        for index in range(5)
    ]
    log = RequestLog(lambda: psycopg.connect(warehouse.conninfo), tmp_path, capacity=2)
    log.submit(rows)  # the writer is not started: 2 fit in the queue, 3 are spilled
    assert log.counters().spilled == 3 and log.queue_depth == 2
    log.start()
    log.close()
    counters = log.counters()
    assert (counters.written, counters.replayed, counters.spilled) == (2, 3, 3)
    assert warehouse.query("select count(*) from ml.prediction_log where request_id = %s", (request_id,)) == [
        (5,)
    ]
    # Replaying the same rows again (a crash before the file was deleted) adds nothing.
    again = RequestLog(lambda: psycopg.connect(warehouse.conninfo), tmp_path, capacity=1)
    again.submit(rows[:3])
    again.close()
    third = RequestLog(lambda: psycopg.connect(warehouse.conninfo), tmp_path)
    third.start()
    third.close()
    assert third.counters().replayed == 3
    assert warehouse.query("select count(*) from ml.prediction_log where request_id = %s", (request_id,)) == [
        (5,)
    ]


# --- online monitoring over the log --------------------------------------------------------------

PARITY_DAY = END - timedelta(days=2)  # asked exactly as batch scoring saw it
CHANGED_DAY = END - timedelta(days=1)  # asked with another promotion count than the features mart's


@pytest.fixture(scope="module")
def monitored_online(
    warehouse: Warehouse, prefect_harness: str, tmp_path_factory: pytest.TempPathFactory
) -> dict:
    """Requests for two scored days through the service, then `salesmon monitor-online` and the batch
    monitoring of the same days, both as a user runs them (the command line, in this process)."""
    from typer.testing import CliRunner

    from orchestration.cli import app

    server = Server(warehouse)
    same = _items(warehouse, PARITY_DAY, PARITY_DAY)
    changed = [
        {**item, "onpromotion": item["onpromotion"] + 7}
        for item in _items(warehouse, CHANGED_DAY, CHANGED_DAY)
    ]
    for items in (same, changed):
        answer = server.client.post("/predict", json={"items": items})
        assert answer.status_code == 200, answer.text
    server.stop()
    runner = CliRunner()
    home = tmp_path_factory.mktemp("online-home")
    with use_settings(replace(get_settings(), database_url=warehouse.conninfo, home=home)):
        span = ["--start", PARITY_DAY.isoformat(), "--end", CHANGED_DAY.isoformat()]
        online = runner.invoke(app, ["monitor-online", *span])
        batch = runner.invoke(app, ["monitor", *span, "--no-workspace"])
        again = runner.invoke(app, ["monitor-online", *span])
    return {"online": online, "batch": batch, "again": again, "items": len(same)}


def _values(warehouse: Warehouse, source: str, day: date) -> dict[tuple, float]:
    rows = warehouse.query(
        "select metric_name, column_name, segment_type, segment_value, value from monitoring.metric_values"
        " where source = %s and slice_date = %s",
        (source, day),
    )
    return {tuple(row[:4]): row[4] for row in rows}


def test_online_monitoring_measures_the_log_like_the_batch(
    warehouse: Warehouse, monitored_online: dict
) -> None:
    for name in ("online", "batch", "again"):
        assert monitored_online[name].exit_code == 0, monitored_online[name].output
    assert "2 days computed" in monitored_online["online"].output
    assert "2 skipped (already done)" in monitored_online["again"].output
    online, batch = _values(warehouse, "online", PARITY_DAY), _values(warehouse, "batch", PARITY_DAY)
    parity_keys = {key for key in online if key[0].startswith("parity_")}
    # the same rows, predictions and reference: every metric the batch has, with the same value
    assert set(online) - parity_keys == set(batch)
    for key, value in batch.items():
        assert online[key] == pytest.approx(value, rel=1e-9, abs=1e-12, nan_ok=True), key
    assert online[("row_count", "", "", "")] == monitored_online["items"]
    health = warehouse.query(
        "select source, row_count from marts.fct_model_health_daily where slice_date = %s order by source",
        (PARITY_DAY,),
    )
    assert health == [("batch", monitored_online["items"]), ("online", monitored_online["items"])]


def test_parity_is_complete_for_the_same_rows_and_flags_a_changed_feature(
    warehouse: Warehouse, monitored_online: dict
) -> None:
    same, changed = _values(warehouse, "online", PARITY_DAY), _values(warehouse, "online", CHANGED_DAY)
    assert same[("parity_compared_rows", "", "", "")] == monitored_online["items"]
    assert {
        key[1]: value for key, value in same.items() if key[0] == "parity_mismatch_share"
    } == dict.fromkeys(["", *FEATURE_COLUMNS, "prediction"], 0.0)
    flagged = {key[1]: value for key, value in changed.items() if key[0] == "parity_mismatch_share" and value}
    assert flagged.get("onpromotion") == 1.0 and flagged.get("") == 1.0
    assert set(flagged) <= {"", "onpromotion", "prediction"}
    parity = warehouse.query(
        "select slice_date, column_name from marts.fct_online_parity_daily where differs order by 1, 2"
    )
    assert (CHANGED_DAY, "onpromotion") in parity and all(day == CHANGED_DAY for day, _ in parity)
    alerts = warehouse.query(
        "select column_name from marts.fct_alerts"
        " where source = 'online' and metric_name = 'parity_mismatch_share' and slice_date = %s",
        (CHANGED_DAY,),
    )
    assert ("onpromotion",) in alerts
    assert not warehouse.query(
        "select 1 from marts.fct_alerts where metric_name = 'parity_mismatch_share' and slice_date = %s",
        (PARITY_DAY,),
    )
