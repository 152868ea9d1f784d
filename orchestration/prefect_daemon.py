"""The local Prefect server kept running between salesmon commands: its supervisor process.

    python -m orchestration.prefect_daemon STATE_DIR PORT IDLE_MINUTES

Started, detached, by `orchestration.prefect_server` (never by hand). It starts `prefect server start`
(API only: no UI, no background services) on 127.0.0.1:PORT, and stops it and exits when:

- the server process exits (a crash): the next command starts a new one;
- nobody used it for IDLE_MINUTES (`STATE_DIR/last-used` untouched) and no command is using it (none
  holds `STATE_DIR/in-use.lock`);
- STATE_DIR disappears (its salesmon home was removed, e.g. a test's) or names another process;
- it receives SIGTERM or SIGINT (`salesmon server stop`).
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path

POLL_SECONDS = 2.0
# the starting command writes the state file just after starting this process
STATE_GRACE_SECONDS = 15.0
STATE_FILE = "server.json"
LAST_USED_FILE = "last-used"
IN_USE_LOCK = "in-use.lock"


def _owned(state_dir: Path) -> bool:
    """Whether the state file still names this process (not removed, not replaced)."""
    try:
        return json.loads((state_dir / STATE_FILE).read_text()).get("pid") == os.getpid()
    except (OSError, ValueError):
        return False


def _idle(state_dir: Path, idle_seconds: float) -> bool:
    """Unused for `idle_seconds` and no command holds the in-use lock (shared by each user)."""
    try:
        if time.time() - (state_dir / LAST_USED_FILE).stat().st_mtime < idle_seconds:
            return False
        with (state_dir / IN_USE_LOCK).open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released when the file closes
            return True
    except BlockingIOError:
        return False
    except OSError:
        return True


def serve(state_dir: Path, port: int, idle_minutes: float) -> int:
    command = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--no-ui", "--no-services"]
    server = subprocess.Popen(command, stdin=subprocess.DEVNULL)
    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    started = time.monotonic()
    try:
        while not stopping and server.poll() is None:
            time.sleep(POLL_SECONDS)
            orphaned = time.monotonic() - started > STATE_GRACE_SECONDS and not _owned(state_dir)
            if not state_dir.is_dir() or orphaned or _idle(state_dir, idle_minutes * 60):
                break
    finally:
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
        if _owned(state_dir):
            with suppress(OSError):
                (state_dir / STATE_FILE).unlink()
    return 0


def main() -> None:
    state_dir, port, idle_minutes = Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
    sys.exit(serve(state_dir, port, idle_minutes))


if __name__ == "__main__":
    main()
