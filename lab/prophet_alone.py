"""Prophet alone, per store x SKU over all cores, with sample-based quantiles floored at zero: the
benchmark's "Prophet alone" baseline (the forecaster itself is `forecasting.engine`).

Prophet is imported inside the functions: it takes about a second to import.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from forecasting.engine import quiet_prophet_logs
from forecasting.parallel import map_in_processes

FORECAST_COLUMNS = ["store_id", "sku", "date", "mean", "p10", "p50", "p90", "model"]
MIN_HISTORY_DAYS = 28
UNCERTAINTY_SAMPLES = 300


def complete_daily(history: pd.DataFrame, end: pd.Timestamp | None = None) -> pd.DataFrame:
    """One row per day from the first to the last (or `end`) date; missing days are zero sales."""
    h = history.assign(date=pd.to_datetime(history["date"])).groupby("date", as_index=True)["units"].sum()
    idx = pd.date_range(h.index.min(), end if end is not None else h.index.max(), freq="D")
    return h.reindex(idx, fill_value=0.0).rename_axis("date").reset_index()


def quantile_summary(samples: np.ndarray) -> dict[str, np.ndarray]:
    """Mean and p10/p50/p90 per day of a (days, samples) array of demand draws, floored at zero."""
    s = np.maximum(samples, 0.0)
    p10, p50, p90 = np.quantile(s, [0.1, 0.5, 0.9], axis=1)
    return {"mean": s.mean(axis=1), "p10": p10, "p50": p50, "p90": p90}


def fallback_forecast(daily: pd.DataFrame, horizon: int, seed: int) -> dict[str, np.ndarray]:
    """Too short or all-zero history: Poisson around the recent mean, so quantiles still mean something."""
    rate = float(daily["units"].tail(MIN_HISTORY_DAYS).mean()) if len(daily) else 0.0
    rng = np.random.default_rng(seed)
    return quantile_summary(rng.poisson(rate, size=(horizon, UNCERTAINTY_SAMPLES)).astype(float))


def prophet_forecast(daily: pd.DataFrame, horizon: int, seed: int) -> dict[str, np.ndarray]:
    """Fit Prophet (weekly + yearly when two years exist) and summarise its predictive samples."""
    quiet_prophet_logs()
    from prophet import Prophet

    quiet_prophet_logs()  # cmdstanpy resets its level when first imported
    np.random.seed(seed)  # Prophet draws its samples from numpy's global generator
    model = Prophet(
        weekly_seasonality=True,
        yearly_seasonality=len(daily) >= 700,  # about two years: enough to see a yearly cycle
        daily_seasonality=False,
        uncertainty_samples=UNCERTAINTY_SAMPLES,
    )
    model.fit(daily.rename(columns={"date": "ds", "units": "y"}), algorithm="LBFGS")
    future = model.make_future_dataframe(periods=horizon, include_history=False)
    samples = model.predictive_samples(future)["yhat"]
    return quantile_summary(samples)


def forecast_series(
    history: pd.DataFrame, horizon: int, seed: int = 0, end: pd.Timestamp | None = None
) -> pd.DataFrame:
    """Forecast one series (`date, units`) for `horizon` days after its last date (or `end`)."""
    daily = complete_daily(history, end)
    usable = len(daily) >= MIN_HISTORY_DAYS and daily["units"].sum() > 0
    model_name = "prophet" if usable else "poisson_recent_mean"
    summary = prophet_forecast(daily, horizon, seed) if usable else fallback_forecast(daily, horizon, seed)
    dates = pd.date_range(daily["date"].max() + pd.Timedelta(days=1), periods=horizon, freq="D")
    return pd.DataFrame({"date": dates, **summary, "model": model_name})


def _forecast_chunk(args: tuple[pd.DataFrame, int, pd.Timestamp]) -> pd.DataFrame:
    chunk, horizon, end = args
    out = []
    for (store_id, sku), series in chunk.groupby(["store_id", "sku"], sort=True):
        seed = series_seed(store_id, sku)
        out.append(forecast_series(series, horizon, seed, end).assign(store_id=store_id, sku=sku))
    return pd.concat(out, ignore_index=True) if out else pd.DataFrame(columns=FORECAST_COLUMNS)


def series_seed(store_id: str, sku: str) -> int:
    """A seed from the series' identity, so results do not depend on how series are split over workers."""
    import zlib

    return zlib.crc32(f"{store_id}|{sku}".encode())


def forecast_frame(sales: pd.DataFrame, horizon: int = 28, workers: int = 0, progress=None) -> pd.DataFrame:
    """Forecast every store x SKU of a long frame `store_id, sku, date, units` over `workers` processes.

    All series end on the frame's last date (a SKU that sold nothing lately still gets a forecast from
    the common "today"). `progress(n_done)` is called as series complete.
    """
    sales = sales.assign(date=pd.to_datetime(sales["date"]))
    end = sales["date"].max()
    keys = sales[["store_id", "sku"]].drop_duplicates().sort_values(["store_id", "sku"]).reset_index(drop=True)
    workers = workers or os.cpu_count() or 1
    n_chunks = max(1, min(len(keys), workers * 8))
    keys["chunk"] = np.arange(len(keys)) % n_chunks
    tagged = sales.merge(keys, on=["store_id", "sku"])
    tasks = [(g.drop(columns="chunk"), horizon, end) for _, g in tagged.groupby("chunk")]
    results = []
    for res in map_in_processes(_forecast_chunk, tasks, workers):
        results.append(res)
        if progress:
            progress(res[["store_id", "sku"]].drop_duplicates().shape[0])
    out = pd.concat(results, ignore_index=True)
    return out[FORECAST_COLUMNS].sort_values(["store_id", "sku", "date"]).reset_index(drop=True)
