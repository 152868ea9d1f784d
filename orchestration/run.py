"""`salesmon run`: the whole chain on a data folder (the demo data set by default), redoing nothing.

generate (only without data) -> load -> dbt build -> train (only when the champion is not for this
split) -> score (only days not scored yet, or whose features changed) -> monitor every day from
monitor_from on (days already done are skipped), the metrics mart and the notifications -> summary.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from orchestration.console import RunOutput, Step

DEMO_SCENARIO = "sales_drop"  # caught at 54 stores on its first day (docs/alerts.md)
DEMO_START, DEMO_END = date(2016, 2, 15), date(2017, 8, 15)  # the last 18 months of the Kaggle period
DEMO_STORES, DEMO_SEED = 54, 42


class RunError(RuntimeError):
    """A user mistake `salesmon run` reports in one line (a scenario for real data, say)."""


@dataclass
class RunResult:
    """What `salesmon run` did and found: the summary's content."""

    data_dir: Path
    scenario: dict[str, Any] | None = None
    model_version: str = ""
    monitor_from: date | None = None
    last_day: date | None = None
    monitoring: dict[str, Any] = field(default_factory=dict)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    model_errors: dict[str, Any] = field(default_factory=dict)


def prepare_data(data_dir: Path, scenario: str | None, step: Step) -> dict[str, Any] | None:
    """Generate the demo data set into `data_dir` unless it holds data; return its scenario.json."""
    from datagen import generate

    meta_path = data_dir / "scenario.json"
    if (data_dir / "train.csv").exists():
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else None
        if scenario is not None and (meta is None or meta.get("scenario") != scenario):
            found = f"scenario {meta['scenario']}" if meta else "data that was not generated"
            raise RunError(
                f"{data_dir} already holds {found}: --scenario {scenario} applies to generated data only;"
                " remove the folder or pass another --data-dir"
            )
        step.result = f"{data_dir} ({meta['scenario'] if meta else 'your files'})"
        return meta
    chosen = scenario or DEMO_SCENARIO
    try:
        generate(
            data_dir,
            stores=DEMO_STORES,
            start=DEMO_START,
            end=DEMO_END,
            seed=DEMO_SEED,
            scenario=chosen,
            progress=step.log,
        )
    except ValueError as exc:
        raise RunError(str(exc)) from None
    meta = json.loads(meta_path.read_text())
    period = f"{DEMO_STORES} stores {DEMO_START} .. {DEMO_END}"
    step.result = f"demo data, {period}, scenario {chosen} from {meta['change_date']}"
    return meta


def load_data(data_dir: Path, step: Step) -> None:
    from warehouse.loader import LoadError, load_folder

    try:
        summary = load_folder(data_dir, update=False, progress=step.log)
    except LoadError as exc:
        raise RunError(str(exc)) from None
    new = sum(item.rows_loaded for item in summary.files)
    changed = sum(item.rows_changed for item in summary.files)
    rejected = sum(item.rows_rejected for item in summary.files)
    step.result = f"{new:,} new rows, {rejected:,} rejected" + (
        f", {changed:,} differ (salesmon load --update replaces them)" if changed else ""
    )


def build(step: Step, unchanged: bool) -> None:
    """`dbt build` (without the unit tests), unless nothing changed since the last finished run."""
    from warehouse.dbt import NO_UNIT_TESTS, DbtError, run_dbt

    if unchanged:
        step.result = "nothing changed since the last run: not rebuilt (`salesmon dbt build` forces it)"
        return

    try:
        output = run_dbt(["build", *NO_UNIT_TESTS], on_line=step.log)
    except DbtError as exc:
        raise RunError(f"dbt build failed: {str(exc).splitlines()[-1] if str(exc) else ''}") from None
    done = [line for line in output.splitlines() if " PASS=" in line]
    step.result = done[-1].split("Done.", 1)[-1].strip() if done else ""


def champion(conn: Any) -> tuple[str, date] | None:
    """The champion's version and first monitored day, None before the first training."""
    from models_ml.registry import champion_monitor_from, champion_version

    version = champion_version(conn)
    return (version, champion_monitor_from(conn)) if version else None


def train_if_needed(monitor_from: date | None, step: Step) -> tuple[str, date, date]:
    """The champion for the split starting at `monitor_from`; trained only when the current champion
    is for another split. Without `monitor_from`, the champion's split is kept (new days extend its
    monitored period), and a first model monitors the last 90 days. Returns (version, monitor_from,
    last day)."""
    from models_ml.errors import ModelError
    from models_ml.features import last_actual_date
    from models_ml.train import default_monitor_from, train
    from warehouse.db import connect

    with connect() as conn:
        last = last_actual_date(conn)
        if last is None:
            raise RunError("the features mart has no day with sales: is train.csv empty?")
        current = champion(conn)
        wanted = monitor_from or (current[1] if current else default_monitor_from(last))
    if current is not None and current[1] == wanted:
        step.result = f"champion {current[0]} exists for monitor_from {wanted}: not retrained"
        return current[0], wanted, last
    try:
        result = train(wanted, progress=step.log)
    except ModelError as exc:
        raise RunError(str(exc)) from None
    step.log(result.render())
    step.result = (
        f"champion {result.champion_version} ({result.champion}), "
        f"{result.improvement_vs_seasonal_naive:.1%} below seasonal-naive on validation"
    )
    return result.champion_version, wanted, last


