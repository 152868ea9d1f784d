"""Tests of the built-in data generator: pure file checks on small generated data sets (no database).

Over 400 lines: a test per file of the Kaggle format and per scenario, on the data sets they share.
"""

from __future__ import annotations

import csv
import json
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from datagen import FAMILIES, SCENARIOS, GenerateResult, generate

NEW_FAMILY = "ICE CREAM"  # the family the new_family scenario adds

STORES = 3
START = date(2016, 10, 1)
END = date(2017, 1, 28)  # 120 days, spanning a December 25 and a transferred New Year
CHANGE = date(2017, 1, 10)

HEADERS = {
    "train.csv": "id,date,store_nbr,family,sales,onpromotion",
    "test.csv": "id,date,store_nbr,family,onpromotion",
    "stores.csv": "store_nbr,city,state,type,cluster",
    "oil.csv": "date,dcoilwtico",
    "holidays_events.csv": "date,type,locale,locale_name,description,transferred",
    "transactions.csv": "date,store_nbr,transactions",
}


def _gen(root: Path, name: str, **kwargs: object) -> GenerateResult:
    args: dict[str, object] = {"stores": STORES, "start": START, "end": END, "seed": 42}
    args.update(kwargs)
    return generate(root / name, **args)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("generated")


@pytest.fixture(scope="module")
def base(root: Path) -> GenerateResult:
    return _gen(root, "base")


@pytest.fixture(scope="module")
def scenarios(root: Path) -> dict[str, GenerateResult]:
    out = {}
    for name in SCENARIOS[1:]:
        kwargs: dict[str, object] = {"scenario": name}
        if name != "store_closures":  # store_closures uses the default change date (end - 30 days)
            kwargs["change_date"] = CHANGE
        out[name] = _gen(root, name, **kwargs)
    return out


def _train(result: GenerateResult) -> pd.DataFrame:
    return pd.read_csv(result.out_dir / "train.csv", parse_dates=["date"])


def _meta(result: GenerateResult) -> dict:
    return json.loads((result.out_dir / "scenario.json").read_text())


def test_headers_and_row_counts(base: GenerateResult) -> None:
    for name, header in HEADERS.items():
        lines = (base.out_dir / name).read_bytes().split(b"\n")
        assert lines[0].decode() == header, name
        assert lines[-1] == b"", f"{name} must end with a newline"
        assert b"\r" not in lines[1], name
        assert len(lines) - 2 == base.files[name], name
    days = (END - START).days + 1 - 1  # minus December 25
    assert base.files["train.csv"] == days * STORES * len(FAMILIES)
    assert base.files["test.csv"] == 16 * STORES * len(FAMILIES)
    assert base.files["stores.csv"] == STORES
    assert base.scenario == "none" and base.change_date is None and base.seconds > 0


def test_train_layout(base: GenerateResult) -> None:
    train = _train(base)
    assert list(train["id"]) == list(range(len(train)))
    assert len(FAMILIES) == 33 and len(set(FAMILIES)) == 33
    assert list(FAMILIES) == sorted(FAMILIES)
    assert sorted(train["family"].unique()) == list(FAMILIES)
    # Kaggle order: date, then store_nbr, then family alphabetically
    first_day = train[train["date"] == pd.Timestamp(START)]
    assert list(first_day["store_nbr"]) == [s for s in range(1, STORES + 1) for _ in FAMILIES]
    assert list(first_day["family"]) == list(FAMILIES) * STORES
    assert train["date"].is_monotonic_increasing
    assert not ((train["date"].dt.month == 12) & (train["date"].dt.day == 25)).any()
    assert pd.Timestamp(2016, 12, 24) in set(train["date"]) and pd.Timestamp(2016, 12, 26) in set(
        train["date"]
    )
    assert train["sales"].notna().all() and (train["sales"] >= 0).all()
    assert train["onpromotion"].dtype == np.int64 and (train["onpromotion"] >= 0).all()
    # fractional sales only in the weighed families, at most 3 decimals
    fractional = train[train["sales"] != train["sales"].round()]
    assert set(fractional["family"]) <= {"PRODUCE", "MEATS", "POULTRY", "DELI", "SEAFOOD"}
    assert len(fractional) > 0
    assert np.allclose(fractional["sales"], fractional["sales"].round(3))
    # scale: GROCERY I in the thousands, BABY CARE near zero; weekends above weekdays
    by_family = train.groupby("family")["sales"].mean()
    assert by_family["GROCERY I"] > 1000 and by_family["BEVERAGES"] > 1000
    assert by_family["BABY CARE"] < 2
    # BOOKS sells nothing before 2016-10-08
    books = train[train["family"] == "BOOKS"]
    assert (books.loc[books["date"] < pd.Timestamp(2016, 10, 8), "sales"] == 0).all()
    daily = train.groupby("date")["sales"].sum()
    assert daily[daily.index.dayofweek >= 5].mean() > daily[daily.index.dayofweek < 5].mean()


