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
    from dataclasses import replace

    from warehouse.settings import get_settings, use_settings

    work = Path(tempfile.mkdtemp(prefix=prefix))
    settings = get_settings()
    embedded = settings.embedded
    if embedded:
        settings = replace(settings, home=work / "home", pg_port=free_port())
        # what the benchmark's own child processes (a service, a `salesmon` command) read
        os.environ["SALESMON_HOME"] = str(settings.home)
        os.environ["SALESMON_PG_PORT"] = str(settings.pg_port)
    try:
        with use_settings(settings):
            yield work
    finally:
        if embedded:
            from warehouse import embedded as server

            server.stop(settings)
        shutil.rmtree(work, ignore_errors=True)
