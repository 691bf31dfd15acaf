"""Turning backtested candidates into a forecast: ranking, equal and weighted means, their own errors."""

import numpy as np
import pytest

from forecasting.combine import WindowResult, choose_model, decide, decision_members, parse_strategy


def windows_of(actuals, preds_by_model):
    """Backtest windows of 7 days with a unit scale: RMSSE is the plain RMSE."""
    return [
        WindowResult(
            np.asarray(a, float),
            np.zeros(len(a), bool),
            1.0,
            {m: np.asarray(p[i], float) for m, p in preds_by_model.items()},
        )
        for i, a in enumerate(actuals)
    ]


ACTUAL = [[10.0] * 7, [12.0] * 7, [8.0] * 7]
PREDS = {
    "good": [[10.5] * 7, [11.0] * 7, [8.5] * 7],  # errors 0.5, 1, 0.5
    "fair": [[9.0] * 7, [13.5] * 7, [7.0] * 7],  # 1, 1.5, 1
    "poor": [[14.0] * 7, [15.0] * 7, [4.0] * 7],  # 4, 3, 4
}
FINAL = {"good": np.full(7, 10.0), "fair": np.full(7, 12.0), "poor": np.full(7, 30.0)}


@pytest.mark.parametrize("strategy, expected", [("select", (1, False)), ("top3", (3, False)), ("top5w", (5, True))])
def test_strategies_parse(strategy, expected):
    assert (parse_strategy(strategy).members, parse_strategy(strategy).weighted) == expected


def test_an_unknown_strategy_is_refused_by_name():
    with pytest.raises(ValueError, match="best3"):
        parse_strategy("best3")


def test_members_are_the_k_best_by_backtest_error():
    w = windows_of(ACTUAL, PREDS)
    assert choose_model(w) == ("good", pytest.approx((0.5 + 1 + 0.5) / 3))
    assert decision_members(w, "top2") == ["good", "fair"]
    assert decision_members(w, "select") == ["good"]


def test_equal_mean_of_the_best_two_with_its_own_backtest_error():
    name, rmsse, mean, dispersion, _ = decide(windows_of(ACTUAL, PREDS), FINAL, "top2")
    assert name == "mean:good,fair"
    np.testing.assert_allclose(mean, 11.0)  # (10 + 12) / 2, the poor model left out
    # the combination's own errors in the windows: |9.75-10|, |12.25-12|, |7.75-8| = 0.25 each
    assert rmsse == pytest.approx(0.25)
    assert dispersion == 0.0  # errors smaller than Poisson noise


def test_weighted_mean_leans_on_the_better_member():
    _, _, mean, _, _ = decide(windows_of(ACTUAL, PREDS), FINAL, "top2w")
    good, fair = 1 / (2 / 3) ** 2, 1 / (3.5 / 3) ** 2
    np.testing.assert_allclose(mean, (good * 10 + fair * 12) / (good + fair))
    assert 10 < mean[0] < 11


def test_select_keeps_the_single_best_and_nothing_to_decide_gives_none():
    name, rmsse, mean, _, _ = decide(windows_of(ACTUAL, PREDS), FINAL, "select")
    assert name == "good" and rmsse == pytest.approx(2 / 3) and (mean == 10).all()
    assert decide([], FINAL, "top3")[0] is None


def test_a_member_without_a_final_forecast_is_skipped():
    name, _, mean, _, _ = decide(windows_of(ACTUAL, PREDS), {"fair": FINAL["fair"], "poor": FINAL["poor"]}, "top2")
    assert name == "fair" and (mean == 12).all()
