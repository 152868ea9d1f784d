"""Batch scoring: predict a date range from the features table and upsert into ml.predictions.

Long ranges run in chunks of one calendar month: each chunk is one COPY read, one predict, one
COPY into a temporary table and one `insert ... on conflict do update` in its own transaction, so
a rescored day replaces its rows (one row per day, store, family and model version) and an
interrupted run keeps the months it finished. Reading the next month, predicting this one and
writing the previous one overlap (two connections, two helper threads).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd
import psycopg
from threadpoolctl import threadpool_limits

from models_ml.errors import FIRST_BUILD_HINT, ModelError
from models_ml.features import FEATURES_SCHEMA, FEATURES_TABLE, count_rows, read_features, require_table
from models_ml.pipelines import threads_for
from models_ml.registry import copy_frame, load_model

Progress = Callable[[str], None]
PREDICTION_COLUMNS: tuple[str, ...] = ("sales_date", "store_nbr", "family", "model_version", "prediction")


@dataclass(frozen=True)
class ScoreResult:
    """What a scoring run wrote: the model version, the range, rows and chunks, and how long it took."""

    model_version: str
    start: date
    end: date
    rows: int
    chunks: int
    seconds: float

    def render(self) -> str:
        """One line for `salesmon score`."""
        rate = self.rows / self.seconds if self.seconds else 0.0
        return (
            f"scored {self.rows:,} rows {self.start} .. {self.end} with {self.model_version} "
            f"in {self.chunks} chunk(s), {self.seconds:.1f} s ({rate:,.0f} rows/s)"
        )


def month_chunks(start: date, end: date) -> Iterator[tuple[date, date]]:
    """Split `start`..`end` (inclusive) into calendar-month pieces, clipped to the range."""
    chunk_start = start
    while chunk_start <= end:
        next_month = (chunk_start.replace(day=1) + timedelta(days=32)).replace(day=1)
        chunk_end = min(end, next_month - timedelta(days=1))
        yield chunk_start, chunk_end
        chunk_start = chunk_end + timedelta(days=1)


def score(
    start: date,
    end: date,
    model_version: str | None = None,
    *,
    progress: Progress | None = None,
) -> ScoreResult:
    """Score every feature row from `start` to `end` (inclusive) and upsert the predictions.

    Uses the champion when `model_version` is None. Writes `ml.predictions` (sales_date,
    store_nbr, family, model_version, prediction, scored_at), one calendar month per transaction;
    scoring a range again replaces its rows and refreshes `scored_at`. Raises `ModelError` when the
    range is reversed, the features table is missing or empty for the range, the version is unknown
    or no model is trained yet.
    """
    if end < start:
        raise ModelError(f"the end date {end} is before the start date {start}")
    say = progress or (lambda _message: None)
    started = time.monotonic()
    from warehouse.db import connect

    # A three-stage pipeline over the months: a reader thread COPYs the next month out (its own
    # connection) while this thread predicts the current one and a writer thread upserts the previous
    # one (autocommit connection: each month's `conn.transaction()` is a real transaction).
    with (
        connect(autocommit=True) as conn,
        connect(autocommit=True) as reader,
        ThreadPoolExecutor(1, thread_name_prefix="score-read") as reads,
        ThreadPoolExecutor(1, thread_name_prefix="score-write") as writes,
    ):
        require_table(conn)
        version, model, features = load_model(model_version, conn=conn)
        if count_rows(conn, start, end) == 0:
            raise ModelError(
                f"no rows in {FEATURES_SCHEMA}.{FEATURES_TABLE} between {start} and {end}: {FIRST_BUILD_HINT}"
            )
        chunks = list(month_chunks(start, end))
        total = 0
        next_read = reads.submit(read_features, reader, *chunks[0])
        last_write: tuple[Future[int], str] | None = None
        for number, (chunk_start, chunk_end) in enumerate(chunks, start=1):
            label = f"[{number}/{len(chunks)}] {chunk_start} .. {chunk_end}"
            frame = next_read.result()
            if number < len(chunks):
                next_read = reads.submit(read_features, reader, *chunks[number])
            if frame.empty:
                say(f"{label}: no feature rows, skipped")
                continue
            with threadpool_limits(threads_for(len(frame))):
                prediction = model.predict(frame[features])
            if last_write is not None:
                total += _finish(last_write, say, started)
            last_write = (writes.submit(write_predictions, conn, frame, prediction, version), label)
        if last_write is not None:
            total += _finish(last_write, say, started)
    return ScoreResult(
        model_version=version,
        start=start,
        end=end,
        rows=total,
        chunks=len(chunks),
        seconds=time.monotonic() - started,
    )


def _finish(write: tuple[Future[int], str], say: Progress, started: float) -> int:
    """Wait for one month's upsert, report it, and return its row count."""
    future, label = write
    written = future.result()
    say(f"{label}: {written:,} rows written ({time.monotonic() - started:.1f} s so far)")
    return written


