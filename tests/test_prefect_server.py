"""The background Prefect server (orchestration/prefect_server.py, prefect_daemon.py): one server per
salesmon home, shared by commands started at once, reused while alive, replaced when its state is
stale or its server crashed, stopped by `stop_background_server`, when idle and unused, and when its
home is removed. Every server started here is stopped here."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from orchestration import prefect_server
from orchestration.prefect_server import background_server, read_state, stop_background_server
from tests._fixtures import run_flow_script

START = (
    "import sys; from pathlib import Path; from orchestration.prefect_server import background_server;"
    " server = background_server(Path(sys.argv[1])); server.wait(); print(server.url, server.pid)"
)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _gone(pid: int, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists() or b"zombie" in _status(pid):
            return True
        time.sleep(0.2)
    return False


def _status(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/status").read_bytes().lower()
    except OSError:
        return b"zombie"


def _children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(child) for child in found]


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "prefect-server"
    try:
        yield folder
    finally:
        stop_background_server(folder)
        for handle in prefect_server._IN_USE:  # this process's in-use locks
            handle.close()
        prefect_server._IN_USE.clear()


def test_commands_at_once_share_one_server_that_is_reused_then_stopped(folder: Path) -> None:
    starters = [
        subprocess.Popen([sys.executable, "-c", START, str(folder)], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    answers = {starter.communicate(timeout=180)[0].strip() for starter in starters}
    assert len(answers) == 1 and all(starter.returncode == 0 for starter in starters)
    url, pid = answers.pop().split()
    assert _healthy(url)
    again = background_server(folder)  # alive: reused, not started again
    assert (again.url, again.pid) == (url, int(pid))
    assert stop_background_server(folder)["pid"] == int(pid)
    assert _gone(int(pid)) and not _healthy(url) and read_state(folder) is None
    assert stop_background_server(folder) is None  # nothing left to stop


def test_a_stale_state_or_a_crashed_server_is_replaced(folder: Path) -> None:
    folder.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    state = {"pid": dead.pid, "port": 1, "url": "http://127.0.0.1:1/api", "started": time.time()}
    (folder / "server.json").write_text(json.dumps(state))
    first = background_server(folder)
    assert first.pid != dead.pid
    first.wait()
    assert _healthy(first.url)
    # the Prefect server itself dies: its supervisor stops and clears the state; the next use starts anew
    (server,) = _children(first.pid)
    os.kill(server, signal.SIGKILL)
    assert _gone(first.pid) and read_state(folder) is None
    second = background_server(folder)
    second.wait()
    assert second.pid != first.pid and _healthy(second.url)


def test_the_server_stops_when_idle_and_unused_or_when_its_home_is_removed(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SALESMON_PREFECT_SERVER_IDLE_MINUTES", "0.05")  # 3 s
    server = background_server(folder)
    server.wait()
    time.sleep(8)
    assert _healthy(server.url)  # idle, but this process still holds its in-use lock
    for handle in prefect_server._IN_USE:
        handle.close()
    prefect_server._IN_USE.clear()
    assert _gone(server.pid) and not _healthy(server.url)

    monkeypatch.setenv("SALESMON_PREFECT_SERVER_IDLE_MINUTES", "30")
    server = background_server(folder)
    server.wait()
    shutil.rmtree(folder)
    assert _gone(server.pid) and not _healthy(server.url)


POOLED_FLOW = """
from orchestration.prefect_server import start_server
from prefect import flow, task
from prefect.task_runners import ProcessPoolTaskRunner


@task
def double(x):
    return 2 * x


@flow(task_runner=ProcessPoolTaskRunner(max_workers=1))
def pooled():
    return [future.result() for future in double.map([1, 2, 3])]


if __name__ == "__main__":
    start_server().wait()
    print("result", pooled())
"""


def test_a_pooled_flow_uses_the_started_server_and_starts_no_other(tmp_path: Path) -> None:
    """Prefect's process pool forwards its workers' events and logs from a thread of its own, which
    does not see a settings context entered in the main thread: before the fix, it found no API URL
    and started a temporary Prefect server of its own in the middle of every pooled run."""
    done = run_flow_script(tmp_path, POOLED_FLOW, timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "result [2, 4, 6]" in done.stdout
    assert "Starting temporary server" not in output, output[-3000:]
