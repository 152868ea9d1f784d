"""The Prefect task runners the monitoring flow fans out on (light: imported by the command line
before anything heavy, to check its options)."""

from __future__ import annotations

from typing import Any

TASK_RUNNERS = ("auto", "process", "dask", "thread")
# What a spawned worker of the process pool costs before its first day: a fresh interpreter importing
# Prefect and Evidently, 5 to 10 s on this 2-core machine; and what a day costs once it runs
# (docs/monitoring.md, "Cost"): about 0.1 s for its values, 0.4 s with the workspace's snapshot, 1.3 s
# with a drawn HTML report.
WORKER_START_SECONDS = 8.0
DAY_SECONDS = {"values": 0.1, "workspace": 0.4, "html": 1.3}


def compute_in_process(days: int, workers: int, *, workspace: bool, html: bool) -> bool:
    """Whether the process pool would not pay for itself: the days' serial time saved by `workers`
    processes is less than a worker's start, so the flow computes them in its own process."""
    per_day = DAY_SECONDS["html" if html else "workspace" if workspace else "values"]
    saved = days * per_day * (1 - 1 / max(1, workers))
    return saved <= WORKER_START_SECONDS


def make_task_runner(kind: str, workers: int, dask_address: str | None = None) -> Any:
    """The Prefect task runner named by `kind` with `workers` workers (see the module's docstring)."""
    workers = max(1, workers)
    if kind in ("auto", "process"):
        from prefect.task_runners import ProcessPoolTaskRunner

        from monitoring.report import warm_up

        return ProcessPoolTaskRunner(max_workers=workers, initializer=warm_up)
    if kind == "thread":
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=workers)
    if kind == "dask":
        try:
            from prefect_dask import DaskTaskRunner
        except ImportError as exc:
            raise ValueError(
                "task_runner 'dask' needs prefect-dask: pip install -e '.[dask]' (make install does)"
            ) from exc
        if dask_address:
            return DaskTaskRunner(address=dask_address)
        return DaskTaskRunner(
            cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "processes": True}
        )
    raise ValueError(f"unknown task_runner {kind!r}; expected one of {', '.join(TASK_RUNNERS)}")
