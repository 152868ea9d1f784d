"""The main job and the model: `run` (and its alias `demo`), `train`, `score`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import click
import typer

from orchestration.cli.base import ModelVersion, app, echo, fail, parse_date

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
    first = parse_date(monitor_from, "--monitor-from")
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
        fail(f"{message}\nthe log of this run: {output.path}")
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
        result = train(parse_date(monitor_from, "--monitor-from"), progress=echo)
    except ModelError as exc:
        fail(str(exc))
    echo(result.render())


@app.command("score")
def score_model(
    start: Annotated[str | None, typer.Option("--start", help="First day to score, YYYY-MM-DD.")] = None,
    end: Annotated[str | None, typer.Option("--end", help="Last day to score, YYYY-MM-DD.")] = None,
    model_version: ModelVersion = None,
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
            fail("--changed scores the days whose inputs changed: give it without --start and --end")
        try:
            results = rescore_changed(model_version, progress=echo)
        except ModelError as exc:
            fail(str(exc))
        for result in results:
            echo(result.render())
        if not results:
            echo("no scored day has changed inputs: nothing to score again")
        return
    if start is None or end is None:
        fail("give --start and --end (or --changed)")
    first, last = parse_date(start, "--start"), parse_date(end, "--end")
    if first > last:
        fail(f"--end {last} is before --start {first}")
    try:
        result = score(first, last, model_version, progress=echo)
    except ModelError as exc:
        fail(str(exc))
    echo(result.render())
