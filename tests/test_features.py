"""The features mart `marts.fct_sales_features` on small generated data: lags by calendar day, rolling
windows against pandas, holidays with transfers, oil forward-filled, paydays, forecast requests, and
an incremental build that processes only the new days and equals a full refresh.

One module-wide build: the data of 3 stores from 2016-12-01 to 2017-03-31 is split at SPLIT_DAY
into a first folder (sales up to SPLIT_DAY, the 16 days after it as forecast requests) and the
full folder. Both carry a missing store-day and a few blank sales. The first folder is loaded and
`dbt build --select +fct_sales_features` runs; then the full folder is loaded, the mart is built
incrementally, snapshotted, and rebuilt with `--full-refresh`.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import psycopg
import pytest
from psycopg import sql

from datagen import generate
from warehouse.dbt import run_dbt
from warehouse.loader import load_folder

FIRST_DAY = date(2016, 12, 1)
LAST_DAY = date(2017, 3, 31)
SPLIT_DAY = date(2017, 2, 28)  # the first load's last day of sales
REQUEST_DAYS = 16  # forecast requests after the last day of sales (as in the Kaggle test file)
STORES = 3
FAMILIES = 33
MISSING_STORE_DAY = (date(2017, 2, 14), 2)  # store 2 has no rows at all that day
BLANK_SALES = (3, "GROCERY I", [date(2017, 2, 10), date(2017, 2, 11), date(2017, 2, 12)])

TABLE_MD5 = """
    select md5(string_agg(features::text, '|' order by sales_date, store_nbr, family))
    from marts.fct_sales_features as features
"""
ROW_VERSIONS = """
    select sales_date, store_nbr, family, xmin::text
    from marts.fct_sales_features
    where sales_date <= %s
    order by sales_date, store_nbr, family
"""


@dataclass(frozen=True)
class Build:
    """What the module's build sequence saw, for the tests to assert on."""

    database: str
    raw_train: pd.DataFrame  # the full folder's train.csv as loaded
    raw_oil: pd.DataFrame
    holidays: pd.DataFrame
    first_build_requests: tuple[int, int, int]  # request rows, of them with null sales, total rows
    old_rows_before: list[tuple]  # (sales_date, store_nbr, family, xmin) up to SPLIT_DAY, before
    old_rows_after: list[tuple]  # the same after the incremental run
    incremental_rows_affected: int
    incremental_md5: str
    full_refresh_md5: str


def _write_folders(root: Path) -> tuple[Path, Path]:
    """Generate the full folder and cut the first folder out of it (the generator is not
    prefix-stable: a later end date draws other numbers for the same days)."""
    full = root / "full"
    generate(full, stores=STORES, start=FIRST_DAY, end=LAST_DAY)
    train = pd.read_csv(full / "train.csv", dtype={"date": str})
    missing_day, missing_store = MISSING_STORE_DAY
    train = train[~((train["date"] == missing_day.isoformat()) & (train["store_nbr"] == missing_store))]
    blank_store, blank_family, blank_days = BLANK_SALES
    blank = (
        (train["store_nbr"] == blank_store)
        & (train["family"] == blank_family)
        & train["date"].isin([day.isoformat() for day in blank_days])
    )
    train.loc[blank, "sales"] = math.nan
    train.to_csv(full / "train.csv", index=False)

    first = root / "first"
    first.mkdir()
    for name in ("stores.csv", "holidays_events.csv"):
        shutil.copy(full / name, first / name)
    split = SPLIT_DAY.isoformat()
    for name in ("oil.csv", "transactions.csv"):
        frame = pd.read_csv(full / name, dtype={"date": str})
        frame[frame["date"] <= split].to_csv(first / name, index=False)
    train[train["date"] <= split].to_csv(first / "train.csv", index=False)
    last_request = (SPLIT_DAY + timedelta(days=REQUEST_DAYS)).isoformat()
    requests = train[(train["date"] > split) & (train["date"] <= last_request)]
    requests.drop(columns=["sales"]).to_csv(first / "test.csv", index=False)
    return first, full


def _rows_affected(target: Path) -> int:
    results = json.loads((target / "run_results.json").read_text())["results"]
    (result,) = [r for r in results if r["unique_id"] == "model.salesmon.fct_sales_features"]
    assert result["status"] == "success"
    return int(result["adapter_response"]["rows_affected"])