def test_liquor_family_is_quoted(base: GenerateResult) -> None:
    text = (base.out_dir / "train.csv").read_text()
    assert ',"LIQUOR,WINE,BEER",' in text
    assert "\n0,2016-10-01,1,AUTOMOTIVE," in "\n" + text.split("\n", 1)[1]
    assert (_train(base)["family"] == "LIQUOR,WINE,BEER").sum() == base.files["train.csv"] // 33


def test_test_csv_follows_train(base: GenerateResult) -> None:
    test = pd.read_csv(base.out_dir / "test.csv", parse_dates=["date"])
    assert test["id"].iloc[0] == base.files["train.csv"]
    assert list(test["id"]) == list(range(base.files["train.csv"], base.files["train.csv"] + len(test)))
    expected = pd.date_range(END + timedelta(days=1), periods=16)
    assert list(test["date"].drop_duplicates()) == list(expected)
    assert (test["onpromotion"] >= 0).all() and test["onpromotion"].sum() > 0


def test_stores_oil_holidays(base: GenerateResult) -> None:
    stores = pd.read_csv(base.out_dir / "stores.csv")
    assert list(stores["store_nbr"]) == [1, 2, 3]
    assert set(stores["city"]) == {"Quito"} and set(stores["state"]) == {"Pichincha"}
    assert stores["type"].isin(list("ABCDE")).all() and stores["cluster"].between(1, 17).all()
    full = generate(base.out_dir.parent / "stores54", start=START, end=START + timedelta(days=3))
    all_stores = pd.read_csv(full.out_dir / "stores.csv")
    assert len(all_stores) == 54 and set(all_stores["type"]) == set("ABCDE")
    assert set(all_stores["cluster"]) == set(range(1, 18))
    assert (all_stores["city"] == "Guayaquil").sum() >= 5 and (all_stores["city"] == "Quito").sum() >= 10

    oil = pd.read_csv(base.out_dir / "oil.csv", parse_dates=["date"])
    assert (oil["date"].dt.dayofweek < 5).all()
    assert oil["date"].min() == pd.bdate_range(START, END)[0]
    assert oil["date"].max() <= pd.Timestamp(END + timedelta(days=16))
    assert oil["dcoilwtico"].isna().sum() >= 2  # Thanksgiving, Christmas, New Year, MLK day
    assert ",\n" in (base.out_dir / "oil.csv").read_text()
    assert oil["dcoilwtico"].dropna().between(20, 150).all()

    hol = pd.read_csv(base.out_dir / "holidays_events.csv", parse_dates=["date"])
    assert set(hol["type"]) <= {"Holiday", "Transfer", "Additional", "Bridge", "Work Day", "Event"}
    assert set(hol["locale"]) == {"National", "Regional", "Local"}
    assert hol["transferred"].dtype == bool and hol["transferred"].any()
    assert (hol["type"] == "Transfer").any()
    assert hol["description"][hol["type"] == "Transfer"].str.startswith("Traslado ").all()
    assert (hol.loc[hol["locale"] == "National", "locale_name"] == "Ecuador").all()
    rows = set(zip(hol["date"].dt.strftime("%Y-%m-%d"), hol["description"], strict=True))
    for expected in [
        ("2016-12-25", "Navidad"),
        ("2016-12-21", "Navidad-4"),
        ("2016-12-26", "Navidad+1"),
        ("2016-12-31", "Primer dia del ano-1"),
        ("2016-11-02", "Dia de Difuntos"),
        ("2016-02-08", "Carnaval"),
        ("2016-03-25", "Viernes Santo"),
        ("2016-04-16", "Terremoto Manabi"),
        ("2016-05-16", "Terremoto Manabi+30"),
        ("2016-12-06", "Fundacion de Quito"),
        ("2016-11-25", "Black Friday"),
        ("2016-05-08", "Dia de la Madre"),
    ]:
        assert expected in rows, expected
    transferred = hol[hol["transferred"]]
    assert ("2017-01-01", "Primer dia del ano") in set(
        zip(transferred["date"].dt.strftime("%Y-%m-%d"), transferred["description"], strict=True)
    )
    assert (hol["type"] == "Bridge").any() and (hol["type"] == "Work Day").any()
    assert (hol["locale"] == "Regional").any()
    assert hol["date"].is_monotonic_increasing


