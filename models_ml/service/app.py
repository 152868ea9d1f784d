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
import os
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from models_ml.service.core import InputProblem, ModelUnavailable, Service, ServiceConfig
from models_ml.service.schemas import (
    ErrorResponse,
    PredictBatch,
    PredictItem,
    PredictRequest,
    PredictResponse,
    Problem,
    problems,
)
from models_ml.service.state import DatabaseUnavailable

log = logging.getLogger("salesmon.service")
_REJECTED_BODY_CHARS = 4_000
# Request ids: random version-4 UUIDs from a generator seeded once from the OS (uuid.uuid4() makes
# a system call per id, measured at up to 80 us on this busy machine). Unique, not secret.
_IDS = random.Random()
os.register_at_fork(after_in_child=_IDS.seed)  # a forked worker draws other ids


_PREDICT_REQUEST: TypeAdapter[Any] = TypeAdapter(PredictRequest)


def _request_id() -> str:
    return str(uuid.UUID(int=_IDS.getrandbits(128), version=4))


__all__ = ["Service", "ServiceConfig", "create_app"]


class Measure:
    """Times and counts every HTTP request; an unexpected error becomes a JSON 500, never a traceback.

    A plain ASGI middleware (Starlette's `@app.middleware("http")` runs each request through an
    extra task and stream), which also notes when each request arrived (`request.state`).
    """

    def __init__(self, app: ASGIApp, service: Service) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state = scope.setdefault("state", {})
        state["started"], state["received"] = started, datetime.now(UTC)
        status, responded = 500, False

        async def sending(message: Message) -> None:
            nonlocal status, responded
            if message["type"] == "http.response.start":
                status, responded = message["status"], True
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception:  # never a traceback in the body
            log.exception("request failed")
            self.service.errors.labels("internal").inc()
            status = 500
            if not responded:
                detail = {"detail": "internal error; see the service log"}
                await JSONResponse(status_code=500, content=detail)(scope, receive, send)
        path = scope["path"]
        self.service.latency.labels(path).observe(time.perf_counter() - started)
        self.service.requests.labels(path, str(status)).inc()


class PredictRoute(APIRoute):
    """`POST /predict`: documented by FastAPI from its endpoint's signature, handled more directly.

    FastAPI's own handler would, per request, solve the endpoint's dependencies and validate the
    answer again (the endpoint returns a finished Response): measured at about a quarter of the
    service's CPU per request. This one reads the body, validates it with the same pydantic type
    (`PredictRequest`) and calls the endpoint; a body that does not validate gets the same 422 as
    any bad request.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint = self.endpoint

        async def handle(request: Request) -> Response:
            raw = await request.body()
            try:
                body = _PREDICT_REQUEST.validate_json(raw)
            except ValidationError as exc:
                service = request.app.state.service
                return await _reject(service, request, problems(list(exc.errors())), raw)
            return await endpoint(body, request)

        return handle


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


async def _reject(service: Service, request: Request, found: list[Problem], body: Any) -> JSONResponse:
    request_id = _request_id()
    summary = "; ".join(f"{item.field}: {item.problem}" for item in found)
    started = getattr(request.state, "started", time.perf_counter())
    received = getattr(request.state, "received", datetime.now(UTC))
    await service.submit([service.rejected_row(request_id, received, _body_text(body), summary, started)])
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

    app.add_middleware(Measure, service=service)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return await _reject(service, request, problems(list(exc.errors())), exc.body)

    async def predict(body: PredictRequest, request: Request) -> Response:
        """Forecast one item, or up to 1,000 given as `{"items": [...]}`."""
        items = body.items if isinstance(body, PredictBatch) else [body]
        request_id = _request_id()
        received, started = request.state.received, request.state.started
        try:
            # from memory on the event loop; what needs the database or the pipeline in a thread
            answer = service.answer(items, request_id, received, started, False)
            if answer is None:
                answer = await run_in_threadpool(service.answer, items, request_id, received, started)
        except InputProblem as problem:
            return await _reject(service, request, problem.found, body.model_dump(mode="json"))
        except (DatabaseUnavailable, ModelUnavailable) as exc:
            service.errors.labels("unavailable").inc()
            return JSONResponse(status_code=503, content=ErrorResponse(detail=str(exc)).model_dump())
        await service.submit(answer.log_rows)
        answers = [
            {
                "date": item.date.isoformat(),
                "store_nbr": item.store_nbr,
                "family": item.family,
                "prediction": value,
            }
            for item, value in zip(items, answer.predictions, strict=True)
        ]
        payload = {
            "request_id": request_id,
            "model_version": answer.version,
            "prediction": answers[0]["prediction"] if isinstance(body, PredictItem) else None,
            "predictions": answers,
        }
        # the payload is PredictResponse's shape; serialized directly (no second validation)
        return Response(orjson.dumps(payload), media_type="application/json")

    app.router.add_api_route(
        "/predict",
        predict,
        methods=["POST"],
        response_model=PredictResponse,
        responses={422: {"model": ErrorResponse}, 503: {"model": ErrorResponse}},
        route_class_override=PredictRoute,
    )

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
