"""What the service keeps in memory: the champion model and the feature rows it looks requests up in.

Both are read from the warehouse and refreshed in the background, so a request never waits for the
database and the service keeps answering while the database is down:
- `ModelHolder` loads the champion of `ml.model_registry` at start and checks every few seconds
  whether another version became the champion; it then loads that one and swaps it in.
- `FeatureCache` holds whole days of the features mart (`marts.fct_sales_features`, read with the
  same query batch scoring uses, so online and batch see identical inputs). It is filled at start
  with the days the service is likely to be asked for (the future days of the forecast requests and
  the last weeks), reads a day it doesn't hold when first asked, and reloads a day older than its
  time to live when the database answers.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
import psycopg
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from models_ml.features import FEATURES_SCHEMA, FEATURES_TABLE, read_features, table_exists
from models_ml.registry import load_model
from models_ml.service.request_log import FEATURE_COLUMNS
from models_ml.service.tables import PROMOTION, PredictionTable

Connect = Callable[[], psycopg.Connection]
log = logging.getLogger("salesmon.service")


class DatabaseUnavailable(RuntimeError):
    """The warehouse is needed for this request (a day not in memory) and does not answer."""


@dataclass(frozen=True)
class LoadedModel:
    version: str
    pipeline: Pipeline
    features: list[str]

    def predict(self, rows: pd.DataFrame) -> np.ndarray:
        """Predictions clipped at zero, exactly as batch scoring writes them."""
        return np.clip(np.asarray(self.pipeline.predict(rows[self.features]), dtype=np.float64), 0, None)


class ModelHolder:
    """The champion model, swapped for a new champion without a restart."""

    def __init__(
        self,
        connect: Connect,
        *,
        check_every: float = 5.0,
        prepare: Callable[[LoadedModel], None] | None = None,
    ) -> None:
        self._connect = connect
        self.check_every = check_every
        self._prepare = prepare  # runs before a model is swapped in (the service builds its tables)
        self.current: LoadedModel | None = None
        self.last_error: str | None = None

    def load(self) -> bool:
        """Load the champion if it is not the one in memory; True when a model is loaded afterwards."""
        try:
            with self._connect() as conn:
                row = conn.execute("select model_version from ml.model_registry where is_champion").fetchone()
                if row is None:
                    self.last_error = "no champion in ml.model_registry: run `salesmon train` first"
                    return self.current is not None
                if self.current is None or self.current.version != row[0]:
                    version, pipeline, features = load_model(row[0], conn=conn)
                    previous = self.current.version if self.current else None
                    loaded = LoadedModel(version, pipeline, features)
                    if self._prepare is not None:
                        self._prepare(loaded)
                    self.current = loaded
                    log.info("champion %s loaded (was %s)", version, previous)
        except (psycopg.Error, OSError) as exc:
            self.last_error = f"cannot read the model registry: {exc.__class__.__name__}"
            return self.current is not None
        self.last_error = None
        return True


@dataclass(frozen=True)
class DayRows:
    """One day of feature rows and where each (store_nbr, family) is among them.

    `logged` holds each row's features as the request log stores them (all but onpromotion, which
    the request gives); `tables` the prediction tables built for it, by model version.
    """

    frame: pd.DataFrame
    positions: dict[tuple[int, str], int]
    logged: list[list[Any]]
    tables: dict[str, PredictionTable] = field(default_factory=dict)


class BatchingPredictor:
    """One model call for every request waiting: requests queue their rows, one thread predicts.

    While the model predicts one batch, the next requests queue up; the thread then takes all of
    them at once (up to `max_rows`). A lone request waits for nobody; under load, a model call's
    fixed cost (input checks, the column transformer, a pass over the trees) is paid once per batch
    instead of once per request. Each answer carries the version that computed it.
    """

    def __init__(self, holder: ModelHolder, *, max_rows: int = 4_096) -> None:
        self._holder = holder
        self.max_rows = max_rows
        self._jobs: queue.Queue[tuple[pd.DataFrame, Future] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="predictor", daemon=True)
        self._thread.start()

    def predict(self, rows: pd.DataFrame) -> tuple[str, np.ndarray]:
        """The model version and its predictions for `rows` (blocks until computed)."""
        future: Future = Future()
        self._jobs.put((rows, future))
        return future.result()

    def close(self) -> None:
        self._jobs.put(None)
        self._thread.join(10)

    def _run(self) -> None:
        # One OpenMP thread for this thread's model calls (OpenMP's thread count is per calling
        # thread): on a batch of a few rows, the gradient-boosting predictor's parallel region per
        # tree costs far more than it saves, worst of all on a busy machine.
        threadpool_limits(1)
        while True:
            job = self._jobs.get()
            if job is None:
                return
            jobs, size = [job], len(job[0])
            while size < self.max_rows:
                try:
                    more = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._jobs.put(None)
                    break
                jobs.append(more)
                size += len(more[0])
            self._predict(jobs)

    def _predict(self, jobs: list[tuple[pd.DataFrame, Future]]) -> None:
        model = self._holder.current
        try:
            if model is None:
                raise RuntimeError("no model is loaded")
            frame = jobs[0][0] if len(jobs) == 1 else pd.concat([rows for rows, _ in jobs], ignore_index=True)
            predictions = model.predict(frame)
        except Exception as exc:  # every waiting request gets the error, the thread goes on
            for _, future in jobs:
                future.set_exception(exc)
            return
        start = 0
        for rows, future in jobs:
            future.set_result((model.version, predictions[start : start + len(rows)]))
            start += len(rows)


class FeatureCache:
    """Whole days of feature rows, indexed by (store_nbr, family)."""

    def __init__(self, connect: Connect, *, max_days: int = 400, time_to_live: float = 300.0) -> None:
        self._connect = connect
        self.max_days = max_days
        self.time_to_live = time_to_live
        self._days: OrderedDict[date, tuple[float, DayRows]] = OrderedDict()
        self._lock = threading.Lock()
        self.stores: set[int] = set()
        self.families: set[str] = set()
        self.first_day: date | None = None
        self.last_day: date | None = None

    def preload(self, recent_days: int = 28) -> int:
        """Read the range of the mart and its last `recent_days` days with sales plus every later day."""
        with self._connect() as conn:
            if not table_exists(conn):
                return 0
            first, last, last_actual = conn.execute(
                f"select min(sales_date), max(sales_date), max(sales_date) filter (where sales is not null)"
                f" from {FEATURES_SCHEMA}.{FEATURES_TABLE}"
            ).fetchone()
            self.first_day, self.last_day = first, last
            if last is None:
                return 0
            start = max(first, (last_actual or last) - timedelta(days=recent_days - 1))
            frame = read_features(conn, start, last)
        loaded = time.monotonic()
        for day, rows in frame.groupby("sales_date", sort=True):
            self._keep(pd.Timestamp(day).date(), rows, loaded)
        return len(frame)

    def held(self, day: date) -> DayRows | None:
        """The day's rows if they are in memory and fresh; None otherwise (never reads the mart)."""
        with self._lock:
            held = self._days.get(day)
            if held is not None:
                self._days.move_to_end(day)
        if held is not None and time.monotonic() - held[0] < self.time_to_live:
            return held[1]
        return None

    def held_days(self) -> list[DayRows]:
        """Every day in memory, fresh or not."""
        with self._lock:
            return [rows for _, rows in self._days.values()]

    def day(self, day: date) -> DayRows | None:
        """The day's rows (None when the mart has none), from memory or, when absent or old, the mart."""
        fresh = self.held(day)
        if fresh is not None:
            return fresh
        with self._lock:
            held = self._days.get(day)
        try:
            with self._connect() as conn:
                frame = read_features(conn, day, day)
        except (psycopg.Error, OSError) as exc:
            if held is not None:
                return held[1]  # stale is better than nothing while the database is down
            raise DatabaseUnavailable(
                f"the features of {day} are not in memory and the database does not answer"
            ) from exc
        if frame.empty:
            return None
        return self._keep(day, frame, time.monotonic())

    def _keep(self, day: date, rows: pd.DataFrame, loaded: float) -> DayRows:
        rows = rows.reset_index(drop=True)
        keys = zip(rows["store_nbr"].astype(int), rows["family"].astype(str), strict=True)
        held = DayRows(rows, {key: position for position, key in enumerate(keys)}, logged_features(rows))
        with self._lock:
            self._days[day] = (loaded, held)
            self._days.move_to_end(day)
            while len(self._days) > self.max_days:
                self._days.popitem(last=False)
            self.stores.update(int(store) for store in rows["store_nbr"].unique())
            self.families.update(str(family) for family in rows["family"].unique())
            if self.first_day is None or day < self.first_day:
                self.first_day = day
            if self.last_day is None or day > self.last_day:
                self.last_day = day
        return held


_INTEGER_FEATURES = {"onpromotion", "cluster", "day_of_week", "day_of_month", "month"}
_BOOLEAN_FEATURES = {
    "is_payday",
    "is_national_holiday",
    "is_regional_holiday",
    "is_local_holiday",
    "is_work_day",
}
assert FEATURE_COLUMNS[0] == PROMOTION  # the one logged feature a request gives


def logged_features(rows: pd.DataFrame) -> list[list[Any]]:
    """Each row's features after onpromotion, as JSON-ready values for the request log."""
    names = FEATURE_COLUMNS[1:]
    values = rows[list(names)].to_numpy(dtype=object)
    return [[feature_value(name, value) for name, value in zip(names, row, strict=True)] for row in values]


def feature_value(name: str, value: Any) -> Any:
    """A feature as the request log stores it: None for missing, bool, int, text or float."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if name in _BOOLEAN_FEATURES:
        return bool(value)
    if name in _INTEGER_FEATURES:
        return int(value)
    if isinstance(value, str):
        return value
    return float(value)