def test_transactions_follow_sales(base: GenerateResult) -> None:
    train = _train(base)
    tx = pd.read_csv(base.out_dir / "transactions.csv", parse_dates=["date"])
    total = train.groupby(["date", "store_nbr"])["sales"].sum()
    open_days = total[total > 0]
    assert list(tx.set_index(["date", "store_nbr"]).index) == list(open_days.index)
    assert tx["transactions"].dtype == np.int64 and (tx["transactions"] > 0).all()
    joined = tx.join(open_days, on=["date", "store_nbr"])
    for _, one_store in joined.groupby("store_nbr"):
        assert np.corrcoef(one_store["transactions"], one_store["sales"])[0, 1] > 0.9


def test_deterministic(root: Path, base: GenerateResult) -> None:
    again = _gen(root, "again")
    other = _gen(root, "other", seed=7)
    for name in [*HEADERS, "scenario.json"]:
        assert (again.out_dir / name).read_bytes() == (base.out_dir / name).read_bytes(), name
    assert (other.out_dir / "train.csv").read_bytes() != (base.out_dir / "train.csv").read_bytes()
    assert (other.out_dir / "oil.csv").read_bytes() != (base.out_dir / "oil.csv").read_bytes()


def test_scenario_json(base: GenerateResult, scenarios: dict[str, GenerateResult]) -> None:
    meta = _meta(base)
    assert meta["scenario"] == "none" and meta["change_date"] is None
    assert meta["affected_stores"] == [] and meta["affected_families"] == []
    assert (meta["seed"], meta["stores"], meta["start"], meta["end"]) == (42, 3, "2016-10-01", "2017-01-28")
    assert isinstance(meta["description"], str) and isinstance(meta["details"], dict)
    for name, result in scenarios.items():
        meta = _meta(result)
        expected_change = END - timedelta(days=30) if name == "store_closures" else CHANGE
        assert result.change_date == expected_change
        assert meta["scenario"] == name and meta["change_date"] == expected_change.isoformat()
        assert isinstance(meta["description"], str) and meta["details"], name
        stores = {1, 2, 3, 4} if name == "new_store" else {1, 2, 3}  # new_store: store 4 opens
        assert meta["affected_stores"] and set(meta["affected_stores"]) <= stores
        families = {*FAMILIES, NEW_FAMILY} if name == "new_family" else set(FAMILIES)
        assert meta["affected_families"] and set(meta["affected_families"]) <= families


