"""The `salesmon` command line: a thin layer over the pipeline's functions.

`app` is the Typer application (the `salesmon` console script); each module below adds its commands
to it: warehouse_commands (db, data, load, dbt), pipeline_commands (run, train, score),
monitoring_commands (calibrate, monitor, monitor-online, notify), app_commands (serve, report, ui)
and server_commands (server: the background Prefect server).
"""

# isort: off
# (`salesmon --help` lists the commands in the order they are added)
from orchestration.cli.base import app
from orchestration.cli import warehouse_commands
from orchestration.cli import pipeline_commands
from orchestration.cli import monitoring_commands
from orchestration.cli import app_commands
from orchestration.cli import server_commands
# isort: on

__all__ = ["app", "main"]
_COMMANDS = (warehouse_commands, pipeline_commands, monitoring_commands, app_commands, server_commands)


def main() -> None:
    try:
        app(prog_name="salesmon")
    finally:
        _skip_the_last_collections()


def _skip_the_last_collections() -> None:
    """The process ends now: its objects are no longer scanned for reference cycles. At exit Python
    collects every generation while it tears the modules down; after a flow (Prefect, pandas,
    scikit-learn, Evidently in memory) that took 1.5 to 2.5 s of every command here. Objects are
    still released by reference count (files flushed and closed, atexit handlers run); only cyclic
    garbage is left to the end of the process."""
    import gc

    gc.disable()
    gc.freeze()
