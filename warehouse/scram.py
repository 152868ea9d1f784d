"""SCRAM-SHA-256 password verifiers computed here, so that a password never travels to the server.

`ALTER ROLE ... PASSWORD 'SCRAM-SHA-256$...'` stores a verifier as it is; sent in clear, the password
could end up in the server's statement log. The verifier is PostgreSQL's format (RFC 5802 / RFC 7677,
as `pg_authid.rolpassword` holds it):

    SCRAM-SHA-256$<iterations>:<base64 salt>$<base64 StoredKey>:<base64 ServerKey>

with SaltedPassword = PBKDF2-HMAC-SHA-256(SASLprep(password), salt, iterations),
StoredKey = SHA-256(HMAC(SaltedPassword, "Client Key")), ServerKey = HMAC(SaltedPassword, "Server Key").
As in PostgreSQL, a password SASLprep refuses is used as its UTF-8 bytes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import stringprep
import unicodedata

ITERATIONS = 4096  # PostgreSQL's default scram_iterations
SALT_BYTES = 16  # PostgreSQL's SCRAM_DEFAULT_SALT_LEN

_PROHIBITED = (
    stringprep.in_table_c12,
    stringprep.in_table_c21,
    stringprep.in_table_c22,
    stringprep.in_table_c3,
    stringprep.in_table_c4,
    stringprep.in_table_c5,
    stringprep.in_table_c6,
    stringprep.in_table_c7,
    stringprep.in_table_c8,
    stringprep.in_table_c9,
    stringprep.in_table_a1,
)


def saslprep(password: str) -> bytes:
    """The bytes PostgreSQL hashes for `password` (RFC 4013 SASLprep, else the password's UTF-8)."""
    raw = password.encode("utf-8")
    if password.isascii():
        return raw  # PostgreSQL leaves pure ASCII as it is
    mapped = "".join(
        " " if stringprep.in_table_c12(char) else char
        for char in password
        if not stringprep.in_table_b1(char)
    )
    prepared = unicodedata.normalize("NFKC", mapped)
    if not prepared or any(check(char) for char in prepared for check in _PROHIBITED):
        return raw
    if any(stringprep.in_table_d1(char) for char in prepared) and (
        any(stringprep.in_table_d2(char) for char in prepared)
        or not (stringprep.in_table_d1(prepared[0]) and stringprep.in_table_d1(prepared[-1]))
    ):
        return raw
    return prepared.encode("utf-8")


def _keys(password: str, salt: bytes, iterations: int) -> tuple[bytes, bytes]:
    salted = hashlib.pbkdf2_hmac("sha256", saslprep(password), salt, iterations)
    stored_key = hashlib.sha256(hmac.new(salted, b"Client Key", "sha256").digest()).digest()
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    return stored_key, server_key


def scram_verifier(password: str, *, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """The SCRAM-SHA-256 verifier of `password` (a random salt unless given), as PostgreSQL stores it."""
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    stored_key, server_key = _keys(password, salt, iterations)
    encode = lambda data: base64.b64encode(data).decode("ascii")  # noqa: E731
    return f"SCRAM-SHA-256${iterations}:{encode(salt)}${encode(stored_key)}:{encode(server_key)}"


def verifies(verifier: str | None, password: str) -> bool:
    """Whether a stored SCRAM-SHA-256 verifier is that of `password` (False for anything else)."""
    try:
        method, rest = (verifier or "").split("$", 1)
        head, keys = rest.split("$", 1)
        iterations, salt = head.split(":", 1)
        if method != "SCRAM-SHA-256":
            return False
        expected = scram_verifier(password, salt=base64.b64decode(salt), iterations=int(iterations))
    except ValueError:
        return False
    return hmac.compare_digest(expected.split("$", 2)[2], keys)