@pytest.mark.parametrize("name", SCENARIOS[1:])
def test_scenario_leaves_the_past_alone(
    base: GenerateResult, scenarios: dict[str, GenerateResult], name: str
) -> None:
    result = scenarios[name]
    change = pd.Timestamp(result.change_date)
    train, none = _train(result), _train(base)
    assert (train["date"] >= change).any()
    pd.testing.assert_frame_equal(
        train[train["date"] < change], none[none["date"] < change], check_dtype=False
    )
    tx_none = pd.read_csv(base.out_dir / "transactions.csv", parse_dates=["date"])
    tx = pd.read_csv(result.out_dir / "transactions.csv", parse_dates=["date"])
    pd.testing.assert_frame_equal(tx[tx["date"] < change], tx_none[tx_none["date"] < change])
    for name in ("oil.csv", "holidays_events.csv"):
        assert (result.out_dir / name).read_bytes() == (base.out_dir / name).read_bytes(), name
    stores = (result.out_dir / "stores.csv").read_text().splitlines()
    assert stores[: STORES + 1] == (base.out_dir / "stores.csv").read_text().splitlines()


@pytest.mark.parametrize("name", SCENARIOS[5:])
def test_new_scenarios_are_deterministic(root: Path, scenarios: dict[str, GenerateResult], name: str) -> None:
    again = _gen(root, f"{name}-again", scenario=name, change_date=CHANGE)
    other = _gen(root, f"{name}-other", scenario=name, change_date=CHANGE, seed=7)
    for file_name in [*HEADERS, "scenario.json"]:
        assert (again.out_dir / file_name).read_bytes() == (scenarios[name].out_dir / file_name).read_bytes()
    assert (other.out_dir / "train.csv").read_bytes() != (again.out_dir / "train.csv").read_bytes()


def test_promo_shift(base: GenerateResult, scenarios: dict[str, GenerateResult]) -> None:
    result = scenarios["promo_shift"]
    train, none = _train(result), _train(base)
    after = train["date"] >= pd.Timestamp(CHANGE)
    assert train.loc[after, "onpromotion"].mean() > 3 * none.loc[after, "onpromotion"].mean()
    assert train.loc[after, "onpromotion"].mean() > 3 * train.loc[~after, "onpromotion"].mean()
    assert (train.loc[after, "onpromotion"] >= none.loc[after, "onpromotion"]).all()
    promo_families = lambda df: set(df.loc[df["onpromotion"] > 0, "family"])  # noqa: E731
    assert len(promo_families(train[after])) > len(promo_families(none[after.to_numpy()]))
    assert train.loc[after, "sales"].sum() > none.loc[after, "sales"].sum()
    test = pd.read_csv(result.out_dir / "test.csv")
    test_none = pd.read_csv(base.out_dir / "test.csv")
    assert test["onpromotion"].mean() > 3 * test_none["onpromotion"].mean()
    assert _meta(result)["details"]["promo_multiplier"] == 4.0


def test_sales_drop(base: GenerateResult, scenarios: dict[str, GenerateResult]) -> None:
    result = scenarios["sales_drop"]
    train, none = _train(result), _train(base)
    affected = _meta(result)["affected_stores"]
    assert 1 <= len(affected) < STORES
    assert train["onpromotion"].equals(none["onpromotion"])
    after = train["date"] >= pd.Timestamp(CHANGE)
    hit = after & train["store_nbr"].isin(affected)
    ratio = train.loc[hit, "sales"].sum() / none.loc[hit, "sales"].sum()
    assert 0.5 < ratio < 0.7
    spared = after & ~train["store_nbr"].isin(affected)
    assert train.loc[spared, "sales"].equals(none.loc[spared, "sales"])
    test = pd.read_csv(result.out_dir / "test.csv")
    assert test.equals(pd.read_csv(base.out_dir / "test.csv"))