def write_predictions(
    conn: psycopg.Connection, frame: pd.DataFrame, prediction: np.ndarray, version: str
) -> int:
    """Upsert one chunk's predictions in one transaction: COPY into a temp table, then one insert.

    `frame` holds the key columns (sales_date, store_nbr, family) of the rows `prediction` scores.
    """
    rows = frame[["sales_date", "store_nbr", "family"]].assign(
        model_version=version, prediction=np.clip(np.asarray(prediction, dtype=np.float64), 0, None)
    )
    with conn.transaction():
        conn.execute(
            """
            create temp table if not exists predictions_batch (
                sales_date date not null,
                store_nbr integer not null,
                family text not null,
                model_version text not null,
                prediction double precision not null
            ) on commit delete rows
            """
        )
        copy_frame(conn, "pg_temp.predictions_batch", rows, PREDICTION_COLUMNS)
        conn.execute(
            """
            insert into ml.predictions (
                sales_date, store_nbr, family, model_version, prediction, scored_at
            )
            select sales_date, store_nbr, family, model_version, prediction, now()
            from predictions_batch
            on conflict (sales_date, store_nbr, family, model_version) do update
            set prediction = excluded.prediction,
                scored_at = excluded.scored_at
            """
        )
    return len(rows)


# The features of a day read the sales of the 28 days before it (fct_sales_features' lookback_days):
# a changed day changes the features of the days up to 28 after it.
LOOKBACK_DAYS = 28

_STALE_DAYS_SQL = """
with scored as (
    select sales_date, min(scored_at) as scored_at
    from ml.predictions
    where model_version = %(model_version)s
    group by sales_date
),

rebuilt as (
    select day, max(features_built_at) as built_at
    from raw.changed_days
    where features_built_at is not null and (rows_inserted > 0 or (replaced and rows_changed > 0))
    group by day
)

select scored.sales_date
from scored
inner join rebuilt
    on scored.sales_date between rebuilt.day and rebuilt.day + %(lookback)s
group by scored.sales_date, scored.scored_at
having max(rebuilt.built_at) > scored.scored_at
order by scored.sales_date
"""


def stale_days(conn: psycopg.Connection, model_version: str) -> list[date]:
    """Days with predictions of `model_version` whose features were rebuilt after they were scored:
    days a load inserted or replaced rows of (raw.changed_days), or up to LOOKBACK_DAYS after one,
    once the features model has rebuilt them (features_built_at)."""
    rows = conn.execute(_STALE_DAYS_SQL, {"model_version": model_version, "lookback": LOOKBACK_DAYS})
    return [day for (day,) in rows]


def day_ranges(days: list[date]) -> list[tuple[date, date]]:
    """Sorted days as runs of consecutive days: [(first, last), ...]."""
    ranges: list[tuple[date, date]] = []
    for day in days:
        if ranges and day == ranges[-1][1] + timedelta(days=1):
            ranges[-1] = (ranges[-1][0], day)
        else:
            ranges.append((day, day))
    return ranges


def rescore_changed(
    model_version: str | None = None, *, progress: Progress | None = None
) -> list[ScoreResult]:
    """Score again the days whose inputs changed since they were scored (see `stale_days`), with the
    champion or `model_version`; the next monitoring run then recomputes those days, whose slice
    signature (scoring time, actuals) has changed. Returns one result per run of consecutive days."""
    from models_ml.registry import champion_version
    from warehouse.db import connect

    with connect() as conn:
        version = model_version or champion_version(conn)
        if version is None:
            raise ModelError("no champion in ml.model_registry: train a model first (salesmon train)")
        days = stale_days(conn, version)
    return [score(first, last, version, progress=progress) for first, last in day_ranges(days)]
