"""The validation rules of a value, the only ones: vectorised over a column of fields.

A column's fields are (begin, length) pairs into a zero-padded byte buffer, plus each value's length in
characters. `check_column` returns, per field, the number of the first rule it breaks (0: none) and a
key value (dates as yyyymmdd, integers as themselves, texts as codes from a `TextCodes`). `reason`
words a broken rule for raw.rejected_rows. What a rule accepts, PostgreSQL's COPY reads as the value
the rule saw (strict formats: no spaces, no nan or infinity, no hexadecimal).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import lru_cache

import numpy as np

from warehouse.loader.specs import NUMBER_MAX_CHARS, Column

# Rule numbers, in the order a value is checked; 0 means the value is fine.
OK, EMPTY, TOO_LONG, BAD_DATE, DATE_RANGE, NOT_INT, NEGATIVE, OUT_OF_RANGE, NOT_NUMBER, NOT_BOOL, UNKNOWN = (
    range(11)
)
_REASONS = {
    EMPTY: "{name} is empty",
    TOO_LONG: "{name} is too long: {chars:,} characters, at most {max_chars}",
    BAD_DATE: "bad {name} {text!r}",
    DATE_RANGE: "{name} {text} is outside the plausible range {first} .. {last}",
    NOT_INT: "{name} is not an integer: {text!r}",
    NEGATIVE: "{name} is negative: {text}",
    OUT_OF_RANGE: "{name} is out of range: {text}",
    NOT_NUMBER: "{name} is not a number: {text!r}",
    NOT_BOOL: "{name} is not True or False: {text!r}",
    UNKNOWN: "unknown {name} {text}",
}
_INT_LIMITS = {"int": (-(2**31), 2**31 - 1), "count": (0, 2**31 - 1), "bigint": (-(2**63), 2**63 - 1)}
_MAX_DIGITS = 18  # significant digits an int64 always holds: longer integers are out of range

# Byte classes for the format automata: 0 other, 1 digit, 2 sign, 3 point, 4 exponent letter.
_CLASS = np.zeros(256, dtype=np.int8)
_CLASS[ord("0") : ord("9") + 1] = 1
_CLASS[[ord("+"), ord("-")]] = 2
_CLASS[ord(".")] = 3
_CLASS[[ord("e"), ord("E")]] = 4
# [+-]?[0-9]+ : states 0 start, 1 sign, 2 digits (accepting), 3 dead.
_INTEGER = np.array([[3, 2, 1, 3, 3], [3, 2, 3, 3, 3], [3, 2, 3, 3, 3], [3, 3, 3, 3, 3]], dtype=np.int8)
# [+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)? : 0 start, 1 sign, 2 digits, 3 point after digits,
# 4 fraction, 5 leading point, 6 fraction after a leading point, 7 e, 8 exponent sign, 9 exponent, 10 dead.
_NUMBER = np.array(
    [
        [10, 2, 1, 5, 10],
        [10, 2, 10, 5, 10],
        [10, 2, 10, 3, 7],
        [10, 4, 10, 10, 7],
        [10, 4, 10, 10, 7],
        [10, 6, 10, 10, 10],
        [10, 6, 10, 10, 7],
        [10, 9, 8, 10, 10],
        [10, 9, 10, 10, 10],
        [10, 9, 10, 10, 10],
        [10, 10, 10, 10, 10],
    ],
    dtype=np.int8,
)
_NUMBER_ACCEPTS = np.zeros(11, dtype=bool)
_NUMBER_ACCEPTS[[2, 3, 4, 6, 9]] = True
_DATE_DIGITS = np.zeros(16, dtype=bool)
_DATE_DIGITS[[0, 1, 2, 3, 5, 6, 8, 9]] = True
_DATE_HYPHENS = np.zeros(16, dtype=bool)
_DATE_HYPHENS[[4, 7]] = True
_DAYS_IN_MONTH = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


@dataclass
class Fields:
    """One column of a batch of rows: field i is buffer[begin[i] : begin[i] + length[i]] (bytes),
    `chars[i]` characters long. The buffer has zero padding past its last field."""

    buffer: np.ndarray
    begin: np.ndarray
    length: np.ndarray
    chars: np.ndarray

    def text(self, index: int) -> str:
        start = int(self.begin[index])
        return bytes(self.buffer[start : start + int(self.length[index])]).decode("utf-8")

    def subset(self, rows: np.ndarray) -> Fields:
        return Fields(self.buffer, self.begin[rows], self.length[rows], self.chars[rows])

    def matrix(self, width: int) -> np.ndarray:
        """`width` bytes from each field's start, zero past its end (a C-ordered copy)."""
        window = np.lib.stride_tricks.sliding_window_view(self.buffer, width)[self.begin]
        return window * inside(self.length, width)


@dataclass(frozen=True)
class Context:
    """What the rules of one file need besides the values: the plausible days and the known stores."""

    first_day: date
    last_day: date
    known_stores: np.ndarray | None


