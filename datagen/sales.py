"""The sales model: which store sells what when, promotions, expected sales, noise and draws."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pandas as pd

from datagen.calendar import Holiday, day_index, day_ordinal
from datagen.catalog import (
    ALL_FAMILY_PARAMS,
    COAST_STATES,
    EARTHQUAKE,
    EARTHQUAKE_DAYS,
    FAMILY_START,
    FRACTIONAL,
    OPEN_ON_NEW_YEAR,
    OPENING,
    TEMP_CLOSED,
)


@dataclass(frozen=True)
class FamilyArrays:
    """Per-family parameters (see FAMILY_PARAMS) as arrays, in the order of the given families."""

    lvl: np.ndarray
    promo: np.ndarray
    week: np.ndarray
    dec: np.ndarray
    sigma: np.ndarray  # day-to-day noise
    promo_gain: np.ndarray
    frac: np.ndarray  # sold by weight

    @classmethod
    def of(cls, families: tuple[str, ...] | list[str]) -> FamilyArrays:
        params = np.array([ALL_FAMILY_PARAMS[f] for f in families])
        scale, promo, week, dec = params.T
        return cls(
            lvl=np.log(scale),
            promo=promo,
            week=week,
            dec=dec,
            sigma=np.where(scale >= 100, 0.2, 0.3),
            promo_gain=0.35 / np.log1p(np.maximum(promo, 1.0)),
            frac=np.array([f in FRACTIONAL for f in families]),
        )


def open_days(
    days: pd.DatetimeIndex,
    store_nbrs: list[int],
    families: tuple[str, ...] | list[str],
    active: np.ndarray,
    *,
    history: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """``sells[d, s, f]``: the store carries the family (``active``), the family has started and (with
    ``history``) the store has opened and is not closed for refurbishment; ``is_open``: the same, except
    the New Year closures. Promotions are planned on ``sells``, sales happen on ``is_open``."""
    sells = np.broadcast_to(active, (len(days), *active.shape)).copy()
    if history:
        for s, nbr in enumerate(store_nbrs):
            if nbr in OPENING:
                sells[: day_index(days, OPENING[nbr]), s, :] = False
            if nbr in TEMP_CLOSED:
                first, last = TEMP_CLOSED[nbr]
                sells[day_index(days, first) : day_index(days, last + timedelta(days=1)), s, :] = False
    for f, fam in enumerate(families):
        if fam in FAMILY_START:
            sells[: day_index(days, FAMILY_START[fam]), :, f] = False
    is_open = sells.copy()
    new_year = np.flatnonzero((days.month == 1) & (days.day == 1))
    closed_new_year = np.array([nbr not in OPEN_ON_NEW_YEAR for nbr in store_nbrs])
    for d in new_year:
        is_open[d, closed_new_year, :] = False
    return sells, is_open


def draw_promotions(
    rng: np.random.Generator, family_factor: np.ndarray, store_promo: np.ndarray, sells: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Poisson promotion counts (and their means) per (day, store, family): family factor x store level x
    cell noise, zero where the store does not sell the family."""
    lam = family_factor[:, None, :] * store_promo[None, :, None] * np.exp(rng.normal(0.0, 0.3, sells.shape))
    lam[~sells] = 0.0
    return lam, rng.poisson(lam)


