"""Notifications without Grafana: each alert of marts.fct_alerts delivered once per channel.

The receivers are real and local: an HTTP server on 127.0.0.1 standing for a Slack-compatible
webhook (it can be told to fail its next requests), and an SMTP server (aiosmtpd). The first tests
run `notify` against a stand-in of the mart (the columns notify reads) in a fresh database; the last
runs the monitoring flow itself twice on generated data, with the webhook down during the first run.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from datetime import date, timedelta
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg
import pytest
from aiosmtpd.controller import Controller

from notifications.send import NotifySettings, notify


class Webhook:
    """A local HTTP receiver: records each JSON body; answers 500 to the next `fail_next` requests."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.fail_next = 0
        self.requests = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                owner.requests += 1
                if owner.fail_next:
                    owner.fail_next -= 1
                    self.send_response(500)
                    self.end_headers()
                    return
                owner.bodies.append(json.loads(body))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def alert_ids(self) -> list[str]:
        return [body["alert"]["alert_id"] for body in self.bodies]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Mailbox:
    """aiosmtpd's handler: keeps each message."""

    def __init__(self) -> None:
        self.messages: list = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:  # noqa: N802
        self.messages.append(message_from_bytes(envelope.content))  # type: ignore[attr-defined]
        return "250 OK"

    def alert_ids(self) -> list[str]:
        return [message["X-Salesmon-Alert-Id"] for message in self.messages]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def receivers() -> Iterator[tuple[Webhook, Mailbox, NotifySettings]]:
    webhook, mailbox = Webhook(), Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    settings = NotifySettings(
        webhook_url=webhook.url,
        smtp_host="127.0.0.1",
        smtp_port=controller.port,
        email_to=("oncall@example.com",),
        timeout=5,
    )
    try:
        yield webhook, mailbox, settings
    finally:
        controller.stop()
        webhook.close()


def _alerts_table(info: str, alert_ids: list[str]) -> None:
    """A stand-in of marts.fct_alerts with the columns notify reads."""
    from warehouse import db

    db.bootstrap(info)
    with psycopg.connect(info, autocommit=True) as conn:
        conn.execute(
            "create table if not exists marts.fct_alerts (alert_id text, slice_date date, model_version text,"
            " alert_scope text, metric_name text, column_name text, segment_type text, segment_value text,"
            " metric_value double precision, expected_low double precision, expected_high double precision,"
            " severity text, first_seen_at timestamptz)"
        )
        for alert_id in alert_ids:
            conn.execute(
                "insert into marts.fct_alerts values (%s, '2017-07-13', 'v1', 'segment',"
                " 'segment_rmsle_ratio', '', 'city', 'Quito', 2.5, 0.8, 1.3, 'warning', now())",
                (alert_id,),
            )


def _rows(info: str) -> dict[tuple[str, str], tuple]:
    with psycopg.connect(info) as conn:
        rows = conn.execute(
            "select alert_id, channel, status, attempts, sent_at is not null, last_error"
            " from monitoring.notifications"
        ).fetchall()
    return {(row[0], row[1]): row[2:] for row in rows}


def test_each_alert_is_sent_once_over_runs(database: str, receivers: tuple) -> None:
    webhook, mailbox, settings = receivers
    _alerts_table(database, ["a1", "a2"])
    first = notify(settings, sleep=lambda seconds: None)
    assert sorted(first.sent["webhook"]) == sorted(first.sent["email"]) == ["a1", "a2"]
    _alerts_table(database, ["a3"])  # the next run's new alert
    second = notify(settings, sleep=lambda seconds: None)
    assert second.sent == {"webhook": ["a3"], "email": ["a3"]}
    assert notify(settings).sent == {}
    assert sorted(webhook.alert_ids()) == sorted(mailbox.alert_ids()) == ["a1", "a2", "a3"]
    assert "segment_rmsle_ratio" in webhook.bodies[0]["text"] and "Quito" in webhook.bodies[0]["text"]
    assert mailbox.messages[0]["To"] == "oncall@example.com"
    rows = _rows(database)
    assert set(rows) == {(alert, channel) for alert in ("a1", "a2", "a3") for channel in ("webhook", "email")}
    assert all(row == ("sent", 1, True, None) for row in rows.values())


def test_a_receiver_failing_twice_then_succeeding_gets_the_alert_once(
    database: str, receivers: tuple
) -> None:
    webhook, _, settings = receivers
    _alerts_table(database, ["a1"])
    webhook.fail_next = 2
    waits: list[float] = []
    summary = notify(settings, max_attempts=3, backoff_seconds=0.5, sleep=waits.append)
    assert summary.sent["webhook"] == ["a1"] and not summary.failed
    assert webhook.requests == 3 and webhook.alert_ids() == ["a1"]
    assert waits == [0.5, 1.0]  # exponential backoff between the attempts
    assert _rows(database)[("a1", "webhook")] == ("sent", 3, True, None)


