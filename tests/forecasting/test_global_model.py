"""The global LightGBM candidate: learnt across a store's series, on each series' own scale, repeatable."""

import numpy as np
import pandas as pd
import pytest

from forecasting.engine import EngineSettings, forecast
from forecasting.global_model import GLOBAL_MODEL, MIN_SERIES, global_forecasts


def store_frame(n_series: int, days: int = 300, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Series of very different volume sharing one weekly shape (weekends x2): unique_id, ds, y."""
    rng = np.random.default_rng(seed)
    levels = np.geomspace(0.5, 60, n_series)
    dates = pd.date_range("2025-01-06", periods=days, freq="D")  # a Monday
    shape = np.where(dates.dayofweek >= 5, 2.0, 1.0)
    frames = [
        pd.DataFrame({"unique_id": f"S1|K{i:02d}", "ds": dates, "y": rng.poisson(level * shape).astype(float)})
        for i, level in enumerate(levels)
    ]
    return pd.concat(frames, ignore_index=True), levels


def test_learns_the_shared_weekly_shape_at_every_series_level():
    frame, levels = store_frame(MIN_SERIES + 5)
    out = global_forecasts(frame, None, horizon=14)
    assert len(out) == len(levels)
    future = pd.date_range(frame["ds"].max() + pd.Timedelta(days=1), periods=14, freq="D")
    weekend = future.dayofweek >= 5
    for i, level in enumerate(levels):
        fc = out[f"S1|K{i:02d}"]
        assert (fc >= 0).all() and len(fc) == 14
        if level >= 5:  # busy enough for the shape to be measurable in its own noise
            assert fc[weekend].mean() / fc[~weekend].mean() == pytest.approx(2.0, rel=0.25)
            assert fc[~weekend].mean() == pytest.approx(level, rel=0.25)


def test_is_repeatable_and_not_tried_on_too_few_series():
    frame, _ = store_frame(MIN_SERIES)
    first, again = global_forecasts(frame, None, 7), global_forecasts(frame, None, 7)
    assert first.keys() == again.keys() and all(np.array_equal(first[k], again[k]) for k in first)
    few = frame[frame["unique_id"].isin(sorted(frame["unique_id"].unique())[: MIN_SERIES - 1])]
    assert global_forecasts(few, None, 7) == {}


def test_engine_results_with_the_global_model_do_not_depend_on_processes_or_shards():
    frame, _ = store_frame(MIN_SERIES, days=150, seed=3)
    one = pd.DataFrame({"store_id": "S1", "sku": frame["unique_id"].str[3:], "date": frame["ds"], "units": frame["y"]})
    sales = pd.concat([one, one.assign(store_id="S2", units=one["units"] + 1)], ignore_index=True)
    settings = EngineSettings(horizon=14, workers=1, prophet_min_units_per_day=1e9, combination="top3")
    whole = forecast(sales, settings)
    assert whole.models["model"].str.contains(GLOBAL_MODEL).any()  # it is a candidate the decision uses
    parallel = forecast(
        sales, EngineSettings(horizon=14, workers=2, prophet_min_units_per_day=1e9, combination="top3")
    ).forecast
    pd.testing.assert_frame_equal(whole.forecast, parallel)
    shards = pd.concat([forecast(sales, settings, shard=(i, 2)).forecast for i in range(2)])
    pd.testing.assert_frame_equal(
        whole.forecast, shards.sort_values(["store_id", "sku", "date"]).reset_index(drop=True)
    )


def test_price_path_applies_each_row_from_its_date_and_a_stores_own_row_last():
    from forecasting.engine import price_index, price_path

    rows = pd.DataFrame(
        {
            "store_id": ["", "", "S1", ""],
            "sku": ["A", "A", "A", "B"],
            "date": pd.to_datetime(["2026-01-03", "2026-01-06", "2026-01-06", "2026-01-01"]),
            "price": [2.0, 1.5, 1.8, 9.0],
        }
    )
    index = price_index(rows)
    first = int(np.datetime64("2026-01-01", "D").astype(int))
    np.testing.assert_allclose(price_path(index, "S1", "A", first, 8), [2.0, 2.0, 2.0, 2.0, 2.0, 1.8, 1.8, 1.8])
    np.testing.assert_allclose(price_path(index, "S2", "A", first, 8), [2.0, 2.0, 2.0, 2.0, 2.0, 1.5, 1.5, 1.5])
    assert price_path(index, "S1", "C", first, 8) is None


def elastic_store(n_series: int = 30, days: int = 364, elasticity: float = 2.0, seed: int = 4):
    """Series whose demand answers price (ratio ** -elasticity) under random price regimes, and a
    horizon in which half of them are 20 % cheaper and half 20 % dearer than usual."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2025-01-06", periods=days + 14, freq="D")
    history, future = [], []
    for i in range(n_series):
        ratio = np.ones(days + 14)
        for start in range(20, days, 35):
            ratio[start : start + 14] = rng.choice([0.8, 1.2])
        ratio[days:] = 0.8 if i % 2 == 0 else 1.2
        level = rng.uniform(3, 30)
        uid = f"S1|K{i:02d}"
        history.append(
            pd.DataFrame(
                {
                    "unique_id": uid,
                    "ds": dates[:days],
                    "y": rng.poisson(level * ratio[:days] ** -elasticity).astype(float),
                    "price_ratio": ratio[:days],
                }
            )
        )
        future.append(pd.DataFrame({"unique_id": uid, "ds": dates[days:], "price_ratio": ratio[days:]}))
    return pd.concat(history, ignore_index=True), pd.concat(future, ignore_index=True)


def test_a_planned_price_cut_raises_the_global_forecast_as_much_as_history_taught():
    history, future = elastic_store()
    out = global_forecasts(history, future, 14)
    usual = history.groupby("unique_id").apply(
        lambda g: g.loc[g["price_ratio"] == 1.0, "y"].mean(), include_groups=False
    )
    cheaper = np.mean([out[u].mean() / usual[u] for u in out if int(u[-2:]) % 2 == 0])
    dearer = np.mean([out[u].mean() / usual[u] for u in out if int(u[-2:]) % 2 == 1])
    assert cheaper > 1.25 and dearer < 0.85  # truth: 0.8 ** -2 = 1.56 and 1.2 ** -2 = 0.69
    blind = global_forecasts(history.drop(columns="price_ratio"), None, 14)
    assert np.mean([blind[u].mean() / usual[u] for u in blind if int(u[-2:]) % 2 == 0]) < cheaper - 0.2


def test_public_holidays_are_known_ahead_only_when_a_country_is_set():
    from forecasting.engine import global_model_frames, prepare_series, series_data

    new_year = int(np.datetime64("2025-01-01", "D").astype(int))
    s = prepare_series(
        series_data("S1", "A", np.arange(new_year - 30, new_year + 30), np.ones(60), np.zeros(60), 14, {}), 14, 12
    )
    frame, future = global_model_frames([s], 14, "GB")
    flagged = frame.loc[frame["holiday"] == 1, "ds"].dt.strftime("%Y-%m-%d").tolist()
    assert "2025-01-01" in flagged and "2024-12-25" in flagged and "2025-01-15" not in flagged
    assert list(future.columns) == ["unique_id", "ds", "holiday"] and len(future) == 14
    assert global_model_frames([s], 14, None)[1] is None  # no prices, no country: nothing is known ahead
