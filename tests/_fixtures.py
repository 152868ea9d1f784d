"""Warehouses built once per test session and copied for each module that uses them.

Building a small warehouse (generate, load, dbt features mart, train, score) takes 20 to 50 s; copying
a built one is a second: PostgreSQL's `create database X template Y` copies every table, the model
registry (the model's artifact is stored in it) and the predictions. conftest.py builds each template
at most once per session, on first use; a module gets a database of its own copied from it
(`copied_database`), which it may change freely: the template itself is never used after its build.

- The scored warehouse (tests/test_monitor_runs.py, tests/test_concurrency.py): 3 stores, 2017-01-01
  .. 2017-07-18, a model trained for `monitor_from` 2017-06-15, 2017-06-15 .. 2017-07-18 scored.
- The sales-drop warehouse (tests/test_report.py): 6 stores, a sales drop on 2017-07-13, data up to
  2017-07-14 with one rejected line (a negative sale, kept out of raw.train: nothing but the
  rejected-rows mart sees it), the features mart built; no model.
- The same with a model trained for `monitor_from` 2017-07-12 (tests/test_grafana.py,
  tests/test_alert_scenarios.py, whose scenarios share that model: with the same seed, every row
  before the change date is the same in every scenario).
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo


def command_env(database: str, home: Path, prefect_api: str, dbt_root: Path | None = None) -> dict[str, str]:
    """The environment of a user's `salesmon` command run as a subprocess: the test warehouse, a home
    (and so an Evidently workspace) of its own, the session's Prefect server, and private dbt target
    and log folders (under `dbt_root`, default the home)."""
    dbt_root = dbt_root or home
    return {
        **os.environ,
        "SALESMON_DATABASE_URL": database,
        "SALESMON_HOME": str(home),
        "PREFECT_API_URL": prefect_api,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "DBT_TARGET_PATH": str(dbt_root / "dbt-target"),
        "DBT_LOG_PATH": str(dbt_root / "dbt-logs"),
    }


def run_flow_script(folder: Path, source: str, timeout: float) -> subprocess.CompletedProcess[str]:
    """A Prefect flow script (`source`) run as a user without a Prefect API would run it: in a
    process of its own, with salesmon's temporary server and no analytics, the project importable."""
    script = folder / "flow_script.py"
    script.write_text(source)
    env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_API")}
    env |= {
        "SALESMON_PREFECT_SERVER": "temporary",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
    }
    return subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=timeout
    )


# --- the scored warehouse ---------------------------------------------------------------------------

SCORED_STORES = 3
SCORED_START = date(2017, 1, 1)
SCORED_MONITOR_FROM = date(2017, 6, 15)
SCORED_LAST = date(2017, 7, 18)

# --- the sales-drop warehouse -----------------------------------------------------------------------

SALES_DROP_STORES = 6
SALES_DROP_SEED = 31
SALES_DROP_START = date(2017, 1, 1)
SALES_DROP_CHANGE = date(2017, 7, 13)
SALES_DROP_END = SALES_DROP_CHANGE + timedelta(days=1)
SALES_DROP_MONITOR_FROM = SALES_DROP_CHANGE - timedelta(days=1)  # of the trained template's model
REJECTED_LINE = "99999999,2017-07-14,1,GROCERY I,-3.0,0\n"  # a negative sale: rejected


@dataclass(frozen=True)
class Template:
    """A built warehouse to copy: its database name, the generated data folder and the champion."""

    name: str
    data_dir: Path
    model_version: str | None = None


def _dbt_paths(root: Path) -> list[str]:
    return ["--target-path", str(root / "target"), "--log-path", str(root / "logs")]


def build_template(
    server: str, prefix: str, build: Callable[[], Template], *, source: str | None = None
) -> Template:
    """Create a database (empty, or a copy of `source`), run `build` with salesmon pointed at it,
    then make sure nothing stays connected to it, so that it can be copied."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    _create(server, name, source)
    with _salesmon_uses(make_conninfo(server, dbname=name)):
        template = build()
    _disconnect(server, name)
    return Template(name, template.data_dir, template.model_version)


@contextmanager
def copied_database(server: str, template: Template, prefix: str) -> Iterator[str]:
    """A database of the caller's own, copied from `template`, that salesmon uses until the caller
    is done (then dropped)."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    _create(server, name, template.name)
    info = make_conninfo(server, dbname=name)
    try:
        with _salesmon_uses(info):
            yield info
    finally:
        drop_database(server, name)


def _salesmon_uses(info: str) -> AbstractContextManager[Any]:
    """Salesmon's settings, with the warehouse at `info` (the environment is left alone)."""
    from dataclasses import replace

    from warehouse.settings import get_settings, use_settings

    return use_settings(replace(get_settings(), database_url=info))


def _create(server: str, name: str, template: str | None) -> None:
    with psycopg.connect(server, autocommit=True) as conn:
        if template:
            _disconnect(server, template)
            conn.execute(f'create database "{name}" template "{template}"')
        else:
            conn.execute(f'create database "{name}"')


def _disconnect(server: str, name: str) -> None:
    """End every session on database `name` (a copy needs its template unused); in-process callers
    such as dbt's adapter may keep an idle connection open after their work is done."""
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity"
            " where datname = %s and pid <> pg_backend_pid()",
            (name,),
        )


def drop_database(server: str, name: str) -> None:
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


# --- the builds -------------------------------------------------------------------------------------


def build_scored(root: Path) -> Template:
    """Generated data loaded, features mart built, a model trained, the monitored days scored."""
    from datagen import generate
    from models_ml.score import score
    from models_ml.train import train
    from monitoring.slices import clear_reference_cache
    from warehouse.dbt import run_dbt
    from warehouse.loader import load_folder

    data_dir = root / "data"
    generate(data_dir, stores=SCORED_STORES, start=SCORED_START, end=SCORED_LAST, seed=23)
    load_folder(data_dir)
    run_dbt(["run", "--select", "+fct_sales_features", *_dbt_paths(root / "dbt")], quiet=True)
    version = train(SCORED_MONITOR_FROM).champion_version
    score(SCORED_MONITOR_FROM, SCORED_LAST, version)
    clear_reference_cache()
    return Template("", data_dir, version)


def build_sales_drop(root: Path) -> Template:
    """The sales-drop data (and its rejected line) loaded and the features mart built."""
    from datagen import generate
    from warehouse.dbt import run_dbt
    from warehouse.loader import load_folder

    data_dir = root / "data"
    generate(
        data_dir,
        stores=SALES_DROP_STORES,
        start=SALES_DROP_START,
        end=SALES_DROP_END,
        seed=SALES_DROP_SEED,
        scenario="sales_drop",
        change_date=SALES_DROP_CHANGE,
    )
    with open(data_dir / "train.csv", "a") as train_csv:
        train_csv.write(REJECTED_LINE)
    load_folder(data_dir)
    run_dbt(["run", "--select", "+fct_sales_features", *_dbt_paths(root / "dbt")], quiet=True)
    return Template("", data_dir)


def train_for(data_dir: Path, monitor_from: date) -> Callable[[], Template]:
    """A build that trains a champion for `monitor_from` on a copy of a loaded warehouse."""

    def build() -> Template:
        from models_ml.train import train

        return Template("", data_dir, train(monitor_from).champion_version)

    return build
