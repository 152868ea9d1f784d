"""How the `salesmon` command line reports a failure: a line or two saying what went wrong and what to
do, and an exit code of 1; the traceback only with `salesmon --debug` or `SALESMON_DEBUG=1`.

`SalesmonGroup` is the command line's click group: every command runs inside its `invoke`, so one
handler covers them all. A warehouse that cannot be reached (`DatabaseUnreachable`, raised by
`warehouse.db.connect` with the server and a hint) and the embedded server failing to start get their
own message; any other unexpected error gets its type and first line.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import click
import typer
from typer.core import TyperGroup

DEBUG_VARIABLE = "SALESMON_DEBUG"


def debug_enabled(ctx: click.Context | None = None) -> bool:
    """Whether tracebacks are wanted: `salesmon --debug ...` or SALESMON_DEBUG=1."""
    if os.environ.get(DEBUG_VARIABLE, "").strip().lower() in ("1", "true", "yes", "on"):
        return True
    while ctx is not None:
        if ctx.params.get("debug"):
            return True
        ctx = ctx.parent
    return False


def describe(exc: BaseException) -> str:
    """The message for an error a command did not handle itself (at most a few lines)."""
    import psycopg

    from warehouse.embedded import EmbeddedServerError
    from warehouse.errors import DatabaseUnreachable, unreachable
    from warehouse.settings import get_settings

    if isinstance(exc, DatabaseUnreachable):
        return str(exc)
    if isinstance(exc, psycopg.OperationalError):  # the connection broke after it was made
        return str(unreachable(_configured_conninfo(), exc, embedded=get_settings().embedded))
    if isinstance(exc, EmbeddedServerError):
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "it did not start"
        return f"{first}\nsee the server log in $SALESMON_HOME/pgdata/server.log, or `salesmon --debug ...`"
    text = str(exc).strip()
    lines = text.splitlines()
    first = lines[0] if lines else ""
    more = " ..." if len(lines) > 1 else ""
    return (
        f"{type(exc).__name__}: {first[:500]}{more}\n"
        f"run again with --debug (salesmon --debug ...) or {DEBUG_VARIABLE}=1 for the traceback"
    )


def _configured_conninfo() -> str:
    """The warehouse's connection string as configured (the embedded server is not started for it)."""
    from warehouse import embedded
    from warehouse.settings import get_settings

    settings = get_settings()
    return settings.database_url or embedded.conninfo(settings)


def fail(exc: BaseException) -> None:
    """Print `describe(exc)` on stderr in red and exit 1."""
    message = describe(exc).splitlines()
    typer.secho(f"error: {message[0]}", fg=typer.colors.RED, err=True)
    for line in message[1:]:
        typer.secho(f"  {line}", err=True)
    raise typer.Exit(code=1)


class SalesmonGroup(TyperGroup):
    """The `salesmon` group: runs the chosen command, and turns an error it did not handle into
    `fail(exc)` unless debugging."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except Exception as exc:
            if debug_enabled(ctx):
                raise
            fail(exc)


class _NoTracebacks(logging.Filter):
    """Log records keep their message and lose their traceback (Prefect logs a failed task's)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info:
            exc = record.exc_info[1]
            if exc is not None:
                first = (str(exc).strip().splitlines() or [""])[0]
                record.msg = f"{record.getMessage()} ({type(exc).__name__}: {first})"
                record.args = ()
            record.exc_info = None
            record.exc_text = None
        return True


def quiet_prefect_tracebacks(ctx: click.Context | None = None) -> None:
    """Unless debugging, drop the tracebacks from what Prefect's console handler prints (the task's
    failure stays one line; the command prints the outcome itself)."""
    if debug_enabled(ctx):
        return
    from prefect.logging.configuration import setup_logging
    from prefect.logging.handlers import PrefectConsoleHandler

    setup_logging()
    for handler in logging.getLogger().handlers:
        if isinstance(handler, PrefectConsoleHandler) and not any(
            isinstance(existing, _NoTracebacks) for existing in handler.filters
        ):
            handler.addFilter(_NoTracebacks())
