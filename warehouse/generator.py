"""Built-in synthetic data generator in the Kaggle "Store Sales - Time Series Forecasting" file format.

The generator writes the seven files of the Corporacion Favorita competition (``train.csv``, ``test.csv``,
``stores.csv``, ``oil.csv``, ``holidays_events.csv``, ``transactions.csv``) plus ``scenario.json`` with the
ground truth of an optional injected change (drift, data-quality burst, closures, a new store or family, a
stopped feed). Sales are simulated on a (day x store x family) array with numpy: store and family scale,
trend, weekly and yearly seasonality, paydays, promotions, holidays and the 2016 Manabi earthquake, times
day-to-day independent multiplicative noise, so that a model using lags, rolling means, promotions and
calendar features clearly beats a seasonal-naive forecast. The same seed always gives byte-identical
files, and a scenario leaves every row before its change date identical to the ``none`` scenario.
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["FAMILIES", "SCENARIOS", "GenerateResult", "generate"]

SCENARIOS: tuple[str, ...] = (
    "none",
    "promo_shift",
    "sales_drop",
    "missing_burst",
    "store_closures",
    "price_shock",
    "new_store",
    "new_family",
    "feed_stop",
)

FAMILIES: tuple[str, ...] = (
    "AUTOMOTIVE",
    "BABY CARE",
    "BEAUTY",
    "BEVERAGES",
    "BOOKS",
    "BREAD/BAKERY",
    "CELEBRATION",
    "CLEANING",
    "DAIRY",
    "DELI",
    "EGGS",
    "FROZEN FOODS",
    "GROCERY I",
    "GROCERY II",
    "HARDWARE",
    "HOME AND KITCHEN I",
    "HOME AND KITCHEN II",
    "HOME APPLIANCES",
    "HOME CARE",
    "LADIESWEAR",
    "LAWN AND GARDEN",
    "LINGERIE",
    "LIQUOR,WINE,BEER",
    "MAGAZINES",
    "MEATS",
    "PERSONAL CARE",
    "PET SUPPLIES",
    "PLAYERS AND ELECTRONICS",
    "POULTRY",
    "PREPARED FOODS",
    "PRODUCE",
    "SCHOOL AND OFFICE SUPPLIES",
    "SEAFOOD",
)

# Mean daily sales at an average store (before trend and seasonality), typical number of items on
# promotion once promotions are common, weekly-seasonality amplitude, December amplitude.
_FAMILY_PARAMS: dict[str, tuple[float, float, float, float]] = {
    "AUTOMOTIVE": (6.0, 0.3, 1.0, 0.8),
    "BABY CARE": (0.25, 0.05, 0.6, 0.5),
    "BEAUTY": (4.0, 0.4, 1.1, 1.3),
    "BEVERAGES": (2500.0, 18.0, 1.1, 1.3),
    "BOOKS": (0.6, 0.0, 0.6, 1.0),
    "BREAD/BAKERY": (450.0, 5.0, 0.9, 1.0),
    "CELEBRATION": (9.0, 0.3, 1.0, 2.0),
    "CLEANING": (1100.0, 14.0, 0.9, 0.9),
    "DAIRY": (700.0, 11.0, 0.9, 0.9),
    "DELI": (270.0, 5.0, 1.0, 1.0),
    "EGGS": (180.0, 2.0, 0.8, 0.6),
    "FROZEN FOODS": (160.0, 4.0, 1.0, 2.2),
    "GROCERY I": (3800.0, 45.0, 1.0, 1.0),
    "GROCERY II": (22.0, 0.8, 1.0, 1.2),
    "HARDWARE": (1.2, 0.1, 0.7, 0.6),
    "HOME AND KITCHEN I": (22.0, 1.0, 1.1, 1.6),
    "HOME AND KITCHEN II": (18.0, 0.8, 1.1, 1.6),
    "HOME APPLIANCES": (0.6, 0.05, 0.8, 1.5),
    "HOME CARE": (180.0, 7.0, 1.0, 0.9),
    "LADIESWEAR": (7.0, 0.2, 1.2, 1.6),
    "LAWN AND GARDEN": (6.0, 0.3, 1.2, 0.8),
    "LINGERIE": (7.0, 0.2, 1.2, 1.6),
    "LIQUOR,WINE,BEER": (90.0, 1.5, 2.0, 1.8),
    "MAGAZINES": (3.0, 0.1, 0.9, 0.8),
    "MEATS": (350.0, 4.0, 1.0, 1.2),
    "PERSONAL CARE": (280.0, 8.0, 0.9, 1.1),
    "PET SUPPLIES": (4.0, 0.2, 1.0, 0.8),
    "PLAYERS AND ELECTRONICS": (6.0, 0.2, 1.1, 1.8),
    "POULTRY": (360.0, 3.0, 1.0, 1.2),
    "PREPARED FOODS": (100.0, 1.5, 1.0, 1.0),
    "PRODUCE": (1400.0, 16.0, 0.9, 0.9),
    "SCHOOL AND OFFICE SUPPLIES": (3.0, 0.3, 0.8, 0.6),
    "SEAFOOD": (22.0, 0.5, 1.0, 1.3),
}
# Families sold by weight: sales printed with up to three decimals.
_FRACTIONAL = frozenset({"PRODUCE", "MEATS", "POULTRY", "DELI", "SEAFOOD"})
# Families that only start selling at some date (all stores sell zero before it).
_FAMILY_START: dict[str, date] = {
    "BOOKS": date(2016, 10, 8),
    "CELEBRATION": date(2014, 10, 1),
    "HOME AND KITCHEN I": date(2014, 10, 1),
    "HOME AND KITCHEN II": date(2014, 10, 1),
    "LADIESWEAR": date(2014, 10, 1),
    "MAGAZINES": date(2014, 10, 1),
    "PET SUPPLIES": date(2014, 10, 1),
    "PLAYERS AND ELECTRONICS": date(2014, 10, 1),
}
# The family that first appears on the change date in the new_family scenario (not one of FAMILIES),
# with its _FAMILY_PARAMS.
_NEW_FAMILY = "ICE CREAM"
_NEW_FAMILY_PARAMS = (40.0, 1.0, 1.2, 1.2)
_ALL_FAMILY_PARAMS = {**_FAMILY_PARAMS, _NEW_FAMILY: _NEW_FAMILY_PARAMS}
# Share of stores that never sell a family.
_ZERO_SHARE: dict[str, float] = {
    "BABY CARE": 0.4,
    "BOOKS": 0.3,
    "LAWN AND GARDEN": 0.15,
    "HOME APPLIANCES": 0.1,
}

# store_nbr, city, state, type, cluster
_STORES: tuple[tuple[int, str, str, str, int], ...] = (
    (1, "Quito", "Pichincha", "D", 13),
    (2, "Quito", "Pichincha", "D", 13),
    (3, "Quito", "Pichincha", "D", 8),
    (4, "Quito", "Pichincha", "D", 9),
    (5, "Santo Domingo", "Santo Domingo de los Tsachilas", "D", 4),
    (6, "Quito", "Pichincha", "D", 13),
    (7, "Quito", "Pichincha", "D", 8),
    (8, "Quito", "Pichincha", "D", 8),
    (9, "Quito", "Pichincha", "B", 6),
    (10, "Quito", "Pichincha", "C", 15),
    (11, "Cayambe", "Pichincha", "B", 6),
    (12, "Latacunga", "Cotopaxi", "C", 15),
    (13, "Latacunga", "Cotopaxi", "C", 15),
    (14, "Riobamba", "Chimborazo", "C", 7),
    (15, "Ibarra", "Imbabura", "C", 15),
    (16, "Santo Domingo", "Santo Domingo de los Tsachilas", "C", 3),
    (17, "Quito", "Pichincha", "C", 12),
    (18, "Quito", "Pichincha", "B", 16),
    (19, "Guaranda", "Bolivar", "C", 15),
    (20, "Quito", "Pichincha", "B", 6),
    (21, "Santo Domingo", "Santo Domingo de los Tsachilas", "B", 6),
    (22, "Puyo", "Pastaza", "C", 7),
    (23, "Ambato", "Tungurahua", "D", 9),
    (24, "Guayaquil", "Guayas", "D", 1),
    (25, "Salinas", "Santa Elena", "D", 1),
    (26, "Guayaquil", "Guayas", "D", 10),
    (27, "Daule", "Guayas", "D", 1),
    (28, "Guayaquil", "Guayas", "E", 10),
    (29, "Guayaquil", "Guayas", "E", 10),
    (30, "Guayaquil", "Guayas", "C", 3),
    (31, "Babahoyo", "Los Rios", "B", 10),
    (32, "Guayaquil", "Guayas", "C", 3),
    (33, "Quevedo", "Los Rios", "C", 3),
    (34, "Guayaquil", "Guayas", "B", 6),
    (35, "Playas", "Guayas", "C", 3),
    (36, "Libertad", "Guayas", "E", 10),
    (37, "Cuenca", "Azuay", "D", 2),
    (38, "Loja", "Loja", "D", 4),
    (39, "Cuenca", "Azuay", "B", 6),
    (40, "Machala", "El Oro", "C", 3),
    (41, "Machala", "El Oro", "D", 4),
    (42, "Cuenca", "Azuay", "D", 2),
    (43, "Esmeraldas", "Esmeraldas", "E", 10),
    (44, "Quito", "Pichincha", "A", 5),
    (45, "Quito", "Pichincha", "A", 11),
    (46, "Quito", "Pichincha", "A", 14),
    (47, "Quito", "Pichincha", "A", 14),
    (48, "Quito", "Pichincha", "A", 14),
    (49, "Quito", "Pichincha", "A", 11),
    (50, "Ambato", "Tungurahua", "A", 14),
    (51, "Guayaquil", "Guayas", "A", 17),
    (52, "Manta", "Manabi", "A", 11),
    (53, "Manta", "Manabi", "D", 13),
    (54, "El Carmen", "Manabi", "C", 3),
)
_N_STORES = len(_STORES)
# The store that opens in the new_store scenario when all 54 stores are written (otherwise the next
# store of the list opens).
_NEW_STORE = (55, "Quito", "Pichincha", "A", 14)
_TYPE_SCALE = {"A": 2.3, "B": 0.95, "C": 0.6, "D": 1.1, "E": 0.75}
# Stores that open late: all-zero sales rows before this date.
_OPENING: dict[int, date] = {
    36: date(2013, 5, 9),
    53: date(2014, 5, 29),
    20: date(2015, 2, 13),
    29: date(2015, 3, 20),
    21: date(2015, 7, 24),
    42: date(2015, 8, 21),
    22: date(2015, 10, 9),
    52: date(2017, 4, 20),
}
# Temporary closures (refurbishment): zero sales from first to last day inclusive.
_TEMP_CLOSED: dict[int, tuple[date, date]] = {
    12: (date(2015, 9, 7), date(2015, 9, 20)),
    18: (date(2016, 9, 19), date(2016, 12, 4)),
}
# The only stores open on January 1.
_OPEN_ON_NEW_YEAR = frozenset({25, 36})
# Coastal school regime: back-to-school in April, not in August/September.
_COAST_STATES = frozenset(
    {"Guayas", "El Oro", "Manabi", "Los Rios", "Esmeraldas", "Santa Elena", "Santo Domingo de los Tsachilas"}
)

# City -> (month, day) of its local foundation day.
_CITY_DAYS: dict[str, tuple[int, int]] = {
    "Quito": (12, 6),
    "Guayaquil": (7, 25),
    "Cuenca": (4, 12),
    "Santo Domingo": (7, 3),
    "Ambato": (4, 21),
    "Manta": (11, 4),
    "Machala": (6, 25),
    "Latacunga": (11, 11),
    "Loja": (12, 8),
    "Babahoyo": (10, 15),
    "Esmeraldas": (8, 5),
    "Ibarra": (9, 28),
    "Riobamba": (8, 11),
    "Cayambe": (6, 23),
    "Puyo": (5, 12),
    "Guaranda": (11, 10),
    "Salinas": (12, 22),
    "Daule": (8, 3),
    "Quevedo": (10, 7),
    "Playas": (8, 2),
    "Libertad": (4, 14),
    "El Carmen": (6, 3),
}
# State -> (month, day) of its provincialisation day (regional holiday).
_STATE_DAYS: dict[str, tuple[int, int]] = {
    "Cotopaxi": (4, 1),
    "Imbabura": (6, 25),
    "Santo Domingo de los Tsachilas": (11, 6),
    "Santa Elena": (11, 7),
}

_EARTHQUAKE = date(2016, 4, 16)
_EARTHQUAKE_DAYS = 30
_TEST_DAYS = 16
_EPOCH = date(2013, 1, 1)

_HOLIDAYS_HEADER = ("date", "type", "locale", "locale_name", "description", "transferred")


@dataclass(frozen=True)
class GenerateResult:
    """What :func:`generate` wrote: folder, data rows per file, scenario, change date and wall time."""

    out_dir: Path
    files: dict[str, int]  # file name -> data rows written (excluding header)
    scenario: str
    change_date: date | None
    seconds: float


@dataclass(frozen=True)
class _Holiday:
    day: date
    type: str
    locale: str
    locale_name: str
    description: str
    transferred: bool = False


def _easter(year: int) -> date:
    """Gregorian Easter Sunday (anonymous Gregorian algorithm)."""
    a = year % 19
    b, c = divmod(year, 100)
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    lum = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * lum) // 451
    month, day = divmod(h + lum - 7 * m + 114, 31)
    return date(year, month, day + 1)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """The n-th (1-based; -1 = last) given weekday (Mon=0) of a month."""
    if n > 0:
        first = date(year, month, 1)
        return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    last = nxt - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _holidays(first_year: int, last_year: int) -> list[_Holiday]:
    """Ecuadorian holidays and events in the Kaggle layout, for whole years, sorted by date."""
    rows: list[_Holiday] = []
    nat = ("National", "Ecuador")
    movable = {"Batalla de Pichincha", "Primer Grito de Independencia", "Independencia de Guayaquil"}
    bridgeable = {"Primer dia del ano", "Navidad", "Dia de Difuntos", "Independencia de Cuenca"}
    for year in range(first_year, last_year + 1):
        easter = _easter(year)
        fixed = [
            (date(year, 1, 1), "Primer dia del ano"),
            (easter - timedelta(days=48), "Carnaval"),
            (easter - timedelta(days=47), "Carnaval"),
            (easter - timedelta(days=2), "Viernes Santo"),
            (date(year, 5, 1), "Dia del Trabajo"),
            (date(year, 5, 24), "Batalla de Pichincha"),
            (date(year, 8, 10), "Primer Grito de Independencia"),
            (date(year, 10, 9), "Independencia de Guayaquil"),
            (date(year, 11, 2), "Dia de Difuntos"),
            (date(year, 11, 3), "Independencia de Cuenca"),
            (date(year, 12, 25), "Navidad"),
        ]
        holiday_days = {day for day, _ in fixed}
        for day, name in fixed:
            weekday = day.weekday()
            if name in movable and weekday in (1, 2, 3):
                moved = day + timedelta(days=4 - weekday)
                rows.append(_Holiday(day, "Holiday", *nat, name, transferred=True))
                rows.append(_Holiday(moved, "Transfer", *nat, f"Traslado {name}"))
                continue
            if name == "Primer dia del ano" and weekday == 6 and year >= 2016:
                rows.append(_Holiday(day, "Holiday", *nat, name, transferred=True))
                rows.append(_Holiday(day + timedelta(days=1), "Transfer", *nat, f"Traslado {name}"))
                continue
            rows.append(_Holiday(day, "Holiday", *nat, name))
            if name in bridgeable and weekday in (1, 3):
                bridge = day + timedelta(days=-1 if weekday == 1 else 1)
                if bridge not in holiday_days:
                    rows.append(_Holiday(bridge, "Bridge", *nat, f"Puente {name}"))
                    later = bridge + timedelta(days=7)
                    work = later + timedelta(days=(5 - later.weekday()) % 7)
                    rows.append(_Holiday(work, "Work Day", *nat, f"Recupero puente {name}"))
        for offset in (4, 3, 2, 1):
            rows.append(_Holiday(date(year, 12, 25 - offset), "Additional", *nat, f"Navidad-{offset}"))
        rows.append(_Holiday(date(year, 12, 26), "Additional", *nat, "Navidad+1"))
        rows.append(_Holiday(date(year, 12, 31), "Additional", *nat, "Primer dia del ano-1"))
        mothers = _nth_weekday(year, 5, 6, 2)
        rows.append(_Holiday(mothers - timedelta(days=1), "Event", *nat, "Dia de la Madre-1"))
        rows.append(_Holiday(mothers, "Event", *nat, "Dia de la Madre"))
        if year >= 2014:
            black_friday = _nth_weekday(year, 11, 3, 4) + timedelta(days=1)
            rows.append(_Holiday(black_friday, "Event", *nat, "Black Friday"))
            rows.append(_Holiday(black_friday + timedelta(days=3), "Event", *nat, "Cyber Monday"))
        if year == 2014:
            world_cup = [
                ((6, 12), "Inauguracion Mundial de futbol Brasil"),
                ((6, 15), "Mundial de futbol Brasil: Ecuador-Suiza"),
                ((6, 20), "Mundial de futbol Brasil: Ecuador-Honduras"),
                ((6, 25), "Mundial de futbol Brasil: Ecuador-Francia"),
                ((6, 28), "Mundial de futbol Brasil: Octavos de Final"),
                ((6, 29), "Mundial de futbol Brasil: Octavos de Final"),
                ((7, 4), "Mundial de futbol Brasil: Cuartos de Final"),
                ((7, 8), "Mundial de futbol Brasil: Semifinales"),
                ((7, 12), "Mundial de futbol Brasil: Tercer y cuarto lugar"),
                ((7, 13), "Mundial de futbol Brasil: Final"),
            ]
            for (month, day), name in world_cup:
                rows.append(_Holiday(date(2014, month, day), "Event", *nat, name))
        if year == _EARTHQUAKE.year:
            rows.append(_Holiday(_EARTHQUAKE, "Event", *nat, "Terremoto Manabi"))
            for k in range(1, _EARTHQUAKE_DAYS + 1):
                rows.append(_Holiday(_EARTHQUAKE + timedelta(days=k), "Event", *nat, f"Terremoto Manabi+{k}"))
        for city, (month, day) in _CITY_DAYS.items():
            foundation = date(year, month, day)
            if city in ("Quito", "Guayaquil"):
                before = foundation - timedelta(days=1)
                rows.append(_Holiday(before, "Additional", "Local", city, f"Fundacion de {city}-1"))
            rows.append(_Holiday(foundation, "Holiday", "Local", city, f"Fundacion de {city}"))
        for state, (month, day) in _STATE_DAYS.items():
            rows.append(
                _Holiday(
                    date(year, month, day), "Holiday", "Regional", state, f"Provincializacion de {state}"
                )
            )
    rows.sort(key=lambda row: row.day)
    return rows


def _us_market_holidays(first_year: int, last_year: int) -> set[date]:
    """Weekdays without a WTI price (NYSE holidays), the reason for the blanks in the real oil file."""
    out: set[date] = set()
    for year in range(first_year, last_year + 1):
        days = [
            date(year, 1, 1),
            _nth_weekday(year, 1, 0, 3),
            _nth_weekday(year, 2, 0, 3),
            _easter(year) - timedelta(days=2),
            _nth_weekday(year, 5, 0, -1),
            date(year, 7, 4),
            _nth_weekday(year, 9, 0, 1),
            _nth_weekday(year, 11, 3, 4),
            date(year, 12, 25),
        ]
        for day in days:
            if day.weekday() == 5:
                day -= timedelta(days=1)
            elif day.weekday() == 6:
                day += timedelta(days=1)
            out.add(day)
    return out


def _ordinal(days: pd.DatetimeIndex) -> np.ndarray:
    """Days since 2013-01-01 as floats."""
    return (days - pd.Timestamp(_EPOCH)).days.to_numpy().astype(np.float64)


def _day_index(days: pd.DatetimeIndex, when: date) -> int:
    """Index of the first day on or after ``when``."""
    return int(days.searchsorted(pd.Timestamp(when)))


def _oil(rng: np.random.Generator, start: date, last: date) -> list[tuple[str, str]]:
    """WTI price on business days: mean-reverting walk around a 2013-2017-like path, US-holiday blanks."""
    days = pd.bdate_range(start, last)
    anchors = [
        (date(2013, 1, 1), 93.0),
        (date(2013, 9, 1), 100.0),
        (date(2014, 6, 20), 99.0),
        (date(2014, 12, 31), 54.0),
        (date(2015, 5, 15), 60.0),
        (date(2015, 8, 25), 42.0),
        (date(2016, 2, 11), 36.0),
        (date(2016, 6, 8), 50.0),
        (date(2017, 1, 6), 53.0),
        (date(2017, 6, 21), 43.0),
        (date(2017, 8, 31), 48.0),
    ]
    xs = np.array([(a - _EPOCH).days for a, _ in anchors], dtype=np.float64)
    ys = np.log([p for _, p in anchors])
    target = np.interp(_ordinal(days), xs, ys)
    shocks = rng.normal(0.0, 0.012, len(days))
    dev = np.empty(len(days))
    level = 0.0
    for i, shock in enumerate(shocks):
        level = 0.95 * level + shock
        dev[i] = level
    prices = np.clip(np.exp(target + dev), 20.0, 150.0)
    blanks = _us_market_holidays(start.year, last.year)
    out = []
    for day, price in zip(days.date, prices, strict=True):
        out.append((day.isoformat(), "" if day in blanks else f"{price:.2f}"))
    return out


@dataclass
class _Sim:
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
class _Shared:
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
    holidays: list[_Holiday]


@dataclass(frozen=True)
class _FamilyArrays:
    """Per-family parameters (see _FAMILY_PARAMS) as arrays, in the order of the given families."""

    lvl: np.ndarray
    promo: np.ndarray
    week: np.ndarray
    dec: np.ndarray
    sigma: np.ndarray  # day-to-day noise
    promo_gain: np.ndarray
    frac: np.ndarray  # sold by weight

    @classmethod
    def of(cls, families: tuple[str, ...] | list[str]) -> _FamilyArrays:
        params = np.array([_ALL_FAMILY_PARAMS[f] for f in families])
        scale, promo, week, dec = params.T
        return cls(
            lvl=np.log(scale),
            promo=promo,
            week=week,
            dec=dec,
            sigma=np.where(scale >= 100, 0.2, 0.3),
            promo_gain=0.35 / np.log1p(np.maximum(promo, 1.0)),
            frac=np.array([f in _FRACTIONAL for f in families]),
        )


def _open_days(
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
            if nbr in _OPENING:
                sells[: _day_index(days, _OPENING[nbr]), s, :] = False
            if nbr in _TEMP_CLOSED:
                first, last = _TEMP_CLOSED[nbr]
                sells[_day_index(days, first) : _day_index(days, last + timedelta(days=1)), s, :] = False
    for f, fam in enumerate(families):
        if fam in _FAMILY_START:
            sells[: _day_index(days, _FAMILY_START[fam]), :, f] = False
    is_open = sells.copy()
    new_year = np.flatnonzero((days.month == 1) & (days.day == 1))
    closed_new_year = np.array([nbr not in _OPEN_ON_NEW_YEAR for nbr in store_nbrs])
    for d in new_year:
        is_open[d, closed_new_year, :] = False
    return sells, is_open


def _draw_promotions(
    rng: np.random.Generator, family_factor: np.ndarray, store_promo: np.ndarray, sells: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Poisson promotion counts (and their means) per (day, store, family): family factor x store level x
    cell noise, zero where the store does not sell the family."""
    lam = family_factor[:, None, :] * store_promo[None, :, None] * np.exp(rng.normal(0.0, 0.3, sells.shape))
    lam[~sells] = 0.0
    return lam, rng.poisson(lam)


