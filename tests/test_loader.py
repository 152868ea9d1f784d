"""The raw loader: Kaggle-format files into raw.*, validated, idempotent, one transaction per file.

Over 400 lines: a test per rejection reason and per file kind, beside the bad-input corpus they share.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import os
from datetime import date, timedelta
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from orchestration.cli import app
from warehouse import db, loader
from warehouse.loader import FILE_SPECS, LoadError, LoadSummary, check, load_folder

FAMILIES = ("AUTOMOTIVE", "BEVERAGES", "LIQUOR,WINE,BEER")
RAW_TABLES = (
    "stores",
    "oil",
    "holidays_events",
    "transactions",
    "train",
    "test",
    "rejected_rows",
    "load_log",
)
TRAIN_HEADER = "id,date,store_nbr,family,sales,onpromotion"


def _write_csv(path: Path, header: str, rows: list[tuple[object, ...]]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header.split(","))
        writer.writerows(rows)


def write_folder(folder: Path, *, stores: int = 3, days: int = 4, start: date = date(2017, 1, 1)) -> Path:
    """The six Kaggle files for `stores` stores x `days` days x 3 families, in the exact Kaggle format."""
    folder.mkdir(parents=True, exist_ok=True)
    dates = [start + timedelta(days=offset) for offset in range(days)]
    _write_csv(
        folder / "stores.csv",
        "store_nbr,city,state,type,cluster",
        [(store, "Quito", "Pichincha", "D", 13 + store) for store in range(1, stores + 1)],
    )
    _write_csv(
        folder / "oil.csv",
        "date,dcoilwtico",
        [(day.isoformat(), "" if index == 0 else f"{52.5 + index:.2f}") for index, day in enumerate(dates)],
    )
    _write_csv(
        folder / "holidays_events.csv",
        "date,type,locale,locale_name,description,transferred",
        [(dates[0].isoformat(), "Holiday", "National", "Ecuador", "Primer dia del ano", "False")],
    )
    _write_csv(
        folder / "transactions.csv",
        "date,store_nbr,transactions",
        [(day.isoformat(), store, 1000 + store) for day in dates for store in range(1, stores + 1)],
    )
    train = []
    for day in dates:
        for store in range(1, stores + 1):
            for family in FAMILIES:
                train.append(
                    (len(train), day.isoformat(), store, family, f"{store * 10 + len(family)}.5", store % 2)
                )
    _write_csv(folder / "train.csv", TRAIN_HEADER, train)
    test_day = dates[-1] + timedelta(days=1)
    _write_csv(
        folder / "test.csv",
        "id,date,store_nbr,family,onpromotion",
        [
            (len(train) + index, test_day.isoformat(), store, family, 0)
            for index, (store, family) in enumerate((s, f) for s in range(1, stores + 1) for f in FAMILIES)
        ],
    )
    return folder


def _counts(info: str) -> dict[str, int]:
    db.bootstrap()  # the tables exist even when a load stopped before connecting
    with psycopg.connect(info) as conn:
        return {
            table: conn.execute(f"select count(*) from raw.{table}").fetchone()[0] for table in RAW_TABLES
        }


def _input_rows(folder: Path, file_name: str) -> int:
    return len((folder / file_name).read_text().splitlines()) - 1


def _assert_adds_up(summary: LoadSummary) -> None:
    for item in summary.files:
        assert item.rows_read == item.rows_loaded + item.rows_rejected + item.rows_skipped, item


def test_clean_load_fills_every_raw_table(database: str, tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "data")
    messages: list[str] = []

    summary = load_folder(folder, progress=messages.append)

    _assert_adds_up(summary)
    assert [item.file_name for item in summary.files] == [
        "stores.csv", "oil.csv", "holidays_events.csv", "transactions.csv", "train.csv", "test.csv",
    ]  # fmt: skip
    counts = _counts(database)
    for spec in FILE_SPECS:
        expected = _input_rows(folder, spec.file_name)
        assert counts[spec.table] == expected, spec.file_name
        loaded = next(item for item in summary.files if item.file_name == spec.file_name)
        assert (loaded.rows_read, loaded.rows_loaded, loaded.rows_rejected, loaded.rows_skipped) == (
            expected, expected, 0, 0,
        )  # fmt: skip
    assert counts["train"] == 3 * 4 * 3
    assert counts["rejected_rows"] == 0
    assert counts["load_log"] == 6
    with psycopg.connect(database) as conn:
        liquor = conn.execute(
            "select count(*), min(sales) from raw.train where family = 'LIQUOR,WINE,BEER' and store_nbr = 2"
        ).fetchone()
        assert liquor == (4, 36.5)  # 2 * 10 + len("LIQUOR,WINE,BEER")
        assert conn.execute("select dcoilwtico from raw.oil order by date").fetchall() == [
            (None,), (53.5,), (54.5,), (55.5,),
        ]  # fmt: skip
        assert conn.execute("select transferred, description from raw.holidays_events").fetchall() == [
            (False, "Primer dia del ano")
        ]
        # id 4: the first day, store 2, BEVERAGES
        assert conn.execute("select sales, onpromotion from raw.train where id = 4").fetchone() == (29.5, 0)
        assert conn.execute("select type, cluster from raw.stores where store_nbr = 3").fetchone() == (
            "D",
            16,
        )
        log = conn.execute(
            "select file_name, rows_read, rows_loaded, rows_rejected, rows_skipped from raw.load_log "
            "where file_name = 'train.csv'"
        ).fetchall()
        assert log == [("train.csv", 36, 36, 0, 0)]
        # the primary key the bulk path drops and rebuilds is back
        assert conn.execute(
            "select pg_get_constraintdef(oid) from pg_constraint where conname = 'train_pkey'"
        ).fetchone() == ("PRIMARY KEY (date, store_nbr, family)",)
    assert len(messages) == 6
    assert messages[4].startswith("train.csv: 36 rows read, 36 loaded, 0 rejected, 0 skipped in ")
    assert messages[4].endswith(" rows/s)")
    rendered = summary.render().splitlines()
    assert rendered[0].split() == [
        "file",
        "read",
        "loaded",
        "rejected",
        "skipped",
        "changed",
        "seconds",
        "rows/s",
    ]
    assert rendered[5].split()[:6] == ["train.csv", "36", "36", "0", "0", "0"]


DUPLICATE = "duplicate key (date, store_nbr, family)"
# line numbers: the header is line 1, the 36 good rows are lines 2..37, the bad ones follow.
BAD_TRAIN_LINES = [
    ("100,2017-02-30,1,AUTOMOTIVE,1.0,0", "bad date '2017-02-30'"),
    ("101,2017-01-02,1,GROCERY I,abc,0", "sales is not a number: 'abc'"),
    ("102,2017-01-02,1,GROCERY II,-3.0,0", "sales is negative: -3.0"),
    ("103,2017-01-02,1,DAIRY,1.0,1.5", "onpromotion is not an integer: '1.5'"),
    ("104,2017-01-02,x,DAIRY,1.0,0", "store_nbr is not an integer: 'x'"),
    ("105,2017-01-02,99,DAIRY,1.0,0", "unknown store_nbr 99"),
    ("106,2017-01-02,1,DAIRY,1.0", "expected 6 columns, got 5"),
    ("107,2017-01-01,2,BEVERAGES,9.0,0", f"{DUPLICATE} = (2017-01-01, 2, BEVERAGES), first on line 6"),
    ("1.5,2017-01-02,1,EGGS,1.0,0", "id is not an integer: '1.5'"),
    ("109,,1,EGGS,1.0,0", "date is empty"),
    ("110,2017-01-02,1,,1.0,0", "family is empty"),
    ('111,2017-01-02,1,"BAD"QUOTE,1.0,0', "malformed quotes"),
    ("112,2017/01/02,1,EGGS,1.0,0", "bad date '2017/01/02'"),
    ("113,2017-01-02,1,EGGS,1.0,-2", "onpromotion is negative: -2"),
    ('114,2017-01-01,3,"LIQUOR,WINE,BEER",1.0,0',
     f"{DUPLICATE} = (2017-01-01, 3, LIQUOR,WINE,BEER), first on line 10"),
]  # fmt: skip
GOOD_EXTRA_TRAIN_LINES = [
    "200,2017-01-02,1,EGGS,,",  # empty sales and onpromotion load as NULL
    '201,2017-01-02,2,"EGGS",7,+3',  # a quoted field and a signed integer are fine
    "202,2017-01-02,3,EGGS,1e2,0",  # so is an exponent
]


@pytest.mark.parametrize("block_bytes", [None, 100], ids=["one block", "blocks of 100 bytes"])
def test_bad_rows_are_rejected_with_line_and_reason(
    database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block_bytes: int | None
) -> None:
    if block_bytes:
        monkeypatch.setattr(check, "BLOCK_BYTES", block_bytes)  # many blocks: the same outcome
    folder = write_folder(tmp_path / "data")
    with open(folder / "train.csv", "a") as handle:
        for line, _ in BAD_TRAIN_LINES:
            handle.write(line + "\n")
        for line in GOOD_EXTRA_TRAIN_LINES:
            handle.write(line + "\n")
    with open(folder / "oil.csv", "a") as handle:
        handle.write("2017-13-01,50.0\n2017-01-05,n/a\n2017-01-06,-1.5\n")  # a negative oil price is fine
    with open(folder / "transactions.csv", "a") as handle:
        handle.write("2017-01-05,1,-5\n2017-01-05,2,\n")

    summary = load_folder(folder)

    _assert_adds_up(summary)
    train = next(item for item in summary.files if item.file_name == "train.csv")
    assert (train.rows_read, train.rows_loaded, train.rows_rejected, train.rows_skipped) == (
        36 + len(BAD_TRAIN_LINES) + 3, 36 + 3, len(BAD_TRAIN_LINES), 0,
    )  # fmt: skip
    with psycopg.connect(database) as conn:
        rejected = conn.execute(
            "select line_number, raw_line, reason from raw.rejected_rows where file_name = 'train.csv' "
            "order by line_number"
        ).fetchall()
        assert rejected == [
            (38 + index, line, reason) for index, (line, reason) in enumerate(BAD_TRAIN_LINES)
        ]
        extra = conn.execute(
            "select id, sales, onpromotion, family from raw.train where id >= 200 order by id"
        ).fetchall()
        assert extra == [(200, None, None, "EGGS"), (201, 7.0, 3, "EGGS"), (202, 100.0, 0, "EGGS")]
        # the first occurrence of a duplicated key is the one loaded
        assert conn.execute(
            "select id from raw.train where date = '2017-01-01' and store_nbr = 2 and family = 'BEVERAGES'"
        ).fetchone() == (4,)
        others = conn.execute(
            "select file_name, line_number, reason from raw.rejected_rows where file_name <> 'train.csv' "
            "order by file_name, line_number"
        ).fetchall()
        assert others == [
            ("oil.csv", 6, "bad date '2017-13-01'"),
            ("oil.csv", 7, "dcoilwtico is not a number: 'n/a'"),
            ("transactions.csv", 14, "transactions is negative: -5"),
        ]
        assert conn.execute("select dcoilwtico from raw.oil where date = '2017-01-06'").fetchone() == (-1.5,)
        assert conn.execute(
            "select transactions from raw.transactions where date = '2017-01-05' and store_nbr = 2"
        ).fetchone() == (None,)


def test_reloading_the_same_folder_changes_nothing(database: str, tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "data")
    with open(folder / "train.csv", "a") as handle:
        handle.write("300,2017-01-02,1,EGGS,-1,0\n")
        handle.write("301,2017-01-01,1,AUTOMOTIVE,5,0\n")  # repeats the key of line 2
    first = load_folder(folder)
    before = _counts(database)

    second = load_folder(folder)

    _assert_adds_up(second)
    after = _counts(database)
    assert after == {**before, "load_log": before["load_log"] + 6}
    assert before["rejected_rows"] == 2
    for item_first, item_second in zip(first.files, second.files, strict=True):
        assert item_second.rows_loaded == 0
        assert item_second.rows_rejected == item_first.rows_rejected  # still bad, not recorded twice
        assert item_second.rows_skipped == item_first.rows_loaded


def test_a_folder_with_more_days_adds_only_the_new_days(database: str, tmp_path: Path) -> None:
    load_folder(write_folder(tmp_path / "four", days=4))
    before = _counts(database)
    six = write_folder(tmp_path / "six", days=6)
    with open(six / "train.csv", "a") as handle:
        handle.write("999,2017-01-06,1,AUTOMOTIVE,5,0\n")  # repeats a key of a new day

    summary = load_folder(six)

    _assert_adds_up(summary)
    after = _counts(database)
    train = next(item for item in summary.files if item.file_name == "train.csv")
    assert (train.rows_read, train.rows_loaded, train.rows_rejected, train.rows_skipped) == (
        6 * 9 + 1, 2 * 9, 1, 4 * 9,
    )  # fmt: skip
    assert after["train"] == before["train"] + 2 * 9
    assert after["transactions"] == before["transactions"] + 2 * 3
    assert after["oil"] == before["oil"] + 2
    assert after["stores"] == before["stores"]
    assert after["test"] == before["test"] + 9  # the test day moved on by two days
    with psycopg.connect(database) as conn:
        assert conn.execute("select max(date) from raw.train").fetchone() == (date(2017, 1, 6),)
        assert conn.execute(
            "select id from raw.train where date = '2017-01-06' and store_nbr = 1 and family = 'AUTOMOTIVE'"
        ).fetchone() == (45,)  # the first occurrence


@pytest.mark.parametrize("scenario", ["new_store", "new_family", "feed_stop"])
def test_generated_scenarios_load_without_rejections(database: str, tmp_path: Path, scenario: str) -> None:
    """A store, a family or a stopped feed that the data did not have before loads like any other data."""
    from datagen import generate

    change = date(2017, 7, 10)
    result = generate(
        tmp_path / scenario,
        stores=3,
        start=date(2017, 6, 1),
        end=date(2017, 7, 20),
        scenario=scenario,
        change_date=change,
    )

    summary = load_folder(result.out_dir)

    _assert_adds_up(summary)
    counts = _counts(database)
    assert counts["rejected_rows"] == 0
    for spec in FILE_SPECS:
        assert counts[spec.table] == result.files[spec.file_name], spec.file_name
    with psycopg.connect(database) as conn:
        if scenario == "new_store":
            first = "select min(date) from raw.{} where store_nbr = 4"
            assert conn.execute(first.format("train")).fetchone() == (change,)
            assert conn.execute(first.format("transactions")).fetchone() == (change,)
            assert conn.execute("select count(*) from raw.test where store_nbr = 4").fetchone() == (16 * 33,)
        elif scenario == "new_family":
            first = "select min(date), count(distinct store_nbr) from raw.{} where family = 'ICE CREAM'"
            assert conn.execute(first.format("train")).fetchone() == (change, 3)
            assert conn.execute(first.format("test")).fetchone() == (date(2017, 7, 21), 3)
        else:
            last = conn.execute("select max(date) from raw.transactions").fetchone()
            assert last == (change - timedelta(days=1),)
            assert conn.execute("select max(date) from raw.train").fetchone() == (date(2017, 7, 20),)


def test_wrong_header_raises_before_anything_loads(database: str, tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "data")
    train = folder / "train.csv"
    train.write_text("a,b,c\n" + train.read_text().split("\n", 1)[1])

    with pytest.raises(LoadError) as error:
        load_folder(folder)

    assert str(error.value) == f"train.csv: header is 'a,b,c', expected '{TRAIN_HEADER}'"
    assert set(_counts(database).values()) == {0}


def test_missing_file_and_folder_raise_load_error(database: str, tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "data")
    (folder / "oil.csv").unlink()
    (folder / "test.csv").unlink()  # optional: not a problem

    with pytest.raises(
        LoadError, match=r"^oil\.csv: file not found in .*, expected header 'date,dcoilwtico'$"
    ):
        load_folder(folder)
    with pytest.raises(LoadError, match="does not exist"):
        load_folder(tmp_path / "nope")
    assert set(_counts(database).values()) == {0}


def test_cli_reports_a_user_mistake_in_one_line(database: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["load", "--data-dir", str(tmp_path / "nope")])

    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"error: data folder {tmp_path / 'nope'} does not exist (or is not a folder)"
    ]
    assert "Traceback" not in result.output


def test_cli_loads_a_folder_and_prints_the_table(database: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["load", "--data-dir", str(write_folder(tmp_path / "data", days=2))])

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[4].startswith("train.csv: 18 rows read, 18 loaded, 0 rejected, 0 skipped in ")
    assert lines[6].split() == [
        "file",
        "read",
        "loaded",
        "rejected",
        "skipped",
        "changed",
        "seconds",
        "rows/s",
    ]


def test_a_file_loads_all_or_nothing(database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = write_folder(tmp_path / "data")
    with open(folder / "train.csv", "a") as handle:
        handle.write("400,2017-01-02,1,EGGS,-1,0\n")

    def fail(conn: psycopg.Connection, file_name: str, rejected: list) -> None:
        if rejected:
            raise RuntimeError("disk full")

    monkeypatch.setattr(loader, "store_rejected", fail)  # fails after the good rows were copied
    with pytest.raises(RuntimeError, match="disk full"):
        load_folder(folder)

    counts = _counts(database)
    assert counts["train"] == 0  # rolled back, although its good rows were written
    assert counts["stores"] == 3 and counts["transactions"] == 12  # files before it stay loaded
    assert counts["load_log"] == 4
    with psycopg.connect(database) as conn:
        assert conn.execute("select count(*) from pg_constraint where conname = 'train_pkey'").fetchone() == (
            1,
        )


def test_crlf_bom_blank_lines_and_no_final_newline(database: str, tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "data", days=2)
    train = folder / "train.csv"
    lines = train.read_text().splitlines()
    train.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines[:5] + [""] + lines[5:]).encode())

    summary = load_folder(folder)

    item = next(item for item in summary.files if item.file_name == "train.csv")
    assert (item.rows_read, item.rows_loaded, item.rows_rejected) == (18, 18, 0)
    with psycopg.connect(database) as conn:
        assert conn.execute("select count(*) from raw.train where family like '%\r%'").fetchone() == (0,)
        assert conn.execute("select max(id) from raw.train").fetchone() == (17,)


# --- the rules, line by line ---------------------------------------------------------------------

TRICKY_LINES = [
    "1,2017-01-01,1,AUTOMOTIVE,0.0,0",
    "2,2017-01-01,01,AUTOMOTIVE,12.,3",  # '01' is store 1: a duplicate of line 2
    '3,2017-01-01,2,"LIQUOR,WINE,BEER",1.5,0',
    '4,2017-01-01,2,"",1.5,0',
    '5,2017-01-01,"3",AUTOMOTIVE,1.5,0',
    '6,2017-01-01,3,"A""B",1.5,0',
    "7,2016-02-29,1,AUTOMOTIVE,.5,0",
    "8,2017-02-29,1,AUTOMOTIVE,5,0",
    "9,2017-01-02,1,AUTOMOTIVE,-0.0,+1",
    "10,2017-01-02,2,AUTOMOTIVE,1e999,0",
    "11,2017-01-02,3,AUTOMOTIVE,1e-999,0",
    "12,2017-01-02,3,BEBIDAS Ñ,1,0",
    "13,2017-01-02,3,BEBIDAS \x00,1,0",
    "14,2017-01-03,1,AUTOMOTIVE,1,99999999999",
    "15,2017-01-03,2,AUTOMOTIVE,1,0,",
    "16,0000-01-01,1,AUTOMOTIVE,1,0",
    "17,2017-01-03,3,AUTOMOTIVE, 1,0",
    "18,2017-01-03,3,HOME APPLIANCES,1.2.3,0",
    "12345678901234567890,2017-01-04,1,AUTOMOTIVE,1,0",
    "20,2017-01-04,1,AUTOMOTIVE,nan,0",
    "21,2017-01-04,2,AUTOMOTIVE,inf,0",
    "22,2017-01-04,3,AUTOMOTIVE,0000000000000000000000000001.5,0",
    "23,2017-01-04,3," + "X" * 100 + ",1,0",  # the longest family accepted
    "24,2017-01-05,1," + "Y" * 101 + ",1,0",
    "25,2017-01-05,1,AUTOMOTIVE,2.5E+2,0x10",
    "26,2017-01-05,2,AUTOMOTIVE,1_000,0",
    "27,2017-01-05,3,AUTOMOTIVE,1e5,000000000000000000007",
    "28,2017-01-05,3,AUTOMOTIVE\x01,1,0",
    "29,2017-01-06,3,AUTO\x7fMOTIVE,1,0",
]
TRICKY_REASONS = {
    3: "duplicate key (date, store_nbr, family) = (2017-01-01, 01, AUTOMOTIVE), first on line 2",
    5: "family is empty",
    9: "bad date '2017-02-29'",
    11: "sales is out of range: 1e999",
    12: "sales is out of range: 1e-999",
    14: "contains a NUL character",
    15: "onpromotion is out of range: 99999999999",
    16: "expected 6 columns, got 7",
    17: "bad date '0000-01-01'",
    18: "sales is not a number: ' 1'",
    19: "sales is not a number: '1.2.3'",
    20: "id is out of range: 12345678901234567890",
    21: "sales is not a number: 'nan'",
    22: "sales is not a number: 'inf'",
    25: "family is too long: 101 characters, at most 100",
    26: "onpromotion is not an integer: '0x10'",
    27: "sales is not a number: '1_000'",
    29: "contains a control character (0x01)",
    30: "contains a control character (0x7f)",
}


@pytest.mark.parametrize("block_bytes", [None, 64], ids=["one block", "blocks of 64 bytes"])
def test_every_line_meets_the_same_rules(
    database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block_bytes: int | None
) -> None:
    """Plain lines (split by numpy) and the others (split by Python) get the same rules, in any block
    size; what is accepted is what PostgreSQL stores."""
    if block_bytes:
        monkeypatch.setattr(check, "BLOCK_BYTES", block_bytes)
    folder = write_folder(tmp_path / "data", days=1)
    (folder / "train.csv").write_text("\n".join([TRAIN_HEADER, *TRICKY_LINES]) + "\n")

    summary = load_folder(folder)

    train = next(item for item in summary.files if item.file_name == "train.csv")
    assert (train.rows_read, train.rows_rejected) == (len(TRICKY_LINES), len(TRICKY_REASONS))
    assert train.adds_up()
    with psycopg.connect(database) as conn:
        reasons = dict(
            conn.execute(
                "select line_number, reason from raw.rejected_rows where file_name = 'train.csv'"
            ).fetchall()
        )
        stored = {
            row[0]: row[1:]
            for row in conn.execute("select id, store_nbr, family, sales, onpromotion from raw.train")
        }
    assert reasons == TRICKY_REASONS
    assert stored[1] == (1, "AUTOMOTIVE", 0.0, 0) and 2 not in stored  # the first of a repeated key
    assert stored[3] == (2, "LIQUOR,WINE,BEER", 1.5, 0)
    assert stored[5] == (3, "AUTOMOTIVE", 1.5, 0)
    assert stored[6] == (3, 'A"B', 1.5, 0)
    assert stored[7][2] == 0.5 and stored[9][2:] == (0.0, 1)  # '.5', '-0.0' and '+1'
    assert stored[12][1] == "BEBIDAS Ñ" and stored[23][1] == "X" * 100
    assert stored[22][2] == 1.5 and stored[27][2:] == (100000.0, 7)
    assert len(stored) == len(TRICKY_LINES) - len(TRICKY_REASONS)


# --- bad rows the generator does not make -------------------------------------------------------


def test_bad_rows_corpus_is_rejected_with_specific_reasons(database: str, tmp_path: Path) -> None:
    """Typo years, invalid UTF-8, over-long fields, an extra column, a long incompressible line and a
    truncated last line: each rejected with its own reason, nothing else lost, counts add up."""
    folder = write_folder(tmp_path / "data")  # 36 good train rows, 2017-01-01 .. 2017-01-04
    noise = base64.b64encode(os.urandom(15_000)).decode()  # 20 kB that does not compress
    corpus = [
        ("900,2107-01-02,1,EGGS,1.0,0", "date 2107-01-02 is outside the plausible range 2000-01-01 .. "),
        ("901,1017-01-02,1,EGGS,1.0,0", "date 1017-01-02 is outside the plausible range 2000-01-01 .. "),
        ("902,2017-01-02,1,EGGS,1.0,0,7", "expected 6 columns, got 7"),
        ("903,2017-01-02,1," + "F" * 6000 + ",1.0,0", "family is too long: 6,000 characters, at most 100"),
        ("904,2017-01-02,1,EGGS,1." + "0" * 40 + ",0", "sales is too long: 42 characters, at most 32"),
        (noise, "expected 6 columns, got 1"),
        (noise.replace("A", ","), None),  # many commas: the column count still says why
        (b"905,2017-01-02,1,EGGS\xff\xfe,1.0,0", "not valid UTF-8 text (byte 0xff at 22)"),
        ("906,2017-01-02,2,EG", "expected 6 columns, got 4 (the file ends without a line end: "),
    ]
    with open(folder / "train.csv", "ab") as handle:
        for line, _ in corpus[:-1]:
            handle.write((line if isinstance(line, bytes) else line.encode()) + b"\n")
        handle.write(corpus[-1][0].encode())  # no line end: cut short

    summary = load_folder(folder)

    train = next(item for item in summary.files if item.file_name == "train.csv")
    assert (train.rows_read, train.rows_loaded, train.rows_rejected, train.rows_skipped) == (
        36 + len(corpus), 36, len(corpus), 0,
    )  # fmt: skip
    for item in summary.files:
        assert item.rows_read == item.rows_loaded + item.rows_rejected + item.rows_skipped
    with psycopg.connect(database) as conn:
        rejected = conn.execute(
            "select line_number, reason, length(raw_line), raw_line_md5 = md5(raw_line)"
            " from raw.rejected_rows"
            " where file_name = 'train.csv' order by line_number"
        ).fetchall()
        logged = conn.execute(
            "select rows_read, rows_loaded + rows_rejected + rows_skipped from raw.load_log"
        ).fetchall()
    assert [row[0] for row in rejected] == list(range(38, 38 + len(corpus)))
    for (_, reason, _, hashed), (_, expected) in zip(rejected, corpus, strict=True):
        assert hashed
        if expected is not None:
            assert reason.startswith(expected), reason
    assert rejected[6][1].startswith("expected 6 columns, got ")
    assert rejected[5][2] == len(noise) > 10_000  # the whole line is kept
    assert all(read == total for read, total in logged)


def test_dates_outside_the_plausible_range(
    database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """By default nothing before 2000 or after today, except forecast requests in test.csv (up to a
    year ahead); the range is configurable (argument or SALESMON_FIRST_DATE / SALESMON_LAST_DATE)."""
    from warehouse.loader import DateRange

    folder = write_folder(tmp_path / "data", days=2, start=date(2017, 1, 1))
    ahead = (date.today() + timedelta(days=30)).isoformat()
    with open(folder / "train.csv", "a") as handle:
        handle.write(f"500,{ahead},1,EGGS,1,0\n1999,1999-12-31,1,EGGS,1,0\n")
    with open(folder / "test.csv", "a") as handle:
        handle.write(f"600,{ahead},1,EGGS,0\n601,{date.today().year + 2}-01-01,1,EGGS,0\n")

    load_folder(folder)

    with psycopg.connect(database) as conn:
        reasons = conn.execute(
            "select file_name, line_number, reason from raw.rejected_rows order by 1, 2"
        ).fetchall()
        assert conn.execute("select count(*) from raw.test where id = 600").fetchone() == (1,)
    today = date.today()
    assert reasons == [
        ("test.csv", 12, f"date {today.year + 2}-01-01 is outside the plausible range 2000-01-01 .. "
         f"{today + timedelta(days=366)}"),
        ("train.csv", 20, f"date {ahead} is outside the plausible range 2000-01-01 .. {today}"),
        ("train.csv", 21, f"date 1999-12-31 is outside the plausible range 2000-01-01 .. {today}"),
    ]  # fmt: skip

    narrow = load_folder(folder, dates=DateRange(first=date(2017, 1, 2), last=date(2017, 1, 31)))
    train = next(item for item in narrow.files if item.file_name == "train.csv")
    assert train.rows_rejected == 2 + 9  # the first day is now before the range
    monkeypatch.setenv("SALESMON_LAST_DATE", "2017-01-01")
    from_env = load_folder(folder)
    train = next(item for item in from_env.files if item.file_name == "train.csv")
    assert train.rows_rejected == 2 + 9  # the second day is now after it
    monkeypatch.setenv("SALESMON_LAST_DATE", "someday")
    with pytest.raises(LoadError, match="SALESMON_LAST_DATE"):
        load_folder(folder)


def test_rejected_rows_of_an_older_database_are_migrated(database: str) -> None:
    """A raw.rejected_rows keyed on the raw line (before raw_line_md5) is migrated by the bootstrap,
    keeping its rows, and a second bootstrap changes nothing."""
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute("create schema raw")
        conn.execute(
            "create table raw.rejected_rows (file_name text not null, line_number integer not null,"
            " raw_line text not null, reason text not null, rejected_at timestamptz not null default now(),"
            " primary key (file_name, line_number, raw_line))"
        )
        conn.execute("insert into raw.rejected_rows values ('oil.csv', 7, 'x,y', 'bad date ''x''')")
    db.bootstrap()
    db.bootstrap()
    with psycopg.connect(database) as conn:
        key = conn.execute(
            "select pg_get_constraintdef(oid) from pg_constraint where conname = 'rejected_rows_pkey'"
        ).fetchone()
        rows = conn.execute(
            "select file_name, line_number, raw_line_md5, raw_line from raw.rejected_rows"
        ).fetchall()
    assert key == ("PRIMARY KEY (file_name, line_number, raw_line_md5)",)
    assert rows == [("oil.csv", 7, hashlib.md5(b"x,y").hexdigest(), "x,y")]


# --- corrections ----------------------------------------------------------------------------------


def _correct(path: Path, changes: dict[int, str]) -> None:
    """Replace lines (1-based numbers) of a file."""
    lines = path.read_text().splitlines()
    for number, line in changes.items():
        lines[number - 1] = line
    path.write_text("\n".join(lines) + "\n")


def test_a_reload_reports_changed_rows_and_update_replaces_them(database: str, tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "data")
    load_folder(folder)
    # train line 3: id 1, 2017-01-01, store 1, BEVERAGES; line 14: id 12, 2017-01-02, store 2, AUTOMOTIVE
    _correct(
        folder / "train.csv", {3: "1,2017-01-01,1,BEVERAGES,99.5,0", 14: "12,2017-01-02,2,AUTOMOTIVE,0,7"}
    )
    _correct(folder / "transactions.csv", {2: "2017-01-01,1,5"})
    with open(folder / "train.csv", "a") as handle:
        handle.write("700,2017-01-02,1,EGGS,3,0\n")  # a late row for a day already stored

    plain = load_folder(folder)

    train = next(item for item in plain.files if item.file_name == "train.csv")
    assert (train.rows_read, train.rows_loaded, train.rows_rejected, train.rows_skipped) == (37, 1, 0, 36)
    assert (train.rows_changed, train.updated) == (2, False)
    assert train.changed_days == {date(2017, 1, 1): 1, date(2017, 1, 2): 1}
    assert "2 rows differ from what is stored (not replaced: run `salesmon load --update`" in train.describe()
    with psycopg.connect(database) as conn:
        assert conn.execute("select sales from raw.train where id = 1").fetchone() == (19.5,)
        assert conn.execute("select sales from raw.train where id = 700").fetchone() == (3.0,)

    result = CliRunner().invoke(app, ["load", "--data-dir", str(folder), "--update"])

    assert result.exit_code == 0, result.output
    assert "2 rows differ from what is stored (replaced)" in result.output
    assert "on 2 day(s): 2017-01-01: 1, 2017-01-02: 1" in result.output
    with psycopg.connect(database) as conn:
        corrected = "select sales, onpromotion from raw.train where id in (1, 12) order by id"
        assert conn.execute(corrected).fetchall() == [(99.5, 0), (0.0, 7)]
        assert conn.execute(
            "select transactions from raw.transactions where date = '2017-01-01' and store_nbr = 1"
        ).fetchone() == (5,)
        log = conn.execute(
            "select file_name, rows_loaded, rows_skipped, rows_changed, updated from raw.load_log"
            " where file_name in ('train.csv', 'transactions.csv') order by load_id"
        ).fetchall()
        days = conn.execute(
            "select table_name, day, rows_inserted, rows_changed, replaced from raw.changed_days"
            " where load_id in (select max(load_id) from raw.load_log group by file_name)"
            " and (rows_changed > 0 or rows_inserted > 0) order by 1, 2"
        ).fetchall()
    assert log == [
        ("transactions.csv", 12, 0, 0, False), ("train.csv", 36, 0, 0, False),
        ("transactions.csv", 0, 12, 1, False), ("train.csv", 1, 36, 2, False),
        ("transactions.csv", 1, 11, 1, True), ("train.csv", 2, 35, 2, True),
    ]  # fmt: skip
    assert days == [
        ("train", date(2017, 1, 1), 0, 1, True), ("train", date(2017, 1, 2), 0, 1, True),
        ("transactions", date(2017, 1, 1), 0, 1, True),
    ]  # fmt: skip
    again = load_folder(folder, update=True)
    assert all(item.rows_changed == 0 and item.rows_loaded == 0 for item in again.files)
