"""Pure functions over pandas frames: stock positions, stock-out probabilities, phantom zero-runs.

Times are UTC timestamps; daily demand happens in store trading hours (08:00-22:00 local), and
deliveries arrive at 06:00 local, before trading, so demand on a delivery day is served by it.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from core.domain import CLOSE_HOUR, OPEN_HOUR
from forecasting.distribution import nb_cdf

Z90 = 1.2815515655446004  # standard-normal 90th percentile: p90 - p10 = 2 * Z90 * sigma


def latest_readings(readings: pd.DataFrame) -> pd.DataFrame:
    """Latest shelf reading per store x SKU by *device* time, then seq (late arrivals don't overwrite
    newer ones), as latest_sensor_readings keeps it."""
    shelf = readings[readings["kind"].isin(["shelf_units", "shelf_weight_g"])]
    if "clock_skew" in shelf.columns:
        shelf = shelf[~shelf["clock_skew"].astype(bool)]  # a clock running ahead would pin a stale value
    newest = shelf.sort_values(["device_ts", "seq"]).drop_duplicates(["store_id", "sku"], keep="last")
    return newest[["store_id", "sku", "sensor_id", "units", "device_ts"]].reset_index(drop=True)


def readings_from_latest(latest: pd.DataFrame, since: pd.Timestamp) -> pd.DataFrame:
    """The readings since `since` that detection looks at, from latest_sensor_readings rows: each
    sensor's newest trusted reading and, where a skewed clock's reading is newer, that one's device time
    flagged `clock_skew` (it keeps the sensor from counting as silent, but is no stock level).
    Columns: store_id, sku, sensor_id, kind, units, seq, device_ts, clock_skew."""
    device_ts, last_device_ts = (
        pd.to_datetime(latest["device_ts"], utc=True),
        pd.to_datetime(latest["last_device_ts"], utc=True),
    )
    key = latest[["store_id", "sku", "sensor_id", "kind"]]
    trusted = key.assign(units=latest["units"], seq=latest["seq"], device_ts=device_ts, clock_skew=False)[
        device_ts >= since
    ]
    skewed = key.assign(units=np.nan, seq=np.nan, device_ts=last_device_ts, clock_skew=True)[
        (last_device_ts >= since) & ~(device_ts >= last_device_ts)
    ]
    return pd.concat([trusted, skewed], ignore_index=True)


def trading_fraction_after(local_hour: pd.Series) -> pd.Series:
    """Share of a day's trading hours still to come at a store-local hour."""
    return ((CLOSE_HOUR - local_hour) / (CLOSE_HOUR - OPEN_HOUR)).clip(0.0, 1.0)


def books_now(records: pd.DataFrame, deliveries: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """The units on record now: the latest record plus deliveries received after it (up to `as_of`).

    Records are counted at night; a truck received this morning is on the shelf before the next count.
    """
    received = deliveries[deliveries["received_at"].notna() & (deliveries["received_at"] <= as_of)]
    since = received.merge(records[["store_id", "sku", "as_of"]], on=["store_id", "sku"])
    since = since[since["received_at"] > since["as_of"]]
    units = (
        since["received_units"].fillna(since["expected_units"])
        if "received_units" in since
        else since["expected_units"]
    )
    added = since.assign(units=units).groupby(["store_id", "sku"])["units"].sum().rename("received_since")
    out = records.merge(added, on=["store_id", "sku"], how="left")
    return out.assign(book_units=out["book_units"] + pd.to_numeric(out["received_since"]).fillna(0.0)).drop(
        columns="received_since"
    )


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
        ts.tz_convert(store_tz.get(s, "UTC")) if pd.notna(ts) else pd.NaT
        for s, ts in zip(pos["store_id"], pos["device_ts"], strict=True)
    ]
    pos["reading_date"] = pd.to_datetime([t.date() if pd.notna(t) else pd.NaT for t in local])
    hour = pd.Series([t.hour + t.minute / 60 if pd.notna(t) else np.nan for t in local], index=pos.index)
    pos["after_frac"] = trading_fraction_after(hour)
    merged = sales.merge(pos[["store_id", "sku", "reading_date", "after_frac"]], on=["store_id", "sku"])
    merged = merged[merged["reading_date"].notna() & (merged["date"] >= merged["reading_date"])]
    weight = np.where(merged["date"] == merged["reading_date"], merged["after_frac"], 1.0)
    sold_since = merged.assign(w=merged["units"] * weight).groupby(["store_id", "sku"])["w"].sum().rename("sold_since")
    pos = pos.merge(sold_since, on=["store_id", "sku"], how="left").fillna({"sold_since": 0.0})
    has_sensor = pos["units"].notna()
    pos["on_shelf"] = np.where(has_sensor, (pos["units"] - pos["sold_since"]).clip(lower=0.0), pos["book_units"])
    pos["source"] = np.where(has_sensor, "sensor", "records")
    return pos.rename(columns={"device_ts": "reading_ts", "units": "reading_units"})[
        ["store_id", "sku", "on_shelf", "source", "reading_ts", "reading_units", "book_units"]
    ]


