"""The Evidently local workspace under `$SALESMON_HOME/evidently`: one project, "salesmon".

Every computed slice adds its snapshot (a JSON file) to the project, so `salesmon ui` (Evidently's UI)
shows the history; recomputing a slice replaces its previous snapshot. The project is created once,
with the dashboard of monitoring/dashboard.py (the marts' main series), which replaces an older
project's dashboard when it differs. A snapshot is light (about 115 kB, 15 ms to write, flushed to
disk) unless the run draws HTML reports, whose snapshots carry every plot (about 1.1 MB).

Safe under parallel workers (processes and threads), with the workspace kept as files:

- **One writer at a time.** Every operation (find or create the project, add, delete or list
  snapshots) runs under an exclusive `flock` on `<workspace>/.salesmon.lock`, opened anew by every
  call, so it excludes other processes and the other threads of this process alike.
- **No stale view.** Nothing about the workspace is kept in memory between calls: each call finds
  the project and its files on disk, under the lock. (Evidently's `Workspace` object reads every
  snapshot of the workspace when it is built and keeps them: that read, racing another worker's
  write or delete, was the `JSONDecodeError` / `FileNotFoundError` of issue #8. Workers no longer
  build one.)
- **Atomic files.** Evidently writes its files in place. Here every file is written to a temporary
  file in `<workspace>-incoming/` (beside the workspace, on the same file system), flushed to disk,
  then renamed over its final name: a reader (the UI, or any process) sees a whole file or none,
  and a writer killed mid-write leaves only a stray temporary file, cleared by the next writer. The
  temporary folder is outside the workspace so that Evidently UI's file watcher sees the rename as
  a new snapshot (a rename inside the watched folder would be ignored by it).
- **Creation by rename.** The project (metadata and dashboard) is built with Evidently's public
  API in a private folder, then renamed into the workspace: it appears complete or not at all.

Evidently's own code writes and lays out the files (`evidently.ui.storage.local.base.LocalState`,
the class its `Workspace` uses), with one internal swapped: its file access, whose writes are made
atomic here. tests/test_workspace.py checks the result with Evidently's public `Workspace` and with
the loader the UI runs. The lock is advisory: it protects salesmon's writers from each other, and
the atomic files protect any reader. On a cluster, keep the workspace on a file system where
`flock` works across machines, or monitor with `--no-workspace`.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from warehouse.settings import get_settings

PROJECT_NAME = "salesmon"
LOCK_FILE = ".salesmon.lock"
_PART_SUFFIX = ".part"


def workspace_path() -> Path:
    """Where the Evidently workspace lives: `$SALESMON_HOME/evidently`."""
    return get_settings().home / "evidently"


def incoming_path(root: Path) -> Path:
    """Where files are written before they are renamed into the workspace: `<workspace>-incoming`."""
    return root.parent / f"{root.name}-incoming"


def _root(path: str | Path | None) -> Path:
    return Path(path) if path else workspace_path()


@contextmanager
def _locked(root: Path) -> Iterator[None]:
    """Hold the workspace's exclusive lock (a new open file each time: threads exclude each other too).

    Under the lock nobody else writes, so any temporary file left in the incoming folder is a dead
    writer's: it is removed.
    """
    root.mkdir(parents=True, exist_ok=True)
    incoming = incoming_path(root)
    incoming.mkdir(parents=True, exist_ok=True)
    with open(root / LOCK_FILE, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            for leftover in incoming.iterdir():
                if leftover.is_dir():
                    shutil.rmtree(leftover, ignore_errors=True)
                else:
                    leftover.unlink(missing_ok=True)
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class _AtomicFiles:
    """Evidently's file access (an `FSLocation`) with its writes made atomic: a write goes to a
    temporary file in the incoming folder, is flushed to disk, and is renamed over its final name
    when the writer closes it without an error. Reads and everything else go to Evidently's."""

    def __init__(self, location: Any, incoming: Path) -> None:
        self._location = location
        self._incoming = incoming

    def __getattr__(self, name: str) -> Any:
        return getattr(self._location, name)

    @contextmanager
    def open(self, path: str, mode: str = "r") -> Iterator[IO[Any]]:
        if not any(flag in mode for flag in "wax+"):
            with self._location.open(path, mode) as file:
                yield file
            return
        final = os.path.join(self._location.path, path)
        descriptor, temporary = tempfile.mkstemp(dir=self._incoming, suffix=_PART_SUFFIX)
        try:
            with os.fdopen(descriptor, "wb" if "b" in mode else "w") as file:
                yield file
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, final)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


def _state(root: Path) -> Any:
    """Evidently's local workspace files (the `LocalState` its `Workspace` uses), written atomically."""
    from evidently.ui.storage.local.base import LocalState

    state = LocalState(str(root))
    state.location = _AtomicFiles(state.location, incoming_path(root))
    return state


def _find_project(state: Any) -> str | None:
    """The id of the "salesmon" project on disk (the first by id if there were several), or None."""
    for project_id in sorted(str(project_id) for project_id in state.list_projects()):
        try:
            project = state.read_project(project_id)
        except (OSError, ValueError):  # a folder without readable metadata is not a project
            continue
        if project.name == PROJECT_NAME:
            return project_id
    return None


def _refresh_dashboard(state: Any, project_id: str) -> None:
    """Give an existing project the current dashboard (monitoring/dashboard.py) when its own differs,
    e.g. a workspace made by an older salesmon. Called under the lock; the file is written atomically."""
    from monitoring.dashboard import dashboard_layout, dashboard_model

    wanted = dashboard_model()
    if dashboard_layout(state.read_dashboard(project_id)) != dashboard_layout(wanted):
        state.write_dashboard(project_id, wanted)