def _expected_log_sales(
    days: pd.DatetimeIndex,
    stores: list[tuple[int, str, str, str, int]],
    store_lvl: np.ndarray,
    store_trend: np.ndarray,
    inter: np.ndarray,
    families: tuple[str, ...] | list[str],
    holidays: list[_Holiday],
) -> np.ndarray:
    """log of expected sales per (day, store, family) before noise and promotions: store and family scale,
    trend, weekly and yearly seasonality, paydays, back to school, holidays and the 2016 earthquake."""
    fam = _FamilyArrays.of(families)
    t = _ordinal(days)
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
        coast = np.array([st in _COAST_STATES for st in states])
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
    quake_k = (days - pd.Timestamp(_EARTHQUAKE)).days.to_numpy()
    quake = np.where(
        (quake_k >= 0) & (quake_k <= _EARTHQUAKE_DAYS), np.exp(-np.maximum(quake_k, 0) / 10.0), 0.0
    )
    for d in np.flatnonzero(quake):
        log_mu[d] += quake[d] * (region[:, None] + donation[None, :])
    return log_mu


def _add_level_and_noise(
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


def _draw_sales(
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


def _transactions(total: np.ndarray, trans_k: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """Transactions per (day, store) from its total sales; 0 (no row) on days without sales."""
    return np.where(total > 0, np.maximum(1, np.round(trans_k[None, :] * total**0.7 * noise)), 0).astype(
        np.int64
    )


def _new_store_row(n_stores: int) -> tuple[int, str, str, str, int]:
    """The stores.csv row of the store that opens in the ``new_store`` scenario: the next store of the
    list, or ``_NEW_STORE`` after the 54th."""
    return _STORES[n_stores] if n_stores < _N_STORES else _NEW_STORE


def _simulate_new_store(
    shared: _Shared, rng: np.random.Generator, row: tuple[int, str, str, str, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Sales (train days, 1, 33), promotions (days, 1, 33) and transactions (train days, 1) of a store
    that opens on the first of ``shared.days``, drawn like the others from its own parameters; also the
    families it never sells."""
    nbr, _city, _state, store_type, cluster = row
    n_f = len(FAMILIES)
    fam = _FamilyArrays.of(FAMILIES)
    lvl = np.log([_TYPE_SCALE[store_type]]) - 0.6 + shared.cluster_eff[cluster] + rng.normal(0.0, 0.18, 1)
    trend = rng.normal(0.0, 0.025, 1)
    promo_level = np.exp(rng.normal(0.0, 0.25, 1)) * np.exp(0.5 * (lvl - shared.store_lvl.mean()))
    inter = rng.normal(0.0, 0.25, (1, n_f))
    active = np.ones((1, n_f), dtype=bool)
    for name, share in _ZERO_SHARE.items():
        active[0, FAMILIES.index(name)] = rng.random() >= share
    trans_k = 2.4 * np.exp(rng.normal(0.0, 0.15, 1))

    sells, is_open = _open_days(shared.days, [nbr], FAMILIES, active, history=False)
    _, promo = _draw_promotions(rng, shared.family_factor, promo_level, sells)
    train_days = shared.days[: shared.n_train]
    log_mu = _expected_log_sales(train_days, [row], lvl, trend, inter, FAMILIES, shared.holidays)
    _add_level_and_noise(log_mu, rng, fam.sigma, family_day=shared.family_day)
    log_mu += fam.promo_gain[None, None, :] * np.log1p(promo[: shared.n_train])
    sales = _draw_sales(log_mu, rng, fam.frac, is_open[: shared.n_train])
    trans = _transactions(sales.sum(axis=2), trans_k, rng.lognormal(0.0, 0.04, (shared.n_train, 1)))
    never = [f for f, carried in zip(FAMILIES, active[0], strict=True) if not carried]
    return sales, promo, trans, never


def _simulate_new_family(
    shared: _Shared, rng: np.random.Generator, n_stores: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sales (train days, stores, 1) and promotions (days, stores, 1) of ``_NEW_FAMILY`` in the first
    ``n_stores`` stores from the first of ``shared.days``, drawn like the others from its own parameters
    (it shares the stores' levels, trends and store-day noise)."""
    stores = list(_STORES[:n_stores])
    fam = _FamilyArrays.of([_NEW_FAMILY])
    span = shared.weeks - shared.weeks.min()
    week_eff = rng.lognormal(0.0, 0.5, (span.max() + 1, 1))[span]
    day_eff = rng.lognormal(0.0, 0.45, (len(shared.days), 1))
    family_factor = shared.ramp[:, None] * fam.promo[None, :] * week_eff * day_eff
    inter = rng.normal(0.0, 0.25, (n_stores, 1))

    active = np.ones((n_stores, 1), dtype=bool)
    sells, is_open = _open_days(shared.days, [s[0] for s in stores], [_NEW_FAMILY], active)
    _, promo = _draw_promotions(rng, family_factor, shared.store_promo[:n_stores], sells)
    train_days = shared.days[: shared.n_train]
    log_mu = _expected_log_sales(
        train_days,
        stores,
        shared.store_lvl[:n_stores],
        shared.store_trend[:n_stores],
        inter,
        [_NEW_FAMILY],
        shared.holidays,
    )
    _add_level_and_noise(log_mu, rng, fam.sigma, store_day=shared.store_day[:, :n_stores])
    log_mu += fam.promo_gain[None, None, :] * np.log1p(promo[: shared.n_train])
    return _draw_sales(log_mu, rng, fam.frac, is_open[: shared.n_train]), promo


def _simulate(
    seed: int,
    start: date,
    end: date,
    scenario: str,
    change: date | None,
    n_stores: int,
    holidays: list[_Holiday],
) -> tuple[_Sim, dict[str, object]]:
    """Draw promotions and sales, apply the scenario, and derive transactions."""
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(8)]
    rng_params, rng_promo, rng_noise, rng_sales, _, rng_trans, rng_scen, _ = streams

    all_days = pd.date_range(start, end + timedelta(days=_TEST_DAYS))
    all_days = all_days[~((all_days.month == 12) & (all_days.day == 25))]
    n_train = int(all_days.searchsorted(pd.Timestamp(end), side="right"))
    train_days, test_days = all_days[:n_train], all_days[n_train:]
    n_all, n_s, n_f = len(all_days), _N_STORES, len(FAMILIES)
    t_all = _ordinal(all_days)

    # --- structural parameters (per store, family, store x family) ---
    types = np.array([s[3] for s in _STORES])
    clusters = np.array([s[4] for s in _STORES])
    cluster_eff = rng_params.normal(0.0, 0.15, 18)
    store_lvl = (
        np.log([_TYPE_SCALE[t] for t in types])
        - 0.6
        + cluster_eff[clusters]
        + rng_params.normal(0.0, 0.18, n_s)
    )
    store_trend = rng_params.normal(0.0, 0.025, n_s)
    store_promo = np.exp(rng_params.normal(0.0, 0.25, n_s)) * np.exp(0.5 * (store_lvl - store_lvl.mean()))
    fam = _FamilyArrays.of(FAMILIES)
    inter = rng_params.normal(0.0, 0.25, (n_s, n_f))
    active = np.ones((n_s, n_f), dtype=bool)
    for name, share in _ZERO_SHARE.items():
        active[rng_params.random(n_s) < share, FAMILIES.index(name)] = False
    trans_k = 2.4 * np.exp(rng_params.normal(0.0, 0.15, n_s))

    # sells: promotions are planned even when a store closes for New Year; is_open: it sells that day
    sells, is_open = _open_days(all_days, [s[0] for s in _STORES], FAMILIES, active)

    # --- promotions ---
    ramp = np.interp(
        t_all,
        [
            (date(2014, 3, 31) - _EPOCH).days,
            (date(2014, 4, 1) - _EPOCH).days,
            (date(2016, 1, 1) - _EPOCH).days,
        ],
        [0.01, 0.35, 1.0],
    ) * (1.0 + 0.15 * np.clip((t_all - (date(2016, 1, 1) - _EPOCH).days) / 365.25, 0.0, None))
    weeks = ((t_all + 1) // 7).astype(np.int64)
    week_eff = rng_promo.lognormal(0.0, 0.5, (weeks.max() - weeks.min() + 1, n_f))[weeks - weeks.min()]
    day_eff = rng_promo.lognormal(0.0, 0.45, (n_all, n_f))
    family_factor = ramp[:, None] * fam.promo[None, :] * week_eff * day_eff
    lam, promo = _draw_promotions(rng_promo, family_factor, store_promo, sells)

    # --- scenario: features ---
    details: dict[str, object] = {}
    affected_stores: list[int] = []
    affected_families: list[str] = []
    ci = _day_index(all_days, change) if change is not None else n_all
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
    log_mu = _expected_log_sales(train_days, list(_STORES), store_lvl, store_trend, inter, FAMILIES, holidays)
    store_day, family_day = _add_level_and_noise(log_mu, rng_noise, fam.sigma)
    log_mu += fam.promo_gain[None, None, :] * np.log1p(promo[:n_train])
    shared = _Shared(
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
        k = max(1, round(n_stores * 8 / _N_STORES))
        picked = np.sort(rng_scen.choice(chosen_open, size=min(k, len(chosen_open)), replace=False))
        is_open[ci_train:n_train, picked, :] = False
        affected_stores = [int(s) + 1 for s in picked]
        affected_families = list(FAMILIES)
        details = {"closed_stores": len(picked), "onpromotion": "unchanged"}

    sales = _draw_sales(log_mu, rng_sales, fam.frac, is_open[:n_train])
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
    trans = _transactions(total, trans_k, rng_trans.lognormal(0.0, 0.04, total.shape))

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
    stores = list(_STORES[:n_stores])
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
        at = int(np.searchsorted(np.array(FAMILIES), _NEW_FAMILY))
        families = (*FAMILIES[:at], _NEW_FAMILY, *FAMILIES[at:])
        sales = np.insert(sales, at, 0.0, axis=2)
        sales[ci_train:, :, at] = new_sales[:, :, 0]
        promo = np.insert(promo, at, 0, axis=2)
        promo[ci:, :, at] = new_promo[:, :, 0]
        present = np.ones((n_all, n_stores, n_f + 1), dtype=bool)
        present[:ci, :, at] = False
        affected_stores = list(range(1, n_stores + 1))
        affected_families = [_NEW_FAMILY]
        details = {
            "family": _NEW_FAMILY,
            "first_day_with_rows": all_days[min(ci, n_all - 1)].date().isoformat(),
            "mean_daily_sales_at_an_average_store": _NEW_FAMILY_PARAMS[0],
            "other_families": "as in the none scenario",
            "transactions": "count the new family's sales too",
        }

    sim = _Sim(train_days, test_days, stores, families, sales, promo, promo_missing, trans, present)
    return sim, {
        "affected_stores": affected_stores,
        "affected_families": affected_families,
        "details": details,
    }


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
    if isinstance(stores, bool) or not isinstance(stores, int) or not 1 <= stores <= _N_STORES:
        raise ValueError(f"stores must be an integer in 1..{_N_STORES}, got {stores!r}")
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

    last = end + timedelta(days=_TEST_DAYS)
    holidays = _holidays(start.year, last.year)
    sim, truth = _simulate(seed, start, end, scenario, change, stores, holidays)
    say(f"simulated {len(sim.train_days):,} days x {len(sim.stores)} stores x {len(sim.families)} families")

    files["stores.csv"] = _write_rows(
        out / "stores.csv", ("store_nbr", "city", "state", "type", "cluster"), sim.stores
    )
    oil_rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(8)[4])
    files["oil.csv"] = _write_rows(out / "oil.csv", ("date", "dcoilwtico"), _oil(oil_rng, start, last))
    files["holidays_events.csv"] = _write_rows(
        out / "holidays_events.csv",
        _HOLIDAYS_HEADER,
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
        "new_family": f"A family never seen before ({_NEW_FAMILY}) appears on change_date in every store: "
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
