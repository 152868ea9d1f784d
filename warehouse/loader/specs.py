"""What the loader expects: the Kaggle files, their columns and keys, the plausible dates, and the
checks of a folder before anything loads (files present, headers right)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

__all__ = ["FILE_SPECS", "Column", "DateRange", "FileSpec", "LoadError", "check_folder"]

# Longest value of a numeric column, in characters (longer ones are rejected as too long).
NUMBER_MAX_CHARS = 32
TEXT_MAX_CHARS = 100


class LoadError(Exception):
    """A user mistake in the data folder (missing folder or file, wrong header): nothing was loaded."""


@dataclass(frozen=True)
class Column:
    """One CSV column. `kind`: date, int, bigint, count (integer >= 0), amount (number >= 0), number,
    text or bool. `required` columns may not be empty; the others load an empty value as NULL.
    `max_chars` bounds a value's length (text: characters; numbers: NUMBER_MAX_CHARS)."""

    name: str
    kind: str
    required: bool = False
    store_ref: bool = False  # must name a store in raw.stores
    max_chars: int = TEXT_MAX_CHARS


@dataclass(frozen=True)
class FileSpec:
    """One Kaggle file: its raw table, its columns in header order and the table's key.

    `future_days`: how far past today its dates may go (test.csv holds forecast requests for days
    to come); None means the range's own last day applies.
    """

    file_name: str
    table: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    required_file: bool = True
    future_days: int | None = None

    @property
    def header(self) -> str:
        return ",".join(column.name for column in self.columns)

    @property
    def day_column(self) -> str | None:
        """The key's date column, by which changes are counted per day (None for stores.csv)."""
        return next((name for name in self.key if self.column(name).kind == "date"), None)

    def column(self, name: str) -> Column:
        return next(column for column in self.columns if column.name == name)


@dataclass(frozen=True)
class DateRange:
    """The days a file's dates may fall on: `first` .. `last` (default: today), and for files with
    `future_days` (test.csv), up to that many days after `last`.

    Read from SALESMON_FIRST_DATE / SALESMON_LAST_DATE (YYYY-MM-DD) by `from_env`.
    """

    first: date = date(2000, 1, 1)
    last: date | None = None
    today: date = field(default_factory=date.today)

    def bounds(self, spec: FileSpec) -> tuple[date, date]:
        last = self.last or self.today
        if spec.future_days is not None:
            last = last + timedelta(days=spec.future_days)
        return self.first, last

    @classmethod
    def from_env(cls) -> DateRange:
        first = os.environ.get("SALESMON_FIRST_DATE")
        last = os.environ.get("SALESMON_LAST_DATE")
        try:
            return cls(
                first=date.fromisoformat(first) if first else date(2000, 1, 1),
                last=date.fromisoformat(last) if last else None,
            )
        except ValueError as exc:
            raise LoadError(f"SALESMON_FIRST_DATE / SALESMON_LAST_DATE must be YYYY-MM-DD: {exc}") from None


def _required(name: str, kind: str, *, store_ref: bool = False, max_chars: int = TEXT_MAX_CHARS) -> Column:
    return Column(name, kind, required=True, store_ref=store_ref, max_chars=max_chars)


# In load order: stores first, because train, test and transactions are checked against raw.stores.
FILE_SPECS: tuple[FileSpec, ...] = (
    FileSpec(
        "stores.csv",
        "stores",
        (
            _required("store_nbr", "int"),
            Column("city", "text"),
            Column("state", "text"),
            Column("type", "text", max_chars=10),
            Column("cluster", "int"),
        ),
        key=("store_nbr",),
    ),
    FileSpec("oil.csv", "oil", (_required("date", "date"), Column("dcoilwtico", "number")), key=("date",)),
    FileSpec(
        "holidays_events.csv",
        "holidays_events",
        (
            _required("date", "date"),
            _required("type", "text", max_chars=40),
            _required("locale", "text", max_chars=40),
            _required("locale_name", "text"),
            _required("description", "text"),
            Column("transferred", "bool"),
        ),
        key=("date", "type", "locale", "locale_name", "description"),
    ),
    FileSpec(
        "transactions.csv",
        "transactions",
        (
            _required("date", "date"),
            _required("store_nbr", "int", store_ref=True),
            Column("transactions", "count"),
        ),
        key=("date", "store_nbr"),
    ),
    FileSpec(
        "train.csv",
        "train",
        (
            _required("id", "bigint"),
            _required("date", "date"),
            _required("store_nbr", "int", store_ref=True),
            _required("family", "text"),
            Column("sales", "amount"),
            Column("onpromotion", "count"),
        ),
        key=("date", "store_nbr", "family"),
    ),
    FileSpec(
        "test.csv",
        "test",
        (
            _required("id", "bigint"),
            _required("date", "date"),
            _required("store_nbr", "int", store_ref=True),
            _required("family", "text"),
            Column("onpromotion", "count"),
        ),
        key=("date", "store_nbr", "family"),
        required_file=False,
        future_days=366,
    ),
)


def check_folder(data_dir: Path, *, partial: bool = False) -> list[tuple[FileSpec, Path]]:
    """The files to load, in order; raises LoadError naming every missing file and wrong header.
    With `partial` (a landing folder holding a day's new files), the files present are loaded and
    none is required, but there must be at least one."""
    if not data_dir.is_dir():
        raise LoadError(f"data folder {data_dir} does not exist (or is not a folder)")
    problems: list[str] = []
    files: list[tuple[FileSpec, Path]] = []
    for spec in FILE_SPECS:
        path = data_dir / spec.file_name
        if not path.is_file():
            if spec.required_file and not partial:
                problems.append(
                    f"{spec.file_name}: file not found in {data_dir}, expected header '{spec.header}'"
                )
            continue
        header = _read_header(path)
        if header != spec.header:
            problems.append(f"{spec.file_name}: header is '{header}', expected '{spec.header}'")
        files.append((spec, path))
    if not files and not problems:
        names = ", ".join(spec.file_name for spec in FILE_SPECS)
        raise LoadError(f"no file to load in {data_dir} (expected one of {names})")
    if problems:
        raise LoadError("; ".join(problems))
    return files


def _read_header(path: Path) -> str:
    """The first line of a file, without a byte-order mark or line end (shortened when very long)."""
    with open(path, "rb") as handle:
        first = handle.readline(1 << 16)
    header = first.removeprefix(b"\xef\xbb\xbf").rstrip(b"\r\n").decode("utf-8", errors="replace")
    return header if len(header) <= 200 else header[:200] + "..."