def _create_project(root: Path) -> str:
    """Build the project with its dashboard in a private folder (Evidently's public API), then rename
    it into the workspace. Called under the lock."""
    from evidently.ui.workspace import Workspace

    from monitoring.dashboard import dashboard_model

    staging = Path(tempfile.mkdtemp(dir=incoming_path(root)))
    try:
        workspace = Workspace.create(str(staging))
        project = workspace.create_project(PROJECT_NAME, description="Daily slices of the sales forecast")
        workspace.save_dashboard(project.id, dashboard_model())
        project_id = str(project.id)
        os.replace(staging / project_id, root / project_id)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return project_id


def _project(root: Path, state: Any) -> str:
    """The project's id, the project created if missing, its dashboard brought up to date. Called
    under the lock."""
    project_id = _find_project(state)
    if project_id is None:
        return _create_project(root)
    _refresh_dashboard(state, project_id)
    return project_id


def ensure_project(path: str | Path | None = None) -> str:
    """The id of the "salesmon" project in the workspace, created (with its dashboard) if missing."""
    root = _root(path)
    with _locked(root):
        return _project(root, _state(root))


def add_snapshot(snapshot: Any, path: str | Path | None = None, *, values: Iterable[Any] = ()) -> str:
    """Add a slice's snapshot to the project, with the slice's model-level metric values (MetricValue)
    that the dashboard reads besides Evidently's own results; return its snapshot id."""
    from monitoring.dashboard import salesmon_results

    root = _root(path)
    model = snapshot.to_snapshot_model()
    added = salesmon_results(values)
    if added:
        model.metric_results.update(added)
    snapshot_id = str(uuid.uuid4())
    with _locked(root):
        state = _state(root)
        state.write_snapshot(_project(root, state), snapshot_id, model)
    return snapshot_id


def delete_snapshots(snapshot_ids: Iterable[str], path: str | Path | None = None) -> None:
    """Remove replaced snapshots from the project (missing ones are ignored)."""
    ids = [snapshot_id for snapshot_id in snapshot_ids if snapshot_id]
    if not ids:
        return
    root = _root(path)
    with _locked(root):
        state = _state(root)
        project_id = _find_project(state)
        if project_id is None:
            return
        for snapshot_id in ids:
            try:
                state.delete_snapshot(project_id, snapshot_id)
            except FileNotFoundError:
                continue


def snapshot_ids(path: str | Path | None = None) -> set[str]:
    """The ids of the project's snapshots (empty when there is no project yet)."""
    root = _root(path)
    with _locked(root):
        state = _state(root)
        project_id = _find_project(state)
        return {str(snapshot_id) for snapshot_id in state.list_snapshots(project_id)} if project_id else set()


# An unreferenced snapshot younger than this may be a live run's, about to be recorded.
ORPHAN_GRACE_SECONDS = 3600.0


def save_html(snapshot: Any, path: str | Path) -> None:
    """Write a snapshot's HTML report atomically: to a temporary file beside it, then renamed (a run
    killed mid-write leaves only the temporary file, which `remove_orphans` removes)."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    temporary = final.with_name(f".{final.name}.{uuid.uuid4().hex}{_PART_SUFFIX}")
    try:
        snapshot.save_html(str(temporary))
        os.replace(temporary, final)
    finally:
        temporary.unlink(missing_ok=True)


def _unreferenced_files(root: Path, referenced: set[str]) -> bool:
    """Whether any snapshot file in the workspace is not in `referenced`: a look at the file names
    (Evidently's `<project>/snapshots/<id>.json`) that spares the usual run, with nothing to remove,
    Evidently's import (3 to 4 s). Any file found sends `remove_orphans` through Evidently's own
    listing; tests/test_concurrency.py checks that a killed run's snapshot is found and removed."""
    return any(file.stem not in referenced for file in root.glob("*/snapshots/*.json"))


def remove_orphans(
    referenced: set[str],
    *,
    html_dir: str | Path | None = None,
    all_unreferenced: bool = False,
    path: str | Path | None = None,
) -> int:
    """Remove what killed runs left: the project's snapshots that no monitoring.runs row points to
    (`referenced`), and half-written HTML reports in `html_dir`. Returns how many files went.

    An unreferenced snapshot younger than ORPHAN_GRACE_SECONDS is kept unless `all_unreferenced`
    (the caller knows that no other run is live): it may be a live run's, not recorded yet.
    """
    removed = 0
    if html_dir and Path(html_dir).is_dir():
        for leftover in Path(html_dir).glob(f".*.html.*{_PART_SUFFIX}"):
            leftover.unlink(missing_ok=True)
            removed += 1
    root = _root(path)
    if not root.exists() or not _unreferenced_files(root, referenced):
        return removed
    cutoff = time.time() - ORPHAN_GRACE_SECONDS
    with _locked(root):
        state = _state(root)
        project_id = _find_project(state)
        if project_id is None:
            return removed
        for snapshot_id in sorted(str(snapshot_id) for snapshot_id in state.list_snapshots(project_id)):
            if snapshot_id in referenced:
                continue
            files = list((root / project_id).rglob(f"{snapshot_id}*"))
            if not all_unreferenced and any(file.stat().st_mtime > cutoff for file in files):
                continue
            try:
                state.delete_snapshot(project_id, snapshot_id)
            except FileNotFoundError:
                continue
            removed += 1
    return removed
