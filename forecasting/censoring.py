"""Censored demand: a day the shelf was empty sold what was there, not what was wanted.

Training on those zeros teaches a model that demand fell exactly when it could not be seen, so the
forecast after a stock-out is biased low — and the next stock-out gets likelier. Censored days are
replaced, before fitting, by what uncensored days of the same weekday sold recently.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def impute_censored(daily: pd.DataFrame, weeks: int = 4) -> pd.DataFrame:
    """`date, units, stockout` (one row per day) -> the same with censored `units` replaced.

    The replacement is the mean of the last `weeks` uncensored days with the same weekday before it
    (falling back to the mean of all uncensored days before it, then to the observed value). A
    censored day keeps its observed units if they were higher (the shelf emptied late in the day).
    """
    out = daily.sort_values("date").reset_index(drop=True).copy()
    censored = out["stockout"].astype(bool).to_numpy()
    if not censored.any():
        return out
    units = out["units"].to_numpy(float)
    weekday = pd.to_datetime(out["date"]).dt.dayofweek.to_numpy()
    filled = units.copy()
    for i in np.flatnonzero(censored):
        before = ~censored[:i]
        same_day = np.flatnonzero(before & (weekday[:i] == weekday[i]))[-weeks:]
        if len(same_day):
            estimate = units[same_day].mean()
        elif before.any():
            estimate = units[:i][before].mean()
        else:
            estimate = units[i]
        filled[i] = max(units[i], estimate)
    out["units"] = filled
    return out
