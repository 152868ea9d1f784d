"""The Prefect server a salesmon command runs its flows against, when no Prefect API is configured.

Without PREFECT_API_URL, Prefect would start a temporary server inside the command the first time a
flow talks to it: its process imports Prefect's server and boots (6 to 20 s here) on every command.
`start_server()` instead:

- "background" (the default, `SALESMON_PREFECT_SERVER=background`): uses the local server kept
  running between commands under `$SALESMON_HOME/prefect-server/`, like the embedded PostgreSQL, or
  starts it (detached: `orchestration.prefect_daemon`, API only, no UI, no background services).
  Commands running at once share it (the start is under a file lock; a second command waits for the
  same server to answer). A stale state file (a dead or foreign pid) or a server that never answered
  is replaced. The server stops itself after `SALESMON_PREFECT_SERVER_IDLE_MINUTES` (default 30)
  unused, when its salesmon home is removed, or on `salesmon server stop`;
- "temporary" (`SALESMON_PREFECT_SERVER=temporary`): a server of the command's own, started as the
  command begins (so that it boots while the command imports the flow) and stopped at its exit.

Either way this process's Prefect settings point at the server for the rest of the process. With an
API configured, nothing starts.
"""

from __future__ import annotations

import atexit
import fcntl
import json
import os
import socket
import subprocess
import sys
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from orchestration.prefect_daemon import IN_USE_LOCK, LAST_USED_FILE, STATE_FILE

STARTUP_TIMEOUT_SECONDS = 120.0
MODES = ("background", "temporary")
DEFAULT_IDLE_MINUTES = 30.0


class PrefectServerError(RuntimeError):
    """The temporary Prefect server did not start."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class TemporaryServer:
    """The Prefect server this command uses: a process it started (`process`), the background server
    (`pid`, its supervisor's), or nothing (`url` None: an API is configured)."""

    url: str | None = None
    process: subprocess.Popen[str] | None = None
    pid: int | None = None
    log: Path | None = None

    def wait(self, timeout: float = STARTUP_TIMEOUT_SECONDS) -> None:
        """Return once the server answers its health check; raise PrefectServerError if it exits or
        does not answer in time."""
        if self.url is None:
            return
        import httpx

        deadline = time.monotonic() + timeout
        with httpx.Client() as client:
            while time.monotonic() < deadline:
                if self.process is not None and self.process.poll() is not None:
                    error = (self.process.stderr.read() if self.process.stderr else "")[-2000:]
                    raise PrefectServerError(f"the temporary Prefect server exited: {error}")
                if self.pid is not None and not _alive(self.pid):
                    raise PrefectServerError(
                        f"the background Prefect server exited while starting; see {self.log}"
                    )
                with suppress(httpx.HTTPError):
                    if client.get(f"{self.url}/health", timeout=2).status_code == 200:
                        return
                time.sleep(0.1)
        kind = "temporary" if self.process is not None else "background"
        raise PrefectServerError(
            f"the {kind} Prefect server at {self.url} did not answer in {timeout:.0f} s"
            + (f"; see {self.log}, or stop it with `salesmon server stop`" if self.log else "")
        )


def start_server() -> TemporaryServer:
    """Start a temporary Prefect server when no Prefect API is configured, and point this process's
    Prefect settings at it for the rest of the process (Prefect sends its last logs and events at
    exit); it is stopped when this process exits.

    The server's process is started before the caller imports anything heavy: the caller calls
    `wait()` on it just before it runs a flow. With an API configured, nothing starts.
    """
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED

    if PREFECT_API_URL.value() or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
        return TemporaryServer()
    mode = os.environ.get("SALESMON_PREFECT_SERVER", "background")
    if mode not in MODES:
        raise PrefectServerError(f"SALESMON_PREFECT_SERVER must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "background":
        server = background_server()
        _point_at(server.url)
        return server
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    command = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--no-ui", "--no-services"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    # Stopped when this process exits, after Prefect's own exit handlers (registered later, so run
    # earlier) have sent the last logs and events to it.
    atexit.register(_stop, process)
    _point_at(url)
    return TemporaryServer(url, process)


def _point_at(url: str) -> None:
    """Point this process's Prefect at `url` for the rest of the process, in every thread: the
    environment's PREFECT_API_URL, and Prefect's global settings context refreshed from it.

    A settings context entered here (`temporary_settings`) would hold only in this thread. Prefect's
    own threads fall back to the global context: the process pool's forwarder of the workers' logs
    and events then found no API URL, and started a temporary Prefect server of its own in the middle
    of every pooled run (tests/test_prefect_server.py checks that none starts). Spawned workers
    inherit the variable."""
    from prefect.context import refresh_global_settings_context

    os.environ["PREFECT_API_URL"] = url
    refresh_global_settings_context()


def _stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)
    if process.poll() is None:
        process.kill()


# --- the background server ---------------------------------------------------------------------------


def state_dir() -> Path:
    """Where the background server's state lives: `$SALESMON_HOME/prefect-server`."""
    from warehouse.settings import get_settings

    return get_settings().home / "prefect-server"


def _alive(pid: int) -> bool:
    """Whether `pid` is a running supervisor of a background server (not a reused pid)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"orchestration.prefect_daemon" in cmdline


def _wait_for_exec(process: subprocess.Popen[str], timeout: float = 10.0) -> None:
    """Wait until the new supervisor runs its own program: between fork and exec, /proc shows the
    parent's command line, and `_alive` would call it something else."""
    deadline = time.monotonic() + timeout
    while not _alive(process.pid) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)


