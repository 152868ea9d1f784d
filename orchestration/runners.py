"""The Prefect task runners the monitoring flow fans out on (light: imported by the command line
before anything heavy, to check its options)."""

from __future__ import annotations

from typing import Any

TASK_RUNNERS = ("process", "dask", "thread")


def make_task_runner(kind: str, workers: int, dask_address: str | None = None) -> Any:
    """The Prefect task runner named by `kind` with `workers` workers (see the module's docstring)."""
    workers = max(1, workers)
    if kind == "process":
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
