"""The online prediction service: FastAPI over the champion model, the features mart and the request log.

`create_app()` builds the application from a connection string and a folder for spill files;
`salesmon serve` runs it on uvicorn. Endpoints:
- `POST /predict`: one item or `{"items": [...]}`; answers the forecasts, the model version and a
  request id; every answered item and every rejected request is logged to `ml.prediction_log`,
  off the request path (`request_log.RequestLog`).
- `GET /health`: whether the model is loaded and the database reachable (503 without a model).
- `GET /metrics`: Prometheus metrics (requests, latency, errors, the log's queue and spill counters).
- `/docs`: the OpenAPI documentation.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from models_ml.service.metrics import LogCollector
from models_ml.service.request_log import FEATURE_COLUMNS, InlineRequestLog, RequestLog
from models_ml.service.schemas import (
    ErrorResponse,
    PredictBatch,
    PredictItem,
    PredictRequest,
    PredictResponse,
    Problem,
    problems,
)
from models_ml.service.state import BatchingPredictor, DatabaseUnavailable, FeatureCache, ModelHolder

log = logging.getLogger("salesmon.service")
_INTEGER_FEATURES = {"onpromotion", "cluster", "day_of_week", "day_of_month", "month"}
_BOOLEAN_FEATURES = {
    "is_payday",
    "is_national_holiday",
    "is_regional_holiday",
    "is_local_holiday",
    "is_work_day",
}
_REJECTED_BODY_CHARS = 4_000


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


class Service:
    """The state behind the endpoints: model, features, request log, metrics."""

    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        self.model = ModelHolder(self.connect, check_every=config.check_every)
        self.predictor: BatchingPredictor | None = None
        self.features = FeatureCache(self.connect)
        self.log: RequestLog | InlineRequestLog = (
            InlineRequestLog(self.connect)
            if config.log_mode == "inline"
            else RequestLog(self.connect, config.spill_dir)
        )
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
        self.model.load()
        try:
            rows = self.features.preload(self.config.preload_days)
            log.info("%s feature rows in memory", f"{rows:,}")
        except (psycopg.Error, OSError) as exc:
            log.warning("features not preloaded (%s): days are read when first asked", exc)
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
            self.model.load()

    def database_up(self) -> bool:
        try:
            with psycopg.connect(self.config.conninfo, connect_timeout=2) as conn:
                conn.execute("select 1")
        except (psycopg.Error, OSError):
            return False
        return True

    # --- predicting ----------------------------------------------------------------------------

    def predict(self, items: list[PredictItem], request_id: str, received: datetime, started: float) -> Any:
        if self.model.current is None or self.predictor is None:
            return None
        frame = self._rows(items)
        frame["onpromotion"] = [float(item.onpromotion) for item in items]
        version, predictions = self.predictor.predict(frame)
        latency_ms = (time.perf_counter() - started) * 1000
        self.log.submit(self._log_rows(items, frame, predictions, version, request_id, received, latency_ms))
        self.items.inc(len(items))
        return version, predictions

    def _rows(self, items: list[PredictItem]) -> pd.DataFrame:
        found: list[Problem] = []
        parts: list[pd.DataFrame] = []
        single = len(items) == 1
        for index, item in enumerate(items):
            prefix = "" if single else f"items[{index}]."
            stores, families = self.features.stores, self.features.families
            if stores and item.store_nbr not in stores:
                found.append(
                    Problem(
                        field=f"{prefix}store_nbr",
                        problem=f"unknown store {item.store_nbr} (known: {min(stores)}..{max(stores)})",
                    )
                )
                continue
            if families and item.family not in families:
                found.append(
                    Problem(
                        field=f"{prefix}family",
                        problem=f"unknown family {item.family!r} (e.g. {', '.join(sorted(families)[:3])})",
                    )
                )
                continue
            day = self.features.day(item.date)
            position = None if day is None else day.positions.get((item.store_nbr, item.family))
            if day is None or position is None:
                span = (
                    f"the features mart holds {self.features.first_day} .. {self.features.last_day}"
                    if self.features.first_day
                    else "the features mart is empty"
                )
                what = "" if day is None else f" for store {item.store_nbr}, {item.family}"
                found.append(
                    Problem(field=f"{prefix}date", problem=f"no features for {item.date}{what}: {span}")
                )
                continue
            parts.append(day.frame.iloc[[position]])
        if found:
            raise InputProblem(found)
        return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0].reset_index(drop=True)

    def _log_rows(
        self,
        items: list[PredictItem],
        frame: pd.DataFrame,
        predictions: Any,
        version: str,
        request_id: str,
        received: datetime,
        latency_ms: float,
    ) -> list[list[Any]]:
        features = frame[list(FEATURE_COLUMNS)].to_numpy(dtype=object)
        stamp = received.isoformat()
        rows = []
        for index, (item, used, prediction) in enumerate(zip(items, features, predictions, strict=True)):
            rows.append(
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
                    float(prediction),
                    round(latency_ms, 3),
                    *(_feature_value(name, value) for name, value in zip(FEATURE_COLUMNS, used, strict=True)),
                ]
            )
        return rows

    def log_rejected(
        self, request_id: str, received: datetime, body: str, reason: str, started: float
    ) -> None:
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
        self.log.submit([row])


def _feature_value(name: str, value: Any) -> Any:
    if value is None or (isinstance(value, float) and value != value):
        return None
    if name in _BOOLEAN_FEATURES:
        return bool(value)
    if name in _INTEGER_FEATURES:
        return int(value)
    if isinstance(value, str):
        return value
    return float(value)


def _body_text(body: Any) -> str:
    if isinstance(body, bytes):
        text = body.decode("utf-8", errors="replace")
    elif isinstance(body, str):
        text = body
    else:
        try:
            text = json.dumps(body, default=str)
        except (TypeError, ValueError):
            text = repr(body)
    return text[:_REJECTED_BODY_CHARS]


def _reject(service: Service, request: Request, found: list[Problem], body: Any) -> JSONResponse:
    request_id = str(uuid.uuid4())
    summary = "; ".join(f"{item.field}: {item.problem}" for item in found)
    started = getattr(request.state, "started", time.perf_counter())
    received = getattr(request.state, "received", datetime.now(UTC))
    service.log_rejected(request_id, received, _body_text(body), summary, started)
    service.errors.labels("rejected").inc()
    payload = ErrorResponse(detail=f"invalid request: {summary}", errors=found, request_id=request_id)
    return JSONResponse(status_code=422, content=payload.model_dump())


def create_app(config: ServiceConfig) -> FastAPI:
    """The application; `app.state.service` is its state (tests read the counters there)."""
    service = Service(config)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        service.start()
        try:
            yield
        finally:
            service.stop()

    app = FastAPI(
        title="salesmon prediction service",
        description="Forecasts of daily unit sales per store and product family, from the champion model.",
        lifespan=lifespan,
    )
    app.state.service = service

    @app.middleware("http")
    async def measure(request: Request, call_next: Any) -> Response:
        request.state.started = time.perf_counter()
        request.state.received = datetime.now(UTC)
        try:
            response = await call_next(request)
        except Exception:  # never a traceback in the body
            log.exception("request failed")
            service.errors.labels("internal").inc()
            response = JSONResponse(
                status_code=500, content={"detail": "internal error; see the service log"}
            )
        endpoint = request.url.path
        service.latency.labels(endpoint).observe(time.perf_counter() - request.state.started)
        service.requests.labels(endpoint, str(response.status_code)).inc()
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _reject(service, request, problems(list(exc.errors())), exc.body)

    @app.post(
        "/predict",
        response_model=PredictResponse,
        responses={422: {"model": ErrorResponse}, 503: {"model": ErrorResponse}},
    )
    def predict(body: PredictRequest, request: Request) -> Any:
        """Forecast one item, or up to 1,000 given as `{"items": [...]}`."""
        items = body.items if isinstance(body, PredictBatch) else [body]
        request_id = str(uuid.uuid4())
        try:
            result = service.predict(items, request_id, request.state.received, request.state.started)
        except InputProblem as problem:
            return _reject(service, request, problem.found, body.model_dump(mode="json"))
        except DatabaseUnavailable as exc:
            service.errors.labels("unavailable").inc()
            return JSONResponse(status_code=503, content=ErrorResponse(detail=str(exc)).model_dump())
        if result is None:
            service.errors.labels("unavailable").inc()
            reason = service.model.last_error or "the model is not loaded yet"
            return JSONResponse(status_code=503, content=ErrorResponse(detail=reason).model_dump())
        version, predictions = result
        answers = [
            {
                "date": item.date,
                "store_nbr": item.store_nbr,
                "family": item.family,
                "prediction": float(value),
            }
            for item, value in zip(items, predictions, strict=True)
        ]
        return {
            "request_id": request_id,
            "model_version": version,
            "prediction": answers[0]["prediction"] if isinstance(body, PredictItem) else None,
            "predictions": answers,
        }

    @app.get("/health")
    def health() -> JSONResponse:
        """Whether the model is loaded and the database reachable; 503 when no model is loaded."""
        model = service.model.current
        database = service.database_up()
        counters = service.log.counters()
        payload = {
            "status": "ok" if model and database else "degraded" if model else "unavailable",
            "model_loaded": model is not None,
            "model_version": model.version if model else None,
            "model_error": service.model.last_error,
            "database": "up" if database else "down",
            "log_queue_depth": service.log.queue_depth,
            "log_rows_spilled": counters.spilled,
            "log_rows_replayed": counters.replayed,
        }
        return JSONResponse(status_code=200 if model else 503, content=payload)

    @app.get("/metrics")
    def metrics() -> Response:
        """Prometheus metrics."""
        return Response(generate_latest(service.registry), media_type=CONTENT_TYPE_LATEST)

    return app
