"""What a user is told when the warehouse cannot be reached: which server (never its password) and
what to do about it, in two lines.

`DatabaseUnreachable` is a `psycopg.OperationalError`, so a Prefect task that retries on transient
database errors still retries it; the command line prints its message without a traceback.
"""

from __future__ import annotations

from urllib.parse import quote, urlencode

import psycopg
from psycopg.conninfo import conninfo_to_dict

# The parts of a connection string a URL spells out itself; the others go in its query string.
_URL_PARTS = ("user", "password", "host", "port", "dbname")


class DatabaseUnreachable(psycopg.OperationalError):
    """Connecting to the warehouse failed; str() is the server, the reason and what to do (2 lines)."""


def server_label(info: str) -> str:
    """`host:port/dbname` of a connection string or URL (no user, no password)."""
    try:
        params = conninfo_to_dict(info)
    except psycopg.ProgrammingError:
        return "an invalid connection URL"
    host = params.get("host") or params.get("hostaddr") or "localhost"
    return f"{host}:{params.get('port') or 5432}/{params.get('dbname') or ''}"


def public_url(info: str, *, show_password: bool = False) -> str:
    """The connection as a `postgresql://` URL, its password left out unless `show_password`."""
    params = {key: str(value) for key, value in conninfo_to_dict(info).items()}
    user = quote(params.get("user", ""), safe="")
    if user and show_password and params.get("password"):
        user += ":" + quote(params["password"], safe="")
    host = params.get("host", "")
    netloc = f"{user}@{host}" if user else host
    if params.get("port"):
        netloc += f":{params['port']}"
    extra = {key: value for key, value in params.items() if key not in _URL_PARTS}
    query = f"?{urlencode(extra)}" if extra else ""
    return f"postgresql://{netloc}/{quote(params.get('dbname', ''), safe='')}{query}"


def _reason(exc: BaseException) -> str:
    """libpq's reason, without its preamble: 'Connection refused', 'password authentication failed ...'."""
    line = next((part.strip() for part in str(exc).splitlines() if part.strip()), type(exc).__name__)
    reason = line.rsplit("failed: ", 1)[-1] if "failed: " in line else line
    return reason.removeprefix("FATAL:").strip()


def _hint(reason: str, *, embedded: bool) -> str:
    lowered = reason.lower()
    if embedded:
        return "start salesmon's embedded PostgreSQL with `salesmon db start` (see `salesmon db status`)"
    if "password" in lowered or "authentication" in lowered:
        return "check the user and password in SALESMON_DATABASE_URL"
    if "does not exist" in lowered:
        return "create that database, or name an existing one in SALESMON_DATABASE_URL"
    return (
        "check that the server is running and that SALESMON_DATABASE_URL names it"
        " (unset it to use salesmon's embedded PostgreSQL)"
    )


def unreachable(info: str, exc: BaseException, *, embedded: bool = False) -> DatabaseUnreachable:
    """The error to raise when connecting to `info` failed with `exc`."""
    if isinstance(exc, DatabaseUnreachable):
        return exc
    if isinstance(exc, psycopg.ProgrammingError):  # a malformed URL: libpq could not even parse it
        return DatabaseUnreachable(
            f"the warehouse URL is not valid: {_reason(exc)}\n"
            "fix SALESMON_DATABASE_URL (postgresql://user@host:port/dbname)"
        )
    reason = _reason(exc)
    return DatabaseUnreachable(
        f"cannot connect to PostgreSQL at {server_label(info)}: {reason}\n{_hint(reason, embedded=embedded)}"
    )


def connect_or_explain(info: str, *, embedded: bool = False, **kwargs: object) -> psycopg.Connection:
    """`psycopg.connect(info, **kwargs)`, raising `DatabaseUnreachable` when it cannot connect."""
    try:
        return psycopg.connect(info, **kwargs)
    except (psycopg.OperationalError, psycopg.ProgrammingError) as exc:
        raise unreachable(info, exc, embedded=embedded) from exc