class TextCodes:
    """Exact integer codes for texts, stable across the blocks of a file (for duplicate keys)."""

    def __init__(self) -> None:
        self.by_text: dict[bytes, int] = {}
        self.by_hash: dict[int, tuple[int, bytes]] = {}

    def codes(self, fields: Fields) -> np.ndarray:
        """One code per field: texts hashed a word at a time, every row then compared with its hash's
        first text, and the (rare) rows that differ coded one by one."""
        if len(fields.begin) == 0:
            return np.zeros(0, dtype=np.int64)
        width = round8(int(fields.length.max()))
        matrix = fields.matrix(width)
        words = matrix.view(np.uint64)
        hashes = fields.length.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        for column in range(words.shape[1]):
            hashes ^= words[:, column]
            hashes *= np.uint64(0xBF58476D1CE4E5B9)
            hashes ^= hashes >> np.uint64(31)
        unique, first, inverse = np.unique(hashes, return_index=True, return_inverse=True)
        codes = np.empty(len(unique), dtype=np.int64)
        for position, row in enumerate(first.tolist()):
            text = bytes(matrix[row, : fields.length[row]])
            codes[position] = self.by_text.setdefault(text, len(self.by_text))
        result = codes[inverse]
        same = (matrix == matrix[first[inverse]]).all(axis=1) & (
            fields.length == fields.length[first[inverse]]
        )
        for row in np.flatnonzero(~same).tolist():
            text = bytes(matrix[row, : fields.length[row]])
            result[row] = self.by_text.setdefault(text, len(self.by_text))
        return result


def check_column(
    column: Column, fields: Fields, context: Context, codes: TextCodes, *, need_value: bool
) -> tuple[np.ndarray, np.ndarray]:
    """(rule broken per field, 0 if none; key value per field) for one column."""
    count = len(fields.begin)
    broken = np.zeros(count, dtype=np.int8)
    value = np.zeros(count, dtype=np.int64)
    if count == 0:
        return broken, value
    empty = fields.length == 0
    limit = NUMBER_MAX_CHARS if column.kind not in ("text", "date", "bool") else column.max_chars
    kind = column.kind
    if kind == "date":
        rule, value = _date(fields, context)
    elif kind in _INT_LIMITS:
        rule, value = _integer(fields, kind)
        if column.store_ref and context.known_stores is not None:
            rule = np.where((rule == OK) & ~np.isin(value, context.known_stores), UNKNOWN, rule)
    elif kind in ("amount", "number"):
        rule = _number(fields, negative_allowed=kind == "number")
    elif kind == "bool":
        rule = _bool(fields)
    else:
        rule = np.zeros(count, dtype=np.int8)
        fits = fields.chars <= limit
        if need_value and fits.any():
            value[fits] = codes.codes(fields.subset(fits))
    if kind != "date":
        rule = np.where(fields.chars > limit, TOO_LONG, rule)
    broken[:] = np.where(empty, EMPTY if column.required else OK, rule)
    return broken, value


def reason(rule: int, column: Column, text: str, context: Context) -> str:
    """The words for a broken rule, as raw.rejected_rows keeps them."""
    return _REASONS[rule].format(
        name=column.name,
        text=text,
        chars=len(text),
        max_chars=NUMBER_MAX_CHARS if column.kind not in ("text", "bool") else column.max_chars,
        first=context.first_day,
        last=context.last_day,
    )


def _date(fields: Fields, context: Context) -> tuple[np.ndarray, np.ndarray]:
    """yyyy-mm-dd, a real calendar day, within the plausible range; the value is yyyymmdd."""
    matrix = fields.matrix(16)
    bad = ((matrix - np.uint8(48)) > 9) & _DATE_DIGITS  # wraps below '0': one comparison
    bad |= (matrix != 45) & _DATE_HYPHENS
    ok = (fields.length == 10) & ~any_per_row(bad)
    digits = matrix[:, [0, 1, 2, 3, 5, 6, 8, 9]].astype(np.int64) - 48
    year = digits[:, 0] * 1000 + digits[:, 1] * 100 + digits[:, 2] * 10 + digits[:, 3]
    month = digits[:, 4] * 10 + digits[:, 5]
    day = digits[:, 6] * 10 + digits[:, 7]
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_days = _DAYS_IN_MONTH[np.clip(month, 0, 12)] + (leap & (month == 2))
    ok &= (year >= 1) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= month_days)
    value = year * 10000 + month * 100 + day
    plausible = (value >= day_number(context.first_day)) & (value <= day_number(context.last_day))
    rule = np.where(ok, np.where(plausible, OK, DATE_RANGE), BAD_DATE).astype(np.int8)
    return rule, np.where(ok, value, 0)


def _run(automaton: np.ndarray, matrix: np.ndarray, length: np.ndarray) -> np.ndarray:
    """The state each field ends in, reading it byte by byte through a format automaton."""
    state = np.zeros(len(matrix), dtype=np.int8)
    classes = _CLASS[matrix]
    for position in range(matrix.shape[1]):
        state = np.where(position < length, automaton[state, classes[:, position]], state)
    return state


