"""The forecast benchmark's scoring and its variants harness, on small frames (the full runs are
`shelfwatch bench forecast` and `shelfwatch bench forecast-variants`)."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from forecasting.engine import series_key
from lab.bench.forecast import (
    ForecastOf,
    MethodScore,
    hindsight_level,
    interval_scores,
    room_captured,
    run_bench,
    target_lines,
)


def test_calibrated_negative_binomial_covers_80_percent_of_days_and_of_7_day_sums():
    rng = np.random.default_rng(1)
    n, days, mean, dispersion = 400, 28, 6.0, 0.3
    k = 1 / dispersion
    y = rng.poisson(rng.gamma(k, mean / k, size=(n, days)))
    truth = {series_key("S", f"K{i}"): (y[i].astype(float), np.zeros(days, bool), 1.0) for i in range(n)}
    right = {u: ForecastOf("m", np.full(days, mean), dispersion) for u in truth}
    scores = interval_scores(truth, right)

    def inside_probability(size, mean_):  # counts are discrete: the interval holds a bit more than 80 %
        y = np.arange(0, 2000)
        f = stats.nbinom.cdf(y, size, size / (size + mean_))
        return float(stats.nbinom.pmf(y, size, size / (size + mean_))[(f >= 0.1) & ((y == 0) | (f <= 0.9))].sum())

    assert scores["covered"].sum() / scores["days"].sum() == pytest.approx(inside_probability(k, mean), abs=0.02)
    assert scores["covered7"].sum() / scores["weeks"].sum() == pytest.approx(
        inside_probability(7 * k, 7 * mean), abs=0.04
    )
    assert scores["rmsse"].mean() == pytest.approx(np.sqrt(mean + dispersion * mean**2), rel=0.05)
    too_sure = interval_scores(truth, {u: ForecastOf("m", np.full(days, mean), 0.0) for u in truth})
    assert too_sure["covered"].sum() / too_sure["days"].sum() < 0.7


def test_days_and_weeks_with_a_stockout_are_not_scored():
    censored = np.zeros(28, bool)
    censored[3] = True
    truth = {"S|A": (np.full(28, 5.0), censored, 1.0)}
    s = interval_scores(truth, {"S|A": ForecastOf("m", np.full(28, 5.0), 0.1)}).iloc[0]
    assert s["days"] == 27 and s["weeks"] == 3 and s["rmsse"] == 0.0


def test_room_captured_and_targets_name_the_best_baseline():
    scores = [
        MethodScore("shelfwatch", 10, 0.90, 0.8, 1.0, 0.8),
        MethodScore("ma28", 10, 1.00, 0.8, 1.0),
        MethodScore("adida", 10, 0.98, float("nan"), 1.0),
        MethodScore("true_mean_demand", 10, 0.88, float("nan"), 0.0),
    ]
    assert room_captured(scores) == ("adida", pytest.approx(0.8))
    lines = dict(target_lines("w", scores, margin=0.0, capture=0.5))
    assert any("adida" in line and ok for line, ok in lines.items() if "ratio" in line)
    assert any("80%" in line and ok for line, ok in lines.items() if "room" in line)


def test_hindsight_level_is_the_true_mean_of_scored_days_flat_or_in_our_shape():
    dates = pd.date_range("2025-03-03", periods=4, freq="D")
    actual = pd.DataFrame(
        {"store_id": "S", "sku": "A", "date": dates, "units": [2.0, 4.0, 99.0, 6.0], "stockout": [0, 0, 1, 0]}
    )
    ours = pd.DataFrame({"store_id": "S", "sku": "A", "date": dates, "mean": [1.0, 1.0, 1.0, 3.0]})
    flat = hindsight_level(actual, ours, flat=True)
    assert flat["mean"].tolist() == [4.0, 4.0, 4.0, 4.0]  # (2 + 4 + 6) / 3: the stock-out day's sales are not demand
    shaped = hindsight_level(actual, ours, flat=False)
    assert shaped["mean"].tolist() == pytest.approx(
        [2.4, 2.4, 2.4, 7.2]
    )  # our shape; over the scored days its mean is 4
    nothing = hindsight_level(actual, ours.assign(mean=0.0), flat=False)
    assert nothing["mean"].tolist() == [4.0] * 4


def test_run_bench_scores_every_method_on_the_same_windows():
    rng = np.random.default_rng(0)
    dates = pd.date_range("2025-01-06", periods=180, freq="D")
    sales = pd.concat(
        [
            pd.DataFrame(
                {"store_id": "S1", "sku": f"K{i}", "date": dates, "units": rng.poisson(3 + i, len(dates)).astype(float)}
            )
            for i in range(3)
        ]
    )
    scores, detail = run_bench(
        sales, windows=2, workers=1, methods=("shelfwatch", "ma28", "adida", "simple_combination"), log=lambda m: None
    )
    by = {s.method: s for s in scores}
    assert set(by) == {
        "shelfwatch",
        "ma28",
        "adida",
        "simple_combination",
        "hindsight_flat_level",
        "shelfwatch_at_hindsight_level",
        "shelfwatch_days_independent",
    }
    assert (detail.groupby("method").size() == 6).all()  # 3 series x 2 windows each
    assert by["hindsight_flat_level"].mean_rmsse < by["ma28"].mean_rmsse  # knowing the level helps on level-only noise
    assert 0.5 < by["shelfwatch"].coverage80 <= 1 and 0.5 < by["shelfwatch"].coverage80_7day <= 1
    assert by["simple_combination"].coverage80 != by["simple_combination"].coverage80  # no interval: NaN
    assert set(detail["demand_class"]) == {"smooth"}


def test_variants_harness_scores_every_decision_on_the_same_candidates():
    from lab.bench.variants import run_variants, summary

    rng = np.random.default_rng(2)
    dates = pd.date_range("2025-01-06", periods=200, freq="D")
    sales = pd.concat(
        [
            pd.DataFrame(
                {
                    "store_id": "S1",
                    "sku": f"K{i}",
                    "date": dates,
                    "units": rng.poisson(2 + 3 * i, len(dates)).astype(float),
                }
            )
            for i in range(3)
        ]
    )
    variants = ("select", "top2", "shrink_top2_p6", "class_top1", "fixed_simple", "only:ma28", "mean:ma28+adida")
    detail = run_variants(sales, variants=variants, windows=2, workers=1, log=lambda m: None)
    table = summary(detail).set_index("variant")
    assert list(table.index) == list(variants)
    assert (detail.groupby("variant").size() == 6).all()  # 3 series x 2 windows for every variant
    assert table["mean_rmsse"].between(0.3, 1.5).all() and table["coverage80_daily"].between(0.5, 1).all()
    assert set(detail.loc[detail["variant"] == "only:ma28", "model"]) == {"ma28"}
    assert set(detail.loc[detail["variant"] == "mean:ma28+adida", "model"]) == {"mean:ma28,adida"}
    assert detail.loc[detail["variant"] == "top2", "model"].str.startswith("mean:").all()
