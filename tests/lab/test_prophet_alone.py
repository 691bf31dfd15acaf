"""Prophet forecasts: horizon, quantile order, no negatives, determinism, fallbacks."""

import numpy as np
import pandas as pd
import pytest

from lab.prophet_alone import complete_daily, forecast_frame, forecast_series, quantile_summary


def weekly_series(days=200, seed=0):
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2026-01-01", periods=days, freq="D")
    rate = 6 + 4 * (dates.dayofweek >= 5)
    return pd.DataFrame({"date": dates, "units": rng.poisson(rate)})


def test_missing_days_are_zero_sales():
    hist = pd.DataFrame({"date": ["2026-01-01", "2026-01-04"], "units": [3, 5]})
    daily = complete_daily(hist)
    assert daily["units"].tolist() == [3, 0, 0, 5]


def test_quantile_summary_is_ordered_and_floored():
    samples = np.random.default_rng(0).normal(0.5, 3, size=(5, 400))
    s = quantile_summary(samples)
    assert (s["p10"] >= 0).all() and (s["p10"] <= s["p50"]).all() and (s["p50"] <= s["p90"]).all()
    assert (s["mean"] >= 0).all()


def test_prophet_series_forecast_follows_weekly_pattern():
    fc = forecast_series(weekly_series(), horizon=28, seed=1)
    assert len(fc) == 28 and (fc["model"] == "prophet").all()
    assert fc["date"].iloc[0] == pd.Timestamp("2026-01-01") + pd.Timedelta(days=200)
    assert (fc[["mean", "p10", "p50", "p90"]] >= 0).all().all()
    assert (fc["p10"] <= fc["p50"]).all() and (fc["p50"] <= fc["p90"]).all()
    weekend = fc[fc["date"].dt.dayofweek >= 5]["mean"].mean()
    weekday = fc[fc["date"].dt.dayofweek < 5]["mean"].mean()
    assert weekend > weekday + 2
    assert 7 < fc["mean"].mean() < 9.5  # true mean is 6 + 4 * 2/7 = 7.1


def test_short_or_zero_series_fall_back():
    zero = pd.DataFrame({"date": pd.date_range("2026-01-01", periods=60), "units": 0})
    fc = forecast_series(zero, horizon=7)
    assert (fc["model"] == "poisson_recent_mean").all() and (fc["mean"] == 0).all()
    one_day = pd.DataFrame({"date": ["2026-03-01"], "units": [4]})
    fc = forecast_series(one_day, horizon=3)
    assert len(fc) == 3 and fc["mean"].iloc[0] == pytest.approx(4, rel=0.3)


def test_frame_is_deterministic_across_worker_counts():
    frames = []
    for store in ["S1", "S2"]:
        for sku in ["A", "B"]:
            frames.append(weekly_series(120, seed=hash((store, sku)) % 100).assign(store_id=store, sku=sku))
    sales = pd.concat(frames)
    one = forecast_frame(sales, horizon=14, workers=1)
    two = forecast_frame(sales, horizon=14, workers=2)
    assert len(one) == 4 * 14
    pd.testing.assert_frame_equal(one, two)
