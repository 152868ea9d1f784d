"""The state behind the service's endpoints: model, features, prediction tables, request log, metrics.

A request's answer comes from memory whenever it can: the cached day's row for each item and that
day's prediction table for the champion (`tables.TreeTables`), then the log rows go into the
request log's queue. That path touches no database, no pandas and no thread, so the endpoint runs it
on the event loop (`Service.answer(..., blocking=False)`). When something is not in memory (a day
not held or too old, a table not built yet, a model that has no tables), it answers None and the
endpoint calls again with `blocking=True` in a worker thread, which reads the mart, builds the
table or predicts through the pipeline (`state.BatchingPredictor`).
"""

from __future__ import annotations

import gc
import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.concurrency import run_in_threadpool

from models_ml.service.metrics import LogCollector
from models_ml.service.request_log import FEATURE_COLUMNS, InlineRequestLog, RequestLog, Row
from models_ml.service.schemas import PredictItem, Problem
from models_ml.service.state import (
    BatchingPredictor,
    DayRows,
    FeatureCache,
    LoadedModel,
    ModelHolder,
)
from models_ml.service.tables import PredictionTable, TreeTables

log = logging.getLogger("salesmon.service")


@dataclass
class ServiceConfig:
    """How the service reaches the warehouse and where it keeps what the database could not take."""

    conninfo: str
    spill_dir: Path
    check_every: float = 5.0  # seconds between checks for a new champion
    preload_days: int = 28
    log_mode: str = "batched"  # "inline" inserts inside each request: the benchmark's baseline


class InputProblem(Exception):
    """A request that parsed but names something the service cannot forecast."""

    def __init__(self, found: list[Problem]) -> None:
        super().__init__("; ".join(f"{item.field}: {item.problem}" for item in found))
        self.found = found


class ModelUnavailable(RuntimeError):
    """No model is loaded (yet): the service answers 503."""


@dataclass(frozen=True)
class Answer:
    version: str
    predictions: list[float]
    log_rows: list[Row]


