"""Settings, read once from the environment into a typed object."""

from __future__ import annotations

import os
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


def use_pghost() -> bool:
    """Whether the user confirmed that an ambient PGHOST names the warehouse (SALESMON_USE_PGHOST=1,
    or `salesmon --use-pghost`). PGHOST alone is often set by something else (a shell profile, a
    container): salesmon creates schemas and a role on its server, so it never follows it unasked."""
    return os.environ.get("SALESMON_USE_PGHOST", "").strip().lower() in ("1", "true", "yes", "on")


def ignored_pghost() -> str | None:
    """The PGHOST that is set but not used (no SALESMON_DATABASE_URL, no confirmation), else None."""
    if os.environ.get("SALESMON_DATABASE_URL") or use_pghost():
        return None
    return os.environ.get("PGHOST") or None


def _url_from_pg_env() -> str | None:
    """A libpq URL built from the usual PG* variables, when PGHOST is set and its use confirmed."""
    if not os.environ.get("PGHOST") or not use_pghost():
        return None
    from psycopg.conninfo import make_conninfo

    return make_conninfo(
        "",
        host=os.environ["PGHOST"],
        port=os.environ.get("PGPORT", "5432"),
        dbname=os.environ.get("PGDATABASE", DEFAULT_DATABASE),
        user=os.environ.get("PGUSER"),
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Read the settings from the environment (once per process)."""
    home = Path(os.environ.get("SALESMON_HOME", ".salesmon")).expanduser().resolve()
    port = int(os.environ.get("SALESMON_PG_PORT", DEFAULT_PG_PORT))
    url = os.environ.get("SALESMON_DATABASE_URL") or _url_from_pg_env()
    database = os.environ.get("SALESMON_DATABASE", DEFAULT_DATABASE)
    return Settings(home=home, pg_port=port, database_url=url, database=database)
