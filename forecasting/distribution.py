"""Demand distributions from a point forecast: negative binomial per day, and over a lead time.

Daily unit sales are counts whose variance grows faster than their mean, so a day's demand is
NB(mean μ, size k): variance μ + μ²/k. The dispersion 1/k is estimated from the chosen model's own
backtest errors, so it covers the model's error as well as the noise of the shelf. Quantiles are read
from the distribution linearly interpolated between integers (a continuous "jittered" count) so an
80 % interval of a slow mover can be 0 .. 1.4 rather than an over-wide 0 .. 2.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

MIN_MEAN = 1e-6


def nb_dispersion(actual: np.ndarray, forecast: np.ndarray) -> float:
    """1/k by the method of moments: E[(y-μ)²] = E[μ] + E[μ²]/k; 0 (Poisson) when errors are smaller."""
    actual, forecast = np.asarray(actual, float), np.asarray(forecast, float)
    ok = ~np.isnan(actual) & ~np.isnan(forecast)
    if ok.sum() < 7 or np.sum(forecast[ok] ** 2) <= 0:
        return 0.0
    err2 = np.mean((actual[ok] - forecast[ok]) ** 2)
    return float(max(0.0, (err2 - forecast[ok].mean()) / np.mean(forecast[ok] ** 2)))


def nb_cdf(x: np.ndarray, mean: np.ndarray, dispersion: np.ndarray) -> np.ndarray:
    """P(Y <= x) for NB(mean, 1/k = dispersion); Poisson where dispersion is 0."""
    mean = np.maximum(np.asarray(mean, float), MIN_MEAN)
    dispersion = np.broadcast_to(np.asarray(dispersion, float), mean.shape)
    poisson = dispersion <= 1e-9
    size = np.where(poisson, 1.0, 1.0 / np.where(poisson, 1.0, dispersion))
    nb = stats.nbinom.cdf(x, size, size / (size + mean))
    return np.where(poisson, stats.poisson.cdf(x, mean), nb)


def nb_quantiles(mean: np.ndarray, dispersion: np.ndarray, levels, max_units: int | None = None) -> np.ndarray:
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


def lead_time_demand(mean: np.ndarray, dispersion: float) -> tuple[float, float]:
    """Mean and NB dispersion of the sum of independent daily NB demands (moments matched)."""
    mean = np.asarray(mean, float)
    total = float(mean.sum())
    variance = float(np.sum(mean + dispersion * mean**2))
    if total <= 0:
        return 0.0, 0.0
    return total, max(0.0, (variance - total) / total**2)


def nb_exceeds(units: float, mean: float, dispersion: float) -> float:
    """P(Y > units) for Y ~ NB(mean, 1/k = dispersion); Poisson where dispersion is ~0."""
    return float(1.0 - nb_cdf(np.floor(units), np.array(mean, float), np.array(dispersion, float)))


def prob_demand_exceeds(mean: np.ndarray, dispersion: float, available: float) -> float:
    """P(cumulative demand over the days of `mean` > `available` units): the stock-out probability."""
    total, disp = lead_time_demand(mean, dispersion)
    return nb_exceeds(available, total, disp) if total > 0 else 0.0