def test_missing_burst(scenarios: dict[str, GenerateResult]) -> None:
    result = scenarios["missing_burst"]
    train = _train(result)
    details = _meta(result)["details"]
    burst_end = pd.Timestamp(CHANGE + timedelta(days=6))
    assert details["burst_days"] == 7 and details["burst_end"] == burst_end.date().isoformat()
    in_burst = train["date"].between(pd.Timestamp(CHANGE), burst_end)
    assert train.loc[~in_burst, ["sales", "onpromotion"]].notna().all().all()
    assert 0.25 < train.loc[in_burst, "onpromotion"].isna().mean() < 0.35
    assert 0.06 < train.loc[in_burst, "sales"].isna().mean() < 0.14
    # empty fields in the file, not "nan" or "NA"; integers stay integers
    with (result.out_dir / "train.csv").open(newline="") as fh:
        rows = list(csv.reader(fh))[1:]
    empty_promo = [r for r in rows if r[5] == ""]
    assert empty_promo and all(
        CHANGE.isoformat() <= r[1] <= burst_end.date().isoformat() for r in empty_promo
    )
    assert all(r[5] == "" or r[5].isdigit() for r in rows)
    assert not any(r[4] in ("nan", "NaN", "NA") for r in rows)
    test = pd.read_csv(result.out_dir / "test.csv")
    assert test["onpromotion"].notna().all()


def test_store_closures(scenarios: dict[str, GenerateResult]) -> None:
    result = scenarios["store_closures"]
    change = pd.Timestamp(result.change_date)
    train = _train(result)
    closed = _meta(result)["affected_stores"]
    assert len(closed) == 1
    after = train["date"] >= change
    assert (train.loc[after & train["store_nbr"].isin(closed), "sales"] == 0).all()
    assert train.loc[~after & train["store_nbr"].isin(closed), "sales"].sum() > 0
    assert train.loc[after & ~train["store_nbr"].isin(closed), "sales"].sum() > 0
    assert len(train) == result.files["train.csv"] == 119 * STORES * 33  # rows still present
    tx = pd.read_csv(result.out_dir / "transactions.csv", parse_dates=["date"])
    assert not ((tx["date"] >= change) & tx["store_nbr"].isin(closed)).any()
    assert ((tx["date"] < change) & tx["store_nbr"].isin(closed)).any()


def _after(frame: pd.DataFrame) -> pd.Series:
    return frame["date"] >= pd.Timestamp(CHANGE)


def test_scenario_order_and_names() -> None:
    assert SCENARIOS == (
        "none", "promo_shift", "sales_drop", "missing_burst", "store_closures",
        "price_shock", "new_store", "new_family", "feed_stop",
    )  # fmt: skip
    assert NEW_FAMILY not in FAMILIES


def test_price_shock(base: GenerateResult, scenarios: dict[str, GenerateResult]) -> None:
    result = scenarios["price_shock"]
    train, none = _train(result), _train(base)
    meta = _meta(result)
    hit_families = meta["affected_families"]
    assert meta["affected_stores"] == [1, 2, 3]
    assert len(hit_families) == 11 and hit_families == sorted(hit_families)
    assert meta["details"]["sales_factor"] == 0.6
    # the features do not move: every column but sales is as in none, test.csv and oil too
    pd.testing.assert_frame_equal(train.drop(columns="sales"), none.drop(columns="sales"))
    for name in ("test.csv", "oil.csv", "holidays_events.csv", "stores.csv"):
        assert (result.out_dir / name).read_bytes() == (base.out_dir / name).read_bytes(), name
    after = _after(train)
    hit = after & train["family"].isin(hit_families)
    ratio = train.loc[hit, "sales"].sum() / none.loc[hit, "sales"].sum()
    assert 0.55 < ratio < 0.65
    for family in hit_families:  # every affected family falls, none rises
        one = hit & (train["family"] == family)
        assert (train.loc[one, "sales"] <= none.loc[one, "sales"]).all(), family
        if none.loc[one, "sales"].sum() > 1000:
            assert 0.5 < train.loc[one, "sales"].sum() / none.loc[one, "sales"].sum() < 0.7, family
    spared = ~train["family"].isin(hit_families) | ~after
    assert train.loc[spared, "sales"].equals(none.loc[spared, "sales"])
    # transactions follow the lower sales from the change date on
    tx = pd.read_csv(result.out_dir / "transactions.csv", parse_dates=["date"])
    tx_none = pd.read_csv(base.out_dir / "transactions.csv", parse_dates=["date"])
    assert list(tx[["date", "store_nbr"]].itertuples(index=False)) == list(
        tx_none[["date", "store_nbr"]].itertuples(index=False)
    )
    tx_after = _after(tx)
    assert (tx.loc[tx_after, "transactions"] <= tx_none.loc[tx_after, "transactions"]).all()
    assert tx.loc[tx_after, "transactions"].sum() < 0.97 * tx_none.loc[tx_after, "transactions"].sum()


