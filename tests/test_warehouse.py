"""The warehouse: settings, the embedded server, the idempotent bootstrap and the reader role."""

from __future__ import annotations

from dataclasses import replace

import psycopg
import pytest

from warehouse import db, embedded
from warehouse.settings import READER_ROLE, get_settings, use_settings


def test_embedded_server_runs_on_loopback_port(server_conninfo: str) -> None:
    settings = get_settings()
    state = embedded.status(settings)
    assert state.running
    assert state.pid is not None
    with psycopg.connect(server_conninfo) as conn:
        assert conn.execute("show listen_addresses").fetchone()[0] == "127.0.0.1"
        assert int(conn.execute("show port").fetchone()[0]) == settings.pg_port


def test_second_start_reuses_the_running_server(server_conninfo: str) -> None:
    settings = get_settings()
    before = embedded.status(settings).pid
    after = embedded.start(settings).pid
    assert before == after


def test_bootstrap_is_idempotent_and_creates_raw_tables(database: str) -> None:
    db.bootstrap()
    db.bootstrap()
    with psycopg.connect(database) as conn:
        tables = {
            row[0]
            for row in conn.execute(
                "select table_name from information_schema.tables where table_schema = 'raw'"
            )
        }
    assert {"train", "test", "stores", "oil", "holidays_events", "transactions", "rejected_rows"} <= tables


def test_reader_role_can_read_marts_but_not_write_or_read_raw(database: str) -> None:
    db.bootstrap()
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("create table marts.example (x int)")
        conn.execute("insert into marts.example values (1)")
        conn.execute(f"set role {READER_ROLE}")
        assert conn.execute("select x from marts.example").fetchone() == (1,)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("insert into marts.example values (2)")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("select * from raw.train")


def test_dbt_env_names_the_configured_database(database: str) -> None:
    env = db.dbt_env()
    assert env["PGDATABASE"] == psycopg.conninfo.conninfo_to_dict(database)["dbname"]
    assert env["PGHOST"] == "127.0.0.1"


def test_a_new_database_name_is_created_on_the_running_server(server_conninfo: str) -> None:
    name = "salesmon_other_db"
    try:
        with use_settings(replace(get_settings(), database=name)), db.connect() as conn:
            assert conn.execute("select current_database()").fetchone()[0] == name
    finally:
        with psycopg.connect(server_conninfo, autocommit=True) as conn:
            conn.execute(f"drop database if exists {name} with (force)")
