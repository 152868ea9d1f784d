"""Prefect's temporary server, started at the beginning of a command rather than on the flow's first call.

Without a configured Prefect API (PREFECT_API_URL), Prefect starts a temporary server the first time
a flow talks to it: after the command imported the flow, Prefect and Evidently, and only then does
the server's own process import Prefect's server and boot (10 to 20 s here). `start_server()`
starts that same server (`prefect server start`, API only: no UI, no background services) as soon as
the command knows it needs one, so that the two boot side by side on two cores, and points this
process's Prefect settings at it. With an API configured it does nothing.
"""

from __future__ import annotations

import atexit
import socket
import subprocess
import sys
import time
from contextlib import ExitStack, suppress
from dataclasses import dataclass

STARTUP_TIMEOUT_SECONDS = 120.0


class PrefectServerError(RuntimeError):
    """The temporary Prefect server did not start."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class TemporaryServer:
    """A Prefect server process this command started (`process` None: an API is configured)."""

    url: str | None = None
    process: subprocess.Popen[str] | None = None

    def wait(self, timeout: float = STARTUP_TIMEOUT_SECONDS) -> None:
        """Return once the server answers its health check; raise PrefectServerError if it exits or
        does not answer in time."""
        if self.process is None:
            return
        import httpx

        deadline = time.monotonic() + timeout
        with httpx.Client() as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    error = (self.process.stderr.read() if self.process.stderr else "")[-2000:]
                    raise PrefectServerError(f"the temporary Prefect server exited: {error}")
                with suppress(httpx.HTTPError):
                    if client.get(f"{self.url}/health", timeout=2).status_code == 200:
                        return
                time.sleep(0.1)
        raise PrefectServerError(
            f"the temporary Prefect server at {self.url} did not answer in {timeout:.0f} s"
        )


def start_server() -> TemporaryServer:
    """Start a temporary Prefect server when no Prefect API is configured, and point this process's
    Prefect settings at it for the rest of the process (Prefect sends its last logs and events at
    exit); it is stopped when this process exits.

    The server's process is started before the caller imports anything heavy: the caller calls
    `wait()` on it just before it runs a flow. With an API configured, nothing starts.
    """
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_EPHEMERAL_ENABLED, temporary_settings

    if PREFECT_API_URL.value() or not PREFECT_SERVER_EPHEMERAL_ENABLED.value():
        return TemporaryServer()
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    command = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--no-ui", "--no-services"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    # Stopped when this process exits, after Prefect's own exit handlers (registered later, so run
    # earlier) have sent the last logs and events to it.
    atexit.register(_stop, process)
    _SETTINGS.enter_context(temporary_settings(updates={PREFECT_API_URL: url}))
    return TemporaryServer(url, process)


# The settings pointing at the server, kept for the rest of the process.
_SETTINGS = ExitStack()


def _stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    with suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)
    if process.poll() is None:
        process.kill()
