"""One file's validation: which lines load and which are rejected, and why.

A file is checked block by block (whole lines). The structure of a line is read first: a plain line
(ASCII, no quotes, no control characters) is split on its commas with numpy; any other line is decoded
and split by Python's csv module, which is where invalid UTF-8, control characters, malformed quotes
and a wrong number of columns are found. Then every value of every line goes through the same rules
(`rules.check_column`), vectorised per column. A key seen earlier in the file rejects the later line.

Empty lines are not rows (neither read nor rejected). CRLF line ends and a UTF-8 byte-order mark are
accepted. A quoted value may hold commas and doubled quotes but not a line break (the Kaggle files
have none): such a line is rejected as malformed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from warehouse.loader.lines import Reject, later_occurrences, line_bytes, printable, split_line, to_csv
from warehouse.loader.rules import Context, Fields, TextCodes, check_column, reason
from warehouse.loader.specs import FileSpec

BLOCK_BYTES = 8 << 20  # checked, then sent, one block of whole lines at a time
PADDING = 512  # >= every width the rules read past a field's start
TRUNCATED = " (the file ends without a line end: its last line may be cut short)"


@dataclass
class Payload:
    """CSV text for COPY, its number of rows, and rows per day (yyyymmdd) when the key has a day."""

    data: bytes
    count: int
    days: dict[int, int]


class FileCheck:
    """Checks one file. `run()` yields, per block, the CSV bytes of its accepted rows whose first key
    value (a day, or a store) the table does not have yet; after it, `rejected`, `payload()` and the
    counts are final. Plain lines are sent as read, the others as rewritten from their values."""

    def __init__(self, spec: FileSpec, data: bytes, context: Context, present: set[int]):
        if b"\r\n" in data:
            data = data.replace(b"\r\n", b"\n")
        self.truncated = not data.endswith(b"\n")
        if self.truncated:
            data += b"\n"
        self.spec = spec
        self.data = data
        self.padded = np.zeros(len(data) + PADDING, dtype=np.uint8)  # the rules read past a field
        self.padded[: len(data)] = np.frombuffer(data, dtype=np.uint8)
        self.context = context
        self.present = np.array(sorted(present), dtype=np.int64)
        self.key_positions = [i for i, column in enumerate(spec.columns) if column.name in spec.key]
        self.dated = spec.day_column is not None
        self.codes = TextCodes()
        self.rows_read = 0
        self.starts = np.zeros(0, dtype=np.int64)  # where each body line starts in data
        self.ends = np.zeros(0, dtype=np.int64)  # where it ends (its newline)
        self.plain_lines = np.zeros(0, dtype=np.int64)  # accepted lines sent as read
        self.plain_keys = np.zeros((0, len(self.key_positions)), dtype=np.int64)
        self.rewritten: list[tuple[int, int, str]] = []  # (line index, first key, CSV line) of the others
        self.rewritten_keys = np.zeros((0, len(self.key_positions)), dtype=np.int64)
        self.rejected: list[tuple[int, str, str]] = []  # (line number, raw line, reason)
        self.direct_count = 0  # rows run() yielded
        self.direct_days: dict[int, int] = {}
        self.direct_duplicates = False  # whether a repeated key was among them

    def run(self) -> Iterator[bytes]:
        """Check the file block by block, yielding the accepted rows new to the table as CSV bytes.

        Line indexes count body lines from 0: line index i is line number i + 2 in the file.
        """
        starts, ends, plain_parts, key_parts, rewritten_keys = [], [], [], [], []
        rejected: dict[int, tuple[int, str, str]] = {}
        base = 0
        begin = self.data.index(b"\n") + 1  # after the header
        while begin < len(self.data):
            end = self.data.index(b"\n", min(begin + BLOCK_BYTES, len(self.data)) - 1) + 1
            block = _Block(self, begin, end, base, rejected)
            new = ~np.isin(block.plain_keys[:, 0], self.present)
            new_rewritten = [row for row in block.rewritten if row[1] not in self.present]
            self.direct_count += int(new.sum()) + len(new_rewritten)
            self._count_days(block.plain_keys[new, 0], [row[1] for row in new_rewritten])
            lines = block.plain_lines[new] - base
            yield (
                line_bytes(self.data, block.starts, block.ends, lines)
                + "".join(row[2] for row in new_rewritten).encode()
            )
            self.rows_read += block.rows
            starts.append(block.starts)
            ends.append(block.ends)
            plain_parts.append(block.plain_lines)
            key_parts.append(block.plain_keys)
            self.rewritten.extend(block.rewritten)
            rewritten_keys.append(block.rewritten_keys)
            base += len(block.starts)
            begin = end
        self.starts = np.concatenate([self.starts, *starts])
        self.ends = np.concatenate([self.ends, *ends])
        self.plain_lines = np.concatenate([self.plain_lines, *plain_parts])
        self.plain_keys = np.concatenate([self.plain_keys, *key_parts])
        self.rewritten_keys = np.concatenate([self.rewritten_keys, *rewritten_keys])
        self._drop_repeated_keys(rejected)
        if self.truncated and rejected and max(rejected) == len(self.starts) - 1:
            number, raw, why = rejected[len(self.starts) - 1]
            rejected[len(self.starts) - 1] = (number, raw, why + TRUNCATED)
        self.rejected = sorted(rejected.values())

    def line(self, index: int) -> bytes:
        """A body line as read (without its newline)."""
        return self.data[self.starts[index] : self.ends[index]]

    def payload(self, *, in_table: bool) -> Payload:
        """The accepted rows whose first key value the table has (in_table) or has not, as CSV."""
        plain = np.isin(self.plain_keys[:, 0], self.present) == in_table
        present = set(self.present.tolist())
        rewritten = [row for row in self.rewritten if (row[1] in present) == in_table]
        data = line_bytes(self.data, self.starts, self.ends, self.plain_lines[plain])
        days = _day_counts(self.plain_keys[plain, 0], [row[1] for row in rewritten]) if self.dated else {}
        return Payload(
            data + "".join(row[2] for row in rewritten).encode(), int(plain.sum()) + len(rewritten), days
        )

    def _count_days(self, plain_days: np.ndarray, rewritten_days: list[int]) -> None:
        if self.dated:
            for day, count in _day_counts(plain_days, rewritten_days).items():
                self.direct_days[day] = self.direct_days.get(day, 0) + count

    def _drop_repeated_keys(self, rejected: dict[int, tuple[int, str, str]]) -> None:
        """Reject every later occurrence of a key (in line order) among the accepted rows."""
        rewritten_index = np.array([row[0] for row in self.rewritten], dtype=np.int64)
        all_lines = np.concatenate([self.plain_lines, rewritten_index])
        all_keys = np.concatenate([self.plain_keys, self.rewritten_keys])
        order = np.argsort(all_lines, kind="stable")
        all_lines, all_keys = all_lines[order], all_keys[order]
        duplicate = later_occurrences(all_keys)
        if not duplicate.any():
            return
        frame = pd.DataFrame(all_keys)
        firsts = frame[~duplicate].assign(first_line=all_lines[~duplicate])
        repeated = frame[duplicate].assign(dup_line=all_lines[duplicate])
        pairs = repeated.merge(firsts, on=list(frame.columns))
        for index, first in zip(pairs["dup_line"].tolist(), pairs["first_line"].tolist(), strict=True):
            raw = self.line(index)
            rejected[index] = (index + 2, printable(raw), self._duplicate_reason(raw, first + 2))
        self.direct_duplicates = bool((~np.isin(all_keys[duplicate, 0], self.present)).any())
        keep = ~np.isin(self.plain_lines, all_lines[duplicate])
        self.plain_lines, self.plain_keys = self.plain_lines[keep], self.plain_keys[keep]
        keep_rewritten = ~np.isin(rewritten_index, all_lines[duplicate])
        self.rewritten = [row for row, kept in zip(self.rewritten, keep_rewritten, strict=True) if kept]
        self.rewritten_keys = self.rewritten_keys[keep_rewritten]

    def _duplicate_reason(self, raw: bytes, first_line: int) -> str:
        fields = split_line(raw, len(self.spec.columns))
        names = [column.name for column in self.spec.columns]
        shown = ", ".join(fields[names.index(name)] for name in self.spec.key)
        return f"duplicate key ({', '.join(self.spec.key)}) = ({shown}), first on line {first_line}"


class _Block:
    """One block of whole lines, checked: its plain accepted lines (sent as read) and key values, its
    other accepted lines (rewritten as CSV), and its rejected lines (added to `rejected`)."""

    def __init__(self, check: FileCheck, begin: int, end: int, base: int, rejected: dict) -> None:
        columns = len(check.spec.columns)
        self.data = check.data
        buf = check.padded[begin:end]
        newlines = np.flatnonzero(buf == 10) + begin
        self.starts = np.concatenate([[begin], newlines[:-1] + 1])
        self.ends = newlines
        nonblank = self.ends > self.starts
        self.rows = int(nonblank.sum())
        commas = np.flatnonzero(buf == 44) + begin
        first_comma, comma_count = self._per_line(commas)
        quotes = np.flatnonzero(buf == 34) + begin
        first_quote, quote_count = self._per_line(quotes)
        odd = np.flatnonzero((buf >= 127) | ((buf < 32) & (buf != 9) & (buf != 10))) + begin
        special = np.zeros(len(self.starts), dtype=bool)
        special[np.searchsorted(self.starts, odd, side="right") - 1] = True
        # Split with numpy: ASCII lines without control characters, with no quotes or two that wrap
        # one whole field (like "LIQUOR,WINE,BEER"); Python splits the others.
        unquoted = nonblank & ~special & (quote_count == 0)
        for local in np.flatnonzero(unquoted & (comma_count != columns - 1)).tolist():
            rejected[base + local] = (
                base + local + 2,
                printable(self.raw_line(local)),
                f"expected {columns} columns, got {comma_count[local] + 1}",
            )
        candidates = nonblank & ~special & (comma_count >= columns - 1)
        lines = np.flatnonzero(candidates & ((quote_count == 0) | (quote_count == 2)))
        field_begin, length, ok = self._fields(lines, columns, commas, first_comma, comma_count)
        if (quote_count[lines] == 2).any():
            self._unquote(lines, quotes, first_quote, quote_count, commas, field_begin, length, ok)
        lines, field_begin, length = lines[ok], field_begin[ok], length[ok]
        plain_fields = [
            Fields(check.padded, field_begin[:, i], length[:, i], length[:, i]) for i in range(columns)
        ]
        split = np.zeros(len(self.starts), dtype=bool)
        split[lines] = True
        split[np.flatnonzero(unquoted)] = True  # accepted above, or rejected for their commas
        # Every other non-blank line: decoded and split by Python, then the same rules.
        others, texts = [], []
        for local in np.flatnonzero(nonblank & ~split).tolist():
            raw = check.data[self.starts[local] : self.ends[local]]
            try:
                texts.append(split_line(raw, columns))
            except Reject as problem:
                rejected[base + local] = (base + local + 2, printable(raw), str(problem))
                continue
            others.append(local)
        other_fields = _fields_of(texts, columns)
        raw_line = self.raw_line
        plain_ok, self.plain_keys = _apply_rules(check, plain_fields, lines, base, rejected, raw_line)
        other_lines = np.array(others, dtype=np.int64)
        other_ok, other_keys = _apply_rules(check, other_fields, other_lines, base, rejected, raw_line)
        self.plain_lines = lines[plain_ok] + base
        self.plain_keys = self.plain_keys[plain_ok]
        self.rewritten = [
            (base + local, int(key[0]), to_csv(values))
            for local, values, key, ok in zip(others, texts, other_keys, other_ok, strict=True)
            if ok
        ]
        self.rewritten_keys = other_keys[other_ok]

    def raw_line(self, local: int) -> bytes:
        return self.data[self.starts[local] : self.ends[local]]

    def _fields(
        self, lines: np.ndarray, columns: int, commas: np.ndarray, first_comma: np.ndarray, count: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(begin, length) of every field of these lines, split at their commas, and whether the line
        has exactly the commas it needs (lines with quotes are adjusted by `_unquote`)."""
        separators = first_comma[lines, None] + np.arange(columns - 1)  # index into commas
        at = commas[np.minimum(separators, max(len(commas) - 1, 0))] if len(commas) else separators
        begin = np.empty((len(lines), columns), dtype=np.int64)
        end = np.empty((len(lines), columns), dtype=np.int64)
        begin[:, 0] = self.starts[lines]
        begin[:, 1:] = at + 1
        end[:, :-1] = at
        end[:, -1] = self.ends[lines]
        return begin, end - begin, count[lines] == columns - 1

    def _unquote(
        self,
        lines: np.ndarray,
        quotes: np.ndarray,
        first_quote: np.ndarray,
        quote_count: np.ndarray,
        commas: np.ndarray,
        begin: np.ndarray,
        length: np.ndarray,
        ok: np.ndarray,
    ) -> None:
        """For lines with two quotes: when they wrap one whole, non-empty field, the commas between
        them are not separators and the quotes not content; other such lines go to Python."""
        columns = begin.shape[1]
        quoted = np.flatnonzero(quote_count[lines] == 2)
        rows = lines[quoted]
        open_at, close_at = quotes[first_quote[rows]], quotes[first_quote[rows] + 1]
        comma_after_open = np.searchsorted(commas, open_at)
        inside = np.searchsorted(commas, close_at) - comma_after_open
        _, comma_count = self._per_line(commas)
        ok[quoted] = comma_count[rows] - inside == columns - 1
        separators = np.searchsorted(commas, self.starts[rows])[:, None] + np.arange(columns - 1)
        separators = np.where(
            separators >= comma_after_open[:, None], separators + inside[:, None], separators
        )
        at = commas[np.minimum(separators, len(commas) - 1)]
        field_begin = np.concatenate([self.starts[rows, None], at + 1], axis=1)
        field_end = np.concatenate([at, self.ends[rows, None]], axis=1)
        wraps = (field_begin == open_at[:, None]) & (field_end == close_at[:, None] + 1)
        ok[quoted] &= wraps.any(axis=1) & (close_at > open_at + 1)
        begin[quoted] = field_begin + wraps
        length[quoted] = field_end - field_begin - 2 * wraps

    def _per_line(self, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For sorted byte positions: the index of each line's first one, and how many each line has."""
        first = np.searchsorted(positions, self.starts)
        return first, np.diff(first, append=len(positions))


def _fields_of(texts: list[list[str]], columns: int) -> list[Fields]:
    """Fields of lines split by Python, in a buffer of their own (UTF-8)."""
    encoded = [[value.encode() for value in values] for values in texts]
    lengths = np.array([[len(value) for value in values] for values in encoded], dtype=np.int64)
    lengths = lengths.reshape(len(texts), columns)
    chars = np.array([[len(value) for value in values] for values in texts], dtype=np.int64)
    chars = chars.reshape(len(texts), columns)
    joined = b"".join(value for values in encoded for value in values)
    buffer = np.zeros(len(joined) + PADDING, dtype=np.uint8)
    buffer[: len(joined)] = np.frombuffer(joined, dtype=np.uint8)
    begin = (np.cumsum(lengths.ravel()) - lengths.ravel()).reshape(len(texts), columns)
    return [Fields(buffer, begin[:, i], lengths[:, i], chars[:, i]) for i in range(columns)]


def _apply_rules(
    check: FileCheck,
    fields: list[Fields],
    lines: np.ndarray,
    base: int,
    rejected: dict,
    raw_line: Callable[[int], bytes],
) -> tuple[np.ndarray, np.ndarray]:
    """Run every column's rules; reject a line for the first rule it breaks. (accepted, key values)."""
    spec = check.spec
    broken = np.zeros((len(lines), len(spec.columns)), dtype=np.int8)
    keys = np.zeros((len(lines), len(check.key_positions)), dtype=np.int64)
    for position, column in enumerate(spec.columns):
        need = position in check.key_positions
        broken[:, position], value = check_column(
            column, fields[position], check.context, check.codes, need_value=need
        )
        if need:
            keys[:, check.key_positions.index(position)] = value
    bad = broken.any(axis=1)
    for row in np.flatnonzero(bad).tolist():
        position = int(np.flatnonzero(broken[row])[0])
        local = int(lines[row])
        text = fields[position].text(row)
        why = reason(int(broken[row, position]), spec.columns[position], text, check.context)
        rejected[base + local] = (base + local + 2, printable(raw_line(local)), why)
    return ~bad, keys


def _day_counts(plain_days: np.ndarray, rewritten_days: list[int]) -> dict[int, int]:
    days, counts = np.unique(
        np.concatenate([plain_days, np.array(rewritten_days, dtype=np.int64)]), return_counts=True
    )
    return dict(zip(days.tolist(), counts.tolist(), strict=True))


def check_bytes(spec: FileSpec, data: bytes, context: Context, present: set[int] | None = None) -> FileCheck:
    """Check a whole file without sending anything (tests, tools)."""
    check = FileCheck(spec, data, context, present or set())
    for _ in check.run():
        pass
    return check