def test_new_store(base: GenerateResult, scenarios: dict[str, GenerateResult]) -> None:
    result = scenarios["new_store"]
    meta = _meta(result)
    assert meta["affected_stores"] == [4] and meta["details"]["store"]["store_nbr"] == 4
    assert meta["details"]["first_day_with_rows"] == CHANGE.isoformat()
    stores = pd.read_csv(result.out_dir / "stores.csv")
    assert list(stores["store_nbr"]) == [1, 2, 3, 4]
    assert stores.iloc[-1].to_dict() == {**meta["details"]["store"]}
    assert result.files["stores.csv"] == 4
    train, none = _train(result), _train(base)
    assert list(train["id"]) == list(range(len(train)))
    new = train[train["store_nbr"] == 4]
    assert new["date"].min() == pd.Timestamp(CHANGE)
    days_after = none.loc[_after(none), "date"].nunique()
    assert len(new) == days_after * 33 and list(new["family"].iloc[:33]) == list(FAMILIES)
    assert result.files["train.csv"] == base.files["train.csv"] + days_after * 33
    # Kaggle order: the new store's rows come after store 3's on each day
    assert train["date"].is_monotonic_increasing
    assert (train.groupby("date")["store_nbr"].apply(lambda s: s.is_monotonic_increasing)).all()
    # the other stores are as in none, after the change date too
    old = train[train["store_nbr"] <= 3].drop(columns="id").reset_index(drop=True)
    pd.testing.assert_frame_equal(old, none.drop(columns="id"))
    # it sells like a store: same order of magnitude as the others, with promotions
    per_store = train[_after(train)].groupby("store_nbr")["sales"].sum()
    assert 0.2 * per_store[[1, 2, 3]].mean() < per_store[4] < 5 * per_store[[1, 2, 3]].mean()
    assert new["onpromotion"].sum() > 0
    never = meta["details"]["families_never_sold"]
    assert set(never) <= set(FAMILIES) and (new.loc[new["family"].isin(never), "sales"] == 0).all()
    # transactions: its rows start on the change date; the other stores' rows are as in none
    tx = pd.read_csv(result.out_dir / "transactions.csv", parse_dates=["date"])
    tx_none = pd.read_csv(base.out_dir / "transactions.csv", parse_dates=["date"])
    assert tx.loc[tx["store_nbr"] == 4, "date"].min() == pd.Timestamp(CHANGE)
    pd.testing.assert_frame_equal(tx[tx["store_nbr"] <= 3].reset_index(drop=True), tx_none)
    # test.csv has it on every day
    test = pd.read_csv(result.out_dir / "test.csv")
    assert len(test) == 16 * 4 * 33 and (test["store_nbr"] == 4).sum() == 16 * 33
    assert list(test["id"]) == list(range(len(train), len(train) + len(test)))


def test_new_store_after_the_54th(root: Path) -> None:
    result = generate(
        root / "new_store54",
        start=date(2017, 7, 1),
        end=date(2017, 7, 20),
        scenario="new_store",
        change_date=date(2017, 7, 15),
    )
    stores = pd.read_csv(result.out_dir / "stores.csv")
    assert len(stores) == 55 and list(stores["store_nbr"]) == list(range(1, 56))
    row = stores.iloc[-1]
    assert row["type"] in set("ABCDE") and 1 <= row["cluster"] <= 17
    assert ((stores["city"] == row["city"]) & (stores["state"] == row["state"])).sum() > 1  # a known city
    train = _train(result)
    assert train.loc[train["store_nbr"] == 55, "date"].min() == pd.Timestamp(2017, 7, 15)
    assert result.files["train.csv"] == 20 * 54 * 33 + 6 * 33
    assert _meta(result)["affected_stores"] == [55]