def days_to_score(conn: Any, version: str, first: date, last: date) -> list[date]:
    """Days of the range with feature rows but no predictions of `version`, and scored days whose
    features were rebuilt since (models_ml.score.stale_days)."""
    from models_ml.score import stale_days

    rows = conn.execute(
        "select distinct sales_date from marts.fct_sales_features"
        " where sales_date between %(first)s and %(last)s"
        " except select distinct sales_date from ml.predictions"
        " where model_version = %(version)s and sales_date between %(first)s and %(last)s",
        {"first": first, "last": last, "version": version},
    ).fetchall()
    missing = {day for (day,) in rows}
    stale = {day for day in stale_days(conn, version) if first <= day <= last}
    return sorted(missing | stale)


def score_needed(version: str, first: date, last: date, step: Step) -> None:
    from models_ml.score import day_ranges, score
    from warehouse.db import connect

    with connect() as conn:
        days = days_to_score(conn, version, first, last)
    rows = 0
    for start, end in day_ranges(days):
        rows += score(start, end, version, progress=step.log).rows
    step.result = f"{len(days)} days, {rows:,} rows" if days else "every day already scored"


def _watch_monitoring(step: Step, first: date, last: date, since: datetime, stop: threading.Event) -> None:
    """Move the monitoring bar from monitoring.runs: the days of the range finished since `since`."""
    from warehouse.db import connect

    total = (last - first).days + 1
    try:
        with connect(autocommit=True) as conn:
            while not stop.wait(1.0):
                done = conn.execute(
                    "select count(distinct slice_date) from monitoring.runs where source = 'batch'"
                    " and slice_date between %s and %s and finished_at >= %s"
                    " and status in ('success', 'failed', 'skipped')",
                    (first, last, since),
                ).fetchone()[0]
                step.update(done, total)
    except Exception as exc:  # the bar is a nicety: the monitoring itself reports its errors
        step.log(f"progress of the monitoring not shown: {exc}")


def monitor(
    version: str, first: date, last: date, workers: int, step: Step, unchanged: bool
) -> dict[str, Any]:
    """Monitor every day of the range (days already done are skipped), build the metrics mart and send
    the notifications: the `monitor-days` flow. When nothing changed since the last finished run and
    every day is done, only the notifications still due are sent (no flow, no mart build)."""
    if unchanged:
        from monitoring.calibration import needs_calibration
        from monitoring.planning import plan_days
        from notifications.send import notify
        from warehouse.db import connect

        with connect() as conn:
            plan = plan_days(conn, first, last, version)
        if not plan.to_compute and not needs_calibration(version):
            sent = notify().sent
            step.result = f"{len(plan.skipped)} days already done, nothing changed since the last run" + (
                f"; notifications sent: {sent}" if sent else ""
            )
            return {"computed": [], "skipped": [day.isoformat() for day in plan.skipped], "failed": []}
    from orchestration.prefect_server import PrefectServerError, start_server

    server = start_server()
    from orchestration.flows import monitor_days
    from orchestration.summary import MonitoringFailed

    try:
        server.wait()
    except PrefectServerError as exc:
        raise RunError(str(exc)) from None
    stop = threading.Event()
    since = datetime.now().astimezone()
    watcher = threading.Thread(target=_watch_monitoring, args=(step, first, last, since, stop), daemon=True)
    watcher.start()
    try:
        result = monitor_days(first, last, model_version=version, workers=workers)
    except MonitoringFailed as exc:
        result = exc.result
        step.log(str(exc))
    finally:
        stop.set()
        watcher.join(timeout=5)
    sent = (result.get("notifications") or {}).get("sent")
    step.result = (
        f"{len(result['computed'])} days computed, {len(result['skipped'])} already done"
        + (f", {len(result['failed'])} failed" if result.get("failed") else "")
        + (f"; notifications sent: {sent}" if sent else "")
    )
    return result


def findings(result: RunResult) -> None:
    """Fill the summary's alerts (first day and severity per metric) and the model's errors."""
    from warehouse.db import connect

    with connect() as conn:
        result.alerts = [
            {"metric": metric, "first_day": first, "days": days, "severity": severity, "keys": keys}
            for metric, first, days, severity, keys in conn.execute(
                """
                select
                    metric_name,
                    min(slice_date),
                    count(distinct slice_date),
                    case when bool_or(severity = 'critical') then 'critical' else 'warning' end,
                    array_agg(distinct concat_ws('=', nullif(column_name, ''), nullif(segment_type, ''),
                        nullif(segment_value, '')))
                from marts.fct_alerts
                where model_version = %s and source = 'batch' and slice_date between %s and %s
                group by metric_name order by 2, 1
                """,
                (result.model_version, result.monitor_from, result.last_day),
            ).fetchall()
        ]
        row = conn.execute(
            "select valid_rmsle, seasonal_naive_rmsle, rmsle_vs_seasonal_naive from marts.dim_model_versions"
            " where model_version = %s",
            (result.model_version,),
        ).fetchone()
        monitored = conn.execute(
            "select avg(rmsle), count(*) filter (where rmsle is not null) from marts.fct_model_health_daily"
            " where model_version = %s and source = 'batch' and slice_date between %s and %s",
            (result.model_version, result.monitor_from, result.last_day),
        ).fetchone()
    if row:
        result.model_errors = {"valid_rmsle": row[0], "seasonal_naive_rmsle": row[1], "versus": row[2]}
    if monitored and monitored[1]:
        result.model_errors["monitored_rmsle"] = monitored[0]


