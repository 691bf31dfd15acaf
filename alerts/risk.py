"""Pure functions over pandas frames: stock positions, stock-out probabilities, phantom zero-runs.

Times are UTC timestamps; daily demand happens in store trading hours (08:00-22:00 local), and
deliveries arrive at 06:00 local, before trading, so demand on a delivery day is served by it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecasting.distribution import nb_exceeds

Z90 = 1.2815515655446004  # standard-normal 90th percentile: p90 - p10 = 2 * Z90 * sigma
OPEN_HOUR, CLOSE_HOUR = 8.0, 22.0


def latest_readings(readings: pd.DataFrame) -> pd.DataFrame:
    """Latest shelf reading per store x SKU by *device* time (late arrivals don't overwrite newer ones)."""
    shelf = readings[readings["kind"].isin(["shelf_units", "shelf_weight_g"])]
    if "clock_skew" in shelf.columns:
        shelf = shelf[~shelf["clock_skew"].astype(bool)]  # a clock running ahead would pin a stale value
    idx = shelf.sort_values(["device_ts", "seq"]).groupby(["store_id", "sku"])["device_ts"].idxmax()
    return shelf.loc[idx, ["store_id", "sku", "sensor_id", "units", "device_ts"]].reset_index(drop=True)


def trading_fraction_after(local_hour: pd.Series) -> pd.Series:
    """Share of a day's trading hours still to come at a store-local hour."""
    return ((CLOSE_HOUR - local_hour) / (CLOSE_HOUR - OPEN_HOUR)).clip(0.0, 1.0)


def stock_positions(
    latest: pd.DataFrame, sales: pd.DataFrame, records: pd.DataFrame, store_tz: dict[str, str]
) -> pd.DataFrame:
    """On-shelf units now per store x SKU.

    With a sensor: the latest reading minus the units sold since it (the reading day's sales count in
    proportion to the trading hours left after the reading). Without one: the units on record.
    Columns: store_id, sku, on_shelf, source ("sensor" | "records"), reading_ts, book_units.
    """
    sales = sales.assign(date=pd.to_datetime(sales["date"]))
    pos = records[["store_id", "sku", "book_units"]].merge(latest, on=["store_id", "sku"], how="outer")
    local = [
        ts.tz_convert(store_tz.get(s, "UTC")) if pd.notna(ts) else pd.NaT for s, ts in zip(pos["store_id"], pos["device_ts"], strict=True)
    ]
    pos["reading_date"] = pd.to_datetime([t.date() if pd.notna(t) else pd.NaT for t in local])
    hour = pd.Series([t.hour + t.minute / 60 if pd.notna(t) else np.nan for t in local], index=pos.index)
    pos["after_frac"] = trading_fraction_after(hour)
    merged = sales.merge(pos[["store_id", "sku", "reading_date", "after_frac"]], on=["store_id", "sku"])
    merged = merged[merged["reading_date"].notna() & (merged["date"] >= merged["reading_date"])]
    weight = np.where(merged["date"] == merged["reading_date"], merged["after_frac"], 1.0)
    sold_since = (merged.assign(w=merged["units"] * weight).groupby(["store_id", "sku"])["w"].sum().rename("sold_since"))
    pos = pos.merge(sold_since, on=["store_id", "sku"], how="left").fillna({"sold_since": 0.0})
    has_sensor = pos["units"].notna()
    pos["on_shelf"] = np.where(has_sensor, (pos["units"] - pos["sold_since"]).clip(lower=0.0), pos["book_units"])
    pos["source"] = np.where(has_sensor, "sensor", "records")
    return pos.rename(columns={"device_ts": "reading_ts", "units": "reading_units"})[
        ["store_id", "sku", "on_shelf", "source", "reading_ts", "reading_units", "book_units"]
    ]


def next_deliveries(deliveries: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """Next expected (not yet received) delivery after `as_of`, and overdue ones, per store x SKU.

    A SKU with nothing on order rides on the store's next truck: replenishment follows the store's
    delivery schedule, so `next_delivery_at` falls back to the store's next delivery of any SKU.
    """
    pending = deliveries[deliveries["received_at"].isna()]
    upcoming = pending[pending["expected_at"] > as_of].sort_values("expected_at")
    nxt = upcoming.groupby(["store_id", "sku"]).first()[["expected_at", "expected_units"]]
    late = pending[pending["expected_at"] <= as_of].groupby(["store_id", "sku"])["expected_at"].min().rename("late_since")
    out = nxt.rename(columns={"expected_at": "next_delivery_at", "expected_units": "next_delivery_units"}).join(late, how="outer").reset_index()
    store_next = upcoming.groupby("store_id")["expected_at"].min().rename("store_next_delivery_at").reset_index()
    return out.merge(store_next, on="store_id", how="outer")


def demand_moments(forecast: pd.DataFrame, dispersion: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per-day mean and variance of demand: from the forecaster's negative-binomial dispersion per
    series (var = mean + dispersion x mean²) when known, else from the 80 % interval."""
    sigma = (forecast["p90"] - forecast["p10"]).clip(lower=0.0) / (2 * Z90)
    var = np.maximum(sigma**2, forecast["mean"])  # count demand: var >= mean
    if dispersion is not None and len(dispersion):
        d = forecast[["store_id", "sku"]].merge(dispersion[["store_id", "sku", "dispersion"]], on=["store_id", "sku"], how="left")["dispersion"].to_numpy()
        var = np.where(np.isnan(d), var, forecast["mean"] + np.nan_to_num(d) * forecast["mean"] ** 2)
    return forecast.assign(var=var)


def cumulative_exceedance(mean: float, var: float, units: float) -> float:
    """P(cumulative demand >= units): negative binomial matched to (mean, var), Poisson if var <= mean."""
    if units <= 0:
        return 1.0
    if mean <= 0:
        return 0.0
    return nb_exceeds(int(np.ceil(units)) - 1, mean, max(var - mean, 0.0) / mean**2)


def stockout_risk(position: float, days: pd.DataFrame, delivery_at: pd.Timestamp | None, tz: str, now: pd.Timestamp) -> dict:
    """P(the shelf empties before the next delivery) and when it is expected to empty.

    `days` holds the forecast days from "now" (date, mean, var) in order. Demand counts for every
    trading day before the delivery's local date (the delivery lands before trading starts).
    Without a known delivery, the whole forecast horizon is used.
    """
    days = days.sort_values("date")
    if delivery_at is not None and pd.notna(delivery_at):
        last_day = pd.Timestamp(delivery_at.tz_convert(tz).date())
        days = days[pd.to_datetime(days["date"]) < last_day]
    cum_mean = days["mean"].cumsum().to_numpy()
    probability = cumulative_exceedance(float(cum_mean[-1]) if len(cum_mean) else 0.0, float(days["var"].sum()), position)
    empty_at = now if position <= 0 else expected_empty_time(position, days, cum_mean, tz)
    daily = float(days["mean"].mean()) if len(days) else 0.0
    return {
        "probability": probability,
        "expected_empty_at": empty_at,
        "expected_demand": float(cum_mean[-1]) if len(cum_mean) else 0.0,
        "days_of_cover": float(position / daily) if daily > 0 else float("inf"),
        "window_days": int(len(days)),
    }


def expected_empty_time(position: float, days: pd.DataFrame, cum_mean: np.ndarray, tz: str) -> pd.Timestamp | None:
    """When expected cumulative demand reaches the units on the shelf (interpolated in trading hours)."""
    if position <= 0:
        return None
    hit = np.flatnonzero(cum_mean >= position)
    if len(hit) == 0:
        return None
    i = int(hit[0])
    before = cum_mean[i - 1] if i > 0 else 0.0
    day_mean = cum_mean[i] - before
    frac = (position - before) / day_mean if day_mean > 0 else 0.0
    day = pd.Timestamp(days["date"].iloc[i]).tz_localize(tz)
    return (day + pd.Timedelta(hours=OPEN_HOUR + frac * (CLOSE_HOUR - OPEN_HOUR))).tz_convert("UTC").floor("min")


def zero_run_length(units: np.ndarray) -> int:
    """Number of trailing days with zero sales."""
    nonzero = np.flatnonzero(units > 0)
    return len(units) if len(nonzero) == 0 else len(units) - 1 - int(nonzero[-1])


def zero_run_probability(history: np.ndarray, run_days: int) -> tuple[float, float]:
    """P(a run of `run_days` zero-sale days) given the daily sales before it, and the daily rate used.

    Negative binomial fitted by moments to the 28 days before the run (Poisson if not overdispersed):
    P(0 on one day) = (1 + mu/r)^-r, and days are taken as independent.
    """
    base = history[-28:]
    mu = float(base.mean()) if len(base) else 0.0
    if mu <= 0 or run_days <= 0:
        return 1.0, mu
    var = float(base.var(ddof=1)) if len(base) > 1 else mu
    if var > mu:
        r = mu * mu / (var - mu)
        p_zero = (1.0 + mu / r) ** (-r)
    else:
        p_zero = float(np.exp(-mu))
    return float(p_zero**run_days), mu
