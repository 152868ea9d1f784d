"""The Evidently local workspace under `$SALESMON_HOME/evidently`: one project, "salesmon".

Every computed slice adds its snapshot (a JSON file) to the project, so `salesmon ui` (Evidently's UI)
shows the history; recomputing a slice replaces its previous snapshot. The project is created once,
under a file lock, with a small dashboard (prediction and promotion drift, rows, missing values).
A snapshot is light (about 110 kB, 25 ms to write) unless the run draws HTML reports, whose snapshots
carry every plot (about 1.1 MB).
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from functools import lru_cache
from pathlib import Path
from typing import Any

from warehouse.settings import get_settings

PROJECT_NAME = "salesmon"


def workspace_path() -> Path:
    """Where the Evidently workspace lives: `$SALESMON_HOME/evidently`."""
    return get_settings().home / "evidently"


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.mkdir(parents=True, exist_ok=True)
    with open(path / ".salesmon.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@lru_cache(maxsize=4)
def _workspace(path: str) -> Any:
    from evidently.ui.workspace import Workspace

    return Workspace.create(path)


def _add_dashboard(project: Any) -> None:
    from evidently.sdk.models import PanelMetric
    from evidently.sdk.panels import line_plot_panel, text_panel

    dashboard = project.dashboard
    dashboard.add_panel(text_panel(title="salesmon: daily batch monitoring of the sales forecast"))
    dashboard.add_panel(
        line_plot_panel(
            title="Rows per slice",
            size="half",
            values=[PanelMetric(legend="rows", metric="evidently:metric_v2:RowCount")],
        )
    )
    dashboard.add_panel(
        line_plot_panel(
            title="Missing values (share)",
            size="half",
            values=[
                PanelMetric(
                    legend=column,
                    metric="evidently:metric_v2:MissingValueCount",
                    metric_labels={"column": column, "value_type": "share"},
                )
                for column in ("onpromotion", "transactions_lag_1")
            ],
        )
    )
    dashboard.add_panel(
        line_plot_panel(
            title="Drift of log1p(prediction), log1p(onpromotion): normed Wasserstein to the same weekdays",
            values=[
                PanelMetric(
                    legend="prediction",
                    metric="evidently:metric_v2:ValueDrift",
                    metric_labels={"column": "prediction__log1p"},
                ),
                PanelMetric(
                    legend="onpromotion",
                    metric="evidently:metric_v2:ValueDrift",
                    metric_labels={"column": "onpromotion__log1p"},
                ),
            ],
        )
    )


@lru_cache(maxsize=4)
def ensure_project(path: str | None = None) -> str:
    """The id of the "salesmon" project in the workspace, created (with its dashboard) if missing."""
    root = Path(path) if path else workspace_path()
    with _locked(root):
        workspace = _workspace(str(root))
        found = workspace.search_project(PROJECT_NAME)
        if found:
            return str(found[0].id)
        project = workspace.create_project(PROJECT_NAME, description="Daily slices of the sales forecast")
        _add_dashboard(project)
        return str(project.id)


def add_snapshot(snapshot: Any, path: str | None = None) -> str:
    """Add a slice's snapshot to the project; return its snapshot id."""
    root = str(path or workspace_path())
    project_id = ensure_project(root)
    return str(_workspace(root).add_run(project_id, snapshot).id)


def delete_snapshots(snapshot_ids: Iterable[str], path: str | None = None) -> None:
    """Remove replaced snapshots from the project (missing ones are ignored)."""
    ids = [snapshot_id for snapshot_id in snapshot_ids if snapshot_id]
    if not ids:
        return
    root = str(path or workspace_path())
    project_id = ensure_project(root)
    workspace = _workspace(root)
    for snapshot_id in ids:
        with suppress(FileNotFoundError, OSError):
            workspace.delete_run(project_id, snapshot_id)
