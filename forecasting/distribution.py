"""Demand distributions from a point forecast: negative binomial per day, and over a lead time.

Daily unit sales are counts whose variance grows faster than their mean, so a day's demand is
NB(mean μ, size k): variance μ + μ²/k. The dispersion 1/k is estimated from the chosen model's own
backtest errors, so it covers the model's error as well as the noise of the shelf. Quantiles are read
from the distribution linearly interpolated between integers (a continuous "jittered" count) so an
80 % interval of a slow mover can be 0 .. 1.4 rather than an over-wide 0 .. 2.

Days are not independent: a forecast's level error is shared by every day of its horizon. So the
dispersion splits into a day-to-day part and a shared level part σ²: an h-day sum has variance
Σμ + (φ - σ²)·Σμ² + σ²·(Σμ)², which grows like h² where the level error dominates, not like h.
σ² is a share of the dispersion, calibrated per demand class on the backtest's 7-day sums
(`level_share`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from scipy import stats

# a float, or an array of them (one per series or per day)
Floats = float | npt.NDArray[np.float64]

MIN_MEAN = 1e-6


def nb_dispersion(actual: np.ndarray, forecast: np.ndarray) -> float:
    """1/k by the method of moments: E[(y-μ)²] = E[μ] + E[μ²]/k; 0 (Poisson) when errors are smaller."""
    actual, forecast = np.asarray(actual, float), np.asarray(forecast, float)
    ok = ~np.isnan(actual) & ~np.isnan(forecast)
    if ok.sum() < 7 or np.sum(forecast[ok] ** 2) <= 0:
        return 0.0
    err2 = np.mean((actual[ok] - forecast[ok]) ** 2)
    return float(max(0.0, (err2 - forecast[ok].mean()) / np.mean(forecast[ok] ** 2)))


def nb_cdf(x: np.ndarray, mean: Floats, dispersion: Floats) -> np.ndarray:
    """P(Y <= x) for NB(mean, 1/k = dispersion); Poisson where dispersion is 0."""
    mu: np.ndarray = np.maximum(np.asarray(mean, float), MIN_MEAN)
    phi = np.broadcast_to(np.asarray(dispersion, float), mu.shape)
    poisson = phi <= 1e-9
    size = np.where(poisson, 1.0, 1.0 / np.where(poisson, 1.0, phi))
    nb = stats.nbinom.cdf(x, size, size / (size + mu))
    cdf: np.ndarray = np.where(poisson, stats.poisson.cdf(x, mu), nb)  # scipy is untyped
    return cdf


def nb_ppf(level: float, mean: np.ndarray, dispersion: np.ndarray) -> np.ndarray:
    """The smallest whole number of units q with P(Y <= q) >= level, for NB(mean, 1/k = dispersion);
    Poisson where dispersion is 0, and 0 where nothing is expected."""
    mean = np.asarray(mean, float)
    safe = np.maximum(mean, MIN_MEAN)
    dispersion = np.broadcast_to(np.asarray(dispersion, float), safe.shape)
    poisson = dispersion <= 1e-9
    size = np.where(poisson, 1.0, 1.0 / np.where(poisson, 1.0, dispersion))
    q = np.where(poisson, stats.poisson.ppf(level, safe), stats.nbinom.ppf(level, size, size / (size + safe)))
    units: np.ndarray = np.where(mean > 0, q, 0.0)  # scipy is untyped
    return units


def nb_quantiles(
    mean: np.ndarray, dispersion: np.ndarray, levels: Sequence[float], max_units: int | None = None
) -> np.ndarray:
    """Quantiles (rows = days, columns = levels) of the count linearly interpolated between integers."""
    mean = np.asarray(mean, float)
    dispersion = np.broadcast_to(np.asarray(dispersion, float), mean.shape)
    sd = np.sqrt(mean + dispersion * mean**2)
    top = int(np.ceil(np.max(mean + 12 * sd, initial=1.0))) + 2 if max_units is None else max_units
    grid = np.arange(-1, top + 1)  # F(-1) = 0
    cdf = nb_cdf(grid[None, :], mean[:, None], dispersion[:, None])  # (days, grid)
    out = np.empty((len(mean), len(levels)))
    for j, q in enumerate(levels):
        # first integer n with F(n) >= q, then interpolate inside (n-1, n]
        n_idx = np.argmax(cdf >= q, axis=1)
        hi, lo = cdf[np.arange(len(mean)), n_idx], cdf[np.arange(len(mean)), np.maximum(n_idx - 1, 0)]
        frac = np.where(hi > lo, (q - lo) / np.where(hi > lo, hi - lo, 1.0), 1.0)
        out[:, j] = np.maximum(grid[n_idx] - 1 + frac, 0.0)
    return out


def sum_variance(
    total: Floats, total_sq: Floats, dispersion: Floats, level_dispersion: Floats = 0.0
) -> npt.NDArray[np.float64]:
    """Variance of a sum of days with means summing to `total` and squares to `total_sq`: day-to-day
    NB noise plus a level error shared by all days (never more than the whole dispersion)."""
    dispersion = np.asarray(dispersion, float)
    level = np.minimum(np.asarray(level_dispersion, float), dispersion)
    variance: npt.NDArray[np.float64] = total + (dispersion - level) * total_sq + level * np.asarray(total, float) ** 2
    return variance


def moment_dispersion(total: Floats, variance: Floats) -> npt.NDArray[np.float64]:
    """NB dispersion matching a mean and a variance (0 where the variance is Poisson's or less)."""
    total = np.asarray(total, float)
    safe = np.where(total > 0, total, 1.0)
    dispersion: npt.NDArray[np.float64] = np.where(
        total > 0, np.maximum(np.asarray(variance, float) - total, 0.0) / safe**2, 0.0
    )
    return dispersion


def lead_time_demand(mean: np.ndarray, dispersion: float, level_dispersion: float = 0.0) -> tuple[float, float]:
    """Mean and NB dispersion of the demand summed over the days of `mean` (moments matched)."""
    mean = np.asarray(mean, float)
    total = float(mean.sum())
    if total <= 0:
        return 0.0, 0.0
    return total, float(
        moment_dispersion(total, sum_variance(total, float(np.sum(mean**2)), dispersion, level_dispersion))
    )


def window_sums(a: np.ndarray, h: int, step: int = 1) -> np.ndarray:
    """Sums of `h` consecutive days starting every `step` days, along the last axis."""
    a = np.atleast_2d(np.asarray(a, float))
    c = np.concatenate([np.zeros((len(a), 1)), np.cumsum(a, axis=1)], axis=1)
    starts = np.arange(0, a.shape[1] - h + 1, step)
    sums: np.ndarray = c[:, starts + h] - c[:, starts]
    return sums


def inside_interval(
    values: Floats, mean: Floats, dispersion: Floats, low: float = 0.1, high: float = 0.9
) -> npt.NDArray[np.bool_]:
    """Inside [q_low, q_high] of the (interpolated) negative binomial: low <= F(y) and (y = 0 or
    F(y) <= high); needs no quantile grid, so it runs on many series at once."""
    values = np.asarray(values, float)
    f = nb_cdf(np.floor(values), mean, dispersion)
    return (f >= low) & ((values < 1) | (f <= high))


LEVEL_DAYS = 7  # the lead time the level share is calibrated on
LEVEL_SHARES = np.linspace(0.0, 1.0, 11)


def level_evidence(
    actual: np.ndarray, forecast: np.ndarray, censored: np.ndarray, days: int = LEVEL_DAYS
) -> np.ndarray:
    """A backtest window's `days`-day sums (every start day, none with a censored day): rows of
    (actual sum S, forecast sum M, sum of squared daily forecasts Q), what `level_share` calibrates on."""
    ok = window_sums(np.asarray(censored, float), days)[0] == 0
    parts = [
        window_sums(actual, days)[0],
        window_sums(forecast, days)[0],
        window_sums(np.asarray(forecast, float) ** 2, days)[0],
    ]
    return np.stack(parts, axis=1)[ok] if len(ok) else np.empty((0, 3))


def level_share(evidence: np.ndarray, dispersion: np.ndarray, target: float = 0.8) -> float:
    """The share of the daily dispersion that is level error shared by all days: the one (of
    LEVEL_SHARES) whose 80 % intervals of the backtest's sums cover closest to 80 % (the smallest on a
    tie). Calibrated on coverage rather than on squared errors, so one huge order can't set it."""
    if not len(evidence):
        return 0.0
    s, m, q = evidence[:, 0], evidence[:, 1], evidence[:, 2]
    scored = m > 0
    if not scored.any():
        return 0.0
    s, m, q, d = s[scored], m[scored], q[scored], np.asarray(dispersion, float)[scored]
    misses = [
        abs(inside_interval(s, m, moment_dispersion(m, sum_variance(m, q, d, share * d))).mean() - target)
        for share in LEVEL_SHARES
    ]
    return float(LEVEL_SHARES[int(np.argmin(misses))])


def nb_exceeds(units: float, mean: float, dispersion: float) -> float:
    """P(Y > units) for Y ~ NB(mean, 1/k = dispersion); Poisson where dispersion is ~0."""
    return float(1.0 - nb_cdf(np.floor(units), np.array(mean, float), np.array(dispersion, float)))


def prob_demand_exceeds(mean: np.ndarray, dispersion: float, available: float, level_dispersion: float = 0.0) -> float:
    """P(cumulative demand over the days of `mean` > `available` units): the stock-out probability."""
    total, disp = lead_time_demand(mean, dispersion, level_dispersion)
    return nb_exceeds(available, total, disp) if total > 0 else 0.0
