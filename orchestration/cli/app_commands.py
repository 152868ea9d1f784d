"""What people look at: the prediction service (`serve`), `report`, the Evidently `ui`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from orchestration.cli.base import app, echo, fail


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
    echo(f"prediction service on http://{host}:{port} (docs at /docs); Ctrl-C to stop")
    uvicorn.run(
        create_app(config),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=30,
    )


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
        fail(str(exc))
    echo(result.render())


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
        echo(f"{path} does not exist yet (run `salesmon monitor` first): the UI starts empty")
    found = Path(sys.executable).with_name("evidently")
    executable = str(found) if found.exists() else shutil.which("evidently")
    if executable is None:
        fail("the `evidently` command is not installed")
    echo(f"Evidently UI on http://{host}:{port} (workspace {path}); Ctrl-C to stop")
    completed = subprocess.run(
        [executable, "ui", "--workspace", str(path), "--port", str(port), "--host", host], check=False
    )
    raise typer.Exit(code=completed.returncode)
