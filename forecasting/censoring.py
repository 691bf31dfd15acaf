"""Censored demand: a day the shelf was empty sold what was there, not what was wanted.

Training on those zeros teaches a model that demand fell exactly when it could not be seen, so the
forecast after a stock-out is biased low — and the next stock-out gets likelier. Censored days are
replaced, before fitting, by what uncensored days of the same weekday sold recently. Promotion days
are masked the same way to get a baseline (their lift is learnt separately).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def impute_masked(
    units: np.ndarray,
    masked: np.ndarray,
    weekday: np.ndarray,
    weeks: int = 4,
    at_least_observed: np.ndarray | None = None,
) -> np.ndarray:
    """Replace masked days by the mean of the last `weeks` unmasked same-weekday days before them
    (then any unmasked day before, then the first unmasked days after). Where `at_least_observed`
    (default: every masked day) the estimate never goes below what was sold: a shelf that emptied at
    18:00 still sold what it sold."""
    out = units.astype(float).copy()
    if not masked.any():
        return out
    clean = ~masked
    for i in np.flatnonzero(masked):
        same = np.flatnonzero(clean[:i] & (weekday[:i] == weekday[i]))[-weeks:]
        if len(same):
            estimate = units[same].mean()
        elif clean[:i].any():
            estimate = units[:i][clean[:i]].mean()
        elif clean.any():
            estimate = units[clean][:weeks].mean()
        else:
            estimate = units[i]
        floor = masked[i] if at_least_observed is None else at_least_observed[i]
        out[i] = max(units[i], estimate) if floor else estimate
    return out


def impute_censored(daily: pd.DataFrame, weeks: int = 4) -> pd.DataFrame:
    """`date, units, stockout` (one row per day) -> the same with censored `units` imputed."""
    out = daily.sort_values("date").reset_index(drop=True).copy()
    censored = out["stockout"].astype(bool).to_numpy()
    out["units"] = impute_masked(
        out["units"].to_numpy(float), censored, pd.to_datetime(out["date"]).dt.dayofweek.to_numpy(), weeks
    )
    return out
