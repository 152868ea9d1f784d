"""The `salesmon` command line: a thin layer over the pipeline's functions."""

from __future__ import annotations

import sys
from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import click
import typer

from orchestration.cli_errors import SalesmonGroup, quiet_prefect_tracebacks
from orchestration.cli_server import server_app

app = typer.Typer(
    cls=SalesmonGroup,
    no_args_is_help=True,
    add_completion=False,
    help="Monitor a retail sales-forecasting model.",
)
db_app = typer.Typer(
    no_args_is_help=True, help="The warehouse: the embedded PostgreSQL or the server a URL names."
)
data_app = typer.Typer(no_args_is_help=True, help="Data sets in the Kaggle Store Sales format.")
app.add_typer(db_app, name="db")
app.add_typer(data_app, name="data")
app.add_typer(server_app, name="server")


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=1)


def _echo(message: str) -> None:
    typer.echo(message)


@app.callback()
def _global_options(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the traceback of an error (also SALESMON_DEBUG=1).")
    ] = False,
    use_pghost: Annotated[
        bool,
        typer.Option(
            "--use-pghost",
            help="Use the server that PGHOST (PGPORT, PGDATABASE, PGUSER) names, when SALESMON_DATABASE_URL"
            " is not set (also SALESMON_USE_PGHOST=1). salesmon creates its schemas and a role there.",
        ),
    ] = False,
) -> None:
    """Options for every command."""
    import os

    from warehouse.settings import get_settings, ignored_pghost

    if use_pghost:
        # for this process and the worker processes it starts (Prefect, dbt)
        os.environ["SALESMON_USE_PGHOST"] = "1"
        get_settings.cache_clear()
    pghost = ignored_pghost()
    if pghost:
        typer.secho(
            f"note: PGHOST={pghost} is set but not used: salesmon uses its embedded PostgreSQL"
            " (pass --use-pghost or set SALESMON_USE_PGHOST=1 to use that server)",
            err=True,
            dim=True,
        )


def _require_warehouse() -> None:
    """Connect (and bootstrap) now: an unreachable warehouse is reported before any slow start-up."""
    from warehouse.db import ensure_bootstrapped

    ensure_bootstrapped()


def _parse_date(value: str | None, name: str) -> date | None:
    if value is None:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        _fail(f"{name} must be a date as YYYY-MM-DD, got {value!r}")
    return None


# --- db ---------------------------------------------------------------------------------------


