"""Quiet output for `salesmon run`: one line per step, a progress bar while a long step runs, and
everything else (dbt's and Prefect's logs, the steps' own messages) in a log file under
$SALESMON_HOME/logs/. `verbose` prints the log's lines as well.

Prefect's logs reach the file through its own logging configuration (`PREFECT_LOGGING_SETTINGS_PATH`,
set before Prefect is imported, so the task runner's worker processes log there too): its console
handler is replaced by a file handler.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

# dbt's per-node lines: "12 of 262 START sql table model ..." / "12 of 262 OK created ..."
_DBT_NODE = re.compile(r"\b(\d+) of (\d+) (OK|PASS|ERROR|FAIL|WARN|SKIP|SUCCESS|NO-OP)\b")
# the scoring's per-month lines: "[3/18] 2017-05-01 .. 2017-05-31: ..."
_CHUNK = re.compile(r"^\[(\d+)/(\d+)\]")


class StepFailed(RuntimeError):
    """A step failed; the message names the step and the log file."""


class Step:
    """A running step: its progress bar, its closing line and its log."""

    def __init__(self, output: RunOutput, name: str, progress: Progress | None) -> None:
        self.output = output
        self.name = name
        self.result = ""
        self._progress = progress
        self._task = progress.add_task(name, total=None) if progress is not None else None

    def update(self, completed: float, total: float | None) -> None:
        """Move the bar: `completed` of `total` (None: a spinner)."""
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, completed=completed, total=total)

    def log(self, message: str) -> None:
        """A line for the log file (printed with --verbose); moves the bar when it is a dbt node's
        line or a scoring chunk's."""
        self.output.log(message)
        match = _DBT_NODE.search(message)
        if match:
            self.update(int(match.group(1)), int(match.group(2)))
            return
        match = _CHUNK.match(message)
        if match:
            self.update(int(match.group(1)), int(match.group(2)))


class RunOutput:
    """The log file of one `salesmon run` and its console."""

    def __init__(self, home: Path, verbose: bool = False) -> None:
        self.verbose = verbose
        logs = home / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self.path = logs / f"run-{datetime.now():%Y%m%d-%H%M%S}.log"
        self._file = self.path.open("a", encoding="utf-8", buffering=1)
        self.console = Console(highlight=False, soft_wrap=True)
        self.lines = 0

    def log(self, message: str) -> None:
        """Write a line to the log file (and print it with --verbose)."""
        self._file.write(f"{datetime.now():%H:%M:%S} {message}\n")
        if self.verbose:
            self.console.print(message, markup=False, style="dim")

    def say(self, message: str = "", style: str | None = None) -> None:
        """Print a line of the run's own output (and log it)."""
        self._file.write(f"{datetime.now():%H:%M:%S} {message}\n")
        self.console.print(message, markup=False, style=style)

    @contextmanager
    def step(self, name: str, bar: bool = True) -> Iterator[Step]:
        """Run a step: a progress bar while it runs (on a terminal, unless verbose), then one line
        with its result and time. A failure prints the step, the error and the log file's path."""
        progress = None
        if bar and not self.verbose and self.console.is_terminal:
            progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description:<10}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            progress.start()
        step = Step(self, name, progress)
        self.log(f"--- {name}")
        began = time.monotonic()
        try:
            yield step
        except BaseException as exc:
            if progress is not None:
                progress.stop()
            self.say(f"✗ {name:<10} failed after {time.monotonic() - began:.0f} s", style="bold red")
            self.log(f"{type(exc).__name__}: {exc}")
            raise
        if progress is not None:
            progress.stop()
        self.say(f"✓ {name:<10} {step.result}  ({time.monotonic() - began:.0f} s)".rstrip())

    def prefect_logging(self) -> None:
        """Send Prefect's console logs to the log file (for this process and the worker processes it
        starts), unless verbose. Call before Prefect is imported."""
        if self.verbose:
            return
        import yaml

        import_path = Path(_prefect_package()) / "logging" / "logging.yml"
        config: dict[str, Any] = yaml.safe_load(import_path.read_text())
        for name in ("console", "debug"):
            config["handlers"][name] = {
                "level": 0,
                "class": "logging.FileHandler",
                "formatter": "standard" if name == "console" else "debug",
                "filename": str(self.path),
                "encoding": "utf-8",
            }
        settings = self.path.with_suffix(".prefect-logging.yml")
        settings.write_text(yaml.safe_dump(config))
        os.environ["PREFECT_LOGGING_SETTINGS_PATH"] = str(settings)
        # Python's warnings (scikit-learn's, Evidently's) go to the log too
        logging.captureWarnings(True)
        handler = logging.FileHandler(self.path, encoding="utf-8")
        logging.getLogger("py.warnings").addHandler(handler)
        logging.getLogger("py.warnings").propagate = False

    def close(self) -> None:
        self._file.close()


def _prefect_package() -> str:
    """Prefect's package folder, found without importing Prefect (its import reads the settings)."""
    import importlib.util

    spec = importlib.util.find_spec("prefect")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("prefect is not installed")
    return list(spec.submodule_search_locations)[0]
