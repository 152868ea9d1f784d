"""What a monitoring run reports from the metrics mart dbt built after it (marts.*): the alerts per
severity and the days per monitoring status of the range, or None while the mart does not exist."""

from __future__ import annotations

from datetime import date

import psycopg
from psycopg import sql

MARTS_SCHEMA = "marts"


def _counts(
    conn: psycopg.Connection, table: str, column: str, conditions: dict[str, object], start: date, end: date
) -> dict[str, int] | None:
    """Rows of `marts.<table>` per value of `column` with slice_date from `start` to `end` and each
    condition column equal to its value; None when the table does not exist (no dbt build yet)."""
    if conn.execute("select to_regclass(%s)", (f"{MARTS_SCHEMA}.{table}",)).fetchone()[0] is None:
        return None
    query = sql.SQL(
        "select {column}, count(*) from {table} where slice_date between %s and %s{more} group by {column}"
    )
    more = sql.SQL("").join(sql.SQL(" and {} = %s").format(sql.Identifier(name)) for name in conditions)
    rows = conn.execute(
        query.format(column=sql.Identifier(column), table=sql.Identifier(MARTS_SCHEMA, table), more=more),
        (start, end, *conditions.values()),
    ).fetchall()
    return {str(value): int(count) for value, count in rows}


def alert_counts(
    conn: psycopg.Connection, start: date, end: date, model_version: str, source: str = "batch"
) -> dict[str, int] | None:
    """Alerts per severity in marts.fct_alerts for the range, or None when that mart does not exist."""
    return _counts(
        conn, "fct_alerts", "severity", {"model_version": model_version, "source": source}, start, end
    )


def coverage_counts(
    conn: psycopg.Connection, start: date, end: date, model_version: str
) -> dict[str, int] | None:
    """Days per monitoring status in marts.fct_monitoring_coverage_daily for the range (the batch
    predictions), or None when that mart does not exist."""
    return _counts(
        conn,
        "fct_monitoring_coverage_daily",
        "monitoring_status",
        {"model_version": model_version},
        start,
        end,
    )
