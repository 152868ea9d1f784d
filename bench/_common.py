"""What the benchmarks share: a private warehouse for the length of one run."""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def private_warehouse(prefix: str) -> Iterator[Path]:
    """A temporary work folder and, unless SALESMON_DATABASE_URL is set, a private embedded server.

    The server gets its own SALESMON_HOME inside the work folder and a free port; it is stopped
    and the folder removed on exit.
    """
    from warehouse.settings import get_settings

    work = Path(tempfile.mkdtemp(prefix=prefix))
    embedded = not os.environ.get("SALESMON_DATABASE_URL")
    if embedded:
        os.environ["SALESMON_HOME"] = str(work / "home")
        os.environ["SALESMON_PG_PORT"] = str(free_port())
    get_settings.cache_clear()
    settings = get_settings()
    try:
        yield work
    finally:
        if embedded:
            from warehouse import embedded as server

            server.stop(settings)
        shutil.rmtree(work, ignore_errors=True)
