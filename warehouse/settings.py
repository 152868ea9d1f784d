"""Settings, read once from the environment into a typed object.

`get_settings()` is what every module asks. A program that embeds salesmon, or a test, hands it
settings of its own with `use_settings(...)` (for example `replace(get_settings(), database_url=...)`)
instead of changing the environment; child processes (dbt, the pool's workers) are given what they
need explicitly: dbt its profile's variables, each worker the connection string.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

DEFAULT_PG_PORT = 54329
DEFAULT_DATABASE = "salesmon"
DEFAULT_SUPERUSER = "postgres"
READER_ROLE = "salesmon_reader"


@dataclass(frozen=True)
class Settings:
    """Where salesmon keeps its files and which PostgreSQL it talks to.

    `database_url` set means an external server: nothing is started. Otherwise the
    embedded server keeps its data in `home / "pgdata"` and listens on 127.0.0.1 at `pg_port`.
    """

    home: Path
    pg_port: int
    database_url: str | None
    database: str = DEFAULT_DATABASE

    @property
    def embedded(self) -> bool:
        return self.database_url is None

    @property
    def pgdata(self) -> Path:
        return self.home / "pgdata"


def use_pghost(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the user confirmed that an ambient PGHOST names the warehouse (SALESMON_USE_PGHOST=1,
    or `salesmon --use-pghost`). PGHOST alone is often set by something else (a shell profile, a
    container): salesmon creates schemas and a role on its server, so it never follows it unasked."""
    return environ.get("SALESMON_USE_PGHOST", "").strip().lower() in ("1", "true", "yes", "on")


def ignored_pghost(environ: Mapping[str, str] = os.environ) -> str | None:
    """The PGHOST that is set but not used (no SALESMON_DATABASE_URL, no confirmation), else None."""
    if environ.get("SALESMON_DATABASE_URL") or use_pghost(environ):
        return None
    return environ.get("PGHOST") or None


def _url_from_pg_env(environ: Mapping[str, str]) -> str | None:
    """A libpq URL built from the usual PG* variables, when PGHOST is set and its use confirmed."""
    if not environ.get("PGHOST") or not use_pghost(environ):
        return None
    from psycopg.conninfo import make_conninfo

    return make_conninfo(
        "",
        host=environ["PGHOST"],
        port=environ.get("PGPORT", "5432"),
        dbname=environ.get("PGDATABASE", DEFAULT_DATABASE),
        user=environ.get("PGUSER"),
    )


def settings_from(environ: Mapping[str, str]) -> Settings:
    """The settings that an environment describes (SALESMON_HOME, SALESMON_PG_PORT,
    SALESMON_DATABASE_URL or a confirmed PGHOST, SALESMON_DATABASE)."""
    home = Path(environ.get("SALESMON_HOME", ".salesmon")).expanduser().resolve()
    port = int(environ.get("SALESMON_PG_PORT", DEFAULT_PG_PORT))
    url = environ.get("SALESMON_DATABASE_URL") or _url_from_pg_env(environ)
    database = environ.get("SALESMON_DATABASE", DEFAULT_DATABASE)
    return Settings(home=home, pg_port=port, database_url=url, database=database)


_given: list[Settings] = []  # the settings handed in by use_settings, innermost last


def get_settings() -> Settings:
    """The settings handed in by the innermost `use_settings`, else those of this process's
    environment (read once)."""
    return _given[-1] if _given else _from_environment()


@lru_cache(maxsize=1)
def _from_environment() -> Settings:
    return settings_from(os.environ)


@contextmanager
def use_settings(settings: Settings) -> Iterator[Settings]:
    """Make `get_settings()` return `settings` in this process (every thread) for the block."""
    _given.append(settings)
    try:
        yield settings
    finally:
        _given.remove(settings)
