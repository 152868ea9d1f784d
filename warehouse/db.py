"""Connections to the warehouse and its idempotent bootstrap (schemas, Python-written tables, roles)."""

from __future__ import annotations

import os
import warnings
from functools import lru_cache
from importlib import resources

import psycopg
import psycopg.sql
from psycopg.conninfo import conninfo_to_dict

from warehouse.errors import connect_or_explain, unreachable
from warehouse.scram import scram_verifier, verifies
from warehouse.settings import READER_ROLE, Settings, get_settings

# Schemas dbt builds into; the reader role may read them.
READABLE_SCHEMAS = ("staging", "intermediate", "marts")


def conninfo(settings: Settings | None = None) -> str:
    """The connection string: the configured URL, or the embedded server (started if needed)."""
    settings = settings or get_settings()
    if settings.database_url:
        try:
            conninfo_to_dict(settings.database_url)
        except psycopg.ProgrammingError as exc:  # not a URL libpq can read
            raise unreachable(settings.database_url, exc) from exc
        return settings.database_url
    _ensure_embedded(settings)
    from warehouse import embedded

    return embedded.conninfo(settings)


@lru_cache(maxsize=8)
def _ensure_embedded(settings: Settings) -> None:
    """Start the embedded server if it is down and create the settings' database (once per process)."""
    from warehouse import embedded

    if embedded.status(settings).running:
        embedded.ensure_database(settings)
    else:
        embedded.start(settings)


def connect(*, autocommit: bool = False, bootstrap_schema: bool = True) -> psycopg.Connection:
    """Open a connection to the warehouse, making sure the schemas and tables exist first.

    Raises `DatabaseUnreachable` (a psycopg.OperationalError naming the server, without its password,
    and what to do) when the server cannot be reached.
    """
    info = conninfo()
    if bootstrap_schema:
        _bootstrap(info)
    return connect_or_explain(info, embedded=_is_embedded(info), autocommit=autocommit)


def server_version(url: str, *, timeout: int = 5) -> str:
    """The PostgreSQL version of the server at `url`, connecting directly (no bootstrap): raises
    psycopg.OperationalError when it cannot be reached within `timeout` seconds."""
    with psycopg.connect(url, connect_timeout=timeout) as conn:
        return str(conn.execute("show server_version").fetchone()[0])


def ensure_bootstrapped() -> None:
    """Bootstrap the configured warehouse once per process (`bootstrap` runs every time)."""
    _bootstrap(conninfo())


@lru_cache(maxsize=8)
def _bootstrap(info: str) -> None:
    bootstrap(info)


def bootstrap(info: str | None = None) -> None:
    """Create the schemas, the tables Python writes, and the read-only role. Idempotent."""
    info = info or conninfo()
    scripts = sorted(
        (
            entry
            for entry in resources.files("warehouse").joinpath("sql").iterdir()
            if entry.name.endswith(".sql")
        ),
        key=lambda entry: entry.name,
    )
    with connect_or_explain(info, embedded=_is_embedded(info), autocommit=True) as conn:
        # Concurrent first runs (parallel workers) must not race on create-if-not-exists.
        conn.execute("select pg_advisory_lock(hashtext('salesmon.bootstrap'))")
        try:
            for script in scripts:
                conn.execute(script.read_text())
            for schema in READABLE_SCHEMAS:
                conn.execute(f"create schema if not exists {schema}")
            _ensure_reader_role(conn, embedded=_is_embedded(info))
        finally:
            conn.execute("select pg_advisory_unlock(hashtext('salesmon.bootstrap'))")


class ReaderPasswordWarning(UserWarning):
    """The read-only role has no password on a server that is not the embedded one."""


