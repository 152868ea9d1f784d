"""Planning a range of days: which to compute, which are done, which have no predictions, and how to
cut the days to compute into chunks for the task runner.

A day is done when its latest successful run has the same configuration, reference and input
fingerprints (`monitoring.storage.RunKey`); it is then skipped unless forced. The plan is made with
three queries for the whole range, so no task plans again. The outcomes of the days (`DayResult`) and
of a run (`RunSummary`) are here too: the flow and the command line report them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, timedelta

import psycopg

from monitoring.config import DEFAULT_CONFIG, MonitoringConfig
from monitoring.slices import reference_hashes, resolve_model_version, slice_signatures
from monitoring.storage import RunKey, finished_days

# Days per task at most: Prefect's cost per task (a task run, its states and logs) is paid once per
# chunk, and a week's chunk still spreads a 90-day range over 13 tasks for the workers to share.
CHUNK_DAYS = 7


@dataclass(frozen=True)
class DayResult:
    """What happened to one day: computed, skipped (already done), no_data (no predictions) or failed."""

    day: date
    model_version: str
    status: str
    seconds: float
    row_count: int | None = None
    metric_count: int = 0
    prediction_drift_score: float | None = None
    prediction_drift_detected: bool | None = None
    error: str | None = None


@dataclass
class Plan:
    """Which days of a range to compute, which are already done, which have no predictions."""

    model_version: str
    to_compute: list[date]
    skipped: list[date]
    no_data: list[date]
    keys: dict[date, RunKey]


@dataclass
class RunSummary:
    """The outcome of a range: per-day results and the wall time."""

    model_version: str
    results: list[DayResult] = field(default_factory=list)
    seconds: float = 0.0

    def days(self, status: str) -> list[DayResult]:
        """The days with the given status, in date order."""
        return sorted((result for result in self.results if result.status == status), key=lambda r: r.day)

    def render(self) -> str:
        """One line for the command line."""
        counts = {status: len(self.days(status)) for status in ("computed", "skipped", "no_data", "failed")}
        drifted = sum(1 for result in self.results if result.prediction_drift_detected)
        return (
            f"model {self.model_version}: {counts['computed']} days computed, {counts['skipped']} skipped"
            f" (already done), {counts['no_data']} without predictions, {counts['failed']} failed;"
            f" prediction drift on {drifted} days; {self.seconds:.1f} s"
        )


def date_range(start: date, end: date) -> list[date]:
    """Every day from start to end, both included."""
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    return [start + timedelta(days=offset) for offset in range((end - start).days + 1)]


def plan_days(
    conn: psycopg.Connection,
    start: date,
    end: date,
    model_version: str | None = None,
    *,
    force: bool = False,
    config: MonitoringConfig = DEFAULT_CONFIG,
    source: str = "batch",
) -> Plan:
    """Sort the days of a range into to-compute, already-done and no-predictions, with three queries.

    For the 'online' source, a day has data when the request log has answered requests of the version.
    """
    from monitoring import online

    version = resolve_model_version(conn, model_version)
    signed = online.slice_signatures if source == online.ONLINE else slice_signatures
    signatures = signed(conn, version, start, end)
    hashes = reference_hashes(conn, version)
    finished = finished_days(conn, version, start, end, source)
    config_hash = config.config_hash()
    plan = Plan(model_version=version, to_compute=[], skipped=[], no_data=[], keys={})
    for day in date_range(start, end):
        if day not in signatures:
            plan.no_data.append(day)
            continue
        key = RunKey(config_hash, hashes.get(day.isoweekday(), ""), signatures[day])
        plan.keys[day] = key
        if not force and finished.get(day) == key:
            plan.skipped.append(day)
        else:
            plan.to_compute.append(day)
    return plan


def chunks(days: list[date], workers: int, chunk_days: int | None = None) -> list[list[date]]:
    """The days cut into consecutive chunks, one task each: `chunk_days` days, by default the days
    split evenly over the workers but at most `CHUNK_DAYS` (so that a long range still balances
    over the workers: a worker that finishes early takes the next chunk)."""
    days = sorted(days)
    if not days:
        return []
    size = chunk_days or min(CHUNK_DAYS, math.ceil(len(days) / max(1, workers)))
    return [days[offset : offset + size] for offset in range(0, len(days), max(1, size))]


def progress_line(result: DayResult, done: int, total: int) -> str:
    """'2017-06-01 done in 0.6 s (3 of 90)' and the like."""
    word = {"computed": "done", "skipped": "skipped", "no_data": "has no predictions"}.get(
        result.status, "FAILED"
    )
    return f"{result.day.isoformat()} {word} in {result.seconds:.1f} s ({done} of {total})"
