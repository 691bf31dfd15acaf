"""The forecaster: model choice per series, censored days, promotions, quantiles, shards, bad input."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from forecasting.distribution import nb_quantiles, prob_demand_exceeds
from forecasting.engine import EngineSettings, forecast, shard_of
from forecasting.inputs import ForecastInputError, validate_sales

FAST = EngineSettings(horizon=28, workers=1, prophet_min_units_per_day=1e9)  # Prophet off: tests stay quick


def series(store, sku, units, start="2025-01-06", **extra):
    dates = pd.date_range(start, periods=len(units), freq="D")
    return pd.DataFrame({"store_id": store, "sku": sku, "date": dates, "units": np.asarray(units, float), **extra})


def weekly(days=224, seed=0, level=8.0, weekend=3.0):
    """Mondays first; Saturday and Sunday sell `weekend` times the weekday level."""
    rng = np.random.default_rng(seed)
    rate = np.tile([level] * 5 + [level * weekend] * 2, days // 7 + 1)[:days]
    return rng.poisson(rate).astype(float)


def test_weekly_series_gets_a_weekly_model_and_forecast():
    result = forecast(series("S1", "W", weekly()), FAST)
    chosen = result.models.iloc[0]
    assert chosen["model"].startswith("seasonal") or chosen["model"].endswith("+weekday")
    assert chosen["demand_class"] == "smooth" and chosen["backtest_windows"] == 3
    assert 0 < chosen["backtest_rmsse"] < 1.0
    fc = result.forecast
    weekend = fc[fc["date"].dt.dayofweek >= 5]["mean"].mean()
    weekday = fc[fc["date"].dt.dayofweek < 5]["mean"].mean()
    assert weekend == pytest.approx(24, rel=0.2) and weekday == pytest.approx(8, rel=0.2)


def test_intermittent_series_gets_a_level_model_not_last_weeks_zeros():
    rng = np.random.default_rng(5)
    units = (rng.random(300) < 0.15) * rng.integers(1, 4, 300)  # a sale on ~1 day in 7
    result = forecast(series("S1", "SLOW", units), FAST)
    chosen = result.models.iloc[0]
    assert chosen["demand_class"] in {"intermittent", "lumpy"}
    assert chosen["model"] not in {"seasonal_naive"}
    assert result.forecast["mean"].mean() == pytest.approx(units[-120:].mean(), rel=0.5)
    assert (result.forecast["p10"] == 0).all() and (result.forecast["p90"] > 0).all()


def test_masking_stockout_days_makes_the_forecast_after_a_stockout_week_less_biased():
    rng = np.random.default_rng(3)
    units = rng.poisson(10, 140).astype(float)
    stockout = np.zeros(140, dtype=int)
    units[-7:], stockout[-7:] = 0.0, 1  # shelf empty for the last week: no sales, demand unseen
    masked = forecast(series("S1", "A", units, stockout=stockout), FAST).forecast["mean"].mean()
    unmasked = forecast(series("S1", "A", units), FAST).forecast["mean"].mean()
    assert abs(masked - 10) < 1.0, masked
    assert abs(unmasked - 10) > 2 * abs(masked - 10), unmasked


def test_promotion_lift_is_learnt_and_applied_to_planned_promotion_days():
    rng = np.random.default_rng(8)
    days = 280
    rate = np.full(days, 20.0)
    starts = [30, 100, 170, 240]
    for s in starts:
        rate[s : s + 7] *= 2.0
    units = rng.poisson(rate).astype(float)
    sales = series("S1", "P", units)
    first = sales["date"].min()
    promo_starts = [first + pd.Timedelta(days=s) for s in [*starts, days + 5]]  # the next one is planned
    promotions = pd.DataFrame(
        {
            "store_id": "",
            "sku": "P",
            "start_date": promo_starts,
            "end_date": [d + pd.Timedelta(days=6) for d in promo_starts],
        }
    )
    result = forecast(sales, FAST, promotions=promotions)
    assert result.models.iloc[0]["promotion_lift"] == pytest.approx(2.0, rel=0.15)
    fc = result.forecast.set_index("date")["mean"]
    on_promo = fc[first + pd.Timedelta(days=days + 5) : first + pd.Timedelta(days=days + 11)].mean()
    off_promo = fc[first + pd.Timedelta(days=days + 14) :].mean()
    assert on_promo == pytest.approx(40, rel=0.2) and off_promo == pytest.approx(20, rel=0.2)


def test_quantiles_are_ordered_non_negative_and_follow_the_requested_levels():
    sales = pd.concat(
        [series("S1", "A", weekly(seed=1)), series("S1", "B", np.r_[np.linspace(30, 0, 150), np.zeros(30), [1]])]
    )
    settings = EngineSettings(
        horizon=14, quantiles=(0.05, 0.1, 0.5, 0.9, 0.95), workers=1, prophet_min_units_per_day=1e9
    )
    fc = forecast(sales, settings).forecast
    assert list(fc.columns) == ["store_id", "sku", "date", "mean", "p5", "p10", "p50", "p90", "p95", "model"]
    q = fc[["p5", "p10", "p50", "p90", "p95"]].to_numpy()
    assert (np.diff(q, axis=1) >= -1e-9).all()
    assert (fc[["mean", "p5", "p10", "p50", "p90", "p95"]] >= 0).all().all()  # a falling series never goes negative


def test_nb_quantiles_match_scipy_and_lead_time_probability_matches_simulation():
    mean, dispersion = np.array([0.4, 3.0, 25.0]), 0.3
    q = nb_quantiles(mean, dispersion, [0.1, 0.5, 0.9])
    size = 1 / dispersion
    for i, mu in enumerate(mean):
        exact = stats.nbinom.ppf([0.1, 0.5, 0.9], size, size / (size + mu))
        assert (np.ceil(q[i] - 1e-9) == exact).all()  # interpolated inside the integer step below
    rng = np.random.default_rng(0)
    daily = np.array([4.0, 5.0, 6.0, 8.0])
    draws = sum(rng.negative_binomial(size, size / (size + m), 200_000) for m in daily)
    assert prob_demand_exceeds(daily, dispersion, 30) == pytest.approx((draws > 30).mean(), abs=0.02)


def test_eighty_percent_interval_is_calibrated_on_negative_binomial_demand():
    rng = np.random.default_rng(11)
    frames, future = [], []
    for k in range(30):
        mu, size = rng.uniform(2, 30), rng.uniform(2, 10)
        draws = rng.negative_binomial(size, size / (size + mu), 228).astype(float)
        frames.append(series("S1", f"N{k}", draws[:200]))
        future.append(
            series("S1", f"N{k}", draws[200:], start=str((pd.Timestamp("2025-01-06") + pd.Timedelta(days=200)).date()))
        )
    fc = forecast(pd.concat(frames), FAST).forecast
    actual = pd.concat(future).merge(fc, on=["store_id", "sku", "date"])
    coverage = ((actual["units"] >= actual["p10"]) & (actual["units"] <= actual["p90"])).mean()
    assert len(actual) == 30 * 28 and 0.72 <= coverage <= 0.88, coverage


def test_results_do_not_depend_on_shards_or_processes():
    frames = [
        series(f"S{s}", f"K{k}", weekly(days=120 + 7 * k, seed=10 * s + k, level=2 + k))
        for s in range(4)
        for k in range(3)
    ]
    sales = pd.concat(frames, ignore_index=True)
    whole = forecast(sales, FAST).forecast
    two_procs = forecast(sales, EngineSettings(horizon=28, workers=2, prophet_min_units_per_day=1e9)).forecast
    pd.testing.assert_frame_equal(whole, two_procs)
    shards = [forecast(sales, FAST, shard=(i, 3)).forecast for i in range(3)]
    assert sum(len(s) for s in shards) == len(whole)
    merged = pd.concat(shards).sort_values(["store_id", "sku", "date"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(whole, merged)
    # a store's series stay together, in a shard fixed by the store id
    for i, part in enumerate(shards):
        assert {shard_of(s, 3) for s in part["store_id"]} <= {i}


def test_prophet_is_a_candidate_for_busy_long_series_only():
    from forecasting.engine import prophet_eligible

    busy, slow = weekly(days=400, seed=4, level=30), weekly(days=400, seed=4, level=2)
    settings = EngineSettings()
    for units, expected in ((busy, True), (slow, False), (busy[:100], False)):
        d = series_data_of(units)
        assert prophet_eligible(prepare_series_of(d), settings) is expected


def series_data_of(units):
    from forecasting.engine import promotion_index, series_data

    day = pd.date_range("2025-01-06", periods=len(units)).to_numpy("datetime64[D]").astype(np.int64)
    return series_data("S1", "X", day, np.asarray(units, float), np.zeros(len(units)), 28, promotion_index(None))


def prepare_series_of(d):
    from forecasting.engine import prepare_series

    return prepare_series(d, 28, 12)


def test_prophet_forecast_is_floored_and_follows_the_level():
    from forecasting.engine import candidate_forecasts

    units = weekly(days=400, seed=4, level=30)
    preds = candidate_forecasts([prepare_series_of(series_data_of(units))], EngineSettings(), {"S1|X"})["S1|X"]
    assert "prophet" in preds and len(preds["prophet"]) == 28 and (preds["prophet"] >= 0).all()
    assert preds["prophet"].mean() == pytest.approx(units[-56:].mean(), rel=0.15)
    assert "ma28" in preds and "ses+weekday" in preds and "croston_sba" in preds


@pytest.mark.parametrize(
    "frame, message",
    [
        (
            pd.DataFrame({"store_id": ["S"], "sku": ["A"], "date": ["2026-01-01"], "units": [1], "price": [2.5]}),
            "unknown column(s) 'price'",
        ),
        (
            pd.DataFrame(
                {"store_id": ["S", "S"], "sku": ["A", "A"], "date": ["2026-01-01", "2026-01-02"], "units": [1, -2]}
            ),
            "negative units on line 3",
        ),
        (
            pd.DataFrame({"store_id": ["S"], "sku": ["A"], "date": ["01/13/2026x"], "units": [1]}),
            "unreadable date on line 2",
        ),
        (
            pd.DataFrame({"store_id": ["S"], "sku": ["A"], "date": ["2026-01-01"], "units": ["many"]}),
            "units is not a number on line 2",
        ),
        (
            pd.DataFrame({"store_id": ["S"], "sku": ["A"], "date": ["2026-01-01"], "units": [1], "stockout": [2]}),
            "stockout must be 0 or 1 on line 2",
        ),
    ],
)
def test_bad_files_are_refused_with_the_line_and_the_problem(frame, message):
    with pytest.raises(ForecastInputError, match="sales.csv: ") as err:
        validate_sales(frame, "sales.csv")
    assert message in str(err.value)


def test_single_day_and_all_zero_series_are_rejected_by_name_while_others_are_forecast():
    sales = pd.concat(
        [
            series("S1", "GOOD", weekly(days=90)),
            series("S1", "ONE_DAY", [4]),
            series("S1", "ZERO", np.zeros(60)),
        ]
    )
    result = forecast(sales, FAST)
    assert set(result.forecast["sku"]) == {"GOOD"} and len(result.forecast) == 28
    problems = result.rejected.set_index("sku")["problem"]
    assert "single day" in problems["ONE_DAY"] and "all zero" in problems["ZERO"]
