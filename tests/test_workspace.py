"""The Evidently workspace under parallel writers: processes and threads adding and deleting snapshots
at once lose nothing, corrupt nothing, and leave exactly the expected snapshots (issue #8, point 4).

Real Evidently snapshots, real files; the checks read the workspace back with Evidently's public
`Workspace` and with the loader its UI runs (`evidently ui`), and a reader that, like the UI, takes
no lock parses every snapshot file while the writers work.
"""

from __future__ import annotations

import json
import multiprocessing
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from monitoring import workspace
from monitoring.dashboard import dashboard_layout, dashboard_model, dashboard_panels

PROCESSES = 3
THREADS = 2
ADDS_PER_THREAD = 6
OLD_SNAPSHOTS = 12


def _snapshot(seed: int) -> Any:
    """A real Evidently snapshot of about 200 kB (drift of three columns, with its plots)."""
    import numpy as np
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    rng = np.random.default_rng(seed)
    columns = ["x", "y", "z"]
    definition = DataDefinition(numerical_columns=columns)
    current = pd.DataFrame(rng.random((200, 3)), columns=columns)
    reference = pd.DataFrame(rng.random((200, 3)) * 1.1, columns=columns)
    return Report([DataDriftPreset()], metadata={"seed": str(seed)}, tags=["test"]).run(
        Dataset.from_pandas(current, data_definition=definition),
        Dataset.from_pandas(reference, data_definition=definition),
    )


def _wait_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.time()))


def _create_project(root: str, start_at: float) -> str:
    """A worker: find or create the project, all at the same moment."""
    _wait_until(start_at)
    return workspace.ensure_project(root)


def _writer(root: str, snapshot: Any, doomed: list[str], start_at: float) -> tuple[list[str], list[str]]:
    """A worker process: THREADS threads, each adding snapshots and deleting, between two adds, one
    snapshot it added before and one old snapshot (each old one is also deleted by another worker).
    Returns the ids it added and the ids it deleted."""
    added: list[str] = []
    deleted: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def thread(index: int) -> None:
        mine: list[str] = []
        old = doomed[index::THREADS]
        try:
            for step in range(ADDS_PER_THREAD):
                mine.append(workspace.add_snapshot(snapshot, root))
                gone = [mine.pop(0)] if step % 2 else []
                if step < len(old):
                    gone.append(old[step])
                workspace.delete_snapshots(gone, root)
                with lock:
                    deleted.extend(gone)
            with lock:
                added.extend(mine)
        except BaseException as exc:
            errors.append(exc)

    _wait_until(start_at)
    threads = [threading.Thread(target=thread, args=(index,)) for index in range(THREADS)]
    for running in threads:
        running.start()
    for running in threads:
        running.join()
    if errors:
        raise errors[0]
    return added, deleted


def _reader(root: str, stop_file: str) -> tuple[int, list[str]]:
    """A worker process reading like Evidently's UI (no lock): every listed snapshot file, parsed,
    until the writers are done. A file deleted between the listing and the read is fine; a file
    that does not parse is not. Returns how many files it parsed and the corrupt ones it saw."""
    parsed, corrupt = 0, []
    deadline = time.time() + 120
    while not Path(stop_file).exists() and time.time() < deadline:
        for path in Path(root).glob("*/snapshots/*.json"):
            try:
                json.loads(path.read_text())
                parsed += 1
            except FileNotFoundError:
                continue
            except ValueError as exc:
                corrupt.append(f"{path.name}: {exc}")
    return parsed, corrupt