def _ensure_reader_role(conn: psycopg.Connection, *, embedded: bool) -> None:
    """`salesmon_reader` may only SELECT on the marts: Grafana and analysts use it.

    Its password is `SALESMON_READER_PASSWORD` (set on every bootstrap, so salesmon and Grafana agree
    when both read the same variable). The embedded server trusts 127.0.0.1, so a role without a
    password is fine there. On any other server a role without a password is never left able to log
    in silently: without the variable, a role that has no password yet is made NOLOGIN and a
    ReaderPasswordWarning says why (a role given a password earlier keeps it).
    """
    role = psycopg.sql.Identifier(READER_ROLE)
    exists = conn.execute("select 1 from pg_roles where rolname = %s", (READER_ROLE,)).fetchone()
    password = os.environ.get("SALESMON_READER_PASSWORD")
    if password or embedded:
        if not exists:
            conn.execute(psycopg.sql.SQL("create role {} login").format(role))
        if password:
            _set_password(conn, role, password, current=_stored_password(conn) if exists else None)
    else:
        has_password = False
        if exists:
            has_password = _stored_password(conn) is not None
        else:
            conn.execute(psycopg.sql.SQL("create role {} nologin").format(role))
        if not has_password:
            conn.execute(psycopg.sql.SQL("alter role {} nologin").format(role))
            warnings.warn(
                f"{READER_ROLE} has no password, so it cannot log in (Grafana and analysts use it): "
                "set SALESMON_READER_PASSWORD, the same value Grafana is given, and run any salesmon "
                "command again",
                ReaderPasswordWarning,
                stacklevel=2,
            )
    database = conn.info.dbname
    conn.execute(
        psycopg.sql.SQL("grant connect on database {} to {}").format(
            psycopg.sql.Identifier(database), psycopg.sql.Identifier(READER_ROLE)
        )
    )
    conn.execute(f"grant usage on schema marts to {READER_ROLE}")
    conn.execute(f"grant select on all tables in schema marts to {READER_ROLE}")
    conn.execute(f"alter default privileges in schema marts grant select on tables to {READER_ROLE}")


def _stored_password(conn: psycopg.Connection) -> str | None:
    """The reader's stored password verifier, or None (none set, or pg_authid not readable by us)."""
    try:
        with conn.transaction():
            row = conn.execute(
                "select rolpassword from pg_authid where rolname = %s", (READER_ROLE,)
            ).fetchone()
    except psycopg.errors.InsufficientPrivilege:
        return None
    return row[0] if row else None


def _set_password(
    conn: psycopg.Connection, role: psycopg.sql.Identifier, password: str, *, current: str | None
) -> None:
    """Give the reader `password`, as a SCRAM-SHA-256 verifier computed here: the password itself is
    never sent, so it cannot end up in the server's logs. Left alone when the stored verifier is
    already that password's."""
    if verifies(current, password):
        conn.execute(psycopg.sql.SQL("alter role {} login").format(role))
        return
    conn.execute(
        psycopg.sql.SQL("alter role {} login password {}").format(
            role, psycopg.sql.Literal(scram_verifier(password))
        )
    )


def _is_embedded(info: str) -> bool:
    """Whether `info` names the embedded server of the current settings (trust on 127.0.0.1)."""
    settings = get_settings()
    params = conninfo_to_dict(info)
    if settings.embedded:
        return True
    return (
        str(params.get("host", "")) in ("127.0.0.1", "localhost")
        and str(params.get("port", "")) == str(settings.pg_port)
        and (settings.pgdata / "PG_VERSION").exists()
    )


def dbt_env(settings: Settings | None = None) -> dict[str, str]:
    """The PG* variables that `dbt_project/profiles.yml` reads, for the current connection."""
    params = conninfo_to_dict(conninfo(settings))
    env = {
        "PGHOST": str(params.get("host", "127.0.0.1")),
        "PGPORT": str(params.get("port", "5432")),
        "PGDATABASE": str(params.get("dbname", "salesmon")),
        "PGUSER": str(params.get("user", "postgres")),
    }
    if params.get("password"):
        env["PGPASSWORD"] = str(params["password"])
    return env
