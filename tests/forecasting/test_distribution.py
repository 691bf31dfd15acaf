"""Lead-time demand when a forecast's level error is shared by every day of its horizon (issue 17)."""

import numpy as np
import pytest

from forecasting.distribution import (
    inside_interval,
    lead_time_demand,
    level_evidence,
    level_share,
    prob_demand_exceeds,
    sum_variance,
)

DAILY = np.array([4.0, 5.0, 6.0, 8.0, 5.0, 7.0, 9.0])


def shared_level_draws(daily: np.ndarray, noise: float, level: float, n: int, seed: int = 0) -> np.ndarray:
    """Daily demand μ·L·G: one level factor L (mean 1, variance `level`) for all days of a draw, and a
    day's own gamma-Poisson noise of dispersion `noise`. Shape (n, days)."""
    rng = np.random.default_rng(seed)
    factor = rng.gamma(1 / level, level, size=(n, 1)) if level > 0 else np.ones((n, 1))
    rate = daily[None, :] * factor * (rng.gamma(1 / noise, noise, size=(n, len(daily))) if noise > 0 else 1.0)
    return rng.poisson(rate)


def test_a_sum_of_days_varies_like_h_squared_when_the_level_error_is_shared():
    total, total_sq = DAILY.sum(), (DAILY**2).sum()
    assert sum_variance(total, total_sq, 0.3, 0.0) == pytest.approx(total + 0.3 * total_sq)  # days independent
    assert sum_variance(total, total_sq, 0.3, 0.3) == pytest.approx(total + 0.3 * total**2)  # one level for all days
    assert sum_variance(total, total_sq, 0.3, 0.9) == sum_variance(
        total, total_sq, 0.3, 0.3
    )  # never more than the dispersion


def test_lead_time_probability_matches_a_simulation_with_a_shared_level():
    noise, level = 0.1, 0.2
    draws = shared_level_draws(DAILY, noise, level, 200_000).sum(axis=1)
    # the day's total dispersion (noise + level + their product) is what the backtest measures
    dispersion = noise + level + noise * level
    for available in (35, 44, 60, 80):
        assert prob_demand_exceeds(DAILY, dispersion, available, level) == pytest.approx(
            (draws > available).mean(), abs=0.02
        )
    independent = prob_demand_exceeds(DAILY, dispersion, 80)
    assert independent < (draws > 80).mean() - 0.05  # days taken as independent: too sure the shelf lasts


def test_eighty_percent_interval_of_a_week_covers_80_percent_only_with_the_shared_level():
    noise, level = 0.05, 0.25
    draws = shared_level_draws(DAILY, noise, level, 100_000, seed=1).sum(axis=1)
    dispersion = noise + level + noise * level
    covered = {}
    for name, shared in (("shared", level), ("independent", 0.0)):
        total, disp = lead_time_demand(DAILY, dispersion, shared)
        covered[name] = inside_interval(draws, total, disp).mean()
    assert covered["shared"] == pytest.approx(0.8, abs=0.03)
    assert covered["independent"] < 0.65


@pytest.mark.parametrize("level", [0.0, 0.2, 0.4])
def test_level_share_is_found_from_backtest_weeks(level):
    """Backtests of 300 series x 3 windows of 28 days with a known level share: the share calibrated on
    their 7-day sums gives the true one within a grid step or two."""
    noise = 0.4 - level  # the same daily dispersion, split differently
    rng = np.random.default_rng(7)
    evidence, dispersion = [], []
    for i in range(900):
        daily = np.full(28, rng.uniform(2, 20))
        actual = shared_level_draws(daily, noise, level, 1, seed=i)[0]
        e = level_evidence(actual, daily, np.zeros(28, bool))
        evidence.append(e)
        dispersion.append(np.full(len(e), noise + level + noise * level))
    share = level_share(np.concatenate(evidence), np.concatenate(dispersion))
    truth = level / (noise + level + noise * level)
    assert share == pytest.approx(truth, abs=0.11)
    assert len(evidence[0]) == 22  # every 7-day stretch of a 28-day window


def test_censored_days_keep_their_sums_out_of_the_evidence():
    censored = np.zeros(28, bool)
    censored[10] = True
    e = level_evidence(np.full(28, 3.0), np.full(28, 3.0), censored)
    assert len(e) == 22 - 7 and (e[:, 0] == 21).all() and (e[:, 2] == 63).all()