def test_parallel_writers_lose_and_corrupt_nothing(tmp_path: Path) -> None:
    from evidently.ui.service.storage.local import create_local_project_manager
    from evidently.ui.workspace import Workspace

    root = tmp_path / "evidently"
    # built once here (the first report imports much of Evidently), pickled to the workers
    snapshot = _snapshot(0)
    # spawned, as the workers of Prefect's ProcessPoolTaskRunner are
    with ProcessPoolExecutor(PROCESSES + 1, mp_context=multiprocessing.get_context("spawn")) as pool:
        # Every worker finds or creates the project at the same moment: there is one project.
        start_at = time.time() + 0.5
        created = [pool.submit(_create_project, str(root), start_at) for _ in range(PROCESSES + 1)]
        project_ids = {future.result() for future in created}
        assert len(project_ids) == 1

        # An earlier run's snapshots, which the writers replace while they add their own.
        old = [workspace.add_snapshot(snapshot, root) for _ in range(OLD_SNAPSHOTS)]
        per_worker = OLD_SNAPSHOTS // PROCESSES
        stop_file = tmp_path / "stop"
        reader = pool.submit(_reader, str(root), str(stop_file))
        start_at = time.time() + 0.5
        writers = []
        for worker in range(PROCESSES):
            # each old snapshot is deleted by two workers: double deletes are harmless
            doomed = [old[(worker * per_worker + offset) % OLD_SNAPSHOTS] for offset in range(2 * per_worker)]
            writers.append(pool.submit(_writer, str(root), snapshot, doomed, start_at))
        results = [future.result() for future in writers]
        stop_file.touch()
        parsed, corrupt = reader.result()

    added = {snapshot_id for ids, _ in results for snapshot_id in ids}
    deleted = {snapshot_id for _, ids in results for snapshot_id in ids}
    expected = (set(old) | added) - deleted
    assert set(old) <= deleted  # every old snapshot was replaced
    assert len(added) == PROCESSES * THREADS * (ADDS_PER_THREAD - ADDS_PER_THREAD // 2)
    assert not corrupt, corrupt[:3]
    assert parsed > 0
    assert workspace.snapshot_ids(root) == expected

    # Evidently's public API sees the same project and snapshots, and parses every one.
    evidently = Workspace.create(str(root))
    projects = evidently.search_project(workspace.PROJECT_NAME)
    assert [str(project.id) for project in projects] == list(project_ids)
    assert {str(snapshot_id) for snapshot_id in evidently.list_runs(projects[0].id)} == expected
    for snapshot_id in expected:
        assert evidently.get_run(projects[0].id, snapshot_id).tags == ["test"]
    assert len(projects[0].dashboard.model().panels) == len(dashboard_panels())

    # So does the loader of `evidently ui` (it stops at the first file it cannot parse).
    manager = create_local_project_manager(str(root), autorefresh=False)
    state = manager.project_metadata.state
    assert {str(snapshot_id) for snapshot_id in state.snapshots[projects[0].id]} == expected
    assert not list(workspace.incoming_path(root).iterdir())  # no temporary file left behind


def test_a_writer_that_dies_mid_write_leaves_no_partial_snapshot(tmp_path: Path) -> None:
    """A write that fails half way leaves neither a partial snapshot nor, after the next write, its
    temporary file; the project keeps exactly its complete snapshots."""
    root = tmp_path / "evidently"
    snapshot = _snapshot(1)
    kept = workspace.add_snapshot(snapshot, root)

    class Unserialisable:
        pass

    class HalfWritten:
        """A snapshot whose serialisation fails at its end, after most of the file was written."""

        def to_snapshot_model(self) -> Any:
            whole = snapshot.to_snapshot_model().dict()

            class Model:
                def dict(self) -> dict:
                    return {**whole, "last": Unserialisable()}

            return Model()

    with pytest.raises(TypeError, match="not JSON serializable"):
        workspace.add_snapshot(HalfWritten(), root)
    (workspace.incoming_path(root) / "stale.part").write_text('{"half": ')  # a killed writer's file
    assert workspace.snapshot_ids(root) == {kept}
    assert not list(workspace.incoming_path(root).iterdir())
    project = workspace.ensure_project(root)
    files = list((root / project / "snapshots").iterdir())
    assert [path.name for path in files] == [f"{kept}.json"]
    json.loads(files[0].read_text())


def test_an_older_projects_dashboard_is_replaced_once(tmp_path: Path) -> None:
    """A project made by an older salesmon (another dashboard) gets the current one on the next
    write; a project that has it is left alone (its file not rewritten)."""
    from evidently.sdk.models import DashboardModel
    from evidently.sdk.panels import text_panel
    from evidently.ui.workspace import Workspace

    root = tmp_path / "evidently"
    project_id = workspace.ensure_project(root)
    evidently = Workspace.create(str(root))
    assert dashboard_layout(evidently.get_project(project_id).dashboard.model()) == dashboard_layout(
        dashboard_model()
    )
    old = text_panel(title="an older dashboard")
    evidently.save_dashboard(project_id, DashboardModel(tabs=[], panels=[old]))
    assert [panel.title for panel in evidently.get_project(project_id).dashboard.model().panels] == [
        old.title
    ]

    workspace.add_snapshot(_snapshot(2), root)
    current = evidently.get_project(project_id).dashboard.model()
    assert dashboard_layout(current) == dashboard_layout(dashboard_model())
    assert len(dashboard_layout(current)) == len(dashboard_panels())
    written = (root / project_id / "dashboard.json").stat().st_mtime_ns
    workspace.ensure_project(root)
    assert (root / project_id / "dashboard.json").stat().st_mtime_ns == written
