"""Commands on the warehouse and its data: `db`, `data generate`, `load`, `dbt`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from orchestration.cli.base import app, data_app, db_app, echo, fail, parse_date

# --- db ---------------------------------------------------------------------------------------


@db_app.command("start")
def db_start() -> None:
    """Start the embedded PostgreSQL (a running one is reused)."""
    from warehouse import embedded
    from warehouse.db import bootstrap
    from warehouse.settings import get_settings

    settings = get_settings()
    if not settings.embedded:
        echo("SALESMON_DATABASE_URL is set: using that server, nothing to start.")
        return
    try:
        state = embedded.start(settings)
    except embedded.EmbeddedServerError as exc:
        fail(str(exc))
    bootstrap()
    echo(f"PostgreSQL running on 127.0.0.1:{state.port} (pid {state.pid}), data in {state.pgdata}")


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded PostgreSQL."""
    from warehouse import embedded
    from warehouse.settings import get_settings

    settings = get_settings()
    if not settings.embedded:
        echo("SALESMON_DATABASE_URL is set: that server is not ours to stop.")
        return
    echo("stopped" if embedded.stop(settings) else "not running")


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
            echo(f"external server reachable (PostgreSQL {version})")
        except psycopg.OperationalError as exc:
            fail(f"external server not reachable: {exc}")
        return
    state = embedded.status(settings)
    if state.running:
        echo(f"running on 127.0.0.1:{state.port} (pid {state.pid}), data in {state.pgdata}")
    else:
        echo(f"not running (data in {state.pgdata})")
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
    echo(public_url(info, show_password=show_password))
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
            start=parse_date(start, "--start"),
            end=parse_date(end, "--end"),
            seed=seed,
            scenario=scenario,
            change_date=parse_date(change_date, "--change-date"),
            progress=echo,
        )
    except ValueError as exc:
        fail(str(exc))
    rows = ", ".join(f"{name} {count:,}" for name, count in result.files.items())
    echo(f"wrote {out} in {result.seconds:.1f} s: {rows}")


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
        summary = load_folder(data_dir, update=update, progress=echo)
    except LoadError as exc:
        fail(str(exc))
    echo(summary.render())
    changed = sum(item.rows_changed for item in summary.files)
    if changed and not update:
        echo(f"{changed:,} rows differ from what is stored: run `salesmon load --update` to replace them")


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
