"""Accuracy and calibration measures used by the backtests and the benchmark."""

from __future__ import annotations

import numpy as np


def rmsse(actual: np.ndarray, forecast: np.ndarray, history: np.ndarray) -> float:
    """Root mean squared scaled error (M5): squared error over the horizon, scaled by the in-sample
    one-step naive squared error from the first non-zero sale on. NaN when the scale is zero."""
    history = np.asarray(history, dtype=float)
    nonzero = np.flatnonzero(history > 0)
    if len(nonzero) == 0:
        return float("nan")
    h = history[nonzero[0]:]
    if len(h) < 2:
        return float("nan")
    scale = float(np.mean(np.diff(h) ** 2))
    if scale == 0:
        return float("nan")
    err = np.mean((np.asarray(actual, dtype=float) - np.asarray(forecast, dtype=float)) ** 2)
    return float(np.sqrt(err / scale))


def interval_coverage(actual: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """Share of actual values inside [lower, upper]."""
    actual = np.asarray(actual, dtype=float)
    return float(np.mean((actual >= lower) & (actual <= upper))) if len(actual) else float("nan")
