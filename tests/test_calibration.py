"""Calibration: bounds learned from the model's own history (monitoring/calibration.py).

Unit tests of the fit on synthetic values (centre, spread, the prediction-interval widening, the
weekly pattern, error ratios on the log scale, too few values). The end-to-end calibration of a
trained model is in tests/test_monitoring.py, which has one.
"""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from monitoring.calibration import LEAVE_ONE_OUT, MIN_SAMPLES, backcast_dates, fit_bounds

MONDAY = date(2017, 3, 6)


def _values(metric: str, values: list[float], *, column: str = "", start: date = MONDAY) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "calibration_date": [start + timedelta(days=offset) for offset in range(len(values))],
            "calibration_kind": LEAVE_ONE_OUT,
            "metric_name": metric,
            "column_name": column,
            "segment_type": "",
            "segment_value": "",
            "value": values,
        }
    )


def test_bounds_are_mean_and_spread_widened_for_one_new_day() -> None:
    rng = np.random.default_rng(5)
    values = list(rng.normal(0.05, 0.01, 84))
    bounds = fit_bounds(_values("unseen_category_count", values))
    assert len(bounds) == 7 and list(bounds["weekday"]) == list(range(1, 8))
    assert set(bounds["seasonality"]) == {"none"} and set(bounds["value_scale"]) == {"identity"}
    assert bounds["center"].iloc[0] == pytest.approx(np.mean(values))
    assert bounds["scale"].iloc[0] == pytest.approx(np.std(values, ddof=1) * np.sqrt(1 + 1 / 84))
    assert bounds["sample_size"].iloc[0] == 84
    assert (bounds["observed_min"].iloc[0], bounds["observed_max"].iloc[0]) == (min(values), max(values))
    assert (bounds["possible_min"].iloc[0], bounds["possible_max"].iloc[0]) == (0.0, None)


def test_a_clear_weekly_pattern_gives_each_weekday_its_centre() -> None:
    rng = np.random.default_rng(6)
    level = {1: 0.1, 2: 0.1, 3: 0.1, 4: 0.1, 5: 0.1, 6: 0.3, 7: 0.3}
    days = [MONDAY + timedelta(days=offset) for offset in range(56)]
    values = [level[day.isoweekday()] + rng.normal(0, 0.01) for day in days]
    bounds = fit_bounds(_values("column_missing_share", values, column="onpromotion")).set_index("weekday")
    assert set(bounds["seasonality"]) == {"day_of_week"}
    saturdays = [value for day, value in zip(days, values, strict=True) if day.isoweekday() == 6]
    assert bounds.loc[6, "center"] == pytest.approx(np.mean(saturdays))
    assert bounds.loc[1, "center"] == pytest.approx(0.1, abs=0.01)
    # the spread is the within-weekday one (about 0.01), not the spread between weekdays
    assert bounds["scale"].max() < 0.015
    flat = fit_bounds(_values("column_missing_share", list(rng.normal(0.1, 0.01, 56)), column="onpromotion"))
    assert set(flat["seasonality"]) == {"none"}


@pytest.mark.parametrize("metric", ["rmsle_ratio", "segment_rmsle_ratio", "prediction_drift_score"])
def test_ratios_and_drift_scores_are_learned_on_the_log_scale(metric: str) -> None:
    values = [0.8, 1.25, 1.0, 0.9, 1.1, 1.0, 1.2, 0.85]
    bounds = fit_bounds(_values(metric, values))
    assert set(bounds["value_scale"]) == {"log"}
    assert bounds["center"].iloc[0] == pytest.approx(np.mean(np.log(values)))
    assert bounds["scale"].iloc[0] == pytest.approx(np.std(np.log(values), ddof=1) * np.sqrt(1 + 1 / 8))
    assert bounds["observed_max"].iloc[0] == pytest.approx(1.25)  # in the metric's own unit


def test_a_metric_seen_on_too_few_days_gets_no_bounds() -> None:
    few = _values("unseen_category_count", [1.0] * (MIN_SAMPLES - 1))
    enough = _values("missing_values_share", [0.0] * MIN_SAMPLES)
    bounds = fit_bounds(pd.concat([few, enough]))
    assert set(bounds["metric_name"]) == {"missing_values_share"}
    assert (bounds["center"] == 0).all() and (bounds["scale"] == 0).all()


def test_backcast_is_every_other_week_before_the_validation_window() -> None:
    validation_start = date(2017, 4, 20)
    days = backcast_dates(validation_start, 56)
    assert len(days) == 28 and days[-1] == date(2017, 4, 19)
    distances = sorted((validation_start - day).days for day in days)
    assert distances == [*range(1, 8), *range(15, 22), *range(29, 36), *range(43, 50)]
    assert sorted(day.isoweekday() for day in days) == sorted(list(range(1, 8)) * 4)
