"""The daily deployment (`daily` in prefect.yaml): the whole chain for the days a feed brought.

1. The Kaggle-format files dropped into the landing folder (`landing_dir`: a day's `train.csv`,
   `transactions.csv`, `oil.csv`, ...; any subset of the files) are loaded into raw.* and then moved
   to `landing_dir/loaded/<time>/`, so that a file is loaded once.
2. `dbt build` of everything but the metrics mart (features first).
3. The new days are scored with the champion: the days with sales after the champion's last
   monitored day (from its `monitor_from` on), or the day before `run_date` when it is given.
4. Those days are monitored (`monitor-days`), then the metrics mart is built and the notifications
   are sent.

A run with nothing new in the landing folder and no day left to monitor is a no-op: it loads, builds,
scores and monitors nothing. Bad files stay in the landing folder and fail the run with the
loader's message (rows of files already loaded are kept, as `salesmon load` does).
"""

from __future__ import annotations

import shutil
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from orchestration.flows import monitor_days
from orchestration.tasks import build_marts_except_monitoring, score_task

LOADED = "loaded"

_PENDING_SQL = """
with champion as (
    select model_version, monitor_from from ml.model_registry
    where model_version = %(version)s or (%(version)s::text is null and is_champion)
),

done as (
    select max(runs.slice_date) as last_done
    from monitoring.runs as runs
    inner join champion on runs.model_version = champion.model_version
    where runs.status = 'success' and runs.source = 'batch'
)

select
    champion.model_version,
    greatest(champion.monitor_from, done.last_done + 1),
    (select max(sales_date) from marts.fct_sales_features where sales is not null)
from champion cross join done
"""


class DailyError(RuntimeError):
    """The daily run cannot go on (no champion, a landing folder that does not exist)."""


@task(name="load-landing", cache_policy=NO_CACHE)
def load_landing(landing_dir: str, update: bool = False) -> dict[str, Any]:
    """Load the CSV files of the landing folder (any subset of the Kaggle files) and move them to
    landing/loaded/<time>/; counts of the rows they brought."""
    from warehouse.loader import load_folder

    logger = get_run_logger()
    folder = Path(landing_dir)
    if not folder.is_dir():
        raise DailyError(f"the landing folder {folder} does not exist")
    files = sorted(path for path in folder.iterdir() if path.is_file() and path.suffix == ".csv")
    if not files:
        logger.info(f"no new file in {folder}")
        return {"files": [], "rows_new": 0, "rows_changed": 0, "moved_to": None}
    summary = load_folder(folder, update=update, partial=True, progress=logger.info)
    target = folder / LOADED / datetime.now().strftime("%Y%m%dT%H%M%S%f")
    target.mkdir(parents=True)
    for path in files:
        shutil.move(str(path), target / path.name)
    logger.info(f"loaded {len(files)} files, moved to {target}")
    return {
        "files": [path.name for path in files],
        "rows_new": sum(item.rows_loaded for item in summary.files),
        "rows_changed": sum(item.rows_changed for item in summary.files),
        "moved_to": str(target),
    }


@task(name="pending-days", cache_policy=NO_CACHE)
def pending_days(model_version: str | None) -> tuple[str, date, date] | None:
    """(version, first, last): the champion's days with sales after its last monitored day, or None
    when there is none."""
    from warehouse.db import connect

    with connect() as conn:
        if conn.execute("select to_regclass('marts.fct_sales_features')").fetchone()[0] is None:
            return None
        row = conn.execute(_PENDING_SQL, {"version": model_version}).fetchone()
    if row is None:
        raise DailyError(
            f"no model version {model_version!r} in ml.model_registry"
            if model_version
            else "no champion in ml.model_registry: train one first (salesmon run, or salesmon train)"
        )
    version, first, last = row
    if last is None or first > last:
        return None
    return version, first, last


@task(name="rescore-changed", cache_policy=NO_CACHE)
def rescore_changed_task(model_version: str) -> int:
    """Score again the days whose features the corrections rebuilt; the number of runs of days."""
    from models_ml.score import rescore_changed

    return len(rescore_changed(model_version))


@flow(name="daily")
def daily(
    landing_dir: str | None = None,
    run_date: date | None = None,
    model_version: str | None = None,
    workspace: bool = True,
    update: bool = False,
) -> dict[str, Any]:
    """The day's whole chain: load the landing folder's new files, dbt build, score and monitor the
    new days, the metrics mart and the notifications (see the module's docstring).

    `run_date`: monitor the day before it (default: every day with sales not monitored yet).
    `update`: rows of the files that differ from the stored ones replace them (corrections), and
    the days they change are scored again.
    """
    logger = get_run_logger()
    loaded = load_landing(landing_dir, update) if landing_dir else None
    brought = bool(loaded and (loaded["rows_new"] or (update and loaded["rows_changed"])))
    if loaded is not None and not brought and run_date is None and pending_days(model_version) is None:
        logger.info("nothing new in the landing folder and every day is monitored: nothing to do")
        return {"status": "nothing new", "loaded": loaded, "days": None, "monitoring": None}
    build_marts_except_monitoring()
    if run_date is not None:
        day = run_date - timedelta(days=1)
        span: tuple[str | None, date, date] | None = (model_version, day, day)
    else:
        span = pending_days(model_version)
    if span is None:
        logger.info("no day with sales left to monitor")
        return {"status": "no new day", "loaded": loaded, "days": None, "monitoring": None}
    version, first, last = span
    version = score_task(first, last, version)
    if update and loaded and loaded["rows_changed"]:
        rescore_changed_task(version)
    result = monitor_days(first, last, version, workspace=workspace)
    return {
        "status": "processed",
        "loaded": loaded,
        "days": [first.isoformat(), last.isoformat()],
        "monitoring": result,
    }
