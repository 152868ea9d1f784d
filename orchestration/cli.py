"""The `salesmon` command line: a thin layer over the pipeline's functions."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="Monitor a retail sales-forecasting model."
)
db_app = typer.Typer(
    no_args_is_help=True, help="The warehouse: the embedded PostgreSQL or the server a URL names."
)
data_app = typer.Typer(no_args_is_help=True, help="Data sets in the Kaggle Store Sales format.")
app.add_typer(db_app, name="db")
app.add_typer(data_app, name="data")


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=1)


def _echo(message: str) -> None:
    typer.echo(message)


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

        try:
            with psycopg.connect(settings.database_url, connect_timeout=5) as conn:
                version = conn.execute("show server_version").fetchone()[0]
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
def db_url() -> None:
    """Print the connection URL (starts the embedded server if needed)."""
    from psycopg.conninfo import conninfo_to_dict

    from warehouse.db import conninfo

    info = conninfo()
    params = conninfo_to_dict(info)
    if "host" in params and "://" not in info:
        user = params.get("user", "postgres")
        _echo(f"postgresql://{user}@{params['host']}:{params.get('port', 5432)}/{params.get('dbname', '')}")
    else:
        _echo(info)


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
    from warehouse.generator import generate

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
) -> None:
    """Load Kaggle-format CSV files into raw.* (idempotent; bad rows go to raw.rejected_rows)."""
    from warehouse.loader import LoadError, load_folder

    try:
        summary = load_folder(data_dir, progress=_echo)
    except LoadError as exc:
        _fail(str(exc))
    _echo(summary.render())


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


@app.command("demo")
def demo(
    data_dir: Annotated[Path, typer.Option("--data-dir", help="Where the demo data set is written.")] = Path(
        ".salesmon/demo-data"
    ),
    stores: Annotated[int, typer.Option(help="Number of stores.")] = 54,
    start: Annotated[str, typer.Option(help="First day of the demo data.")] = "2016-02-15",
    end: Annotated[str, typer.Option(help="Last day of the demo data.")] = "2017-08-15",
    workers: Annotated[int, typer.Option(help="Parallel monitoring workers.")] = 2,
) -> None:
    """The main job end to end: generate, load, dbt build, train, score and monitor the last 90 days."""
    from models_ml.features import last_actual_date
    from warehouse.db import connect

    started = time.monotonic()
    if not (data_dir / "train.csv").exists():
        data_generate(
            out=data_dir, stores=stores, start=start, end=end, seed=42, scenario="none", change_date=None
        )
    _step("load", lambda: load(data_dir=data_dir))
    _step("dbt build", lambda: _dbt_or_exit(["build"]))
    _step("train", lambda: train_model(monitor_from=None))
    with connect() as conn:
        last = last_actual_date(conn)
        monitor_from = conn.execute(
            "select monitor_from from ml.model_registry where is_champion"
        ).fetchone()[0]
    first, last_day = monitor_from.isoformat(), last.isoformat()
    _step("score", lambda: score_model(start=first, end=last_day, model_version=None))
    _step("monitor", lambda: monitor(start=first, end=last_day, workers=workers))
    _echo(
        f"demo done in {time.monotonic() - started:.0f} s. Look at the marts, e.g.\n"
        '  psql "$(salesmon db url)" -c \'select slice_date, prediction_drift_score, rmsle, alerts_count'
        " from marts.fct_model_health_daily order by slice_date desc limit 10'\n"
        "or run `salesmon ui` for the Evidently dashboards."
    )


def _step(name: str, action: Callable[[], object]) -> None:
    typer.secho(f"==> {name}", bold=True)
    began = time.monotonic()
    action()
    typer.secho(f"    {name} done in {time.monotonic() - began:.0f} s", dim=True)


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
    start: Annotated[str, typer.Option("--start", help="First day to score, YYYY-MM-DD.")],
    end: Annotated[str, typer.Option("--end", help="Last day to score, YYYY-MM-DD.")],
    model_version: Annotated[
        str | None, typer.Option("--model-version", help="A registered version (default: the champion).")
    ] = None,
) -> None:
    """Score a date range with the champion (or a given version) into ml.predictions (upsert)."""
    from models_ml.errors import ModelError
    from models_ml.score import score

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
    metrics mart (salesmon dbt build --select path:models/marts/monitoring).
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
            help="process (a pool of processes on this machine), dask (a local Dask cluster, or the"
            " scheduler at --dask-address) or thread.",
        ),
    ] = "process",
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
    from orchestration.runners import TASK_RUNNERS

    if task_runner not in TASK_RUNNERS:
        _fail(f"--task-runner must be one of {', '.join(TASK_RUNNERS)}, got {task_runner!r}")
    if dask_address and task_runner != "dask":
        _fail("--dask-address needs --task-runner dask")
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


def _echo_monitoring(result: dict) -> None:
    """What a monitoring run did: days per outcome, the range's coverage, each failed day's error."""
    from orchestration.flows import render_coverage

    failed = result.get("failed") or []
    _echo(
        f"model {result['model_version']}: {len(result['computed'])} days computed, {len(result['skipped'])}"
        f" skipped (already done), {len(result['no_data'])} without predictions, {len(failed)} failed"
        f" in {result['seconds']:.1f} s"
    )
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

    summary = notify()
    _echo(summary.render())
    for channel, errors in summary.failed.items():
        for alert_id, error in errors.items():
            _echo(f"  {channel} {alert_id}: {error}")
    if summary.failed:
        raise typer.Exit(1)


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
