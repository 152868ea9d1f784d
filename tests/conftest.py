"""Test fixtures: one real PostgreSQL per test session (the embedded server), a fresh database per use.

Set SALESMON_TEST_DATABASE_URL to run against a server of your own instead; the suite then
creates and drops its databases there.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tests import _fixtures
from tests._fixtures import Template

_TEST_HOME: Path | None = None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pytest_configure(config: pytest.Config) -> None:
    """Point salesmon at a private home and port before anything reads the settings."""
    global _TEST_HOME
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    # `salesmon` commands run by tests without the session's Prefect server get a temporary server of
    # their own, stopped at their exit: no background server outlives the suite (that mode is tested
    # in test_prefect_server.py, which stops what it starts)
    os.environ.setdefault("SALESMON_PREFECT_SERVER", "temporary")
    os.environ.pop("SALESMON_DATABASE_URL", None)
    os.environ.pop("PGHOST", None)
    _TEST_HOME = Path(tempfile.mkdtemp(prefix="salesmon-tests-"))
    # dbt's target and logs of this session's own (a test run beside another, or beside a developer's
    # dbt, never writes their target/)
    os.environ["DBT_TARGET_PATH"] = str(_TEST_HOME / "dbt-target")
    os.environ["DBT_LOG_PATH"] = str(_TEST_HOME / "dbt-logs")
    if not os.environ.get("SALESMON_TEST_DATABASE_URL"):
        os.environ["SALESMON_HOME"] = str(_TEST_HOME)
        os.environ["SALESMON_PG_PORT"] = str(_free_port())


# Under pytest-xdist (`make test`: -n 2) a module's tests run in one worker (its module-scoped
# fixtures are set up once), and the modules that copy the same session-built warehouses share a
# worker (each warehouse is built once). xdist's own `--dist loadgroup` marks are not read with this
# pytest (9.2 names a test by `_id`, xdist 3.8 renames `_nodeid`): the grouping is a scheduler's.
_SALES_DROP_MODULES = {"test_alert_scenarios", "test_grafana", "test_report"}


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    from xdist.scheduler import LoadScopeScheduling

    class ByWarehouse(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return "sales-drop warehouses" if Path(module).stem in _SALES_DROP_MODULES else module

    return ByWarehouse(config, log)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _TEST_HOME is None or not _TEST_HOME.exists():
        return
    from warehouse import embedded
    from warehouse.settings import settings_from

    settings = settings_from(os.environ)
    if settings.embedded and (settings.pgdata / "PG_VERSION").exists():
        embedded.stop(settings)
    shutil.rmtree(_TEST_HOME, ignore_errors=True)


@pytest.fixture(scope="session")
def server_conninfo() -> str:
    """Connection string of the test server's maintenance database (the embedded server, started once)."""
    from warehouse import embedded
    from warehouse.settings import settings_from

    url = os.environ.get("SALESMON_TEST_DATABASE_URL")
    if url:
        return url
    settings = settings_from(os.environ)
    embedded.start(settings)
    return make_conninfo(embedded.conninfo(settings), dbname="postgres")


def _create_database(server: str, prefix: str) -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    return make_conninfo(server, dbname=name)


def _drop_database(server: str, info: str) -> None:
    name = conninfo_to_dict(info)["dbname"]
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture
def database(server_conninfo: str) -> Iterator[str]:
    """A fresh, empty database that salesmon uses for the length of one test."""
    yield from _use_database(server_conninfo, "t")


@pytest.fixture(scope="module")
def module_database(server_conninfo: str) -> Iterator[str]:
    """A fresh database shared by the tests of one module (for expensive set-ups)."""
    yield from _use_database(server_conninfo, "m")


def _use_database(server: str, prefix: str) -> Iterator[str]:
    """Create a database and hand salesmon settings that name it (`use_settings`: the environment is
    left alone; a `salesmon` command run as a subprocess is given SALESMON_DATABASE_URL)."""
    from dataclasses import replace

    from warehouse.settings import settings_from, use_settings

    info = _create_database(server, prefix)
    try:
        with use_settings(replace(settings_from(os.environ), database_url=info)):
            yield info
    finally:
        _drop_database(server, info)


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[str]:
    """One Prefect test server for the session (about 20 s to start); yields its API URL, which
    `salesmon` commands run as subprocesses are given as PREFECT_API_URL."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with prefect_test_harness(server_startup_timeout=120):
            yield str(PREFECT_API_URL.value())


# --- warehouses built once per session, copied per module (tests/_fixtures.py) ----------------------


@pytest.fixture(scope="session")
def scored_template(server_conninfo: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Template]:
    """3 stores, a model trained for 2017-06-15, 2017-06-15 .. 2017-07-18 scored."""
    root = tmp_path_factory.mktemp("scored-template")
    template = _fixtures.build_template(server_conninfo, "tpl_scored", lambda: _fixtures.build_scored(root))
    yield template
    _fixtures.drop_database(server_conninfo, template.name)


@pytest.fixture(scope="session")
def sales_drop_template(server_conninfo: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Template]:
    """6 stores, a sales drop on 2017-07-13, loaded (one line rejected), the features mart built."""
    root = tmp_path_factory.mktemp("sales-drop-template")
    template = _fixtures.build_template(
        server_conninfo, "tpl_sales_drop", lambda: _fixtures.build_sales_drop(root)
    )
    yield template
    _fixtures.drop_database(server_conninfo, template.name)


@pytest.fixture(scope="session")
def sales_drop_trained_template(server_conninfo: str, sales_drop_template: Template) -> Iterator[Template]:
    """The sales-drop warehouse with a champion trained for monitor_from 2017-07-12."""
    template = _fixtures.build_template(
        server_conninfo,
        "tpl_sales_drop_trained",
        _fixtures.train_for(sales_drop_template.data_dir, _fixtures.SALES_DROP_MONITOR_FROM),
        source=sales_drop_template.name,
    )
    yield template
    _fixtures.drop_database(server_conninfo, template.name)