def next_deliveries(deliveries: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """The next two expected (not yet received) deliveries after `as_of`, and overdue ones, per store x SKU.

    A SKU with nothing on order rides on the store's trucks: replenishment follows the store's
    delivery schedule, so a missing time falls back to the store's next (or following) delivery of any
    SKU. Columns: store_id, sku, next_delivery_at, next_delivery_units, following_delivery_at, late_since.
    """
    pending = deliveries[deliveries["received_at"].isna()]
    upcoming = pending[pending["expected_at"] > as_of].sort_values("expected_at", kind="stable")
    rank = upcoming.groupby(["store_id", "sku"]).cumcount()
    nxt = upcoming[rank == 0].set_index(["store_id", "sku"])[["expected_at", "expected_units"]]
    following = upcoming[rank == 1].set_index(["store_id", "sku"])["expected_at"].rename("following_delivery_at")
    late = (
        pending[pending["expected_at"] <= as_of].groupby(["store_id", "sku"])["expected_at"].min().rename("late_since")
    )
    out = nxt.rename(columns={"expected_at": "next_delivery_at", "expected_units": "next_delivery_units"}).join(
        [following, late], how="outer"
    )
    return out.reset_index()


def store_deliveries(deliveries: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    """Each store's next and following truck after `as_of` (any SKU): the fallback schedule."""
    trucks = deliveries[deliveries["received_at"].isna() & (deliveries["expected_at"] > as_of)][
        ["store_id", "expected_at"]
    ]
    trucks = trucks.drop_duplicates().sort_values("expected_at", kind="stable")
    rank = trucks.groupby("store_id").cumcount()
    return (
        pd.DataFrame(
            {
                "store_next_delivery_at": trucks[rank == 0].set_index("store_id")["expected_at"],
                "store_following_delivery_at": trucks[rank == 1].set_index("store_id")["expected_at"],
            }
        )
        .rename_axis("store_id")
        .reset_index()
    )


def demand_moments(forecast: pd.DataFrame, dispersion: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per-day mean and variance of demand, and the series' level dispersion: from the forecaster's
    negative-binomial dispersion per series (var = mean + dispersion x mean²) when known, else from the
    80 % interval. `level` (σ², `forecast_models.level_dispersion`; 0 when unknown) is the part of the
    dispersion that is level error shared by every day: a sum of days adds σ² x (Σ mean)² to the
    day-to-day variance `var - level x mean²` (forecasting.distribution.sum_variance)."""
    mean = forecast["mean"].to_numpy(float)
    sigma = (forecast["p90"] - forecast["p10"]).clip(lower=0.0) / (2 * Z90)
    var = np.maximum(sigma**2, mean)  # count demand: var >= mean
    level = np.zeros(len(forecast))
    if dispersion is not None and len(dispersion):
        cols = ["store_id", "sku", "dispersion", *(["level_dispersion"] if "level_dispersion" in dispersion else [])]
        per_row = forecast[["store_id", "sku"]].merge(dispersion[cols], on=["store_id", "sku"], how="left")
        d = per_row["dispersion"].to_numpy(float)
        var = np.where(np.isnan(d), var, mean + np.nan_to_num(d) * mean**2)
        if "level_dispersion" in per_row:
            level = np.minimum(np.nan_to_num(per_row["level_dispersion"].to_numpy(float)), np.nan_to_num(d))
    return forecast.assign(var=var, level=level)


NOWCAST_HOURS = 30  # readings this recent show today's selling rate (4-5 six-hourly readings)
NOWCAST_PRIOR_UNITS = 3.0  # the forecast counts as this many units of evidence against the readings'
SURGE_EVIDENCE_P = 0.001  # the readings override the forecast only when it gives what they show this little chance
REFILL_RISE_UNITS = 1.0  # a rise of more than this between two readings is a refill, not a miscount


def observed_demand_ratio(
    readings: pd.DataFrame,
    deliveries: pd.DataFrame,
    moments: pd.DataFrame,
    store_tz: dict[str, str],
    as_of: pd.Timestamp,
    hours: float = NOWCAST_HOURS,
    prior_units: float = NOWCAST_PRIOR_UNITS,
    evidence_p: float = SURGE_EVIDENCE_P,
) -> pd.DataFrame:
    """How fast a watched shelf is selling today against its forecast, from its recent readings.

    A local surge (a heatwave, an event next door) is in no forecast; the shelf's readings show it
    within hours. Consecutive readings of a sensor in the last `hours` give the units gone over the
    trading hours between them (a pair the shelf was refilled in, by a received delivery or a rise,
    is skipped), where the forecast expected its daily mean x the share of trading hours. A busy day
    is what the forecast's own spread is for, so the readings count only when the forecast gives
    what they show less than `evidence_p` (its negative binomial over those hours): then
    `demand_ratio` = (gone + prior) / (expected + prior), the forecast weighing as `prior_units`
    units of evidence; else 1. Only shelves with at least one such pair are returned:
    store_id, sku, observed_units, expected_units, p_value, demand_ratio.
    """
    cols = ["store_id", "sku", "observed_units", "expected_units", "p_value", "demand_ratio"]
    shelf = readings[readings["kind"].isin(["shelf_units", "shelf_weight_g"]) & readings["units"].notna()]
    if "clock_skew" in shelf.columns:
        shelf = shelf[~shelf["clock_skew"].astype(bool)]
    shelf = shelf[(shelf["device_ts"] > as_of - pd.Timedelta(hours=hours)) & (shelf["device_ts"] <= as_of)]
    if shelf.empty or moments.empty:
        return pd.DataFrame(columns=cols)
    shelf = shelf.sort_values(["sensor_id", "device_ts", "seq"], kind="stable").drop_duplicates(
        ["sensor_id", "device_ts"], keep="last"
    )
    prev = shelf.groupby("sensor_id")[["units", "device_ts"]].shift()
    pairs = shelf.assign(prev_units=prev["units"], prev_ts=prev["device_ts"]).dropna(subset=["prev_ts"])
    pairs = pairs[pairs["units"] <= pairs["prev_units"] + REFILL_RISE_UNITS].reset_index(drop=True)
    if pairs.empty:
        return pd.DataFrame(columns=cols)
    received = deliveries[deliveries["received_at"].notna()][["store_id", "sku", "received_at"]]
    refilled = pairs[["store_id", "sku", "prev_ts", "device_ts"]].reset_index().merge(received, on=["store_id", "sku"])
    refilled = refilled.loc[
        (refilled["received_at"] > refilled["prev_ts"]) & (refilled["received_at"] <= refilled["device_ts"]), "index"
    ]
    pairs = pairs.drop(index=refilled.unique())
    tz = pairs["store_id"].map(store_tz).fillna("UTC")
    date0, hour0 = local_parts(pairs["prev_ts"], tz)
    span = (
        pd.to_datetime(pairs["device_ts"], utc=True) - pd.to_datetime(pairs["prev_ts"], utc=True)
    ).dt.total_seconds() / 3600
    h0, h1 = hour0.to_numpy(), hour0.to_numpy() + span.to_numpy()
    trading = sum(
        np.clip(np.minimum(h1 - 24 * d, CLOSE_HOUR) - np.maximum(h0 - 24 * d, OPEN_HOUR), 0, None)
        for d in range(int(np.ceil(hours / 24)) + 1)
    )
    # the forecast of the reading's day; a day before the forecast's first (yesterday evening's
    # readings, today's run) takes the series' usual day: the mean of its first week
    days = moments.assign(date=pd.to_datetime(moments["date"])).sort_values("date", kind="stable")
    first_week = days.groupby(["store_id", "sku"]).head(7).groupby(["store_id", "sku"])
    usual = pd.concat([first_week["mean"].mean().rename("usual"), first_week["var"].mean().rename("usual_var")], axis=1)
    daily = (
        pairs[["store_id", "sku"]]
        .assign(date=date0.to_numpy())
        .merge(days[["store_id", "sku", "date", "mean", "var"]], on=["store_id", "sku", "date"], how="left")
    )
    daily = daily.merge(usual, on=["store_id", "sku"], how="left")
    mean, var = (
        daily["mean"].fillna(daily["usual"]).to_numpy(float),
        daily["var"].fillna(daily["usual_var"]).to_numpy(float),
    )
    share = trading / (CLOSE_HOUR - OPEN_HOUR)
    pairs = pairs.assign(
        gone=pairs["prev_units"] - pairs["units"],
        expected=np.nan_to_num(mean) * share,
        trading=trading,
        dispersion=np.nan_to_num(np.maximum(var - mean, 0.0) / np.where(mean > 0, mean, 1.0) ** 2),
    )
    pairs = pairs[pairs["trading"] > 0]
    out = pairs.groupby(["store_id", "sku"], as_index=False).agg(
        observed_units=("gone", "sum"), expected_units=("expected", "sum"), dispersion=("dispersion", "max")
    )
    out["observed_units"] = out["observed_units"].clip(lower=0.0)
    e = out["expected_units"].to_numpy(float)
    out["p_value"] = cumulative_exceedance(
        e, e + out["dispersion"].to_numpy(float) * e**2, out["observed_units"].to_numpy(float)
    )
    strong = (out["p_value"] < evidence_p) & (out["observed_units"] > out["expected_units"])
    out["demand_ratio"] = np.where(
        strong, (out["observed_units"] + prior_units) / (out["expected_units"] + prior_units), 1.0
    )
    return out[cols]


def nowcast_moments(moments: pd.DataFrame, ratios: pd.DataFrame) -> pd.DataFrame:
    """The forecast's days scaled by what the readings show (`demand_ratio`, upwards only: a shelf
    that sells less than forecast may be empty or hidden, which is what the alerts are for)."""
    if ratios.empty:
        return moments
    ratio = moments[["store_id", "sku"]].merge(
        ratios[["store_id", "sku", "demand_ratio"]], on=["store_id", "sku"], how="left"
    )["demand_ratio"]
    r = np.maximum(np.nan_to_num(ratio.to_numpy(float), nan=1.0), 1.0)
    return moments.assign(mean=moments["mean"].to_numpy(float) * r, var=moments["var"].to_numpy(float) * r**2)


def cumulative_exceedance(mean: npt.ArrayLike, var: npt.ArrayLike, units: npt.ArrayLike) -> float | np.ndarray:
    """P(cumulative demand >= units), elementwise: a negative binomial matched to (mean, var), Poisson
    where var <= mean; 1 when nothing is left, 0 when nothing is expected."""
    mean, var, units = np.broadcast_arrays(np.asarray(mean, float), np.asarray(var, float), np.asarray(units, float))
    safe_mean = np.where(mean > 0, mean, 1.0)
    dispersion = np.maximum(var - safe_mean, 0.0) / safe_mean**2
    p = 1.0 - nb_cdf(np.ceil(units) - 1, safe_mean, dispersion)
    out = np.where(units <= 0, 1.0, np.where(mean <= 0, 0.0, p))
    return float(out) if out.ndim == 0 else out


def local_parts(times: pd.Series, tz_of_row: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Store-local date (naive midnight) and hour of UTC timestamps, row by row (NaT stays NaT/NaN)."""
    dates = pd.Series(pd.NaT, index=times.index, dtype="datetime64[ns]")
    hours = pd.Series(np.nan, index=times.index)
    for tz, idx in tz_of_row.groupby(tz_of_row).groups.items():
        local = pd.to_datetime(times.loc[idx], utc=True).dt.tz_convert(tz)
        dates.loc[idx] = local.dt.tz_localize(None).dt.normalize().astype("datetime64[ns]")
        hours.loc[idx] = local.dt.hour + local.dt.minute / 60
    return dates, hours


def predicted_stockouts(
    positions: pd.DataFrame, moments: pd.DataFrame, as_of: pd.Timestamp, store_tz: dict[str, str]
) -> pd.DataFrame:
    """P(the shelf empties before the next delivery refills it), for every store x SKU at once.

    `positions`: store_id, sku, on_shelf, reading_ts, next_delivery_at, next_delivery_units,
    following_delivery_at. `moments`: the forecast's store_id, sku, date, mean, var per day.
    Demand counts from the position's time (the rest of the reading's day if the shelf was read today,
    else from the store's local "now") for every trading day before the delivery's local date
    (deliveries land before trading starts). When the next delivery lands before any trading would
    happen, its units are added and the window runs to the following delivery, so a delivery day is
    never a blind spot. Without a known delivery the whole forecast horizon counts.
    Returns: store_id, sku, probability, expected_empty_at, expected_demand (and its variance,
    demand_var), days_of_cover, window_days.
    """
    cols = [
        "store_id",
        "sku",
        "probability",
        "expected_empty_at",
        "expected_demand",
        "demand_var",
        "days_of_cover",
        "window_days",
    ]
    moments = moments[pd.to_datetime(moments["date"]) >= pd.Timestamp(as_of.date())]
    if moments.empty or positions.empty:
        return pd.DataFrame(columns=cols)
    mean = moments.pivot_table(index=["store_id", "sku"], columns="date", values="mean", aggfunc="sum")
    var = moments.pivot_table(index=["store_id", "sku"], columns="date", values="var", aggfunc="sum").reindex_like(mean)
    pos = (
        positions.merge(mean.index.to_frame(index=False), on=["store_id", "sku"])
        .dropna(subset=["on_shelf"])
        .reset_index(drop=True)
    )
    if pos.empty:
        return pd.DataFrame(columns=cols)
    rows = mean.index.get_indexer(pd.MultiIndex.from_frame(pos[["store_id", "sku"]]))
    grid = pd.to_datetime(mean.columns)
    m, v = np.nan_to_num(mean.to_numpy()[rows]), np.nan_to_num(var.to_numpy()[rows])
    level = (
        moments.groupby(["store_id", "sku"])["level"].max().reindex(mean.index).to_numpy()
        if "level" in moments
        else np.zeros(len(mean))
    )
    level = np.nan_to_num(level[rows])
    v = np.maximum(v - level[:, None] * m**2, m)  # the day-to-day part; the shared part is added to the sum
    n, horizon = len(pos), len(grid)
    tz = pos["store_id"].map(store_tz).fillna("UTC")

    # where demand starts: the reading's local time when the shelf was read today, else local "now"
    now_date, now_hour = local_parts(pd.Series(as_of, index=pos.index), tz)
    read_date, read_hour = local_parts(pos["reading_ts"], tz)
    start_hour = np.where(read_date == now_date, np.fmax(read_hour, now_hour), now_hour)
    first = ((now_date - grid[0]).dt.days).to_numpy()
    day = np.arange(horizon)[None, :]
    weight = np.where(
        day == first[:, None],
        trading_fraction_after(pd.Series(start_hour)).to_numpy()[:, None],
        (day > first[:, None]).astype(float),
    )

    position = pos["on_shelf"].to_numpy(float)
    window_end = _days_until(pos["next_delivery_at"], tz, grid[0], horizon)
    refilled_first = window_end <= first  # the delivery lands before any trading in the window
    position = np.where(refilled_first, position + np.nan_to_num(pos["next_delivery_units"].to_numpy(float)), position)
    window_end = np.where(refilled_first, _days_until(pos["following_delivery_at"], tz, grid[0], horizon), window_end)
    in_window = day < window_end[:, None]
    cum = np.cumsum(m * weight * in_window, axis=1)
    total_mean = cum[:, -1]
    total_var = np.sum(v * weight * in_window, axis=1) + level * total_mean**2
    probability = cumulative_exceedance(total_mean, total_var, position)
    window_days = np.maximum(window_end - first, 0)
    daily = np.divide(total_mean, np.maximum(np.sum(weight * in_window, axis=1), 1e-9))

    # expected empty time: where the cumulative mean reaches the units on the shelf (trading hours)
    reached = (cum >= position[:, None]) & in_window & (weight > 0)
    hit = reached.any(axis=1) & (position > 0)
    i = np.argmax(reached, axis=1)
    before = np.where(i > 0, cum[np.arange(n), np.maximum(i - 1, 0)], 0.0)
    day_mean = cum[np.arange(n), i] - before
    frac = np.where(day_mean > 0, (position - before) / np.where(day_mean > 0, day_mean, 1.0), 0.0)
    open_hour = np.where(i == first, np.fmax(OPEN_HOUR, start_hour), OPEN_HOUR)
    hours = np.where(hit, open_hour + np.clip(frac, 0.0, 1.0) * (CLOSE_HOUR - open_hour), OPEN_HOUR)
    local = pd.Series(grid[0] + pd.to_timedelta(i, unit="D") + pd.to_timedelta(hours, unit="h"), index=pos.index)
    empty_at = pd.Series(pd.NaT, index=pos.index, dtype="datetime64[ns, UTC]")
    for zone, idx in tz.groupby(tz).groups.items():
        empty_at.loc[idx] = (
            local.loc[idx]
            .dt.tz_localize(zone, ambiguous="NaT", nonexistent="shift_forward")
            .dt.tz_convert("UTC")
            .dt.floor("min")
        )
    empty_at = empty_at.where(hit)
    empty_at = empty_at.where(position > 0, as_of)
    return pd.DataFrame(
        {
            "store_id": pos["store_id"],
            "sku": pos["sku"],
            "probability": probability,
            "expected_empty_at": empty_at,
            "expected_demand": total_mean,
            "demand_var": total_var,
            "days_of_cover": np.where(daily > 0, position / np.where(daily > 0, daily, 1.0), np.inf),
            "window_days": window_days,
        }
    )


def _days_until(delivery_at: pd.Series, tz: pd.Series, grid_start: pd.Timestamp, horizon: int) -> np.ndarray:
    """Grid days before a delivery's store-local date (the whole horizon when there is none)."""
    local_date, _ = local_parts(delivery_at, tz)
    days = (local_date - grid_start).dt.days.to_numpy(dtype=float)
    whole_days: np.ndarray = np.clip(np.nan_to_num(days, nan=horizon), 0, horizon).astype(int)
    return whole_days


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
