"""The `salesmon` command line's application, its global options and the helpers its commands share."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, NoReturn

import typer

from orchestration.cli_errors import SalesmonGroup

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


# options several commands take, declared once
ModelVersion = Annotated[
    str | None, typer.Option("--model-version", help="A registered version (default: the champion).")
]
Force = Annotated[bool, typer.Option("--force", help="Recompute days already computed.")]


def fail(message: str) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=1)


def echo(message: str) -> None:
    typer.echo(message)


@app.callback()
def _global_options(
    ctx: typer.Context,
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

    from warehouse.settings import ignored_pghost, settings_from, use_settings

    environ = {**os.environ, "SALESMON_USE_PGHOST": "1"} if use_pghost else os.environ
    if use_pghost:
        # the command's settings; the processes it starts are handed what they need (dbt its
        # profile's variables, each worker the connection string)
        ctx.with_resource(use_settings(settings_from(environ)))
    pghost = ignored_pghost(environ)
    if pghost:
        typer.secho(
            f"note: PGHOST={pghost} is set but not used: salesmon uses its embedded PostgreSQL"
            " (pass --use-pghost or set SALESMON_USE_PGHOST=1 to use that server)",
            err=True,
            dim=True,
        )


def require_warehouse() -> None:
    """Connect (and bootstrap) now: an unreachable warehouse is reported before any slow start-up."""
    from warehouse.db import ensure_bootstrapped

    ensure_bootstrapped()


def parse_date(value: str | None, name: str) -> date | None:
    if value is None:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        fail(f"{name} must be a date as YYYY-MM-DD, got {value!r}")
    return None
