"""Faults a user meets, told in a line or two (issue #12, points 3 and 6).

- The warehouse unreachable: every command that needs it (load, train, score, monitor, demo, dbt,
  calibrate, notify) prints at most 6 lines naming the server (never its password) and what to do,
  no traceback, and exits non-zero; `--debug` or SALESMON_DEBUG=1 shows the traceback.
- `salesmon db url` leaves the password out unless `--show-password`.
- An ambient PGHOST is used only when confirmed (SALESMON_USE_PGHOST=1 or --use-pghost).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

PASSWORD = "s3cret-Pa55"


def _closed_port() -> int:
    """A port on 127.0.0.1 nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _salesmon(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestration.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=Path(__file__).resolve().parent.parent,
    )


@pytest.fixture(scope="module")
def unreachable_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A user's environment whose SALESMON_DATABASE_URL names a closed port (with a password)."""
    home = tmp_path_factory.mktemp("faults-home")
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PG", "SALESMON_"))}
    env.update(
        SALESMON_HOME=str(home),
        SALESMON_DATABASE_URL=f"postgresql://pipeline:{PASSWORD}@127.0.0.1:{_closed_port()}/warehouse",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
        PYTHONPATH=str(Path(__file__).resolve().parent.parent),
    )
    return env


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from datagen import generate

    folder = tmp_path_factory.mktemp("faults-data")
    generate(
        folder,
        stores=1,
        start=__import__("datetime").date(2017, 1, 1),
        end=__import__("datetime").date(2017, 2, 15),
        seed=3,
    )
    return folder


def _commands(data_dir: Path) -> dict[str, list[str]]:
    return {
        "load": ["load", "--data-dir", str(data_dir)],
        "train": ["train"],
        "score": ["score", "--start", "2017-02-01", "--end", "2017-02-02"],
        "monitor": ["monitor", "--start", "2017-02-01", "--end", "2017-02-02"],
        "demo": ["demo", "--data-dir", str(data_dir)],
        "dbt": ["dbt", "build"],
        "calibrate": ["calibrate"],
        "notify": ["notify"],
    }


def test_every_command_says_in_two_lines_that_the_warehouse_is_unreachable(
    unreachable_env: dict[str, str], data_dir: Path
) -> None:
    port = unreachable_env["SALESMON_DATABASE_URL"].rsplit(":", 1)[1].split("/")[0]
    commands = _commands(data_dir)
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(
            zip(
                commands,
                pool.map(lambda args: _salesmon(unreachable_env, *args), commands.values()),
                strict=True,
            )
        )
    for name, result in results.items():
        output = result.stdout + result.stderr
        lines = [line for line in output.splitlines() if line.strip()]
        assert result.returncode != 0, (name, output)
        assert len(lines) <= 6, (name, output)
        assert "Traceback" not in output, (name, output)
        assert f"127.0.0.1:{port}/warehouse" in output, (name, output)
        assert "Connection refused" in output, (name, output)
        assert "SALESMON_DATABASE_URL" in output, (name, output)  # what to do
        assert PASSWORD not in output, (name, output)


def test_debug_shows_the_traceback(unreachable_env: dict[str, str]) -> None:
    flag = _salesmon(unreachable_env, "--debug", "calibrate")
    assert flag.returncode != 0 and "Traceback" in flag.stderr
    variable = _salesmon({**unreachable_env, "SALESMON_DEBUG": "1"}, "calibrate")
    assert variable.returncode != 0 and "Traceback" in variable.stderr
    assert "DatabaseUnreachable" in variable.stderr


def test_a_malformed_url_is_named_without_a_traceback(unreachable_env: dict[str, str]) -> None:
    result = _salesmon({**unreachable_env, "SALESMON_DATABASE_URL": "host=somewhere dbname"}, "train")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "not valid" in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 3


def test_db_url_hides_the_password_unless_asked(unreachable_env: dict[str, str]) -> None:
    hidden = _salesmon(unreachable_env, "db", "url")
    assert hidden.returncode == 0
    assert hidden.stdout.strip().startswith("postgresql://pipeline@127.0.0.1:")
    assert PASSWORD not in hidden.stdout + hidden.stderr
    shown = _salesmon(unreachable_env, "db", "url", "--show-password")
    assert shown.stdout.strip().startswith(f"postgresql://pipeline:{PASSWORD}@127.0.0.1:")


def test_public_url_and_server_label() -> None:
    from warehouse.errors import public_url, server_label

    info = "host=db.example port=6543 dbname=sales user=me password='p@ss word' sslmode=require"
    assert public_url(info) == "postgresql://me@db.example:6543/sales?sslmode=require"
    assert (
        public_url(info, show_password=True)
        == "postgresql://me:p%40ss%20word@db.example:6543/sales?sslmode=require"
    )
    assert server_label(info) == "db.example:6543/sales"
    assert server_label("postgresql://u:pw@h/db") == "h:5432/db"


def test_an_ambient_pghost_is_used_only_when_confirmed() -> None:
    from warehouse.settings import ignored_pghost, settings_from

    environ = {"PGHOST": "elsewhere.example", "PGPORT": "5439"}
    assert settings_from(environ).embedded and ignored_pghost(environ) == "elsewhere.example"
    environ["SALESMON_USE_PGHOST"] = "1"
    settings = settings_from(environ)
    assert not settings.embedded and ignored_pghost(environ) is None
    assert "host=elsewhere.example" in settings.database_url and "port=5439" in settings.database_url
    environ["SALESMON_DATABASE_URL"] = "postgresql://u@url.example/db"
    assert settings_from(environ).database_url == "postgresql://u@url.example/db"  # the URL wins


def test_the_command_line_says_once_that_it_ignores_pghost(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PG", "SALESMON_"))}
    env.update(SALESMON_HOME=str(tmp_path), SALESMON_PG_PORT=str(_closed_port()), PGHOST="elsewhere.example")
    env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
    result = _salesmon(env, "db", "status")
    assert result.returncode == 3  # the embedded server of this home is not running: it was chosen
    assert result.stderr.count("PGHOST=elsewhere.example is set but not used") == 1
    assert "--use-pghost" in result.stderr
    confirmed = _salesmon(env, "--use-pghost", "db", "status")
    assert "not used" not in confirmed.stderr
    assert "external server not reachable" in confirmed.stderr  # it tried elsewhere.example
