"""Send the alerts of marts.fct_alerts once each, to a Slack-compatible webhook and/or e-mail.

The channels are those the environment configures (`NotifySettings.from_env`): a webhook when
SALESMON_ALERT_WEBHOOK_URL is set, e-mail over SMTP when SALESMON_SMTP_HOST and
SALESMON_ALERT_EMAIL_TO are set (the same recipient variables Grafana's contact points read).
Every alert is sent as one message per channel, at most once: monitoring.notifications records
each (alert, channel) with its attempts, when it was sent and the last error. A send is tried
`max_attempts` times with exponential backoff; one that still fails stays due and is tried again by
the next run (`salesmon notify`, or the next monitoring run). Sending never raises: the summary
says what failed. SALESMON_NOTIFY_ATTEMPTS (3) and SALESMON_NOTIFY_BACKOFF_SECONDS (1: then 2, 4, ...)
set the retries.
"""

from __future__ import annotations

import json
import os
import smtplib
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import psycopg

ALERT_COLUMNS = (
    "alert_id",
    "slice_date",
    "model_version",
    "alert_scope",
    "metric_name",
    "column_name",
    "segment_type",
    "segment_value",
    "metric_value",
    "expected_low",
    "expected_high",
    "severity",
    "first_seen_at",
)


@dataclass(frozen=True)
class NotifySettings:
    """Where notifications go. A channel whose settings are missing is off."""

    webhook_url: str | None = None
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    email_to: tuple[str, ...] = ()
    email_from: str = "salesmon@localhost"
    timeout: float = 10.0
    max_attempts: int = 3
    backoff_seconds: float = 1.0

    @classmethod
    def from_env(cls) -> NotifySettings:
        """Read the settings from the environment."""
        recipients = os.environ.get("SALESMON_ALERT_EMAIL_TO", "")
        return cls(
            webhook_url=os.environ.get("SALESMON_ALERT_WEBHOOK_URL") or None,
            smtp_host=os.environ.get("SALESMON_SMTP_HOST") or None,
            smtp_port=int(os.environ.get("SALESMON_SMTP_PORT", "25")),
            smtp_user=os.environ.get("SALESMON_SMTP_USER") or None,
            smtp_password=os.environ.get("SALESMON_SMTP_PASSWORD") or None,
            smtp_starttls=os.environ.get("SALESMON_SMTP_STARTTLS", "").lower() in ("1", "true", "yes"),
            email_to=tuple(address.strip() for address in recipients.split(",") if address.strip()),
            email_from=os.environ.get("SALESMON_ALERT_EMAIL_FROM", "salesmon@localhost"),
            max_attempts=int(os.environ.get("SALESMON_NOTIFY_ATTEMPTS", "3")),
            backoff_seconds=float(os.environ.get("SALESMON_NOTIFY_BACKOFF_SECONDS", "1")),
        )

    def channels(self) -> dict[str, Callable[[dict[str, Any]], None]]:
        """The configured channels by name, each a function that sends one alert or raises."""
        channels: dict[str, Callable[[dict[str, Any]], None]] = {}
        if self.webhook_url:
            channels["webhook"] = self._send_webhook
        if self.smtp_host and self.email_to:
            channels["email"] = self._send_email
        return channels

    def _send_webhook(self, alert: dict[str, Any]) -> None:
        body = json.dumps({"text": render(alert), "alert": alert}, default=str).encode()
        request = urllib.request.Request(
            self.webhook_url or "", data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 (configured URL)
            if response.status >= 300:
                raise OSError(f"webhook answered HTTP {response.status}")

    def _send_email(self, alert: dict[str, Any]) -> None:
        message = EmailMessage()
        message["Subject"] = (
            f"[salesmon] {alert['severity']}: {alert['metric_name']} on {alert['slice_date']}"
        )
        message["From"] = self.email_from
        message["To"] = ", ".join(self.email_to)
        message["X-Salesmon-Alert-Id"] = str(alert["alert_id"])
        message.set_content(render(alert) + "\n")
        with smtplib.SMTP(self.smtp_host or "", self.smtp_port, timeout=self.timeout) as smtp:
            if self.smtp_starttls:
                smtp.starttls()
            if self.smtp_user:
                smtp.login(self.smtp_user, self.smtp_password or "")
            smtp.send_message(message)


def render(alert: dict[str, Any]) -> str:
    """One line that says what alerted, where, and what was expected."""
    where = "".join(
        f" {name}={alert[name]}"
        for name in ("column_name", "segment_type", "segment_value")
        if alert.get(name)
    )
    low = "-inf" if alert["expected_low"] is None else f"{alert['expected_low']:.4g}"
    high = "inf" if alert["expected_high"] is None else f"{alert['expected_high']:.4g}"
    return (
        f"{alert['severity']}: {alert['metric_name']}{where} = {alert['metric_value']:.4g} on "
        f"{alert['slice_date']} (model {alert['model_version']}), expected {low} .. {high}"
    )


@dataclass
class NotifySummary:
    """What one run sent: per channel, the alerts sent and those that failed (with the error)."""

    sent: dict[str, list[str]] = field(default_factory=dict)
    failed: dict[str, dict[str, str]] = field(default_factory=dict)
    channels: tuple[str, ...] = ()

    def render(self) -> str:
        if not self.channels:
            return "no notification channel configured (SALESMON_ALERT_WEBHOOK_URL, SALESMON_SMTP_HOST)"
        parts = [
            f"{channel}: {len(self.sent.get(channel, []))} sent, {len(self.failed.get(channel, {}))} failed"
            for channel in self.channels
        ]
        return "; ".join(parts)


def _due(conn: psycopg.Connection, channel: str) -> list[dict[str, Any]]:
    if conn.execute("select to_regclass('marts.fct_alerts')").fetchone()[0] is None:
        return []
    cursor = conn.execute(
        f"select {', '.join(ALERT_COLUMNS)} from marts.fct_alerts as alerts"
        " where not exists (select 1 from monitoring.notifications as sent"
        " where sent.alert_id = alerts.alert_id and sent.channel = %s and sent.status = 'sent')"
        " order by first_seen_at, slice_date, alert_id",
        (channel,),
    )
    return [dict(zip(ALERT_COLUMNS, row, strict=True)) for row in cursor]


def _record(conn: psycopg.Connection, alert_id: str, channel: str, attempts: int, error: str | None) -> None:
    conn.execute(
        "insert into monitoring.notifications as n (alert_id, channel, status, attempts, sent_at, last_error)"
        " values (%(alert_id)s, %(channel)s, %(status)s, %(attempts)s,"
        " case when %(status)s = 'sent' then now() end, %(error)s)"
        " on conflict (alert_id, channel) do update set status = excluded.status,"
        " attempts = n.attempts + excluded.attempts, last_attempt_at = now(),"
        " sent_at = excluded.sent_at, last_error = coalesce(excluded.last_error, n.last_error)",
        {
            "alert_id": alert_id,
            "channel": channel,
            "status": "failed" if error else "sent",
            "attempts": attempts,
            "error": error,
        },
    )


def notify(
    settings: NotifySettings | None = None,
    *,
    max_attempts: int | None = None,
    backoff_seconds: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> NotifySummary:
    """Send every alert of marts.fct_alerts not sent yet on each configured channel; never raises
    for a failed send (it is recorded and tried again next time).

    Two runs at once cannot send an alert twice: the run holds an advisory lock on the warehouse
    while it sends, and each alert's outcome is committed as soon as it is known.
    """
    from warehouse.db import connect

    settings = settings or NotifySettings.from_env()
    max_attempts = max(1, max_attempts or settings.max_attempts)
    backoff_seconds = settings.backoff_seconds if backoff_seconds is None else backoff_seconds
    channels = settings.channels()
    summary = NotifySummary(channels=tuple(channels))
    if not channels:
        return summary
    with connect(autocommit=True) as conn:
        conn.execute("select pg_advisory_lock(hashtext('salesmon.notify'))")
        try:
            for name, send in channels.items():
                for alert in _due(conn, name):
                    error: str | None = None
                    attempts = 0
                    for attempt in range(max_attempts):
                        attempts += 1
                        try:
                            send(alert)
                            error = None
                            break
                        except Exception as exc:  # any failure of the channel: retried, then recorded
                            error = f"{type(exc).__name__}: {exc}"
                            if attempt + 1 < max_attempts:
                                sleep(backoff_seconds * 2**attempt)
                    _record(conn, alert["alert_id"], name, attempts, error)
                    if error:
                        summary.failed.setdefault(name, {})[alert["alert_id"]] = error
                    else:
                        summary.sent.setdefault(name, []).append(alert["alert_id"])
        finally:
            conn.execute("select pg_advisory_unlock(hashtext('salesmon.notify'))")
    return summary