@db_app.command("start")
def db_start() -> None:
    """Start the embedded PostgreSQL (a running one is reused)."""
    from warehouse import embedded
    from warehouse.db import bootstrap
    from warehouse.settings import get_settings

    settings = get_settings()
    if not settings.embedded:
        _echo("SALESMON_DATABASE_URL is set: using that server, nothing to start.")
        return
    try:
        state = embedded.start(settings)
    except embedded.EmbeddedServerError as exc:
        _fail(str(exc))
    bootstrap()
    _echo(f"PostgreSQL running on 127.0.0.1:{state.port} (pid {state.pid}), data in {state.pgdata}")


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded PostgreSQL."""
    from warehouse import embedded
    from warehouse.settings import get_settings

    settings = get_settings()
    if not settings.embedded:
        _echo("SALESMON_DATABASE_URL is set: that server is not ours to stop.")
        return
    _echo("stopped" if embedded.stop(settings) else "not running")


@db_app.command("status")
def db_status() -> None:
    """Say whether the warehouse is reachable, and where."""
    from warehouse import embedded
    from warehouse.settings import get_settings

    settings = get_settings()
    if not settings.embedded:
        import psycopg

        from warehouse.db import server_version

        try:
            version = server_version(settings.database_url)
            _echo(f"external server reachable (PostgreSQL {version})")
        except psycopg.OperationalError as exc:
            _fail(f"external server not reachable: {exc}")
        return
    state = embedded.status(settings)
    if state.running:
        _echo(f"running on 127.0.0.1:{state.port} (pid {state.pid}), data in {state.pgdata}")
    else:
        _echo(f"not running (data in {state.pgdata})")
        raise typer.Exit(code=3)


@db_app.command("url")
def db_url(
    show_password: Annotated[
        bool, typer.Option("--show-password", help="Include the password, when the URL has one.")
    ] = False,
) -> None:
    """Print the connection URL, without its password (starts the embedded server if needed)."""
    from psycopg.conninfo import conninfo_to_dict

    from warehouse.db import conninfo
    from warehouse.errors import public_url

    info = conninfo()
    _echo(public_url(info, show_password=show_password))
    if conninfo_to_dict(info).get("password") and not show_password:
        typer.secho("(password left out: --show-password prints it)", err=True, dim=True)


# --- data -------------------------------------------------------------------------------------


@data_app.command("generate")
def data_generate(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the CSV files into.")],
    stores: Annotated[int, typer.Option(help="Number of stores (1..54).")] = 54,
    start: Annotated[str, typer.Option(help="First day, YYYY-MM-DD.")] = "2013-01-01",
    end: Annotated[str, typer.Option(help="Last day, YYYY-MM-DD.")] = "2017-08-15",
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same files.")] = 42,
    scenario: Annotated[
        str,
        typer.Option(
            help="none, promo_shift, sales_drop, missing_burst, store_closures, price_shock, new_store, "
            "new_family, feed_stop (ground truth in OUT/scenario.json)"
        ),
    ] = "none",
    change_date: Annotated[
        str | None, typer.Option(help="When the scenario starts (default 30 days before the end).")
    ] = None,
) -> None:
    """Write a data set in the Kaggle Store Sales format (train, test, stores, oil, holidays, ...)."""
    from datagen import generate

    try:
        result = generate(
            out,
            stores=stores,
            start=_parse_date(start, "--start"),
            end=_parse_date(end, "--end"),
            seed=seed,
            scenario=scenario,
            change_date=_parse_date(change_date, "--change-date"),
            progress=_echo,
        )
    except ValueError as exc:
        _fail(str(exc))
    rows = ", ".join(f"{name} {count:,}" for name, count in result.files.items())
    _echo(f"wrote {out} in {result.seconds:.1f} s: {rows}")


# --- load, dbt ---------------------------------------------------------------------------------


@app.command("load")
def load(
    data_dir: Annotated[Path, typer.Option("--data-dir", help="Folder with the Kaggle CSV files.")],
    update: Annotated[
        bool,
        typer.Option(
            "--update",
            help="Replace stored rows whose values changed in the files (corrections); without it they"
            " are counted and left as they are.",
        ),
    ] = False,
) -> None:
    """Load Kaggle-format CSV files into raw.* (idempotent; bad rows go to raw.rejected_rows).

    Rows whose values differ from the stored ones are reported per file and per day; --update
    replaces them, and the days they touch are rebuilt by the next `salesmon dbt build` (features)
    and `salesmon score --changed`. Plausible dates: SALESMON_FIRST_DATE (default 2000-01-01) to
    SALESMON_LAST_DATE (default today; test.csv may go a year further).
    """
    from warehouse.loader import LoadError, load_folder

    try:
        summary = load_folder(data_dir, update=update, progress=_echo)
    except LoadError as exc:
        _fail(str(exc))
    _echo(summary.render())
    changed = sum(item.rows_changed for item in summary.files)
    if changed and not update:
        _echo(f"{changed:,} rows differ from what is stored: run `salesmon load --update` to replace them")


@app.command("dbt", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def dbt(ctx: typer.Context) -> None:
    """Run dbt against the warehouse, e.g. `salesmon dbt build`."""
    _dbt_or_exit(list(ctx.args) or ["build"])


def _dbt_or_exit(args: list[str]) -> None:
    from warehouse.dbt import DbtError, run_dbt

    try:
        run_dbt(args)
    except DbtError:
        raise typer.Exit(code=1) from None  # dbt printed its own errors


# --- the main job ------------------------------------------------------------------------------


@app.command("run")
def run(
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            help="Folder with the Kaggle CSV files (default: the demo data set, generated into"
            " $SALESMON_HOME/demo-data the first time).",
        ),
    ] = None,
    monitor_from: Annotated[
        str | None,
        typer.Option(
            "--monitor-from",
            help="First monitored day, YYYY-MM-DD (default: the champion's, or the last sales day - 90"
            " for a first model); a champion is trained for it unless one exists.",
        ),
    ] = None,
    scenario: Annotated[
        str | None,
        typer.Option(
            "--scenario",
            help="The incident in generated demo data (default sales_drop; none for none): see"
            " `salesmon data generate --help`.",
        ),
    ] = None,
    workers: Annotated[int, typer.Option(help="Parallel monitoring workers.")] = 2,
    verbose: Annotated[
        bool,
        typer.Option("--verbose", "-v", help="Print dbt's and Prefect's logs too (always in the log file)."),
    ] = False,
) -> None:
    """The whole chain, redoing nothing already done: load, dbt build, train (when no champion exists
    for the split), score (days not scored yet), monitor every day from --monitor-from on, the
    metrics mart and the notifications; then a summary of what was found.

    One line per step; dbt's and Prefect's logs go to $SALESMON_HOME/logs/run-*.log (--verbose prints them).
    """
    from orchestration.console import RunOutput
    from warehouse.settings import get_settings

    settings = get_settings()
    output = RunOutput(settings.home, verbose=verbose)
    output.prefect_logging()  # before Prefect is imported
    first = _parse_date(monitor_from, "--monitor-from")
    try:
        from orchestration.run import run_all

        run_all(output, data_dir or settings.home / "demo-data", first, scenario, workers)
    except typer.Exit:
        raise
    except Exception as exc:
        from orchestration.run import RunError

        message = str(exc) if isinstance(exc, RunError) else None
        if message is None:
            from orchestration.cli_errors import debug_enabled, describe

            if debug_enabled(click.get_current_context(silent=True)):
                raise
            message = describe(exc)
        _fail(f"{message}\nthe log of this run: {output.path}")
    finally:
        output.close()


app.command("demo", help="The same as `salesmon run` (kept for older scripts).")(run)


# --- model: train, score ------------------------------------------------------------------------


@app.command("train")
def train_model(
    monitor_from: Annotated[
        str | None,
        typer.Option("--monitor-from", help="First monitored day (default: last sales day - 90)."),
    ] = None,
) -> None:
    """Train the candidates, print the validation table and register the champion."""
    from models_ml.errors import ModelError
    from models_ml.train import train

    try:
        result = train(_parse_date(monitor_from, "--monitor-from"), progress=_echo)
    except ModelError as exc:
        _fail(str(exc))
    _echo(result.render())


@app.command("score")
def score_model(
    start: Annotated[str | None, typer.Option("--start", help="First day to score, YYYY-MM-DD.")] = None,
    end: Annotated[str | None, typer.Option("--end", help="Last day to score, YYYY-MM-DD.")] = None,
    model_version: Annotated[
        str | None, typer.Option("--model-version", help="A registered version (default: the champion).")
    ] = None,
    changed: Annotated[
        bool,
        typer.Option(
            "--changed",
            help="Score again the days whose features were rebuilt since they were scored (after"
            " `salesmon load --update` and `salesmon dbt build`), instead of --start/--end.",
        ),
    ] = False,
) -> None:
    """Score a date range with the champion (or a given version) into ml.predictions (upsert)."""
    from models_ml.errors import ModelError
    from models_ml.score import rescore_changed, score

    if changed:
        if start or end:
            _fail("--changed scores the days whose inputs changed: give it without --start and --end")
        try:
            results = rescore_changed(model_version, progress=_echo)
        except ModelError as exc:
            _fail(str(exc))
        for result in results:
            _echo(result.render())
        if not results:
            _echo("no scored day has changed inputs: nothing to score again")
        return
    if start is None or end is None:
        _fail("give --start and --end (or --changed)")
    first, last = _parse_date(start, "--start"), _parse_date(end, "--end")
    if first > last:
        _fail(f"--end {last} is before --start {first}")
    try:
        result = score(first, last, model_version, progress=_echo)
    except ModelError as exc:
        _fail(str(exc))
    _echo(result.render())


# --- monitoring ---------------------------------------------------------------------------------


@app.command("calibrate")
def calibrate_model(
    model_version: Annotated[
        str | None, typer.Option("--model-version", help="A registered version (default: the champion).")
    ] = None,
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
        result = calibrate(model_version, force=force, progress=_echo)
    except (NoChampionError, ModelError) as exc:
        _fail(str(exc))
    _echo(result.render())


@app.command("monitor")
def monitor(
    start: Annotated[str, typer.Option("--start", help="First day to monitor, YYYY-MM-DD.")],
    end: Annotated[str, typer.Option("--end", help="Last day to monitor, YYYY-MM-DD.")],
    model_version: Annotated[
        str | None, typer.Option("--model-version", help="A registered version (default: the champion).")
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            help="Parallel workers: processes (Dask workers of a local cluster; threads with thread)."
        ),
    ] = 2,
    force: Annotated[bool, typer.Option("--force", help="Recompute days already computed.")] = False,
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
    import os

    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    first, last = _parse_date(start, "--start"), _parse_date(end, "--end")
    if first > last:
        _fail(f"--end {last} is before --start {first}")
    _require_warehouse()  # before Prefect starts, and before its retries of the first task
    from orchestration.runners import TASK_RUNNERS

    if task_runner not in TASK_RUNNERS:
        _fail(f"--task-runner must be one of {', '.join(TASK_RUNNERS)}, got {task_runner!r}")
    if dask_address and task_runner != "dask":
        _fail("--dask-address needs --task-runner dask")
    quiet_prefect_tracebacks(click.get_current_context(silent=True))
    from orchestration.prefect_server import PrefectServerError, start_server

    # Prefect's temporary server (without a configured API) boots while this process imports the flow
    server = start_server()
    from monitoring.slices import NoChampionError
    from orchestration.flows import MonitoringFailed, monitor_days

    if first == last and task_runner != "dask":
        from monitoring.report import warm_up

        warm_up()  # one day is computed in this process: its Evidently import, beside the server's
    try:
        server.wait()
    except PrefectServerError as exc:
        _fail(str(exc))
    try:
        result = monitor_days(
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
    except MonitoringFailed as exc:  # the other days are stored and the marts built: say what failed
        _echo_monitoring(exc.result)
        _fail(str(exc))
    except (NoChampionError, ValueError, RuntimeError) as exc:
        _fail(str(exc))
    _echo_monitoring(result)


@app.command("monitor-online")
def monitor_online(
    start: Annotated[
        str | None, typer.Option("--start", help="First forecast day, YYYY-MM-DD (default: the log's first).")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--end", help="Last forecast day, YYYY-MM-DD (default: the log's last).")
    ] = None,
    model_version: Annotated[
        str | None, typer.Option("--model-version", help="A registered version (default: the champion).")
    ] = None,
    workers: Annotated[int, typer.Option(help="Parallel worker processes.")] = 2,
    force: Annotated[bool, typer.Option("--force", help="Recompute days already computed.")] = False,
) -> None:
    """Monitor the prediction service's request log like the batch predictions, day by day.

    The same metrics against the same reference, stored with source 'online', plus the parity of
    every answered request with the batch side (same day, store, family and model version): the
    share that differ, per feature, alerts. Then the metrics mart is built.
    """
    import os

    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    first, last = _parse_date(start, "--start"), _parse_date(end, "--end")
    if first and last and first > last:
        _fail(f"--end {last} is before --start {first}")
    _require_warehouse()
    quiet_prefect_tracebacks(click.get_current_context(silent=True))
    from orchestration.prefect_server import PrefectServerError, start_server

    server = start_server()
    from monitoring.slices import NoChampionError
    from orchestration.flows import MonitoringFailed
    from orchestration.flows import monitor_online as flow

    try:
        server.wait()
    except PrefectServerError as exc:
        _fail(str(exc))
    try:
        result = flow(first, last, model_version, force=force, workers=workers)
    except MonitoringFailed as exc:
        _echo_monitoring(exc.result)
        _fail(str(exc))
    except (NoChampionError, ValueError, RuntimeError) as exc:
        _fail(str(exc))
    if not (result["computed"] or result["skipped"] or result["no_data"]):
        _echo("the request log has no answered request yet: nothing to monitor (start `salesmon serve`)")
        return
    _echo_monitoring(result)


def _echo_monitoring(result: dict) -> None:
    """What a monitoring run did: days per outcome, the range's coverage, each failed day's error."""
    from orchestration.flows import render_coverage

    failed = result.get("failed") or []
    online = result.get("source") == "online"
    _echo(
        f"model {result['model_version']}{' (online: the request log)' if online else ''}:"
        f" {len(result['computed'])} days computed, {len(result['skipped'])} skipped (already done),"
        f" {len(result['no_data'])} without {'requests' if online else 'predictions'}, {len(failed)} failed"
        f" in {result['seconds']:.1f} s"
    )
    if online and result.get("alerts") is not None:
        alerts = result["alerts"]
        per_severity = ", ".join(f"{severity} {count}" for severity, count in sorted(alerts.items()))
        _echo(f"online alerts in marts.fct_alerts: {sum(alerts.values())} ({per_severity or 'none'})")
    timings = result.get("timings") or {}
    if timings:
        names = {"plan": "plan", "compute": "computing the days", "marts": "dbt build of the marts"}
        _echo(
            "time: "
            + ", ".join(f"{names.get(name, name)} {seconds:.1f} s" for name, seconds in timings.items())
        )
    if result.get("coverage") is not None:
        coverage = render_coverage(result["coverage"])
        _echo(f"coverage of the range (marts.fct_monitoring_coverage_daily): {coverage}")
    if failed:
        _echo(f"failed days ({len(failed)}; run the same command again to compute only the days not done):")
        for item in failed:
            _echo(f"  {item['day']}  {item['error']}")


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

    _require_warehouse()
    summary = notify()
    _echo(summary.render())
    for channel, errors in summary.failed.items():
        for alert_id, error in errors.items():
            _echo(f"  {channel} {alert_id}: {error}")
    if summary.failed:
        raise typer.Exit(1)


@app.command("serve")
def serve(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    check_every: Annotated[
        float, typer.Option(help="Seconds between checks for a new champion in ml.model_registry.")
    ] = 5.0,
    preload_days: Annotated[
        int, typer.Option(help="Days with sales kept in memory at start, besides every later day.")
    ] = 28,
) -> None:
    """The online prediction service: POST /predict, GET /health, GET /metrics, docs at /docs.

    Serves the champion of ml.model_registry (a new champion is picked up without a restart) with
    the features of marts.fct_sales_features. Every request is logged to ml.prediction_log by a
    background writer; what the database cannot take is kept in $SALESMON_HOME/service/spill and
    replayed when it answers again. Ctrl-C (or SIGTERM) stops it after flushing the log.
    """
    import uvicorn

    from models_ml.service.app import ServiceConfig, create_app
    from warehouse.db import conninfo, ensure_bootstrapped
    from warehouse.settings import get_settings

    ensure_bootstrapped()
    config = ServiceConfig(
        conninfo=conninfo(),
        spill_dir=get_settings().home / "service" / "spill",
        check_every=check_every,
        preload_days=preload_days,
    )
    _echo(f"prediction service on http://{host}:{port} (docs at /docs); Ctrl-C to stop")
    uvicorn.run(create_app(config), host=host, port=port, log_level="warning", timeout_graceful_shutdown=30)


@app.command("report")
def report(
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Folder for index.html and its images (default $SALESMON_HOME/report)."),
    ] = None,
    model_version: Annotated[
        str | None, typer.Option("--model-version", help="A monitored version (default: the champion).")
    ] = None,
) -> None:
    """Write the metrics mart as an HTML page of charts (drift, missing values, errors, rows, segments)."""
    from reporting.page import ReportError, write_report

    try:
        result = write_report(out, model_version)
    except ReportError as exc:
        _fail(str(exc))
    _echo(result.render())


@app.command("ui")
def ui(
    port: Annotated[int, typer.Option(help="Port of the Evidently UI.")] = 8000,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
) -> None:
    """Start Evidently's UI on the workspace the monitoring runs fill ($SALESMON_HOME/evidently)."""
    import shutil
    import subprocess

    from monitoring.workspace import workspace_path

    path = workspace_path()
    if not path.exists():
        _echo(f"{path} does not exist yet (run `salesmon monitor` first): the UI starts empty")
    found = Path(sys.executable).with_name("evidently")
    executable = str(found) if found.exists() else shutil.which("evidently")
    if executable is None:
        _fail("the `evidently` command is not installed")
    _echo(f"Evidently UI on http://{host}:{port} (workspace {path}); Ctrl-C to stop")
    completed = subprocess.run(
        [executable, "ui", "--workspace", str(path), "--port", str(port), "--host", host], check=False
    )
    raise typer.Exit(code=completed.returncode)


def main() -> None:
    app(prog_name="salesmon")


if __name__ == "__main__":
    sys.exit(main())