def test_a_receiver_down_is_recorded_and_tried_again_next_run(database: str, receivers: tuple) -> None:
    webhook, mailbox, settings = receivers
    _alerts_table(database, ["a1"])
    down = NotifySettings(**{**settings.__dict__, "webhook_url": f"http://127.0.0.1:{_free_port()}/hook"})
    summary = notify(down, max_attempts=2, sleep=lambda seconds: None)  # never raises
    assert "a1" in summary.failed["webhook"] and summary.sent == {"email": ["a1"]}
    status, attempts, sent, error = _rows(database)[("a1", "webhook")]
    assert (status, attempts, sent) == ("failed", 2, False) and "URLError" in error
    again = notify(settings, sleep=lambda seconds: None)  # the receiver is back
    assert again.sent == {"webhook": ["a1"]}
    assert _rows(database)[("a1", "webhook")][:3] == ("sent", 3, True)
    assert webhook.alert_ids() == ["a1"] and mailbox.alert_ids() == ["a1"]


def test_no_channel_configured_sends_nothing(database: str) -> None:
    _alerts_table(database, ["a1"])
    summary = notify(NotifySettings())
    assert summary.channels == () and "no notification channel" in summary.render()


# --- two monitoring runs, end to end ------------------------------------------------------------

STORES = 6
SEED = 31
START = date(2017, 1, 1)
CHANGE = date(2017, 7, 13)
LAST = CHANGE + timedelta(days=3)


@pytest.mark.slow
def test_two_monitoring_runs_deliver_each_new_alert_once_even_with_the_webhook_down(
    module_database: str,
    prefect_harness: str,
    receivers: tuple,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Run 1 (the day before the change and the change date) with the webhook down: the run
    succeeds, e-mail gets run 1's alerts. Run 2 (the three days after): the webhook, back, gets every alert
    once (run 1's, still due, and run 2's new ones); e-mail only run 2's new ones."""
    from datagen import generate
    from models_ml.score import score
    from models_ml.train import train
    from orchestration.flows import monitor_days
    from warehouse.dbt import run_dbt
    from warehouse.loader import load_folder

    webhook, mailbox, settings = receivers
    data_dir: Path = tmp_path_factory.mktemp("notify-data")
    dbt_root = tmp_path_factory.mktemp("dbt-notify")
    paths = ["--target-path", str(dbt_root / "target"), "--log-path", str(dbt_root / "logs")]
    monkeypatch.setenv("DBT_TARGET_PATH", str(dbt_root / "target"))
    monkeypatch.setenv("DBT_LOG_PATH", str(dbt_root / "logs"))
    generate(
        data_dir,
        stores=STORES,
        start=START,
        end=LAST,
        seed=SEED,
        scenario="sales_drop",
        change_date=CHANGE,
    )
    load_folder(data_dir)
    run_dbt(["run", "--select", "+fct_sales_features", *paths], quiet=True)
    version = train(CHANGE - timedelta(days=1)).champion_version
    score(CHANGE - timedelta(days=1), LAST, version)

    monkeypatch.setenv("SALESMON_ALERT_WEBHOOK_URL", f"http://127.0.0.1:{_free_port()}/down")
    monkeypatch.setenv("SALESMON_SMTP_HOST", settings.smtp_host)
    monkeypatch.setenv("SALESMON_SMTP_PORT", str(settings.smtp_port))
    monkeypatch.setenv("SALESMON_ALERT_EMAIL_TO", "oncall@example.com")
    monkeypatch.setenv("SALESMON_NOTIFY_BACKOFF_SECONDS", "0.01")
    first = monitor_days(
        CHANGE - timedelta(days=1), CHANGE, version, workers=1, task_runner="thread", workspace=False
    )
    assert len(first["computed"]) == 2 and first["notifications"]["failed"]["webhook"]
    with psycopg.connect(module_database) as conn:
        run_one = {row[0] for row in conn.execute("select alert_id from marts.fct_alerts")}
    assert run_one and sorted(mailbox.alert_ids()) == sorted(run_one)
    assert webhook.alert_ids() == []

    monkeypatch.setenv("SALESMON_ALERT_WEBHOOK_URL", webhook.url)
    second = monitor_days(
        CHANGE + timedelta(days=1), LAST, version, workers=1, task_runner="thread", workspace=False
    )
    assert len(second["computed"]) == 3 and not second["notifications"]["failed"]
    with psycopg.connect(module_database) as conn:
        every = [row[0] for row in conn.execute("select alert_id from marts.fct_alerts")]
    assert len(every) > len(run_one)
    assert sorted(webhook.alert_ids()) == sorted(every)  # each once, none twice
    assert sorted(mailbox.alert_ids()) == sorted(every)