def expected_log_sales(
    days: pd.DatetimeIndex,
    stores: list[tuple[int, str, str, str, int]],
    store_lvl: np.ndarray,
    store_trend: np.ndarray,
    inter: np.ndarray,
    families: tuple[str, ...] | list[str],
    holidays: list[Holiday],
) -> np.ndarray:
    """log of expected sales per (day, store, family) before noise and promotions: store and family scale,
    trend, weekly and yearly seasonality, paydays, back to school, holidays and the 2016 earthquake."""
    fam = FamilyArrays.of(families)
    t = day_ordinal(days)
    dow = days.dayofweek.to_numpy()
    dom = days.day.to_numpy()
    month = days.month.to_numpy()
    dim = days.days_in_month.to_numpy()
    doy = days.dayofyear.to_numpy()
    base_week = np.array([-0.04, -0.10, -0.06, -0.12, -0.02, 0.14, 0.20])
    payday = np.where((dom == 15) | (dom == dim), 0.08, 0.0) + np.where((dom == 16) | (dom == 1), 0.04, 0.0)
    december = np.where(
        (month == 12) & (dom <= 24), 0.06 + 0.45 * ((dom - 1) / 23.0) ** 2, np.where(month == 12, 0.12, 0.0)
    )
    january = np.where((month == 1) & (dom <= 10), -0.08, 0.0)
    smooth = 0.04 * np.sin(2 * np.pi * (doy - 100) / 365.25)

    day_eff_all = 0.045 * t / 365.25 + payday + january + smooth  # (D,)
    log_mu = (
        (store_lvl[None, :, None] + fam.lvl[None, None, :] + inter[None, :, :])
        + (day_eff_all[:, None, None] + (store_trend[None, :] * t[:, None] / 365.25)[:, :, None])
        + (base_week[dow][:, None] * fam.week[None, :])[:, None, :]
        + (december[:, None] * fam.dec[None, :])[:, None, :]
    )
    states = [s[2] for s in stores]
    cities = [s[1] for s in stores]
    fam_idx = {f: i for i, f in enumerate(families)}
    # back to school: Sierra in August/September, Coast in April
    if "SCHOOL AND OFFICE SUPPLIES" in fam_idx:
        school = fam_idx["SCHOOL AND OFFICE SUPPLIES"]
        coast = np.array([st in COAST_STATES for st in states])
        sierra_season = ((month == 8) & (dom >= 10)) | ((month == 9) & (dom <= 20))
        coast_season = ((month == 3) & (dom >= 25)) | ((month == 4) & (dom <= 30))
        log_mu[:, :, school] += 1.6 * np.where(coast[None, :], coast_season[:, None], sierra_season[:, None])

    # holidays and events
    pos = {day: i for i, day in enumerate(days.date)}
    store_cities = np.array(cities)
    store_states = np.array(states)

    def indices(names: tuple[str, ...]) -> list[int]:
        return [fam_idx[f] for f in names if f in fam_idx]

    gift = indices(
        ("HOME APPLIANCES", "PLAYERS AND ELECTRONICS", "HOME AND KITCHEN I", "HOME AND KITCHEN II")
    )
    mothers = indices(("BEAUTY", "CELEBRATION", "LIQUOR,WINE,BEER", "LINGERIE"))
    drinks = indices(("BEVERAGES", "LIQUOR,WINE,BEER", "PREPARED FOODS"))
    for hol in holidays:
        d = pos.get(hol.day)
        if d is None or hol.transferred:
            continue
        if hol.locale == "Local":
            log_mu[d, store_cities == hol.locale_name, :] += 0.15 if hol.type == "Holiday" else 0.08
        elif hol.locale == "Regional":
            log_mu[d, store_states == hol.locale_name, :] += 0.10
        elif hol.type in ("Holiday", "Transfer"):
            log_mu[d] += -0.2 if hol.description == "Primer dia del ano" else 0.12
        elif hol.type == "Additional":
            log_mu[d] += -0.15 if hol.description == "Navidad+1" else 0.06
        elif hol.type == "Bridge":
            log_mu[d] += 0.08
        elif hol.type == "Work Day":
            log_mu[d] -= 0.12
        elif hol.description.startswith("Dia de la Madre"):
            log_mu[d] += 0.04
            log_mu[d, :, mothers] += 0.3
        elif hol.description in ("Black Friday", "Cyber Monday"):
            log_mu[d] += 0.03
            log_mu[d, :, gift] += 0.4 if hol.description == "Black Friday" else 0.25
        elif "Mundial" in hol.description:
            log_mu[d, :, drinks] += 0.2

    # the 2016-04-16 earthquake: a few weeks of lifted sales in Manabi and nearby, donations nationally
    region = np.array(
        [
            0.45
            if st == "Manabi"
            else 0.12
            if st in ("Esmeraldas", "Santo Domingo de los Tsachilas")
            else 0.0
            for st in states
        ]
    )
    donation = np.zeros(len(families))
    for name, lift in (
        ("GROCERY I", 0.3),
        ("BEVERAGES", 0.35),
        ("CLEANING", 0.3),
        ("HOME CARE", 0.2),
        ("PERSONAL CARE", 0.15),
        ("BABY CARE", 0.3),
    ):
        if name in fam_idx:
            donation[fam_idx[name]] = lift
    quake_k = (days - pd.Timestamp(EARTHQUAKE)).days.to_numpy()
    quake = np.where(
        (quake_k >= 0) & (quake_k <= EARTHQUAKE_DAYS), np.exp(-np.maximum(quake_k, 0) / 10.0), 0.0
    )
    for d in np.flatnonzero(quake):
        log_mu[d] += quake[d] * (region[:, None] + donation[None, :])
    return log_mu


def add_level_and_noise(
    log_mu: np.ndarray,
    rng: np.random.Generator,
    sigma: np.ndarray,
    *,
    store_day: np.ndarray | None = None,
    family_day: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Add, in place, a slowly moving store x family level (stationary AR(1): what lags and rolling means
    pick up) and day-to-day independent noise per cell, store-day and family-day; the store-day and
    family-day noise are drawn unless given (a new family shares the stores', a new store the families').
    Returns the store-day and family-day noise used."""
    n_d, n_s, n_f = log_mu.shape
    level_sd, phi = 0.08, 0.985
    innov = rng.normal(0.0, level_sd * math.sqrt(1 - phi**2), (n_d, n_s, n_f))
    level = rng.normal(0.0, level_sd, (n_s, n_f))
    for d in range(n_d):
        level = phi * level + innov[d]
        log_mu[d] += level
    log_mu += rng.normal(0.0, 1.0, (n_d, n_s, n_f)) * sigma[None, None, :]
    if store_day is None:
        store_day = rng.normal(0.0, 0.06, (n_d, n_s))
    log_mu += store_day[:, :, None]
    if family_day is None:
        family_day = rng.normal(0.0, 0.04, (n_d, n_f))
    log_mu += family_day[:, None, :]
    return store_day, family_day


def draw_sales(
    log_mu: np.ndarray, rng: np.random.Generator, frac: np.ndarray, is_open: np.ndarray
) -> np.ndarray:
    """Sales: expected sales rounded to grams for families sold by weight, Poisson counts for the others;
    zero where the store is closed or does not sell the family."""
    mu = np.exp(log_mu)
    sales = np.empty_like(mu)
    sales[:, :, frac] = np.round(mu[:, :, frac], 3)
    sales[:, :, ~frac] = rng.poisson(mu[:, :, ~frac]).astype(np.float64)
    sales[~is_open] = 0.0
    return sales


def transactions_from_sales(total: np.ndarray, trans_k: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """Transactions per (day, store) from its total sales; 0 (no row) on days without sales."""
    return np.where(total > 0, np.maximum(1, np.round(trans_k[None, :] * total**0.7 * noise)), 0).astype(
        np.int64
    )
