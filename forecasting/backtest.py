"""Rolling-origin backtests of statsforecast models over a long frame, scored with M5's RMSSE.

Used to pick a model per series and by the forecasting benchmark. Series are keyed `store_id|sku`
inside statsforecast (its `unique_id, ds, y` vocabulary stays at this edge).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecasting.metrics import rmsse

KEY_SEP = "|"


def to_statsforecast(sales: pd.DataFrame) -> pd.DataFrame:
    """Long frame -> `unique_id, ds, y`, every series completed with zero-sale days up to the common end."""
    sales = sales.assign(date=pd.to_datetime(sales["date"]))
    end = sales["date"].max()
    parts = []
    for (store_id, sku), g in sales.groupby(["store_id", "sku"], sort=True):
        daily = g.groupby("date")["units"].sum()
        idx = pd.date_range(daily.index.min(), end, freq="D")
        parts.append(pd.DataFrame({"unique_id": f"{store_id}{KEY_SEP}{sku}", "ds": idx, "y": daily.reindex(idx, fill_value=0.0).to_numpy(float)}))
    return pd.concat(parts, ignore_index=True)


def split_key(unique_id: pd.Series) -> pd.DataFrame:
    parts = unique_id.str.split(KEY_SEP, n=1, expand=True)
    return pd.DataFrame({"store_id": parts[0], "sku": parts[1]})


def rolling_origin_backtest(sales: pd.DataFrame, models: list, horizon: int = 28, windows: int = 3, n_jobs: int = 1) -> pd.DataFrame:
    """RMSSE of every model on every series and window: columns store_id, sku, cutoff, model, rmsse.

    Each window trains on the history up to its cutoff and forecasts the next `horizon` days; the
    windows step by `horizon`, so the last one ends on the last day of data.
    """
    from statsforecast import StatsForecast

    frame = to_statsforecast(sales)
    sf = StatsForecast(models=models, freq="D", n_jobs=n_jobs)
    cv = sf.cross_validation(df=frame, h=horizon, n_windows=windows, step_size=horizon)
    model_cols = [c for c in cv.columns if c not in ("unique_id", "ds", "cutoff", "y")]
    history = {uid: g for uid, g in frame.groupby("unique_id")}
    rows = []
    for (uid, cutoff), g in cv.groupby(["unique_id", "cutoff"], sort=True):
        h = history[uid]
        past = h.loc[h["ds"] <= cutoff, "y"].to_numpy()
        for col in model_cols:
            rows.append((uid, cutoff, col, rmsse(g["y"].to_numpy(), np.maximum(g[col].to_numpy(), 0.0), past)))
    out = pd.DataFrame(rows, columns=["unique_id", "cutoff", "model", "rmsse"])
    return pd.concat([split_key(out["unique_id"]), out.drop(columns="unique_id")], axis=1)


def best_model_per_series(scores: pd.DataFrame) -> pd.DataFrame:
    """The model with the lowest mean RMSSE over the windows, per series (ties: first model name)."""
    mean = scores.groupby(["store_id", "sku", "model"], as_index=False)["rmsse"].mean()
    mean = mean.dropna(subset=["rmsse"]).sort_values(["store_id", "sku", "rmsse", "model"])
    return mean.groupby(["store_id", "sku"], as_index=False).first().rename(columns={"rmsse": "backtest_rmsse"})
