"""Accuracy and calibration measures used by the backtests and the benchmark."""

from __future__ import annotations

import numpy as np


def naive_scale(history: np.ndarray) -> float:
    """M5's RMSSE denominator: the in-sample one-step naive squared error from the first non-zero sale
    on. NaN when there are fewer than two such days."""
    history = np.asarray(history, dtype=float)
    nonzero = np.flatnonzero(history > 0)
    h = history[nonzero[0] :] if len(nonzero) else history[:0]
    return float(np.mean(np.diff(h) ** 2)) if len(h) >= 2 else float("nan")


def rmsse(actual: np.ndarray, forecast: np.ndarray, history: np.ndarray) -> float:
    """Root mean squared scaled error (M5): squared error over the horizon over `naive_scale`.
    NaN when the scale is zero or undefined."""
    scale = naive_scale(history)
    if not scale > 0:
        return float("nan")
    return scaled_rmse(actual, forecast, scale)


def scaled_rmse(actual: np.ndarray, forecast: np.ndarray, scale: float) -> float:
    """RMSE over the horizon on the scale of `scale` (a squared error): RMSSE once the scale is known."""
    err = np.mean((np.asarray(actual, dtype=float) - np.asarray(forecast, dtype=float)) ** 2)
    return float(np.sqrt(err / scale))


def interval_coverage(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """Share of actual values inside [lower, upper]."""
    actual = np.asarray(actual, dtype=float)
    return float(np.mean((actual >= lower) & (actual <= upper))) if len(actual) else float("nan")