@pytest.fixture(scope="module")
def built(module_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Build]:
    """Load the first folder and build, load the full folder and build incrementally, then rebuild
    from scratch; dbt writes to a private target folder so that concurrent runs do not collide."""
    root = tmp_path_factory.mktemp("features")
    first, full = _write_folders(root)
    target = root / "target"
    dbt_paths = ["--target-path", str(target), "--log-path", str(root / "logs")]

    load_folder(first)
    run_dbt(["build", "--select", "+fct_sales_features", *dbt_paths], quiet=True)
    with psycopg.connect(module_database) as conn:
        first_build_requests = conn.execute(
            """
            select count(*) filter (where is_forecast_request),
                count(*) filter (where is_forecast_request and sales is null),
                count(*)
            from marts.fct_sales_features
            """
        ).fetchone()
        old_rows_before = conn.execute(ROW_VERSIONS, (SPLIT_DAY,)).fetchall()

    load_folder(full)
    run_dbt(["run", "--select", "fct_sales_features", *dbt_paths], quiet=True)
    incremental_rows_affected = _rows_affected(target)
    with psycopg.connect(module_database) as conn:
        old_rows_after = conn.execute(ROW_VERSIONS, (SPLIT_DAY,)).fetchall()
        incremental_md5 = conn.execute(TABLE_MD5).fetchone()[0]

    run_dbt(["run", "--select", "fct_sales_features", "--full-refresh", *dbt_paths], quiet=True)
    with psycopg.connect(module_database) as conn:
        full_refresh_md5 = conn.execute(TABLE_MD5).fetchone()[0]

    yield Build(
        database=module_database,
        raw_train=pd.read_csv(full / "train.csv", parse_dates=["date"]),
        raw_oil=pd.read_csv(full / "oil.csv", parse_dates=["date"]),
        holidays=pd.read_csv(full / "holidays_events.csv", parse_dates=["date"]),
        first_build_requests=tuple(first_build_requests),
        old_rows_before=old_rows_before,
        old_rows_after=old_rows_after,
        incremental_rows_affected=incremental_rows_affected,
        incremental_md5=incremental_md5,
        full_refresh_md5=full_refresh_md5,
    )


def _features(build: Build, query: str = "select * from marts.fct_sales_features") -> pd.DataFrame:
    with psycopg.connect(build.database) as conn:
        cursor = conn.execute(query)
        columns = [column.name for column in cursor.description]
        frame = pd.DataFrame(cursor.fetchall(), columns=columns)
    frame["sales_date"] = pd.to_datetime(frame["sales_date"])
    return frame


# --- incremental ---------------------------------------------------------------------------------


def test_incremental_build_equals_full_refresh(built: Build) -> None:
    assert built.incremental_md5 is not None
    assert built.incremental_md5 == built.full_refresh_md5


def test_incremental_build_processes_only_the_days_from_the_first_forecast_request(built: Build) -> None:
    # First forecast-request day .. last request day of the full folder: 31 days of March + 16.
    rebuilt_days = (LAST_DAY - SPLIT_DAY).days + REQUEST_DAYS
    assert built.incremental_rows_affected == rebuilt_days * STORES * FAMILIES
    # Rows of the days before were not rewritten: same row versions (xmin) as after the first build.
    assert len(built.old_rows_before) == len(built.old_rows_after) > 80 * STORES * FAMILIES
    assert built.old_rows_after == built.old_rows_before


def test_forecast_requests_are_rows_with_a_null_target_until_their_sales_arrive(built: Build) -> None:
    requests, requests_without_sales, total = built.first_build_requests
    assert requests == requests_without_sales == REQUEST_DAYS * STORES * FAMILIES
    features = _features(built)
    answered = features[
        (features["sales_date"] > pd.Timestamp(SPLIT_DAY))
        & (features["sales_date"] <= pd.Timestamp(SPLIT_DAY + timedelta(days=REQUEST_DAYS)))
    ]
    assert len(answered) == REQUEST_DAYS * STORES * FAMILIES
    assert not answered["is_forecast_request"].any()
    assert answered["sales"].notna().all()
    open_requests = features[features["is_forecast_request"]]
    assert len(open_requests) == REQUEST_DAYS * STORES * FAMILIES
    assert open_requests["sales"].isna().all()
    assert open_requests["sales_date"].min() == pd.Timestamp(LAST_DAY + timedelta(days=1))
    assert total == len(built.raw_train[built.raw_train["date"] <= pd.Timestamp(SPLIT_DAY)]) + requests
    assert len(features) == len(built.raw_train) + len(open_requests)


