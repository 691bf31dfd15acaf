"""Demand classes and M5 metrics on hand-computed cases."""

import numpy as np
import pandas as pd
import pytest

from forecasting.classify import classify_demand, series_profile
from forecasting.metrics import interval_coverage, rmsse


@pytest.mark.parametrize(
    ("units", "expected"),
    [
        ([5, 6, 5, 7, 6, 5, 6, 5], "smooth"),
        ([1, 20, 2, 15, 1, 30, 2, 1], "erratic"),
        ([0, 0, 2, 0, 0, 2, 0, 0, 3, 0, 0, 2], "intermittent"),
        ([0, 0, 1, 0, 0, 30, 0, 0, 2, 0, 0, 15], "lumpy"),
        ([0, 0, 0], "no_demand"),
    ],
)
def test_demand_classes(units, expected):
    assert series_profile(np.array(units))["demand_class"] == expected


def test_profile_starts_at_first_sale():
    p = series_profile(np.array([0, 0, 0, 4, 0, 4]))
    assert p["history_days"] == 3 and p["adi"] == pytest.approx(1.5) and p["cv2"] == 0.0


def test_classify_fills_missing_days_with_zero():
    sales = pd.DataFrame({"store_id": "S", "sku": "A", "date": ["2026-01-01", "2026-01-04"], "units": [3, 3]})
    row = classify_demand(sales).iloc[0]
    assert row["history_days"] == 4 and row["adi"] == 2.0 and row["demand_class"] == "intermittent"


def test_rmsse_matches_hand_computation():
    history = np.array([0, 0, 2, 4, 2, 4])  # from the first sale: diffs 2,-2,2 -> scale 4
    assert rmsse(np.array([3, 3]), np.array([1, 5]), history) == pytest.approx(np.sqrt(4 / 4))
    assert np.isnan(rmsse(np.array([1]), np.array([1]), np.zeros(5)))


def test_interval_coverage():
    assert interval_coverage(np.array([1, 5, 9]), np.array([0, 0, 0]), np.array([2, 6, 8])) == pytest.approx(2 / 3)


def test_masking_stockout_days_removes_the_bias_after_a_stockout_week():
    from forecasting.censoring import impute_censored

    rng = np.random.default_rng(3)
    dates = pd.date_range("2026-01-01", periods=84)
    units = rng.poisson(10, 84).astype(float)
    stockout = np.zeros(84, dtype=int)
    units[-7:], stockout[-7:] = 0.0, 1  # the shelf was empty for the last week: sales 0, demand unseen
    daily = pd.DataFrame({"date": dates, "units": units, "stockout": stockout})
    naive_mean = daily["units"].tail(28).mean()  # a 28-day moving average as the forecast
    masked_mean = impute_censored(daily)["units"].tail(28).mean()
    true_rate = 10.0
    assert abs(masked_mean - true_rate) < 1.0
    assert abs(naive_mean - true_rate) > 2.0  # trained on the zeros: about 25 % too low
    # uncensored days are never changed
    assert (impute_censored(daily)["units"].to_numpy()[:-7] == units[:-7]).all()
