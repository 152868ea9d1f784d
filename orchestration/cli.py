"""The `salesmon` command line: a thin layer over the pipeline's functions."""

from __future__ import annotations

import sys
import time
from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Monitor a retail sales-forecasting model.")
db_app = typer.Typer(no_args_is_help=True, help="The warehouse: the embedded PostgreSQL or the server a URL names.")
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

    params = conninfo_to_dict(conninfo())
    if "host" in params and "://" not in conninfo():
        user = params.get("user", "postgres")
        _echo(f"postgresql://{user}@{params['host']}:{params.get('port', 5432)}/{params.get('dbname', '')}")
    else:
        _echo(conninfo())


# --- data -------------------------------------------------------------------------------------


@data_app.command("generate")
def data_generate(
    out: Annotated[Path, typer.Option("--out", help="Folder to write the CSV files into.")],
    stores: Annotated[int, typer.Option(help="Number of stores (1..54).")] = 54,
    start: Annotated[str, typer.Option(help="First day, YYYY-MM-DD.")] = "2013-01-01",
    end: Annotated[str, typer.Option(help="Last day, YYYY-MM-DD.")] = "2017-08-15",
    seed: Annotated[int, typer.Option(help="Random seed: the same seed gives the same files.")] = 42,
    scenario: Annotated[str, typer.Option(help="none, promo_shift, sales_drop, missing_burst, store_closures")] = "none",
    change_date: Annotated[
        str | None, typer.Option(help="When the scenario starts (default 30 days before the end).")
    ] = None,
) -> None:
    """Write a data set in the Kaggle Store Sales format (train, test, stores, oil, holidays, transactions)."""
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
) -> None:
    """The main job end to end on a generated data set: generate, load, dbt build."""
    started = time.monotonic()
    if not (data_dir / "train.csv").exists():
        data_generate(out=data_dir, stores=stores, start=start, end=end, seed=42, scenario="none", change_date=None)
    load(data_dir=data_dir)
    _dbt_or_exit(["build"])
    _echo(f"demo done in {time.monotonic() - started:.0f} s")


def main() -> None:
    app(prog_name="salesmon")


if __name__ == "__main__":
    sys.exit(main())