# --- lags and rolling windows ----------------------------------------------------------------------


@pytest.mark.parametrize("days", [1, 7, 14, 28])
def test_lags_are_the_sales_of_the_same_series_that_many_calendar_days_before(
    built: Build, days: int
) -> None:
    query = sql.SQL(
        """
        select
            count(*),
            count(*) filter (where features.{lag} is distinct from earlier.sales),
            count(features.{lag})
        from marts.fct_sales_features as features
        left join raw.train as earlier
            on
                earlier.date = features.sales_date - cast(%s as integer)
                and earlier.store_nbr = features.store_nbr
                and earlier.family = features.family
        """
    ).format(lag=sql.Identifier(f"sales_lag_{days}"))
    with psycopg.connect(built.database) as conn:
        checked, mismatched, known = conn.execute(query, (days,)).fetchone()
    assert mismatched == 0
    assert known > checked * 0.7


def test_lags_skip_missing_days_instead_of_taking_the_previous_row(built: Build) -> None:
    missing_day, missing_store = MISSING_STORE_DAY
    features = _features(built).set_index(["sales_date", "store_nbr", "family"]).sort_index()
    day_after = pd.Timestamp(missing_day + timedelta(days=1))
    week_after = pd.Timestamp(missing_day + timedelta(days=7))
    assert features.loc[(day_after, missing_store), "sales_lag_1"].isna().all()
    assert features.loc[(week_after, missing_store), "sales_lag_7"].isna().all()
    assert features.loc[(day_after, 1), "sales_lag_1"].notna().all()
    # 25 December has no rows at all: the 26th has no lag 1, 1 January no lag 7.
    assert features.loc[pd.Timestamp(2016, 12, 26), "sales_lag_1"].isna().all()
    assert features.loc[pd.Timestamp(2017, 1, 1), "sales_lag_7"].isna().all()
    assert features.loc[pd.Timestamp(2017, 1, 1), "sales_lag_1"].notna().all()


@pytest.mark.parametrize(
    ("store_nbr", "family"),
    [(3, "GROCERY I"), (2, "BEVERAGES"), (1, "PRODUCE"), (2, "LIQUOR,WINE,BEER")],
)
def test_rolling_windows_match_pandas_over_calendar_days(built: Build, store_nbr: int, family: str) -> None:
    features = _features(built)
    features = features[(features["store_nbr"] == store_nbr) & (features["family"] == family)]
    features = features.set_index("sales_date").sort_index()
    # The loaded file's sales on every calendar day up to the last row: missing days, blank sales
    # and forecast requests are NaN.
    raw = built.raw_train
    raw = raw[(raw["store_nbr"] == store_nbr) & (raw["family"] == family)].set_index("date")["sales"]
    sales = raw.reindex(pd.date_range(raw.index.min(), features.index.max(), freq="D"))
    before = sales.shift(1)
    expected = pd.DataFrame(
        {
            "sales_mean_7": before.rolling(7, min_periods=1).mean(),
            "sales_std_7": before.rolling(7, min_periods=1).std(),
            "sales_mean_28": before.rolling(28, min_periods=1).mean(),
            "sales_std_28": before.rolling(28, min_periods=1).std(),
            "sales_same_weekday_mean_4w": pd.concat([sales.shift(k) for k in (7, 14, 21, 28)], axis=1).mean(
                axis=1
            ),
        }
    ).reindex(features.index)
    actual = features[expected.columns].astype(float)
    assert actual.notna().sum().min() > 100
    pd.testing.assert_frame_equal(actual, expected, check_exact=False, rtol=1e-7, atol=1e-9, check_freq=False)


# --- calendar, holidays, oil, transactions ----------------------------------------------------------


