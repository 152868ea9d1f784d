"""`salesmon run` as a user runs it (issue #13): quiet output, a summary that answers, a rerun that
redoes nothing, a user mistake in one line.

Small real data: 6 generated stores, 2017-01-01 .. 2017-07-31, scenario sales_drop from 2017-07-25,
monitored from 2017-07-20 (12 days), against the test warehouse and the session's Prefect server.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import pytest

from tests._fixtures import command_env

pytestmark = pytest.mark.slow

CHANGE = date(2017, 7, 25)
MONITOR_FROM = "2017-07-20"
STEPS = ["warehouse", "data", "load", "dbt build", "train", "score", "monitor"]


@pytest.fixture(scope="module")
def run_env(module_database: str, prefect_harness: str, tmp_path_factory: pytest.TempPathFactory) -> dict:
    from datagen import generate

    home = tmp_path_factory.mktemp("run-home")
    data_dir = tmp_path_factory.mktemp("run-data")
    generate(
        data_dir, stores=6, start=date(2017, 1, 1), end=date(2017, 7, 31), seed=1201,
        scenario="sales_drop", change_date=CHANGE,
    )  # fmt: skip
    env = command_env(module_database, home, prefect_harness)
    return {"env": env, "home": home, "data_dir": data_dir}


def _run(env: dict[str, str], *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    began = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "orchestration.cli", "run", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    return result, time.monotonic() - began


def _step_lines(output: str) -> dict[str, str]:
    return {
        match.group(1).strip(): match.group(2)
        for match in re.finditer(r"^✓ (\w[\w ]*?)\s{2,}(.*)$", output, re.M)
        if match.group(1).strip() in STEPS
    }


def test_run_twice_quiet_with_a_summary_that_names_the_incident(run_env: dict) -> None:
    env, data_dir = run_env["env"], str(run_env["data_dir"])

    first, _ = _run(env, "--data-dir", data_dir, "--monitor-from", MONITOR_FROM)

    assert first.returncode == 0, first.stdout + first.stderr
    output = first.stdout
    steps = _step_lines(output)
    assert list(steps) == STEPS, output
    assert steps["data"].startswith(f"{data_dir} (sales_drop)")
    assert steps["score"].startswith("12 days")
    assert steps["monitor"].startswith("12 days computed, 0 already done")
    assert len(output.splitlines()) <= 40, output  # no dbt node lines, no Prefect lines
    assert " START " not in output and "Flow run" not in output
    assert "monitored   12 days, 2017-07-20 .. 2017-07-31" in output
    # the incident's alert on its first day: the forecast is biased when sales drop
    alerts = re.findall(r"^    (\w+)\s+first (\d{4}-\d\d-\d\d)\s+(warning|critical)", output, re.M)
    assert alerts, output
    assert any(day in (str(CHANGE), "2017-07-26") for _, day, _ in alerts), alerts
    assert "RMSLE" in output and "seasonal-naive" in output
    assert "salesmon report" in output and "salesmon ui" in output and "dbt docs serve" in output
    assert "docker compose" in output
    log = Path(re.search(r"log of this run: (\S+)", output).group(1))
    assert log.parent == run_env["home"] / "logs"
    logged = log.read_text()
    assert " START " in logged and "Flow run" in logged  # dbt's and Prefect's logs went there

    second, _ = _run(env, "--data-dir", data_dir, "--monitor-from", MONITOR_FROM)

    assert second.returncode == 0, second.stdout + second.stderr
    again = _step_lines(second.stdout)
    assert again["load"].startswith("0 new rows")
    assert again["dbt build"].startswith("nothing changed since the last run")
    assert "not retrained" in again["train"]
    assert again["score"].startswith("every day already scored")
    assert again["monitor"].startswith("12 days already done, nothing changed")
    assert len(second.stdout.splitlines()) <= 80
    assert alerts == re.findall(
        r"^    (\w+)\s+first (\d{4}-\d\d-\d\d)\s+(warning|critical)", second.stdout, re.M
    )

    # without --monitor-from, the champion's split is kept: nothing is retrained or recomputed
    third, _ = _run(env, "--data-dir", data_dir)

    assert third.returncode == 0, third.stdout + third.stderr
    steps = _step_lines(third.stdout)
    assert f"exists for monitor_from {MONITOR_FROM}: not retrained" in steps["train"]
    assert steps["monitor"].startswith("12 days already done, nothing changed")


def test_a_scenario_for_data_that_was_not_generated_is_one_line_with_the_log(
    run_env: dict, tmp_path: Path
) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    for name in ("train.csv", "stores.csv", "oil.csv", "holidays_events.csv", "transactions.csv"):
        (folder / name).write_bytes((run_env["data_dir"] / name).read_bytes())

    result, _ = _run(run_env["env"], "--data-dir", str(folder), "--scenario", "promo_shift")

    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    assert "--scenario promo_shift applies to generated data only" in result.stderr
    assert "the log of this run: " + str(run_env["home"] / "logs") in result.stderr
