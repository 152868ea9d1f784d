"""dbt started ahead of its command (warehouse.dbt_ahead): the first dbt command in the block runs in
the process started at the block's start, with the same output, exit status and errors as a plain
`dbt`; a block that runs no dbt leaves no process behind; another environment runs dbt plainly."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from warehouse import dbt_ahead
from warehouse.dbt import DBT_PROJECT_DIR, DbtError, dbt_environment, run_dbt

LIST = ["ls", "--select", "path:models/marts/monitoring", "--resource-type", "model", "--output", "name"]


def _names(output: str) -> set[str]:
    return {line.strip() for line in output.splitlines() if line.strip().startswith("fct_")}


@pytest.fixture(scope="module")
def private_target(module_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One warehouse and one target folder for the module (dbt's partial parsing holds across tests)."""
    root = tmp_path_factory.mktemp("dbt-ahead")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DBT_TARGET_PATH", str(root / "target"))
        patch.setenv("DBT_LOG_PATH", str(root / "logs"))
        yield


def test_the_first_command_runs_in_the_dbt_started_ahead_and_says_the_same(private_target: None) -> None:
    plain = _names(run_dbt(LIST, quiet=True))
    assert {"fct_alerts", "fct_model_health_daily", "fct_monitoring_coverage_daily"} <= plain
    with dbt_ahead.started_ahead(dbt_environment(), str(DBT_PROJECT_DIR)) as child:
        ahead = _names(run_dbt(LIST, quiet=True))
        assert child.returncode == 0  # it ran the command and exited
        again = _names(run_dbt(LIST, quiet=True))  # used once: the next one runs plainly
    assert ahead == plain == again


def test_a_failing_command_raises_dbts_error_from_the_dbt_started_ahead(private_target: None) -> None:
    with dbt_ahead.started_ahead(dbt_environment(), str(DBT_PROJECT_DIR)) as child:
        with pytest.raises(DbtError, match="no_such_macro"):
            run_dbt(["run-operation", "no_such_macro"], quiet=True)
        assert child.returncode != 0


def test_an_unused_or_mismatched_dbt_started_ahead_exits_at_the_end_of_the_block(
    private_target: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    with dbt_ahead.started_ahead(dbt_environment(), str(DBT_PROJECT_DIR)) as unused:
        pass
    assert unused.returncode == 0
    with dbt_ahead.started_ahead(dbt_environment(), str(DBT_PROJECT_DIR)) as mismatched:
        monkeypatch.setenv("KMP_TEST_OTHER", "1")  # not read by dbt: still the same environment to it
        monkeypatch.setenv("DBT_TEST_OTHER", "1")  # this process's dbt environment changed since
        assert "DBT_TEST_OTHER" in os.environ
        assert _names(run_dbt(LIST, quiet=True))
        assert mismatched.poll() is None  # not used: still waiting
    assert mismatched.returncode == 0
