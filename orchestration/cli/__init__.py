"""The `salesmon` command line: a thin layer over the pipeline's functions.

`app` is the Typer application, run by `main` (the `salesmon` console script); each module below
adds its commands to it: warehouse_commands (db, data, load, dbt), pipeline_commands (run, train,
score), monitoring_commands (calibrate, monitor, monitor-online, notify), app_commands (serve,
report, ui) and server_commands (server: the background Prefect server).
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
    """The `salesmon` console script: the application, then the process's end without Python's last
    garbage collections (warehouse/gc_freeze.py: 1 to 1.3 s of every command after a flow)."""
    from warehouse import gc_freeze

    try:
        app(prog_name="salesmon")
    finally:
        gc_freeze.at_exit()