class Service:
    """The state behind the endpoints: model, features, request log, metrics."""

    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        self.model = ModelHolder(self.connect, check_every=config.check_every, prepare=self._prepare)
        self.predictor: BatchingPredictor | None = None
        self.features = FeatureCache(self.connect)
        self.log: RequestLog | InlineRequestLog = (
            InlineRequestLog(self.connect)
            if config.log_mode == "inline"
            else RequestLog(self.connect, config.spill_dir)
        )
        self._compiled: dict[str, TreeTables | None] = {}  # by model version; None: no tables
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "salesmon_requests", "HTTP requests answered", ["endpoint", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "salesmon_request_latency_seconds",
            "Time to answer a request",
            ["endpoint"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=self.registry,
        )
        self.errors = Counter(
            "salesmon_request_errors",
            "Requests not answered with forecasts",
            ["kind"],
            registry=self.registry,
        )
        self.items = Counter("salesmon_predicted_items", "Items forecast", registry=self.registry)
        self.registry.register(LogCollector(self))
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(self.config.conninfo, connect_timeout=3)

    def start(self) -> None:
        self.predictor = BatchingPredictor(self.model)
        try:
            rows = self.features.preload(self.config.preload_days)
            log.info("%s feature rows in memory", f"{rows:,}")
        except (psycopg.Error, OSError) as exc:
            log.warning("features not preloaded (%s): days are read when first asked", exc)
        self.model.load()  # after the features: the model's tables are built for the days held
        # What start loaded (model, features, tables: ~190,000 objects) lives as long as the process:
        # out of the cyclic garbage collector's sight, or one full collection pauses every request
        # for 0.2 s (measured here). Objects made later are collected as usual.
        gc.freeze()
        self.log.start()
        self._watcher = threading.Thread(target=self._watch, name="champion-watcher", daemon=True)
        self._watcher.start()

    def stop(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(5)
        self.log.close()
        if self.predictor is not None:
            self.predictor.close()

    def _watch(self) -> None:
        while not self._stop.wait(self.config.check_every):
            try:
                self.model.load()
            except Exception:  # the watcher outlives any one bad check; the model in memory stays
                log.exception("checking for a new champion failed")

    def database_up(self) -> bool:
        try:
            with psycopg.connect(self.config.conninfo, connect_timeout=2) as conn:
                conn.execute("select 1")
        except (psycopg.Error, OSError):
            return False
        return True

    # --- prediction tables -----------------------------------------------------------------------

    def _compile(self, model: LoadedModel, sample: pd.DataFrame) -> TreeTables | None:
        if model.version not in self._compiled:
            self._compiled[model.version] = TreeTables.build(
                model.version, model.pipeline, model.features, sample
            )
        return self._compiled[model.version]

    def _prepare(self, model: LoadedModel) -> None:
        """Build a new champion's tables for every day in memory, before it is swapped in."""
        days = self.features.held_days()
        if not days:
            return
        started = time.perf_counter()
        try:
            compiled = self._compile(model, days[0].frame)
            if compiled is None:
                return
            tables = compiled.tables([day.frame for day in days])
        except Exception:  # the tables only save time: without them the pipeline answers
            log.exception("prediction tables of %s not built", model.version)
            self._compiled[model.version] = None
            return
        current = self.model.current
        keep = {model.version, current.version if current else model.version}
        for day, table in zip(days, tables, strict=True):
            for version in [version for version in day.tables if version not in keep]:
                day.tables.pop(version, None)
            day.tables[model.version] = table
        for version in [version for version in self._compiled if version not in keep]:
            self._compiled.pop(version, None)
        log.info(
            "prediction tables of %s for %d days built in %.1f s",
            model.version,
            len(tables),
            time.perf_counter() - started,
        )

    def _table(self, model: LoadedModel, day: DayRows, *, build: bool) -> PredictionTable | None:
        table = day.tables.get(model.version)
        if table is None and build:
            compiled = self._compile(model, day.frame)
            if compiled is not None:
                table = day.tables[model.version] = compiled.table(day.frame)
        return table

    # --- predicting ------------------------------------------------------------------------------

    def answer(
        self,
        items: list[PredictItem],
        request_id: str,
        received: datetime,
        started: float,
        blocking: bool = True,
    ) -> Answer | None:
        """Predict `items` and make their log rows; None when not `blocking` and memory won't do."""
        located = self._locate(items, blocking=blocking)
        if located is None:
            return None
        model = self.model.current
        if model is None or self.predictor is None:
            raise ModelUnavailable(self.model.last_error or "the model is not loaded yet")
        version = model.version
        predictions: list[float] = []
        for item, (day, position) in zip(items, located, strict=True):
            table = self._table(model, day, build=blocking)
            if table is None:
                break
            predictions.append(table.lookup(position, item.onpromotion))
        else:
            return self._answer(items, located, version, predictions, request_id, received, started)
        if not blocking:
            return None
        frame = pd.concat([day.frame.iloc[[position]] for day, position in located], ignore_index=True)
        frame["onpromotion"] = [float(item.onpromotion) for item in items]
        version, computed = self.predictor.predict(frame)
        return self._answer(items, located, version, computed.tolist(), request_id, received, started)

    def _answer(
        self,
        items: list[PredictItem],
        located: list[tuple[DayRows, int]],
        version: str,
        predictions: list[float],
        request_id: str,
        received: datetime,
        started: float,
    ) -> Answer:
        stamp = received.isoformat()
        latency_ms = round((time.perf_counter() - started) * 1000, 3)
        rows: list[Row] = [
            [
                request_id,
                index,
                stamp,
                "ok",
                None,
                item.model_dump_json(),
                item.date.isoformat(),
                item.store_nbr,
                item.family,
                version,
                prediction,
                latency_ms,
                item.onpromotion,
                *day.logged[position],
            ]
            for index, (item, (day, position), prediction) in enumerate(
                zip(items, located, predictions, strict=True)
            )
        ]
        self.items.inc(len(items))
        return Answer(version, predictions, rows)

    def _locate(self, items: list[PredictItem], *, blocking: bool) -> list[tuple[DayRows, int]] | None:
        """Each item's day and row; InputProblem naming every bad item; None if not in memory."""
        found: list[Problem] = []
        located: list[tuple[DayRows, int]] = []
        single = len(items) == 1
        stores, families = self.features.stores, self.features.families
        for index, item in enumerate(items):
            field, problem = "date", ""
            if stores and item.store_nbr not in stores:
                field = "store_nbr"
                problem = f"unknown store {item.store_nbr} (known: {min(stores)}..{max(stores)})"
            elif families and item.family not in families:
                field = "family"
                problem = f"unknown family {item.family!r} (e.g. {', '.join(sorted(families)[:3])})"
            else:
                day = self.features.day(item.date) if blocking else self.features.held(item.date)
                if day is None and not blocking:
                    return None
                position = None if day is None else day.positions.get((item.store_nbr, item.family))
                if day is not None and position is not None:
                    located.append((day, position))
                    continue
                span = (
                    f"the features mart holds {self.features.first_day} .. {self.features.last_day}"
                    if self.features.first_day
                    else "the features mart is empty"
                )
                what = "" if day is None else f" for store {item.store_nbr}, {item.family}"
                problem = f"no features for {item.date}{what}: {span}"
            found.append(Problem(field=field if single else f"items[{index}].{field}", problem=problem))
        if found:
            raise InputProblem(found)
        return located

    # --- the request log -------------------------------------------------------------------------

    async def submit(self, rows: list[Row]) -> None:
        """Hand log rows over: a queue put, or (the inline variant) an insert in a worker thread."""
        if isinstance(self.log, InlineRequestLog):
            await run_in_threadpool(self.log.submit, rows)
        else:
            self.log.submit(rows)

    def rejected_row(
        self, request_id: str, received: datetime, body: str, reason: str, started: float
    ) -> Row:
        """The log row of a rejected request: its body and the reason, no features."""
        row: list[Any] = [None] * (12 + len(FEATURE_COLUMNS))
        row[:6] = [
            request_id,
            0,
            received.isoformat(),
            "rejected",
            reason[:2_000],
            json.dumps({"body": body}),
        ]
        row[11] = round((time.perf_counter() - started) * 1000, 3)
        return row


__all__ = ["Answer", "InputProblem", "ModelUnavailable", "Service", "ServiceConfig"]