def read_state(folder: Path) -> dict | None:
    """The background server's state (pid, port, url, started), None when there is none or it is
    stale (its process is gone)."""
    try:
        state = json.loads((folder / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    return state if _alive(int(state.get("pid", 0))) else None


def _healthy(url: str) -> bool:
    import httpx

    with suppress(httpx.HTTPError):
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    return False


# The in-use lock this process holds (shared) while it may talk to the background server.
_IN_USE: list[IO[str]] = []


def background_server(folder: Path | None = None) -> TemporaryServer:
    """The running background server, or a new one (not waited for: call `wait()`); this process
    then holds its in-use lock, so that the server does not stop while the process uses it."""
    folder = folder or state_dir()
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "server.log"
    with (folder / "start.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one starter at a time; the others then find its server
        state = read_state(folder)
        # alive but still not answering long after its start: replaced
        stuck = state is not None and time.time() - state["started"] > STARTUP_TIMEOUT_SECONDS
        if stuck and not _healthy(state["url"]):
            _terminate(int(state["pid"]))
            state = None
        if state is None:
            port = _free_port()
            idle = os.environ.get("SALESMON_PREFECT_SERVER_IDLE_MINUTES", str(DEFAULT_IDLE_MINUTES))
            with log.open("a") as output:
                process = subprocess.Popen(
                    [sys.executable, "-m", "orchestration.prefect_daemon", str(folder), str(port), idle],
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # not stopped with the command's process group
                    close_fds=True,
                )
            _wait_for_exec(process)  # before the lock is released: the next starter must see it alive
            state = {"pid": process.pid, "port": port, "url": f"http://127.0.0.1:{port}/api"}
            state["started"] = time.time()
            temporary = folder / f"{STATE_FILE}.{os.getpid()}"
            temporary.write_text(json.dumps(state))
            temporary.replace(folder / STATE_FILE)
        in_use = (folder / IN_USE_LOCK).open("a")
        fcntl.flock(in_use, fcntl.LOCK_SH)
        _IN_USE.append(in_use)
        (folder / LAST_USED_FILE).touch()
    atexit.register(_touch, folder / LAST_USED_FILE)
    return TemporaryServer(url=state["url"], pid=int(state["pid"]), log=log)


def _touch(path: Path) -> None:
    with suppress(OSError):
        path.touch()


def _terminate(pid: int, timeout: float = 20.0) -> bool:
    """SIGTERM a supervisor (it stops its server) and wait for it; SIGKILL its group if it hangs."""
    with suppress(ProcessLookupError):
        os.kill(pid, 15)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.1)
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, 9)
    return not _alive(pid)


def stop_background_server(folder: Path | None = None) -> dict | None:
    """Stop the background server of this salesmon home; its state, or None when none was running."""
    folder = folder or state_dir()
    if not folder.is_dir():
        return None
    with (folder / "start.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = read_state(folder)
        if state is None:
            return None
        _terminate(int(state["pid"]))
        with suppress(OSError):
            (folder / STATE_FILE).unlink()
    return state
