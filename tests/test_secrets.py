"""The reader's password is set as a SCRAM-SHA-256 verifier computed on the client (issue #12, point 6).

The verifier is checked against the one PostgreSQL itself computes for the same password and salt
(the embedded server trusts 127.0.0.1, so a login would prove nothing), and the bytes sent to the
server while the password is set are traced: the password is not among them.
"""

from __future__ import annotations

import base64
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from warehouse import db
from warehouse.scram import saslprep, scram_verifier, verifies
from warehouse.settings import READER_ROLE

PASSWORDS = [
    "correct horse battery staple",
    "pässwörd\u00a0with a no-break space",  # SASLprep maps the space, NFKC keeps the umlauts
    "\u2168-roman-nine",  # NFKC: IX
    "tab\tcontrol",  # ASCII: as it is
]


def _server_verifier(conn: psycopg.Connection, role: str, password: str) -> str:
    conn.execute("set password_encryption = 'scram-sha-256'")
    conn.execute(sql.SQL("alter role {} password {}").format(sql.Identifier(role), sql.Literal(password)))
    return conn.execute("select rolpassword from pg_authid where rolname = %s", (role,)).fetchone()[0]


@pytest.mark.parametrize("password", PASSWORDS)
def test_the_verifier_is_the_one_postgresql_computes(database: str, password: str) -> None:
    role = "salesmon_scram_probe"
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(f"drop role if exists {role}")
        conn.execute(f"create role {role} nologin")
        try:
            theirs = _server_verifier(conn, role, password)
        finally:
            conn.execute(f"drop role {role}")
    iterations, salt = theirs.split("$")[1].split(":")
    ours = scram_verifier(password, salt=base64.b64decode(salt), iterations=int(iterations))
    assert ours == theirs
    assert verifies(theirs, password)
    assert not verifies(theirs, password + "x")
    assert not verifies("md5abcdef", password) and not verifies(None, password)


def test_saslprep_falls_back_to_the_raw_bytes_for_a_prohibited_character() -> None:
    assert saslprep("a\u0007b\u00e9") == "a\u0007b\u00e9".encode()  # BEL is prohibited: raw UTF-8
    assert saslprep("I\u00adX") == b"IX"  # soft hyphen maps to nothing


def test_the_reader_password_is_never_sent_in_clear(
    database: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    password = "never-in-the-logs-42"
    monkeypatch.setenv("SALESMON_READER_PASSWORD", password)
    trace = tmp_path / "protocol.trace"
    db.bootstrap()  # the schemas the role's grants name
    with psycopg.connect(database, autocommit=True) as conn, open(trace, "w") as sink:
        conn.execute(f"alter role {READER_ROLE} password null")
        conn.pgconn.trace(sink.fileno())
        try:
            db._ensure_reader_role(conn, embedded=True)
        finally:
            conn.pgconn.untrace()
        stored = conn.execute(
            "select rolpassword from pg_authid where rolname = %s", (READER_ROLE,)
        ).fetchone()[0]
    # libpq's trace: "F" lines went from salesmon (the frontend) to the server
    sent = "\n".join(line for line in trace.read_text().splitlines() if line.split("\t")[1:2] == ["F"])
    assert "alter role" in sent.lower() and "password 'SCRAM-SHA-256$4096:" in sent
    assert password not in sent
    assert verifies(stored, password)

    # the same password again: the stored verifier is kept (no new salt, nothing sent)
    with psycopg.connect(database, autocommit=True) as conn:
        db._ensure_reader_role(conn, embedded=True)
        again = conn.execute(
            "select rolpassword from pg_authid where rolname = %s", (READER_ROLE,)
        ).fetchone()[0]
    assert again == stored
