"""Calendars of the generated data: Ecuadorian holidays and events, US market holidays, the oil price."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from datagen.catalog import CITY_DAYS, EARTHQUAKE, EARTHQUAKE_DAYS, EPOCH, STATE_DAYS


@dataclass(frozen=True)
class Holiday:
    day: date
    type: str
    locale: str
    locale_name: str
    description: str
    transferred: bool = False


def easter_sunday(year: int) -> date:
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


def nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """The n-th (1-based; -1 = last) given weekday (Mon=0) of a month."""
    if n > 0:
        first = date(year, month, 1)
        return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    last = nxt - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def ecuador_holidays(first_year: int, last_year: int) -> list[Holiday]:
    """Ecuadorian holidays and events in the Kaggle layout, for whole years, sorted by date."""
    rows: list[Holiday] = []
    nat = ("National", "Ecuador")
    movable = {"Batalla de Pichincha", "Primer Grito de Independencia", "Independencia de Guayaquil"}
    bridgeable = {"Primer dia del ano", "Navidad", "Dia de Difuntos", "Independencia de Cuenca"}
    for year in range(first_year, last_year + 1):
        easter = easter_sunday(year)
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
                rows.append(Holiday(day, "Holiday", *nat, name, transferred=True))
                rows.append(Holiday(moved, "Transfer", *nat, f"Traslado {name}"))
                continue
            if name == "Primer dia del ano" and weekday == 6 and year >= 2016:
                rows.append(Holiday(day, "Holiday", *nat, name, transferred=True))
                rows.append(Holiday(day + timedelta(days=1), "Transfer", *nat, f"Traslado {name}"))
                continue
            rows.append(Holiday(day, "Holiday", *nat, name))
            if name in bridgeable and weekday in (1, 3):
                bridge = day + timedelta(days=-1 if weekday == 1 else 1)
                if bridge not in holiday_days:
                    rows.append(Holiday(bridge, "Bridge", *nat, f"Puente {name}"))
                    later = bridge + timedelta(days=7)
                    work = later + timedelta(days=(5 - later.weekday()) % 7)
                    rows.append(Holiday(work, "Work Day", *nat, f"Recupero puente {name}"))
        for offset in (4, 3, 2, 1):
            rows.append(Holiday(date(year, 12, 25 - offset), "Additional", *nat, f"Navidad-{offset}"))
        rows.append(Holiday(date(year, 12, 26), "Additional", *nat, "Navidad+1"))
        rows.append(Holiday(date(year, 12, 31), "Additional", *nat, "Primer dia del ano-1"))
        mothers = nth_weekday(year, 5, 6, 2)
        rows.append(Holiday(mothers - timedelta(days=1), "Event", *nat, "Dia de la Madre-1"))
        rows.append(Holiday(mothers, "Event", *nat, "Dia de la Madre"))
        if year >= 2014:
            black_friday = nth_weekday(year, 11, 3, 4) + timedelta(days=1)
            rows.append(Holiday(black_friday, "Event", *nat, "Black Friday"))
            rows.append(Holiday(black_friday + timedelta(days=3), "Event", *nat, "Cyber Monday"))
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
                rows.append(Holiday(date(2014, month, day), "Event", *nat, name))
        if year == EARTHQUAKE.year:
            rows.append(Holiday(EARTHQUAKE, "Event", *nat, "Terremoto Manabi"))
            for k in range(1, EARTHQUAKE_DAYS + 1):
                rows.append(Holiday(EARTHQUAKE + timedelta(days=k), "Event", *nat, f"Terremoto Manabi+{k}"))
        for city, (month, day) in CITY_DAYS.items():
            foundation = date(year, month, day)
            if city in ("Quito", "Guayaquil"):
                before = foundation - timedelta(days=1)
                rows.append(Holiday(before, "Additional", "Local", city, f"Fundacion de {city}-1"))
            rows.append(Holiday(foundation, "Holiday", "Local", city, f"Fundacion de {city}"))
        for state, (month, day) in STATE_DAYS.items():
            rows.append(
                Holiday(date(year, month, day), "Holiday", "Regional", state, f"Provincializacion de {state}")
            )
    rows.sort(key=lambda row: row.day)
    return rows


def _us_market_holidays(first_year: int, last_year: int) -> set[date]:
    """Weekdays without a WTI price (NYSE holidays), the reason for the blanks in the real oil file."""
    out: set[date] = set()
    for year in range(first_year, last_year + 1):
        days = [
            date(year, 1, 1),
            nth_weekday(year, 1, 0, 3),
            nth_weekday(year, 2, 0, 3),
            easter_sunday(year) - timedelta(days=2),
            nth_weekday(year, 5, 0, -1),
            date(year, 7, 4),
            nth_weekday(year, 9, 0, 1),
            nth_weekday(year, 11, 3, 4),
            date(year, 12, 25),
        ]
        for day in days:
            if day.weekday() == 5:
                day -= timedelta(days=1)
            elif day.weekday() == 6:
                day += timedelta(days=1)
            out.add(day)
    return out


def day_ordinal(days: pd.DatetimeIndex) -> np.ndarray:
    """Days since 2013-01-01 as floats."""
    return (days - pd.Timestamp(EPOCH)).days.to_numpy().astype(np.float64)


def day_index(days: pd.DatetimeIndex, when: date) -> int:
    """Index of the first day on or after ``when``."""
    return int(days.searchsorted(pd.Timestamp(when)))


def oil_prices(rng: np.random.Generator, start: date, last: date) -> list[tuple[str, str]]:
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
    xs = np.array([(a - EPOCH).days for a, _ in anchors], dtype=np.float64)
    ys = np.log([p for _, p in anchors])
    target = np.interp(day_ordinal(days), xs, ys)
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
