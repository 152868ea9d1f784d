"""`generate`: check the arguments, simulate, and write the Kaggle files and scenario.json."""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from datagen.calendar import ecuador_holidays, oil_prices
from datagen.catalog import HOLIDAYS_HEADER, N_STORES, NEW_FAMILY, SCENARIOS, TEST_DAYS
from datagen.simulate import simulate


@dataclass(frozen=True)
class GenerateResult:
    """What :func:`generate` wrote: folder, data rows per file, scenario, change date and wall time."""

    out_dir: Path
    files: dict[str, int]  # file name -> data rows written (excluding header)
    scenario: str
    change_date: date | None
    seconds: float


def _write_rows(path: Path, header: tuple[str, ...], rows: list[tuple[object, ...]]) -> int:
    """Write a small CSV with the csv module (minimal quoting, ``\\n`` line ends)."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    return len(rows)


def _grid_frame(
    days: pd.DatetimeIndex,
    store_nbrs: list[int],
    families: tuple[str, ...],
    first_id: int,
    present: np.ndarray | None = None,
) -> pd.DataFrame:
    """id, date, store_nbr, family columns for every (day, store, family), Kaggle order; with ``present``
    (days, stores, families), only the rows it marks."""
    n_s, n_f = len(store_nbrs), len(families)
    per_day = n_s * n_f
    day_codes = np.repeat(np.arange(len(days)), per_day)
    stores = np.tile(np.repeat(np.array(store_nbrs, dtype=np.int64), n_f), len(days))
    family_codes = np.tile(np.arange(n_f), len(days) * n_s)
    if present is not None:
        keep = present.reshape(-1)
        day_codes, stores, family_codes = day_codes[keep], stores[keep], family_codes[keep]
    n = len(day_codes)
    return pd.DataFrame(
        {
            "id": np.arange(first_id, first_id + n, dtype=np.int64),
            "date": pd.Categorical.from_codes(day_codes, categories=days.strftime("%Y-%m-%d")),
            "store_nbr": stores,
            "family": pd.Categorical.from_codes(family_codes, categories=families),
        }
    )


def _as_date(value: date) -> date:
    """A plain date (a datetime is truncated to its day, since dates and datetimes do not compare)."""
    return value.date() if isinstance(value, datetime) else value


def _validate(scenario: str, stores: int, start: date, end: date, change_date: date | None) -> date | None:
    """Check the arguments; return the effective change date (None for the ``none`` scenario)."""
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; expected one of {', '.join(SCENARIOS)}")
    if isinstance(stores, bool) or not isinstance(stores, int) or not 1 <= stores <= N_STORES:
        raise ValueError(f"stores must be an integer in 1..{N_STORES}, got {stores!r}")
    if end < start:
        raise ValueError(f"end ({end}) is before start ({start})")
    if change_date is not None and not start < change_date <= end:
        raise ValueError(
            f"change_date ({change_date}) must be after start ({start}) and not after end ({end})"
        )
    if scenario == "none":
        return None
    if change_date is None:
        if end == start:
            raise ValueError(f"scenario {scenario!r} needs at least two days between start and end")
        change_date = max(end - timedelta(days=30), start + timedelta(days=1))
    return change_date


def generate(
    out_dir: Path,
    *,
    stores: int = 54,
    start: date = date(2013, 1, 1),
    end: date = date(2017, 8, 15),
    seed: int = 42,
    scenario: str = "none",
    change_date: date | None = None,
    progress: Callable[[str], None] | None = None,
) -> GenerateResult:
    """Write a synthetic Kaggle "Store Sales" data set (train, test, stores, oil, holidays_events,
    transactions CSVs and scenario.json) for the first ``stores`` stores from ``start`` to ``end`` into
    ``out_dir``, deterministically for ``seed``; test.csv covers the 16 days after ``end``. ``scenario``
    injects a change from ``change_date`` on (default: 30 days before ``end``): ``promo_shift`` (many more
    promotions), ``sales_drop`` (actual sales -40% in some stores, features unchanged), ``missing_burst``
    (empty onpromotion/sales fields for 7 days), ``store_closures`` (some stores sell nothing),
    ``price_shock`` (actual sales -40% in a third of the families, features unchanged), ``new_store`` (store
    ``stores`` + 1 opens), ``new_family`` (a family never seen before appears) or ``feed_stop``
    (transactions.csv stops); rows before the change date are identical to the ``none`` scenario. Raises
    ValueError on bad arguments.
    """
    t0 = time.perf_counter()
    start, end = _as_date(start), _as_date(end)
    change_date = _as_date(change_date) if change_date is not None else None
    change = _validate(scenario, stores, start, end, change_date)
    say = progress or (lambda _msg: None)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files: dict[str, int] = {}

    last = end + timedelta(days=TEST_DAYS)
    holidays = ecuador_holidays(start.year, last.year)
    sim, truth = simulate(seed, start, end, scenario, change, stores, holidays)
    say(f"simulated {len(sim.train_days):,} days x {len(sim.stores)} stores x {len(sim.families)} families")

    files["stores.csv"] = _write_rows(
        out / "stores.csv", ("store_nbr", "city", "state", "type", "cluster"), sim.stores
    )
    oil_rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(8)[4])
    files["oil.csv"] = _write_rows(out / "oil.csv", ("date", "dcoilwtico"), oil_prices(oil_rng, start, last))
    files["holidays_events.csv"] = _write_rows(
        out / "holidays_events.csv",
        HOLIDAYS_HEADER,
        [
            (h.day.isoformat(), h.type, h.locale, h.locale_name, h.description, str(h.transferred))
            for h in holidays
        ],
    )

    n_train = len(sim.train_days)
    store_nbrs = [row[0] for row in sim.stores]
    # a scenario's new store or family has no rows before the change date
    present_train, present_test = (None, None) if sim.present is None else np.split(sim.present, [n_train])
    keep = slice(None) if present_train is None else present_train.reshape(-1)
    frame = _grid_frame(sim.train_days, store_nbrs, sim.families, 0, present_train)
    frame["sales"] = sim.sales.reshape(-1)[keep]
    promo = sim.promo[:n_train].reshape(-1)[keep]
    if sim.promo_missing is not None:
        frame["onpromotion"] = pd.array(promo, dtype="Int64")
        frame.loc[sim.promo_missing.reshape(-1)[keep], "onpromotion"] = pd.NA
    else:
        frame["onpromotion"] = promo
    frame.to_csv(out / "train.csv", index=False, lineterminator="\n", chunksize=500_000)
    files["train.csv"] = len(frame)
    say(f"train.csv: {len(frame):,} rows")
    next_id = len(frame)
    del frame

    keep = slice(None) if present_test is None else present_test.reshape(-1)
    test = _grid_frame(sim.test_days, store_nbrs, sim.families, next_id, present_test)
    test["onpromotion"] = sim.promo[n_train:].reshape(-1)[keep]
    test.to_csv(out / "test.csv", index=False, lineterminator="\n")
    files["test.csv"] = len(test)
    say(f"test.csv: {len(test):,} rows")

    d_idx, s_idx = np.nonzero(sim.transactions)
    tx = pd.DataFrame(
        {
            "date": sim.train_days.strftime("%Y-%m-%d").to_numpy()[d_idx],
            "store_nbr": np.array(store_nbrs, dtype=np.int64)[s_idx],
            "transactions": sim.transactions[d_idx, s_idx],
        }
    )
    tx.to_csv(out / "transactions.csv", index=False, lineterminator="\n")
    files["transactions.csv"] = len(tx)
    say(f"transactions.csv: {len(tx):,} rows")

    descriptions = {
        "none": "No injected change.",
        "promo_shift": "onpromotion jumps (x4 plus promotions on many more families) from change_date; "
        "sales follow the promotions as usual.",
        "sales_drop": "Actual sales fall 40% in the affected stores from change_date; onpromotion and "
        "calendar features are unchanged (concept drift).",
        "missing_burst": "For a burst of days from change_date, a share of onpromotion and sales fields in "
        "train.csv are empty.",
        "store_closures": "The affected stores report zero sales for every family from change_date on "
        "(rows present, no transactions rows).",
        "price_shock": "A price rise: from change_date, actual sales of the affected families fall to 60% "
        "in every store; onpromotion, oil, holidays and every feature of change_date itself are as in "
        "none (sales lags show the fall from the next day); transactions follow the lower sales.",
        "new_store": "A store that did not exist before opens on change_date: a new stores.csv row, and "
        "train.csv and transactions.csv rows for it only from change_date on (test.csv has it too); "
        "the other stores are as in none.",
        "new_family": f"A family never seen before ({NEW_FAMILY}) appears on change_date in every store: "
        "train.csv rows for it only from change_date on, and in test.csv; the other families' sales and "
        "promotions are as in none; transactions count its sales.",
        "feed_stop": "The transactions.csv feed stops: no rows from change_date on; train.csv, test.csv "
        "and the other files continue as in none.",
    }
    meta = {
        "scenario": scenario,
        "change_date": change.isoformat() if change else None,
        "seed": seed,
        "stores": stores,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "description": descriptions[scenario],
        **truth,
    }
    (out / "scenario.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")

    seconds = time.perf_counter() - t0
    say(f"done in {seconds:.1f} s")
    return GenerateResult(out_dir=out, files=files, scenario=scenario, change_date=change, seconds=seconds)