def _integer(fields: Fields, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """[+-]?[0-9]+ within the kind's range (count: not negative); the value as int64."""
    width = round8(min(NUMBER_MAX_CHARS, int(fields.length.max())))
    matrix = fields.matrix(width)
    within = inside(fields.length, width)
    digit = (matrix - np.uint8(48)) <= 9
    well_formed = any_per_row(within & ~digit) == 0  # digits only: the common case
    well_formed &= fields.length > 0
    odd = np.flatnonzero(~well_formed)
    if len(odd):
        well_formed[odd] = _run(_INTEGER, matrix[odd], fields.length[odd]) == 2
    too_many = np.zeros(len(matrix), dtype=bool)
    long = np.flatnonzero(fields.length > _MAX_DIGITS)
    if len(long):
        significant = np.logical_or.accumulate(digit[long] & (matrix[long] != 48), axis=1)
        too_many[long] = significant.sum(axis=1) > _MAX_DIGITS
    value = np.zeros(len(matrix), dtype=np.int64)
    for position in range(width):
        take = digit[:, position] & ~too_many
        value = np.where(take, value * 10 + (matrix[:, position].astype(np.int64) - 48), value)
    value = np.where(matrix[:, 0] == ord("-"), -value, value)
    low, high = _INT_LIMITS[kind]
    rule = np.where(too_many | (value < low) | (value > high), OUT_OF_RANGE, OK)
    if kind == "count":
        rule = np.where(value < 0, NEGATIVE, rule)
    return np.where(well_formed, rule, NOT_INT).astype(np.int8), value


def _number(fields: Fields, *, negative_allowed: bool) -> np.ndarray:
    """A decimal number, optionally with an exponent, that a double holds (no overflow to infinity,
    no underflow of a non-zero value to zero); an amount may not be negative."""
    width = round8(min(NUMBER_MAX_CHARS, int(fields.length.max())))
    matrix = fields.matrix(width)
    within = inside(fields.length, width)
    digit = (matrix - np.uint8(48)) <= 9
    point = matrix == ord(".")
    # The common case, digits with at most one point after the first digit, needs no automaton.
    simple = (any_per_row(within & ~(digit | point)) == 0) & digit[:, 0] & (fields.length > 0)
    simple &= np.bitwise_count(point.view(np.uint64)).sum(axis=1) <= 1
    well_formed = simple.copy()
    rule = np.zeros(len(matrix), dtype=np.int8)
    odd = np.flatnonzero(~simple)
    if len(odd):
        part = matrix[odd]
        formed = _NUMBER_ACCEPTS[_run(_NUMBER, part, fields.length[odd])]
        well_formed[odd] = formed
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            text = np.where(formed[:, None], part, 0).astype(np.uint8).view(f"S{width}").ravel()
            number = np.where(formed, text, b"0").astype(np.float64)
        mantissa = np.logical_and.accumulate((part | 0x20) != ord("e"), axis=1)
        nonzero = (mantissa & (part >= ord("1")) & (part <= ord("9"))).any(axis=1)
        odd_rule = np.where(~np.isfinite(number) | ((number == 0) & nonzero), OUT_OF_RANGE, OK)
        if not negative_allowed:
            odd_rule = np.where(number < 0, NEGATIVE, odd_rule)
        rule[odd] = odd_rule
    return np.where(well_formed, rule, NOT_NUMBER).astype(np.int8)


def _bool(fields: Fields) -> np.ndarray:
    """True or False, in any case."""
    matrix = fields.matrix(8)
    lower = np.where(matrix > 0, matrix | np.uint8(0x20), matrix)
    word = lower.view("S8").ravel()
    ok = ((word == b"true") & (fields.length == 4)) | ((word == b"false") & (fields.length == 5))
    return np.where(ok, OK, NOT_BOOL).astype(np.int8)


def day_number(value: date) -> int:
    """A day as yyyymmdd."""
    return value.year * 10000 + value.month * 100 + value.day


def any_per_row(mask: np.ndarray) -> np.ndarray:
    """Row-wise any() of a C-ordered boolean matrix whose width is a multiple of 8, a word at a time."""
    words = mask.view(np.uint64)
    result = words[:, 0] != 0
    for column in range(1, words.shape[1]):
        result |= words[:, column] != 0
    return result


def round8(width: int) -> int:
    """A width of at least 8, rounded up to whole 8-byte words."""
    return max(8, -(-width // 8) * 8)


def inside(length: np.ndarray, width: int) -> np.ndarray:
    """Per field (row) and byte (column): whether the byte belongs to the field."""
    return _inside_table(width)[np.minimum(length, width)]


@lru_cache(maxsize=16)
def _inside_table(width: int) -> np.ndarray:
    """Row n: n True values, then False, `width` in all (a lookup is faster than a comparison)."""
    return np.arange(width) < np.arange(width + 1)[:, None]
