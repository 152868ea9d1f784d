"""The simulation of a whole data set: every store and family over every day, with a scenario applied."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from datagen.calendar import Holiday, day_index, day_ordinal
from datagen.catalog import (
    EPOCH,
    FAMILIES,
    N_STORES,
    NEW_FAMILY,
    NEW_FAMILY_PARAMS,
    NEW_STORE,
    STORES,
    TEST_DAYS,
    TYPE_SCALE,
    ZERO_SHARE,
)
from datagen.sales import (
    FamilyArrays,
    add_level_and_noise,
    draw_promotions,
    draw_sales,
    expected_log_sales,
    open_days,
    transactions_from_sales,
)


@dataclass
class Simulation:
    """Simulated arrays of the written stores and families, with the rows each file gets."""

    train_days: pd.DatetimeIndex
    test_days: pd.DatetimeIndex
    stores: list[tuple[int, str, str, str, int]]  # stores.csv rows, in store order
    families: tuple[str, ...]  # in alphabetical order
    sales: np.ndarray  # (train days, stores, families) float64, NaN = missing
    promo: np.ndarray  # (all days, stores, families) int64
    promo_missing: np.ndarray | None  # (train days, stores, families) bool
    transactions: np.ndarray  # (train days, stores) int64, 0 = no row
    present: np.ndarray | None  # (all days, stores, families) bool: which rows exist; None = all


@dataclass(frozen=True)
class Shared:
    """What a store or family that a scenario adds shares with the simulated ones, from the change day on."""

    days: pd.DatetimeIndex  # all days from the change day: train days, then test days
    n_train: int  # how many of them are train days
    ramp: np.ndarray  # (days,) how common promotions are
    weeks: np.ndarray  # (days,) week number of each day
    family_factor: np.ndarray  # (days, 33) ramp x family promotion level x week and day effects
    family_day: np.ndarray  # (train days, 33) family-day noise
    store_day: np.ndarray  # (train days, 54) store-day noise
    store_lvl: np.ndarray  # (54,)
    store_trend: np.ndarray  # (54,)
    store_promo: np.ndarray  # (54,)
    cluster_eff: np.ndarray  # (18,)
    holidays: list[Holiday]


def _new_store_row(n_stores: int) -> tuple[int, str, str, str, int]:
    """The stores.csv row of the store that opens in the ``new_store`` scenario: the next store of the
    list, or ``NEW_STORE`` after the 54th."""
    return STORES[n_stores] if n_stores < N_STORES else NEW_STORE


def _simulate_new_store(
    shared: Shared, rng: np.random.Generator, row: tuple[int, str, str, str, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Sales (train days, 1, 33), promotions (days, 1, 33) and transactions (train days, 1) of a store
    that opens on the first of ``shared.days``, drawn like the others from its own parameters; also the
    families it never sells."""
    nbr, _city, _state, store_type, cluster = row
    n_f = len(FAMILIES)
    fam = FamilyArrays.of(FAMILIES)
    lvl = np.log([TYPE_SCALE[store_type]]) - 0.6 + shared.cluster_eff[cluster] + rng.normal(0.0, 0.18, 1)
    trend = rng.normal(0.0, 0.025, 1)
    promo_level = np.exp(rng.normal(0.0, 0.25, 1)) * np.exp(0.5 * (lvl - shared.store_lvl.mean()))
    inter = rng.normal(0.0, 0.25, (1, n_f))
    active = np.ones((1, n_f), dtype=bool)
    for name, share in ZERO_SHARE.items():
        active[0, FAMILIES.index(name)] = rng.random() >= share
    trans_k = 2.4 * np.exp(rng.normal(0.0, 0.15, 1))

    sells, is_open = open_days(shared.days, [nbr], FAMILIES, active, history=False)
    _, promo = draw_promotions(rng, shared.family_factor, promo_level, sells)
    train_days = shared.days[: shared.n_train]
    log_mu = expected_log_sales(train_days, [row], lvl, trend, inter, FAMILIES, shared.holidays)
    add_level_and_noise(log_mu, rng, fam.sigma, family_day=shared.family_day)
    log_mu += fam.promo_gain[None, None, :] * np.log1p(promo[: shared.n_train])
    sales = draw_sales(log_mu, rng, fam.frac, is_open[: shared.n_train])
    trans = transactions_from_sales(sales.sum(axis=2), trans_k, rng.lognormal(0.0, 0.04, (shared.n_train, 1)))
    never = [f for f, carried in zip(FAMILIES, active[0], strict=True) if not carried]
    return sales, promo, trans, never


