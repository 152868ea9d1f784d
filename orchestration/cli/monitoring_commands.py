"""Monitoring: `calibrate`, `monitor`, `monitor-online`, `notify`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import click
import typer

from orchestration.cli.base import Force, ModelVersion, app, echo, fail, parse_date, require_warehouse
from orchestration.cli_errors import quiet_prefect_tracebacks

# --- monitoring ---------------------------------------------------------------------------------


@app.command("calibrate")
def calibrate_model(
    model_version: ModelVersion = None,
    force: Annotated[bool, typer.Option("--force", help="Learn the bounds again.")] = False,
) -> None:
    """Learn what each alerting metric looks like on days with no incident for a model version.

    `salesmon monitor` does this by itself before a version's first monitored day; run it again with
    --force after changing the monitoring configuration or the validation data, then rebuild the
    metrics mart from the bounds on (salesmon dbt build --select fct_metric_bounds+).
    """
    from models_ml.errors import ModelError
    from monitoring.calibration import calibrate
    from monitoring.slices import NoChampionError

    try:
        result = calibrate(model_version, force=force, progress=echo)
    except (NoChampionError, ModelError) as exc:
        fail(str(exc))
    echo(result.render())


@app.command("monitor")
def monitor(
    start: Annotated[str, typer.Option("--start", help="First day to monitor, YYYY-MM-DD.")],
    end: Annotated[str, typer.Option("--end", help="Last day to monitor, YYYY-MM-DD.")],
    model_version: ModelVersion = None,
    workers: Annotated[
        int,
        typer.Option(
            help="Parallel workers: processes (Dask workers of a local cluster; threads with thread)."
        ),
    ] = 2,
    force: Force = False,
    html: Annotated[
        Path | None, typer.Option("--html", help="Write one Evidently HTML report per day into this folder.")
    ] = None,
    task_runner: Annotated[
        str,
        typer.Option(
            "--task-runner",
            help="auto (a pool of processes on this machine, or this process when the days are too few"
            " to pay for the pool's start), process (always the pool), dask (a local Dask cluster, or"
            " the scheduler at --dask-address) or thread.",
        ),
    ] = "auto",
    dask_address: Annotated[
        str | None,
        typer.Option(
            "--dask-address",
            help="A running Dask scheduler, e.g. tcp://10.0.0.5:8786 (with --task-runner dask).",
        ),
    ] = None,
    workspace: Annotated[
        bool,
        typer.Option(
            "--workspace/--no-workspace",
            help="Add each day's snapshot to the Evidently workspace (salesmon ui).",
        ),
    ] = True,
) -> None:
    """Monitor a range of days (a Prefect flow, one task per chunk of days), then build the metrics mart."""
    first, last = parse_date(start, "--start"), parse_date(end, "--end")
    if first > last:
        fail(f"--end {last} is before --start {first}")
    require_warehouse()  # before Prefect starts, and before its retries of the first task
    from orchestration.runners import TASK_RUNNERS

    if task_runner not in TASK_RUNNERS:
        fail(f"--task-runner must be one of {', '.join(TASK_RUNNERS)}, got {task_runner!r}")
    if dask_address and task_runner != "dask":
        fail("--dask-address needs --task-runner dask")

    def run() -> dict:
        from orchestration.flows import monitor_days

        return monitor_days(
            first,
            last,
            model_version=model_version,
            force=force,
            workers=workers,
            task_runner=task_runner,
            html_dir=str(html) if html else None,
            workspace=workspace,
            dask_address=dask_address,
        )

    # one day is computed in this process: its Evidently import, beside the server's start
    _echo_monitoring(_run_flow(run, warm_up=first == last and task_runner != "dask"))


def _run_flow(run: Callable[[], dict], warm_up: bool = False) -> dict:
    """Start Prefect's server (without a configured API) and dbt (`warehouse.dbt_ahead`) while this
    process imports the flow, run it, and turn its failures into one-line errors: a run whose days
    partly failed prints what it did first (the other days are stored and the marts built)."""
    import contextlib
    import os

    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    quiet_prefect_tracebacks(click.get_current_context(silent=True))
    from orchestration.prefect_server import PrefectServerError, start_server
    from warehouse.dbt import DBT_PROJECT_DIR, dbt_environment
    from warehouse.dbt_ahead import started_ahead

    server = start_server()
    # dbt imports and parses the project on the other core while this process imports the flow
    # (SALESMON_DBT_AHEAD=off: dbt starts when the marts are built, as a plain `dbt build`)
    ahead = os.environ.get("SALESMON_DBT_AHEAD", "on") != "off"
    with started_ahead(dbt_environment(), str(DBT_PROJECT_DIR)) if ahead else contextlib.nullcontext():
        import orchestration.flows  # noqa: F401  (the flow's imports, while the server starts)
        from monitoring.slices import NoChampionError
        from orchestration.summary import MonitoringFailed

        if warm_up:
            from monitoring.report import warm_up as import_evidently

            import_evidently()
        try:
            server.wait()
        except PrefectServerError as exc:
            fail(str(exc))
        try:
            return run()
        except MonitoringFailed as exc:
            _echo_monitoring(exc.result)
            fail(str(exc))
        except (NoChampionError, ValueError, RuntimeError) as exc:
            fail(str(exc))


@app.command("monitor-online")
def monitor_online(
    start: Annotated[
        str | None, typer.Option("--start", help="First forecast day, YYYY-MM-DD (default: the log's first).")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--end", help="Last forecast day, YYYY-MM-DD (default: the log's last).")
    ] = None,
    model_version: ModelVersion = None,
    workers: Annotated[int, typer.Option(help="Parallel worker processes.")] = 2,
    force: Force = False,
) -> None:
    """Monitor the prediction service's request log like the batch predictions, day by day.

    The same metrics against the same reference, stored with source 'online', plus the parity of
    every answered request with the batch side (same day, store, family and model version): the
    share that differ, per feature, alerts. Then the metrics mart is built.
    """
    first, last = parse_date(start, "--start"), parse_date(end, "--end")
    if first and last and first > last:
        fail(f"--end {last} is before --start {first}")
    require_warehouse()

    def run() -> dict:
        from orchestration.flows import monitor_online as flow

        return flow(first, last, model_version, force=force, workers=workers)

    result = _run_flow(run)
    if not (result["computed"] or result["skipped"] or result["no_data"]):
        echo("the request log has no answered request yet: nothing to monitor (start `salesmon serve`)")
        return
    _echo_monitoring(result)


def _echo_monitoring(result: dict) -> None:
    """What a monitoring run did: days per outcome, the range's coverage, each failed day's error."""
    from orchestration.summary import render_coverage

    failed = result.get("failed") or []
    online = result.get("source") == "online"
    echo(
        f"model {result['model_version']}{' (online: the request log)' if online else ''}:"
        f" {len(result['computed'])} days computed, {len(result['skipped'])} skipped (already done),"
        f" {len(result['no_data'])} without {'requests' if online else 'predictions'}, {len(failed)} failed"
        f" in {result['seconds']:.1f} s"
    )
    if online and result.get("alerts") is not None:
        alerts = result["alerts"]
        per_severity = ", ".join(f"{severity} {count}" for severity, count in sorted(alerts.items()))
        echo(f"online alerts in marts.fct_alerts: {sum(alerts.values())} ({per_severity or 'none'})")
    timings = result.get("timings") or {}
    if timings:
        names = {"plan": "plan", "compute": "computing the days", "marts": "dbt build of the marts"}
        echo(
            "time: "
            + ", ".join(f"{names.get(name, name)} {seconds:.1f} s" for name, seconds in timings.items())
        )
    if result.get("coverage") is not None:
        coverage = render_coverage(result["coverage"])
        echo(f"coverage of the range (marts.fct_monitoring_coverage_daily): {coverage}")
    if failed:
        echo(f"failed days ({len(failed)}; run the same command again to compute only the days not done):")
        for item in failed:
            echo(f"  {item['day']}  {item['error']}")


@app.command("notify")
def notify_alerts() -> None:
    """Send the alerts of marts.fct_alerts not sent yet: each once, per configured channel.

    Channels come from the environment: a Slack-compatible webhook (SALESMON_ALERT_WEBHOOK_URL) and
    e-mail over SMTP (SALESMON_SMTP_HOST, SALESMON_SMTP_PORT, SALESMON_ALERT_EMAIL_TO, ...). A send
    is retried with backoff; what still fails is recorded in monitoring.notifications and tried
    again by the next run. `salesmon monitor` does this by itself after building the mart. Exits 1
    when a send failed.
    """
    from notifications.send import notify

    require_warehouse()
    summary = notify()
    echo(summary.render())
    for channel, errors in summary.failed.items():
        for alert_id, error in errors.items():
            echo(f"  {channel} {alert_id}: {error}")
    if summary.failed:
        raise typer.Exit(1)