def test_new_family(base: GenerateResult, scenarios: dict[str, GenerateResult]) -> None:
    result = scenarios["new_family"]
    meta = _meta(result)
    assert meta["affected_families"] == [NEW_FAMILY] and meta["affected_stores"] == [1, 2, 3]
    train, none = _train(result), _train(base)
    assert list(train["id"]) == list(range(len(train)))
    new = train[train["family"] == NEW_FAMILY]
    assert new["date"].min() == pd.Timestamp(CHANGE)
    days_after = none.loc[_after(none), "date"].nunique()
    assert len(new) == days_after * STORES
    assert result.files["train.csv"] == base.files["train.csv"] + days_after * STORES
    # Kaggle order: families alphabetically within each store and day, the new one included
    expected = sorted([*FAMILIES, NEW_FAMILY])
    day = train[(train["date"] == pd.Timestamp(CHANGE)) & (train["store_nbr"] == 2)]
    assert list(day["family"]) == expected
    assert set(train.loc[~_after(train), "family"]) == set(FAMILIES)
    # the other families are as in none, after the change date too
    old = train[train["family"] != NEW_FAMILY].drop(columns="id").reset_index(drop=True)
    pd.testing.assert_frame_equal(old, none.drop(columns="id"))
    # it sells, at its own scale, with promotions; whole units (not sold by weight)
    assert 5 < new["sales"].mean() < 200 and new["onpromotion"].sum() > 0
    assert (new["sales"] == new["sales"].round()).all()
    # transactions count its sales: never fewer than in none from the change date on
    tx = pd.read_csv(result.out_dir / "transactions.csv", parse_dates=["date"])
    tx_none = pd.read_csv(base.out_dir / "transactions.csv", parse_dates=["date"])
    assert (tx["transactions"] >= tx_none["transactions"]).all()
    assert tx.loc[_after(tx), "transactions"].sum() > tx_none.loc[_after(tx_none), "transactions"].sum()
    # test.csv has it for every store and day
    test = pd.read_csv(result.out_dir / "test.csv")
    assert (test["family"] == NEW_FAMILY).sum() == 16 * STORES and len(test) == 16 * STORES * 34
    assert list(test["family"].iloc[:34]) == expected


def test_feed_stop(base: GenerateResult, scenarios: dict[str, GenerateResult]) -> None:
    result = scenarios["feed_stop"]
    details = _meta(result)["details"]
    assert details["stopped_file"] == "transactions.csv"
    assert details["last_day_with_rows"] == (CHANGE - timedelta(days=1)).isoformat()
    tx = pd.read_csv(result.out_dir / "transactions.csv", parse_dates=["date"])
    assert tx["date"].max() == pd.Timestamp(CHANGE - timedelta(days=1))
    tx_none = pd.read_csv(base.out_dir / "transactions.csv", parse_dates=["date"])
    pd.testing.assert_frame_equal(tx, tx_none[~_after(tx_none)])
    for name in ("train.csv", "test.csv", "stores.csv", "oil.csv", "holidays_events.csv"):
        assert (result.out_dir / name).read_bytes() == (base.out_dir / name).read_bytes(), name


def test_full_store_list_scenario_sizes(root: Path) -> None:
    result = generate(
        root / "closures54", start=date(2017, 7, 1), end=date(2017, 8, 15), scenario="store_closures"
    )
    assert len(_meta(result)["affected_stores"]) == 8
    assert result.change_date == date(2017, 7, 16)
    assert result.files["train.csv"] == 46 * 54 * 33


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scenario": "drift"}, "unknown scenario"),
        ({"stores": 0}, "stores"),
        ({"stores": 55}, "stores"),
        ({"end": START - timedelta(days=1)}, "before start"),
        ({"scenario": "sales_drop", "change_date": START}, "change_date"),
        ({"scenario": "sales_drop", "change_date": END + timedelta(days=1)}, "change_date"),
    ],
)
def test_bad_arguments(tmp_path: Path, kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"stores": STORES, "start": START, "end": END}
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        generate(tmp_path / "bad", **args)  # type: ignore[arg-type]
    assert not (tmp_path / "bad").exists()
