"""What `POST /predict` accepts and answers, and how a bad request is explained.

A request is one item, or `{"items": [...]}` with up to `MAX_ITEMS` of them. Every problem is
reported as HTTP 422 with a list of `{"field": ..., "problem": ...}`: the field named the way the
client wrote it (`items[3].store_nbr`), never a traceback.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

MAX_ITEMS = 1_000
MAX_FAMILY_LENGTH = 64


class PredictItem(BaseModel):
    """One forecast to make: the day, the store, the product family and its promotion count."""

    model_config = ConfigDict(extra="forbid")

    date: dt.date = Field(description="the day to forecast, YYYY-MM-DD", examples=["2017-08-16"])
    store_nbr: int = Field(ge=1, le=100_000, description="the store's number", examples=[1])
    family: str = Field(
        min_length=1,
        max_length=MAX_FAMILY_LENGTH,
        description="the product family, as in train.csv",
        examples=["GROCERY I"],
    )
    onpromotion: int = Field(
        ge=0, le=1_000_000, description="how many items of the family are on promotion", examples=[0]
    )


class PredictBatch(BaseModel):
    """Several forecasts in one request."""

    model_config = ConfigDict(extra="forbid")

    items: list[PredictItem] = Field(min_length=1, max_length=MAX_ITEMS)


def _kind(value: Any) -> str:
    if isinstance(value, dict) and "items" in value:
        return "batch"
    if isinstance(value, PredictBatch):
        return "batch"
    return "item"


PredictRequest = Annotated[
    Annotated[PredictItem, Tag("item")] | Annotated[PredictBatch, Tag("batch")],
    Discriminator(_kind),
]


class Prediction(BaseModel):
    date: dt.date
    store_nbr: int
    family: str
    prediction: float = Field(description="forecast unit sales, never negative")


class PredictResponse(BaseModel):
    """The answer: the request's id (its key in ml.prediction_log), the model version, the forecasts."""

    request_id: str
    model_version: str
    prediction: float | None = Field(None, description="the forecast, when the request had one item")
    predictions: list[Prediction]


class Problem(BaseModel):
    field: str
    problem: str


class ErrorResponse(BaseModel):
    detail: str
    errors: list[Problem] = []
    request_id: str | None = None


_TAGS = {"item", "batch"}


def field_path(location: tuple[Any, ...] | list[Any]) -> str:
    """`("body", "batch", "items", 3, "store_nbr")` -> `items[3].store_nbr`; the body itself -> `body`."""
    path = ""
    for part in location:
        if part == "body" and not path:
            continue
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in _TAGS and not path:
            continue
        else:
            path += f".{part}" if path else str(part)
    return path or "body"


def problems(errors: list[dict[str, Any]]) -> list[Problem]:
    """Pydantic's errors as field/problem pairs a client can act on."""
    found = []
    for error in errors:
        location = list(error.get("loc", ()))
        message = str(error.get("msg", "invalid"))
        if error.get("type") == "json_invalid":
            position = location[1] if len(location) > 1 else None
            reason = (error.get("ctx") or {}).get("error", "")
            where = f" at character {position}" if isinstance(position, int) else ""
            found.append(Problem(field="body", problem=f"malformed JSON{where}: {reason}".rstrip(": ")))
            continue
        if error.get("type") == "missing" and location[-1:] == ["items"]:
            location = location[:-1]
        if error.get("type") == "extra_forbidden":
            message = "unknown field (expected date, store_nbr, family, onpromotion)"
        found.append(Problem(field=field_path(location), problem=message))
    return found
