"""`salesmon server`: the local Prefect server salesmon keeps running between commands
(orchestration/prefect_server.py)."""

from __future__ import annotations

import typer

from orchestration.cli.base import app

server_app = typer.Typer(
    no_args_is_help=True,
    help="The local Prefect server kept running between commands (when no PREFECT_API_URL is set).",
)
app.add_typer(server_app, name="server")


@server_app.command("stop")
def server_stop() -> None:
    """Stop the background Prefect server of this salesmon home (the next command starts it again)."""
    from orchestration.prefect_server import stop_background_server

    state = stop_background_server()
    typer.echo(f"stopped the Prefect server at {state['url']}" if state else "not running")


@server_app.command("status")
def server_status() -> None:
    """Say whether the background Prefect server runs, and where."""
    from orchestration.prefect_server import read_state, state_dir

    state = read_state(state_dir())
    if state is None:
        typer.echo("not running (the next salesmon command that runs a flow starts it)")
        return
    typer.echo(f"Prefect server at {state['url']} (pid {state['pid']}); log {state_dir() / 'server.log'}")