def test_calendar_columns_and_paydays(built: Build) -> None:
    days = _features(
        built,
        """
        select distinct sales_date, day_of_week, day_of_month, month, is_payday
        from marts.fct_sales_features
        """,
    )
    for row in days.itertuples():
        day = row.sales_date.date()
        last_of_month = (day + timedelta(days=1)).day == 1
        assert (row.day_of_week, row.day_of_month, row.month) == (day.isoweekday(), day.day, day.month)
        assert row.is_payday == (day.day == 15 or last_of_month), day
    paydays = set(days.loc[days["is_payday"], "sales_date"].dt.date)
    assert {date(2016, 12, 15), date(2016, 12, 31), date(2017, 2, 28), date(2017, 3, 15)} <= paydays
    assert date(2017, 3, 1) not in paydays


def test_a_transferred_holiday_is_an_ordinary_day_and_its_transfer_the_day_off(built: Build) -> None:
    holidays = built.holidays
    transferred = holidays[(holidays["type"] == "Holiday") & holidays["transferred"]]
    assert pd.Timestamp(2017, 1, 1) in set(transferred["date"])  # New Year on a Sunday, moved to Monday
    flags = (
        _features(
            built,
            """
        select distinct sales_date, store_nbr, is_national_holiday, is_regional_holiday, is_local_holiday,
            is_work_day, is_event
        from marts.fct_sales_features
        """,
        )
        .set_index(["sales_date", "store_nbr"])
        .sort_index()
    )
    assert not flags.loc[pd.Timestamp(2017, 1, 1), "is_national_holiday"].any()
    assert flags.loc[pd.Timestamp(2017, 1, 2), "is_national_holiday"].all()
    # The national days off of the file, and only they, are flagged: untransferred Holidays and
    # Transfer, Additional and Bridge days (Events and Work Days are not days off).
    days = set(flags.index.get_level_values(0))
    national = holidays[(holidays["locale"] == "National") & holidays["date"].isin(days)]
    is_day_off = national["type"].isin(["Transfer", "Additional", "Bridge"]) | (
        (national["type"] == "Holiday") & ~national["transferred"]
    )
    flagged = set(flags.index.get_level_values(0)[flags["is_national_holiday"]])
    assert len(flagged) >= 8
    assert flagged == set(national.loc[is_day_off, "date"])
    assert pd.Timestamp(2016, 12, 24) in flagged  # an Additional day before Christmas
    # The three stores are in Quito (Pichincha): Quito's foundation days are local holidays there,
    # Loja's are not, and no regional holiday of the period is in Pichincha.
    assert flags.loc[pd.Timestamp(2016, 12, 5), "is_local_holiday"].all()
    assert flags.loc[pd.Timestamp(2016, 12, 6), "is_local_holiday"].all()
    assert not flags.loc[pd.Timestamp(2016, 12, 8), "is_local_holiday"].any()
    assert flags["is_local_holiday"].sum() == 2 * STORES
    assert not flags["is_regional_holiday"].any()


def test_oil_price_is_carried_over_weekends_and_gaps(built: Build) -> None:
    quotes = built.raw_oil.dropna().set_index("date")["dcoilwtico"]
    features = _features(built, "select distinct sales_date, oil_price from marts.fct_sales_features")
    features = features.set_index("sales_date")["oil_price"].sort_index()
    expected = quotes.reindex(features.index.union(quotes.index)).ffill().reindex(features.index)
    pd.testing.assert_series_equal(features, expected, check_names=False, check_freq=False)
    saturday, sunday, friday = pd.Timestamp(2016, 12, 3), pd.Timestamp(2016, 12, 4), pd.Timestamp(2016, 12, 2)
    assert saturday not in quotes.index and sunday not in quotes.index
    assert features[saturday] == features[sunday] == quotes[friday]


def test_transactions_lag_is_the_store_transactions_of_the_day_before(built: Build) -> None:
    with psycopg.connect(built.database) as conn:
        mismatched, known = conn.execute(
            """
            select
                count(*) filter (where features.transactions_lag_1 is distinct from earlier.transactions),
                count(features.transactions_lag_1)
            from marts.fct_sales_features as features
            left join raw.transactions as earlier
                on earlier.date = features.sales_date - 1 and earlier.store_nbr = features.store_nbr
            """
        ).fetchone()
    assert mismatched == 0
    assert known > 0
