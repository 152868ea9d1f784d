"""The structure of a line of a Kaggle file, before its values: encoding, control characters,
quotes and the number of columns; and the helpers that cut lines out of a file's bytes."""

from __future__ import annotations

import csv
import io
import math
import re

import numpy as np
import pandas as pd

# A line whose quotes PostgreSQL's and Python's CSV readers both read the same way.
_QUOTED_LINE_RE = re.compile(r'(?:"(?:[^"]|"")*"|[^",]*)(?:,(?:"(?:[^"]|"")*"|[^",]*))*')
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class Reject(Exception):
    """A line's structure is wrong; the message is the reason."""


def split_line(raw: bytes, columns: int) -> list[str]:
    """A line's values, or Reject with what is wrong with its structure."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as problem:
        raise Reject(
            f"not valid UTF-8 text (byte 0x{raw[problem.start]:02x} at {problem.start + 1})"
        ) from None
    control = _CONTROL_RE.search(text)
    if control:
        char = control.group()
        if char == "\x00":
            raise Reject("contains a NUL character")
        if char == "\r":
            raise Reject("contains a carriage return")
        raise Reject(f"contains a control character (0x{ord(char):02x})")
    if '"' in text:
        if not _QUOTED_LINE_RE.fullmatch(text):
            raise Reject("malformed quotes")
        fields = next(csv.reader([text]))
    else:
        fields = text.split(",")
    if len(fields) != columns:
        raise Reject(f"expected {columns} columns, got {len(fields)}")
    return fields


def to_csv(values: list[str]) -> str:
    """Checked values as one CSV line that COPY reads back exactly."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(values)
    return out.getvalue()


def printable(raw: bytes) -> str:
    """The line as text for raw.rejected_rows (which cannot hold NUL or invalid UTF-8)."""
    return raw.decode("utf-8", errors="replace").replace("\x00", "\ufffd")


def line_bytes(data: bytes, starts: np.ndarray, ends: np.ndarray, lines: np.ndarray) -> bytes:
    """The bytes of these lines (ascending indexes into starts/ends), newlines included, run by run."""
    if len(lines) == 0:
        return b""
    breaks = np.flatnonzero(np.diff(lines) != 1)
    run_first = lines[np.r_[0, breaks + 1]]
    run_last = lines[np.r_[breaks, len(lines) - 1]]
    view = memoryview(data)
    return b"".join(
        view[begin : end + 1]
        for begin, end in zip(starts[run_first].tolist(), ends[run_last].tolist(), strict=True)
    )


def later_occurrences(keys: np.ndarray) -> np.ndarray:
    """For rows of integer key codes in line order: True where the same key came earlier."""
    if len(keys) == 0:
        return np.zeros(0, dtype=bool)
    low, high = keys.min(axis=0), keys.max(axis=0)
    spans = [int(span) for span in high - low + 1]
    if math.prod(spans) >= 2**62:
        return pd.DataFrame(keys).duplicated(keep="first").to_numpy()
    combined = np.zeros(len(keys), dtype=np.int64)
    for position, span in enumerate(spans):
        combined = combined * span + (keys[:, position] - low[position])
    # A stable sort keeps equal keys in line order; files sorted by key make it near linear.
    order = np.argsort(combined, kind="stable")
    ordered = combined[order]
    later = np.zeros(len(keys), dtype=bool)
    later[order[1:][ordered[1:] == ordered[:-1]]] = True
    return later
