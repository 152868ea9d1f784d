"""Running dbt against the warehouse the settings name."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from warehouse import dbt_ahead
from warehouse.db import dbt_env, ensure_bootstrapped
from warehouse.locks import advisory_lock

DBT_PROJECT_DIR = Path(__file__).resolve().parent.parent / "dbt_project"
# dbt selections by folder (dbt_project/README.md, "Layers"). The staging views over the tables the
# Python steps write (ml.*, monitoring.*), with those sources and their tests:
PYTHON_STAGING = ["path:models/staging/ml", "path:models/staging/monitoring"]
# The metrics mart: the graded metric values (intermediate/monitoring) and the marts built on them.
METRICS_MART = ["path:models/intermediate/monitoring", "path:models/marts/monitoring"]
# dbt's unit tests check the SQL against fixed inputs, not the data: they run in `make test` (and
# `salesmon dbt build`), not in every production build (as dbt's documentation recommends).
NO_UNIT_TESTS = ["--exclude", "test_type:unit"]
# What the flows' builds leave out: dbt's unit tests check the SQL against fixed inputs, not the data
# (they run in `make test` and `salesmon dbt build`, as dbt's documentation recommends); tests tagged
# full_scan check again, over a whole large table, what a constraint or the SQL itself guarantees
# (a primary key, a unique index, abs() >= 0): seconds each at full history, they run in full builds.
FLOW_EXCLUDE = ["--exclude", "test_type:unit", "tag:full_scan"]


class DbtError(RuntimeError):
    """A dbt command failed; the message holds the tail of its output."""


def _dbt_executable() -> list[str]:
    found = Path(sys.executable).with_name("dbt")
    if found.exists():
        return [str(found)]
    on_path = shutil.which("dbt")
    if on_path:
        return [on_path]
    return [sys.executable, "-c", "from dbt.cli.main import cli; cli()"]


def run_dbt(args: list[str], *, quiet: bool = False, on_line: Callable[[str], None] | None = None) -> str:
    """Run `dbt ARGS` in the dbt project against the configured warehouse; return its output.

    dbt's output is printed as it comes, kept (`quiet`), or handed line by line to `on_line` (a log
    file and a progress bar: `salesmon run`).

    The warehouse is bootstrapped first, so the sources Python writes exist even before the
    first training or monitoring run. Waits while another salesmon dbt run on the same warehouse
    holds its lock. Raises `DbtError` when dbt fails.
    """
    ensure_bootstrapped()
    # One dbt run at a time per warehouse: two builds of the same models would race on their tables
    # (and on the project's target folder); the second waits for the first.
    with advisory_lock("dbt", on_wait=lambda message: print(message, file=sys.stderr, flush=True)):
        return _run_dbt(args, quiet=quiet, on_line=on_line)


def dbt_environment(*, for_log: bool = False) -> dict[str, str]:
    """The environment of a dbt process: this one's, the warehouse's PG* variables, the project's
    profiles folder."""
    env = {**os.environ, **dbt_env(), "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR)}
    env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    if for_log:
        env["DBT_USE_COLORS"] = "false"  # lines for a log file
    return env


def _run_dbt(args: list[str], *, quiet: bool, on_line: Callable[[str], None] | None) -> str:
    env = dbt_environment(for_log=on_line is not None)
    arguments = [*args, "--project-dir", str(DBT_PROJECT_DIR)]
    proc = dbt_ahead.take(arguments, env) or subprocess.Popen(
        [*_dbt_executable(), *arguments],
        env=env,
        cwd=DBT_PROJECT_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        if on_line is not None:
            on_line(line.rstrip("\n"))
        elif not quiet:
            sys.stdout.write(line)
        lines.append(line)
    if proc.wait() != 0:
        raise DbtError(f"dbt {' '.join(args)} failed:\n{''.join(lines)[-4000:]}")
    return "".join(lines)