def render_summary(result: RunResult, database_url: str, log_path: Path) -> list[str]:
    """The summary's lines: what was monitored, the alerts by metric, the model's error against
    seasonal-naive, and where to look next."""
    monitoring = result.monitoring
    days = len(monitoring.get("computed", [])) + len(monitoring.get("skipped", []))
    lines = ["", "Summary"]
    if result.scenario and result.scenario.get("scenario") not in (None, "none"):
        lines.append(
            f"  data        demo data with an incident to find: {result.scenario['scenario']}"
            f" from {result.scenario['change_date']}"
        )
    lines.append(
        f"  monitored   {days} days, {result.monitor_from} .. {result.last_day}, model {result.model_version}"
        + (f" ({len(monitoring['failed'])} failed: see the log)" if monitoring.get("failed") else "")
    )
    if result.alerts:
        lines.append("  alerts      by metric (marts.fct_alerts), first day first:")
        for alert in result.alerts:
            keys = [key for key in alert["keys"] if key]
            more = ", ..." if len(keys) > 4 else ""
            where = f"; {len(keys)} keys: {', '.join(keys[:4])}{more}" if keys else ""
            lines.append(
                f"    {alert['metric']:<24} first {alert['first_day']}  {alert['severity']:<8}"
                f" on {alert['days']} day{'s' if alert['days'] != 1 else ''}{where}"
            )
    else:
        lines.append("  alerts      none: every monitored day stayed within its expected range")
    errors = result.model_errors
    if errors.get("valid_rmsle") is not None and errors.get("seasonal_naive_rmsle"):
        line = (
            f"  model error RMSLE {errors['valid_rmsle']:.3f} on validation against seasonal-naive's"
            f" {errors['seasonal_naive_rmsle']:.3f} ({-errors['versus']:.0%} lower)"
        )
        if errors.get("monitored_rmsle") is not None:
            line += f"; {errors['monitored_rmsle']:.3f} a day on average over the monitored days"
        lines.append(line)
    lines += [
        "",
        "Where to look next",
        f'  psql "{database_url}"            (password hidden; salesmon db url --show-password)',
        "    select * from marts.fct_alerts order by slice_date;",
        "  salesmon report                  charts of the metrics mart as an HTML page, no server",
        "  salesmon ui                      Evidently's UI on the monitoring snapshots",
        "  salesmon dbt docs generate && salesmon dbt docs serve   the marts' documentation and lineage",
        "  docker compose up -d --wait      Grafana on http://127.0.0.1:3000 (README, With Docker)",
        f"  log of this run: {log_path}",
    ]
    return lines


def run_all(
    output: RunOutput, data_dir: Path, first: date | None, scenario: str | None, workers: int
) -> None:
    """The steps of `salesmon run`, each one line of `output`, then the summary."""
    from orchestration import run_state
    from warehouse.db import connect, conninfo, ensure_bootstrapped
    from warehouse.errors import public_url
    from warehouse.settings import get_settings

    started = time.monotonic()
    result = RunResult(data_dir=data_dir)
    with output.step("warehouse", bar=False) as step:
        ensure_bootstrapped()
        url = public_url(conninfo(), show_password=False)
        step.result = url
    with output.step("data") as step:
        result.scenario = prepare_data(data_dir, scenario, step)
    with output.step("load") as step:
        load_data(data_dir, step)
    home = get_settings().home
    with connect() as conn:
        unchanged = run_state.last_finished(home, url) == run_state.fingerprint(conn)
    with output.step("dbt build") as step:
        build(step, unchanged)
    with output.step("train") as step:
        result.model_version, result.monitor_from, result.last_day = train_if_needed(first, step)
    with output.step("score") as step:
        score_needed(result.model_version, result.monitor_from, result.last_day, step)
    with output.step("monitor") as step:
        with connect() as conn:
            unchanged = run_state.last_finished(home, url) == run_state.fingerprint(conn)
        result.monitoring = monitor(
            result.model_version, result.monitor_from, result.last_day, workers, step, unchanged
        )
    findings(result)
    with connect() as conn:
        run_state.record_finished(home, url, run_state.fingerprint(conn))
    for line in render_summary(result, url, output.path):
        output.say(line)
    output.say(f"done in {time.monotonic() - started:.0f} s")