def _simulate_new_family(
    shared: Shared, rng: np.random.Generator, n_stores: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sales (train days, stores, 1) and promotions (days, stores, 1) of ``NEW_FAMILY`` in the first
    ``n_stores`` stores from the first of ``shared.days``, drawn like the others from its own parameters
    (it shares the stores' levels, trends and store-day noise)."""
    stores = list(STORES[:n_stores])
    fam = FamilyArrays.of([NEW_FAMILY])
    span = shared.weeks - shared.weeks.min()
    week_eff = rng.lognormal(0.0, 0.5, (span.max() + 1, 1))[span]
    day_eff = rng.lognormal(0.0, 0.45, (len(shared.days), 1))
    family_factor = shared.ramp[:, None] * fam.promo[None, :] * week_eff * day_eff
    inter = rng.normal(0.0, 0.25, (n_stores, 1))

    active = np.ones((n_stores, 1), dtype=bool)
    sells, is_open = open_days(shared.days, [s[0] for s in stores], [NEW_FAMILY], active)
    _, promo = draw_promotions(rng, family_factor, shared.store_promo[:n_stores], sells)
    train_days = shared.days[: shared.n_train]
    log_mu = expected_log_sales(
        train_days,
        stores,
        shared.store_lvl[:n_stores],
        shared.store_trend[:n_stores],
        inter,
        [NEW_FAMILY],
        shared.holidays,
    )
    add_level_and_noise(log_mu, rng, fam.sigma, store_day=shared.store_day[:, :n_stores])
    log_mu += fam.promo_gain[None, None, :] * np.log1p(promo[: shared.n_train])
    return draw_sales(log_mu, rng, fam.frac, is_open[: shared.n_train]), promo


def simulate(
    seed: int,
    start: date,
    end: date,
    scenario: str,
    change: date | None,
    n_stores: int,
    holidays: list[Holiday],
) -> tuple[Simulation, dict[str, object]]:
    """Draw promotions and sales, apply the scenario, and derive transactions."""
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(8)]
    rng_params, rng_promo, rng_noise, rng_sales, _, rng_trans, rng_scen, _ = streams

    all_days = pd.date_range(start, end + timedelta(days=TEST_DAYS))
    all_days = all_days[~((all_days.month == 12) & (all_days.day == 25))]
    n_train = int(all_days.searchsorted(pd.Timestamp(end), side="right"))
    train_days, test_days = all_days[:n_train], all_days[n_train:]
    n_all, n_s, n_f = len(all_days), N_STORES, len(FAMILIES)
    t_all = day_ordinal(all_days)

    # --- structural parameters (per store, family, store x family) ---
    types = np.array([s[3] for s in STORES])
    clusters = np.array([s[4] for s in STORES])
    cluster_eff = rng_params.normal(0.0, 0.15, 18)
    store_lvl = (
        np.log([TYPE_SCALE[t] for t in types])
        - 0.6
        + cluster_eff[clusters]
        + rng_params.normal(0.0, 0.18, n_s)
    )
    store_trend = rng_params.normal(0.0, 0.025, n_s)
    store_promo = np.exp(rng_params.normal(0.0, 0.25, n_s)) * np.exp(0.5 * (store_lvl - store_lvl.mean()))
    fam = FamilyArrays.of(FAMILIES)
    inter = rng_params.normal(0.0, 0.25, (n_s, n_f))
    active = np.ones((n_s, n_f), dtype=bool)
    for name, share in ZERO_SHARE.items():
        active[rng_params.random(n_s) < share, FAMILIES.index(name)] = False
    trans_k = 2.4 * np.exp(rng_params.normal(0.0, 0.15, n_s))

    # sells: promotions are planned even when a store closes for New Year; is_open: it sells that day
    sells, is_open = open_days(all_days, [s[0] for s in STORES], FAMILIES, active)

    # --- promotions ---
    ramp = np.interp(
        t_all,
        [
            (date(2014, 3, 31) - EPOCH).days,
            (date(2014, 4, 1) - EPOCH).days,
            (date(2016, 1, 1) - EPOCH).days,
        ],
        [0.01, 0.35, 1.0],
    ) * (1.0 + 0.15 * np.clip((t_all - (date(2016, 1, 1) - EPOCH).days) / 365.25, 0.0, None))
    weeks = ((t_all + 1) // 7).astype(np.int64)
    week_eff = rng_promo.lognormal(0.0, 0.5, (weeks.max() - weeks.min() + 1, n_f))[weeks - weeks.min()]
    day_eff = rng_promo.lognormal(0.0, 0.45, (n_all, n_f))
    family_factor = ramp[:, None] * fam.promo[None, :] * week_eff * day_eff
    lam, promo = draw_promotions(rng_promo, family_factor, store_promo, sells)

    # --- scenario: features ---
    details: dict[str, object] = {}
    affected_stores: list[int] = []
    affected_families: list[str] = []
    ci = day_index(all_days, change) if change is not None else n_all
    ci_train = min(ci, n_train)
    chosen_open = [s for s in range(n_stores) if sells[min(ci, n_all - 1), s].any()] or list(range(n_stores))
    if scenario == "promo_shift":
        multiplier, extra = 4.0, 1.5
        lam_extra = lam[ci:] * (multiplier - 1.0) + extra * sells[ci:]
        promo[ci:] += rng_scen.poisson(lam_extra)
        affected_stores = list(range(1, n_stores + 1))
        affected_families = [f for i, f in enumerate(FAMILIES) if sells[ci:, :n_stores, i].any()]
        details = {"promo_multiplier": multiplier, "extra_promos_per_family": extra}
    del lam

    # --- sales ---
    log_mu = expected_log_sales(train_days, list(STORES), store_lvl, store_trend, inter, FAMILIES, holidays)
    store_day, family_day = add_level_and_noise(log_mu, rng_noise, fam.sigma)
    log_mu += fam.promo_gain[None, None, :] * np.log1p(promo[:n_train])
    shared = Shared(
        days=all_days[ci:],
        n_train=n_train - ci_train,
        ramp=ramp[ci:],
        weeks=weeks[ci:],
        family_factor=family_factor[ci:],
        family_day=family_day[ci_train:],
        store_day=store_day[ci_train:],
        store_lvl=store_lvl,
        store_trend=store_trend,
        store_promo=store_promo,
        cluster_eff=cluster_eff,
        holidays=holidays,
    )

    # --- scenario: actuals ---
    drop: tuple[np.ndarray, np.ndarray, float] | None = None  # (store indices, family indices, factor)
    if scenario == "sales_drop":
        factor = 0.6
        k = max(1, round(0.3 * n_stores))
        picked = np.sort(rng_scen.choice(chosen_open, size=min(k, len(chosen_open)), replace=False))
        drop = (picked, np.arange(n_f), factor)
        affected_stores = [int(s) + 1 for s in picked]
        affected_families = list(FAMILIES)
        details = {"sales_factor": factor, "transactions": "follow the dropped sales"}
    elif scenario == "price_shock":
        factor, share = 0.6, 1 / 3
        sold = [f for f in range(n_f) if sells[min(ci, n_all - 1), :n_stores, f].any()] or list(range(n_f))
        k = max(1, round(share * n_f))
        families_hit = np.sort(rng_scen.choice(sold, size=min(k, len(sold)), replace=False))
        drop = (np.arange(n_stores), families_hit, factor)
        affected_stores = list(range(1, n_stores + 1))
        affected_families = [FAMILIES[f] for f in families_hit]
        details = {
            "sales_factor": factor,
            "families_hit": len(families_hit),
            "onpromotion": "unchanged",
            "transactions": "follow the lower sales",
        }
    elif scenario == "store_closures":
        k = max(1, round(n_stores * 8 / N_STORES))
        picked = np.sort(rng_scen.choice(chosen_open, size=min(k, len(chosen_open)), replace=False))
        is_open[ci_train:n_train, picked, :] = False
        affected_stores = [int(s) + 1 for s in picked]
        affected_families = list(FAMILIES)
        details = {"closed_stores": len(picked), "onpromotion": "unchanged"}

    sales = draw_sales(log_mu, rng_sales, fam.frac, is_open[:n_train])
    del log_mu
    if drop is not None:
        # thinning: Binomial(Poisson(mu), p) is Poisson(p * mu), and the other cells keep their draws
        picked, families_hit, factor = drop
        cells = np.ix_(np.arange(ci_train, n_train), picked, families_hit)
        block = sales[cells]
        weighed = fam.frac[families_hit]
        block[:, :, weighed] = np.round(block[:, :, weighed] * factor, 3)
        block[:, :, ~weighed] = rng_scen.binomial(block[:, :, ~weighed].astype(np.int64), factor)
        sales[cells] = block

    new_family: tuple[np.ndarray, np.ndarray] | None = None
    total = sales.sum(axis=2)
    if scenario == "new_family":
        new_family = _simulate_new_family(shared, rng_scen, n_stores)
        total[ci_train:, :n_stores] += new_family[0].sum(axis=2)  # transactions count the new family too
    trans = transactions_from_sales(total, trans_k, rng_trans.lognormal(0.0, 0.04, total.shape))

    promo_missing = None
    if scenario == "missing_burst" and ci_train < n_train:
        burst_days, promo_share, sales_share = 7, 0.3, 0.1
        stop = min(ci_train + burst_days, n_train)
        shape = (stop - ci_train, n_s, n_f)
        promo_missing = np.zeros((n_train, n_s, n_f), dtype=bool)
        promo_missing[ci_train:stop] = rng_scen.random(shape) < promo_share
        sales_missing = rng_scen.random(shape) < sales_share
        sales[ci_train:stop][sales_missing] = np.nan
        affected_stores = list(range(1, n_stores + 1))
        affected_families = list(FAMILIES)
        details = {
            "burst_days": stop - ci_train,
            "burst_end": train_days[stop - 1].date().isoformat(),
            "onpromotion_missing_share": promo_share,
            "sales_missing_share": sales_share,
        }
    elif scenario == "feed_stop":
        trans[ci_train:] = 0
        affected_stores = list(range(1, n_stores + 1))
        affected_families = list(FAMILIES)
        details = {
            "stopped_file": "transactions.csv",
            "last_day_with_rows": train_days[ci_train - 1].date().isoformat(),
            "continuing_files": ["train.csv", "test.csv", "oil.csv", "holidays_events.csv", "stores.csv"],
            "features_affected": "transactions_lag_1 (the previous day's transactions): null from the day "
            "after change_date",
        }

    # --- the written stores and families ---
    stores = list(STORES[:n_stores])
    families = FAMILIES
    sales, promo, trans = sales[:, :n_stores], promo[:, :n_stores], trans[:, :n_stores]
    if promo_missing is not None:
        promo_missing = promo_missing[:, :n_stores]
    present = None
    if scenario == "new_store":
        row = _new_store_row(n_stores)
        new_sales, new_promo, new_trans, never = _simulate_new_store(shared, rng_scen, row)
        stores.append(row)
        sales = np.concatenate([sales, np.zeros((n_train, 1, n_f))], axis=1)
        sales[ci_train:, -1:] = new_sales
        promo = np.concatenate([promo, np.zeros((n_all, 1, n_f), dtype=promo.dtype)], axis=1)
        promo[ci:, -1:] = new_promo
        trans = np.concatenate([trans, np.zeros((n_train, 1), dtype=trans.dtype)], axis=1)
        trans[ci_train:, -1:] = new_trans
        present = np.ones((n_all, n_stores + 1, n_f), dtype=bool)
        present[:ci, -1, :] = False
        affected_stores = [row[0]]
        affected_families = list(FAMILIES)
        details = {
            "store": dict(zip(("store_nbr", "city", "state", "type", "cluster"), row, strict=True)),
            "first_day_with_rows": all_days[min(ci, n_all - 1)].date().isoformat(),
            "families_never_sold": never,
            "other_stores": "as in the none scenario",
        }
    elif new_family is not None:
        new_sales, new_promo = new_family
        at = int(np.searchsorted(np.array(FAMILIES), NEW_FAMILY))
        families = (*FAMILIES[:at], NEW_FAMILY, *FAMILIES[at:])
        sales = np.insert(sales, at, 0.0, axis=2)
        sales[ci_train:, :, at] = new_sales[:, :, 0]
        promo = np.insert(promo, at, 0, axis=2)
        promo[ci:, :, at] = new_promo[:, :, 0]
        present = np.ones((n_all, n_stores, n_f + 1), dtype=bool)
        present[:ci, :, at] = False
        affected_stores = list(range(1, n_stores + 1))
        affected_families = [NEW_FAMILY]
        details = {
            "family": NEW_FAMILY,
            "first_day_with_rows": all_days[min(ci, n_all - 1)].date().isoformat(),
            "mean_daily_sales_at_an_average_store": NEW_FAMILY_PARAMS[0],
            "other_families": "as in the none scenario",
            "transactions": "count the new family's sales too",
        }

    sim = Simulation(train_days, test_days, stores, families, sales, promo, promo_missing, trans, present)
    return sim, {
        "affected_stores": affected_stores,
        "affected_families": affected_families,
        "details": details,
    }
