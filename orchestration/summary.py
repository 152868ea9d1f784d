"""What a monitoring run reports: its markdown artifact and the coverage line of the command."""

from __future__ import annotations

from datetime import date
from typing import Any

from monitoring.planning import RunSummary

COVERAGE_STATUSES = ("computed", "failed", "running", "not_monitored")


class MonitoringFailed(RuntimeError):
    """Days failed (or the dbt build of the marts did), raised by `monitor_days` once the other days
    are stored, the marts built and the summary written. `result` is what the flow would have
    returned, with the failed days and their errors (the command line prints it)."""

    def __init__(self, message: str, result: dict[str, Any]) -> None:
        super().__init__(message, result)
        self.result = result

    def __str__(self) -> str:
        return str(self.args[0])


def summary_markdown(
    summary: RunSummary,
    start: date,
    end: date,
    alerts: dict[str, int] | None,
    task_runner: str,
    workers: int,
    coverage: dict[str, int] | None = None,
) -> str:
    """The run's markdown artifact: counts, failed days, drifted days, alerts, coverage of the range."""
    drifted = sorted(result.day.isoformat() for result in summary.results if result.prediction_drift_detected)
    computed = summary.days("computed")
    failed = summary.days("failed")
    mean_seconds = sum(result.seconds for result in computed) / len(computed) if computed else 0.0
    lines = [
        f"# Monitoring {start} .. {end}",
        "",
        f"Model version `{summary.model_version}`, task runner `{task_runner}` with {workers} workers, "
        f"{summary.seconds:.1f} s in all ({mean_seconds:.2f} s per computed day).",
        "",
        "| days | count |",
        "|---|---|",
        f"| computed | {len(computed)} |",
        f"| skipped (already done) | {len(summary.days('skipped'))} |",
        f"| without predictions | {len(summary.days('no_data'))} |",
        f"| failed | {len(failed)} |",
        f"| with prediction drift | {len(drifted)} |",
        "",
    ]
    if failed:
        lines += [
            "## Failed days",
            "",
            "Not monitored by this run (named in `marts.fct_monitoring_coverage_daily`); the next run"
            " over the range computes them again.",
            "",
            *(f"- {result.day}: {result.error}" for result in failed),
            "",
        ]
    if drifted:
        lines += [f"Prediction drift on: {', '.join(drifted)}", ""]
    if alerts is None:
        lines.append("Alerts: marts.fct_alerts does not exist yet.")
    else:
        total = sum(alerts.values())
        per_severity = (
            ", ".join(f"{severity} {count}" for severity, count in sorted(alerts.items())) or "none"
        )
        lines.append(f"Alerts in marts.fct_alerts for the range: {total} ({per_severity}).")
    if coverage is not None:
        lines += [
            "",
            f"Coverage of the range in marts.fct_monitoring_coverage_daily: {render_coverage(coverage)}.",
        ]
    return "\n".join(lines) + "\n"


def render_coverage(coverage: dict[str, int]) -> str:
    """'88 computed, 2 failed' from days per monitoring status (statuses in their usual order)."""
    ordered = [status for status in COVERAGE_STATUSES if status in coverage]
    ordered += sorted(status for status in coverage if status not in COVERAGE_STATUSES)
    return ", ".join(f"{coverage[status]} {status.replace('_', ' ')}" for status in ordered) or "no days"


def run_result(
    summary: RunSummary,
    source: str,
    alerts: dict[str, int] | None,
    coverage: dict[str, int] | None,
    notifications: dict[str, Any] | None,
    marts_error: str | None,
    calibration_error: str | None,
) -> dict[str, Any]:
    """What `monitor_days` returns (and `MonitoringFailed.result` holds): the days by status, the
    failed days with their errors, the range's alerts and coverage, what was sent, what failed."""
    return {
        "model_version": summary.model_version,
        "source": source,
        "computed": [day.day.isoformat() for day in summary.days("computed")],
        "skipped": [day.day.isoformat() for day in summary.days("skipped")],
        "no_data": [day.day.isoformat() for day in summary.days("no_data")],
        "failed": [{"day": day.day.isoformat(), "error": day.error or ""} for day in summary.days("failed")],
        "alerts": alerts,
        "coverage": coverage,
        "notifications": notifications,
        "marts_error": marts_error,
        "calibration_error": calibration_error,
        "seconds": summary.seconds,
    }


def run_problems(
    summary: RunSummary, build_marts: bool, marts_error: str | None, calibration_error: str | None
) -> list[str]:
    """What went wrong in a run, a sentence each (empty when nothing did)."""
    failed = summary.days("failed")
    problems = []
    if failed:
        details = "; ".join(f"{day.day}: {day.error}" for day in failed[:5])
        more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
        problems.append(f"{len(failed)} days failed ({details}{more})")
    if marts_error:
        problems.append(f"the dbt build of the metrics mart failed: {marts_error}")
    elif build_marts and (failed or calibration_error):
        problems.append("the marts were built from the days that succeeded")
    if calibration_error:
        problems.append(
            f"calibrating {summary.model_version} failed, so nothing can alert"
            f" (retry with salesmon calibrate): {calibration_error}"
        )
    return problems
