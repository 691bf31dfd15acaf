"""`shelfwatch bench alerts`: replay simulated worlds day by day and score each detector against the truth.

A world is simulated in memory (its future included), then detection runs once a day at midnight UTC
over the last `days` days of its history, seeing only what a store would know then: sales up to
yesterday, shelf readings up to now, the books at last night's close, deliveries expected and
received, and a forecast the engine fitted on the history before the replay (refitted every
`refit_every` days). Detection computes every probability once; thresholds are applied afterwards,
so one replay gives the whole precision/recall table.

Scoring, per store x SKU, with alerts merged into episodes as the lifecycle does (an alert stays open
while each daily run raises it, and resolves at the first run that does not):
- predicted_stockout: an *event* is the shelf emptying during trading hours (customers found it
  empty). Recall: events with an alert open at the run before them; lead: hours from that alert's
  opening to the event. Precision: episodes during which the shelf really was or became empty before
  the delivery the alert was about (the actual arrival, if late).
- phantom_stockout: an event is a shelf emptied while the books still count stock (injected).
  Precision: episodes on such a shelf after it emptied; recall: phantom shelves alerted before the
  replay ends; delay: hours from the shelf emptying to the alert.
- shelf_empty: raised by the reading itself (the ingest's fast path); here, how long after the shelf
  emptied a reading showed it, and whether the readings that said "empty" were right. The seconds from
  a reading's arrival to the alert are measured live, over MQTT (`shelf_empty_latency`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import UTC
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from alerts.detect import DetectionInputs, stock_risks
from core.domain import (
    ALERT_TYPES,
    CLOSE_HOUR,
    DELIVERY_HOUR,
    OPEN_HOUR,
    PHANTOM_STOCKOUT,
    PREDICTED_STOCKOUT,
    SHELF_EMPTY,
)
from core.settings import Settings
from forecasting.engine import EngineSettings, forecast
from lab.simulator import SURGE_DAYS_BEFORE_NOW, World, WorldSpec, build_world, shelf_units_at

if TYPE_CHECKING:
    from core.domain import RaiseRule

HOUR = pd.Timedelta(hours=1)
FORECASTABLE, SURGE = "forecastable", "surge"  # stock-out events by cause (stockout_events)
HISTORY_DAYS = 60  # sales each run reads: phantom runs use the 28 days before the run


@dataclass
class Replay:
    """Per run and store x SKU: the detectors' raw figures, plus the world's truth to score them."""

    world: World
    spec: WorldSpec
    run_day: np.ndarray  # per run: its day index
    run_at: np.ndarray  # per run: UTC nanoseconds of its "now"
    runs: pd.DataFrame  # run, s, k, p_stockout, p_zero_run, window_days, source
    readings: pd.DataFrame  # s, k, device_ts, units
    midnight: np.ndarray  # (stores, days) UTC nanoseconds of each store-local midnight
    seconds: dict

    @property
    def first_day(self) -> int:
        """Day index of the first run (runs cover days first_day .. n_hist - 1)."""
        return int(self.run_day[0])


def local_midnights(world: World) -> np.ndarray:
    """UTC nanoseconds of every store-local midnight of the world's days, shape (stores, days)."""
    days = pd.DatetimeIndex(world.dates)
    return np.stack([days.tz_localize(tz).tz_convert("UTC").asi8 for tz in world.stores["timezone"]])


def at_hour(midnight: np.ndarray, s, d, hour) -> np.ndarray:
    """UTC nanoseconds of store-local `hour` on day `d` (arrays broadcast)."""
    return midnight[s, d] + (np.asarray(hour, float) * 3.6e12).astype(np.int64)


def world_readings(world: World, first_day: int, last_day: int, seed: int) -> pd.DataFrame:
    """Shelf readings every 6 hours (store-local 00, 06, 12, 18) of every sensor, as the simulator
    writes them: units (weight sensors with their gram noise turned into units)."""
    rng = np.random.default_rng(seed)
    sensors = world.sensors
    s, k = sensors["store_idx"].to_numpy(), sensors["sku_idx"].to_numpy()
    weight = world.products["unit_weight_g"].to_numpy()[k]
    noisy = (sensors["kind"] == "shelf_weight_g").to_numpy()
    midnight = local_midnights(world)
    parts = []
    for d in range(max(first_day, 1), last_day):
        for hour in (0.0, 6.0, 12.0, 18.0):
            units = np.maximum(shelf_units_at(world, d, s, k, hour), 0.0)
            parts.append(
                pd.DataFrame(
                    {
                        "s": s,
                        "k": k,
                        "sensor": np.arange(len(s)),
                        "device_ts": at_hour(midnight, s, d, hour),
                        "units": np.where(
                            noisy, np.maximum(units * weight + rng.normal(0, 2.0, len(s)), 0.0) / weight, units
                        ),
                        "true_units": units,
                    }
                )
            )
    return pd.concat(parts, ignore_index=True)


def stockout_flags(world: World, last_day: int) -> np.ndarray:
    """Days (up to `last_day`) whose shelf emptied before closing: their sales are censored demand."""
    hours = world.empty_at_hour[:last_day]
    return ~np.isnan(hours) & (hours < CLOSE_HOUR)


def long_sales(world: World, first: int, last: int, with_stockout: bool = False) -> pd.DataFrame:
    """Daily sales of days [first, last) as the long frame the forecaster and detectors read."""
    stores, skus = world.stores["store_id"].to_numpy(), world.products["sku"].to_numpy()
    d, s, k = np.meshgrid(np.arange(first, last), np.arange(len(stores)), np.arange(len(skus)), indexing="ij")
    frame = pd.DataFrame(
        {
            "store_id": stores[s.ravel()],
            "sku": skus[k.ravel()],
            "date": world.dates[d.ravel()],
            "units": world.sold[first:last].ravel(),
        }
    )
    if with_stockout:
        frame["stockout"] = stockout_flags(world, last)[first:last].ravel().astype(float)
    return frame


def promotions(world: World) -> pd.DataFrame:
    first = world.dates[0]
    skus = world.products["sku"].to_numpy()
    return pd.DataFrame(
        [("", skus[k], first + pd.Timedelta(days=d), first + pd.Timedelta(days=d + 6)) for k, d in world.promotions],
        columns=["store_id", "sku", "start_date", "end_date"],
    )


def fit_forecast(world: World, day: int, engine_settings: EngineSettings) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The forecast a run at 00:00 UTC of `day` would have: fitted on the sales before it."""
    result = forecast(long_sales(world, 0, day, with_stockout=True), engine_settings, promotions(world))
    return result.forecast, result.models[["store_id", "sku", "dispersion", "level_dispersion"]]


def deliveries_as_of(world: World, day: int, as_of_ns: int, midnight: np.ndarray) -> pd.DataFrame:
    """Deliveries as the records show them at a run: expected ones of the coming week (the schedule),
    received ones with their receipt time, late ones still open."""
    dl = world.deliveries
    dl = dl[(dl["expected_day"] >= day - 14) & (dl["expected_day"] <= day + 8)]
    s, k = dl["store_idx"].to_numpy(), dl["sku_idx"].to_numpy()
    expected = at_hour(midnight, s, dl["expected_day"].to_numpy(), DELIVERY_HOUR)
    arrival = at_hour(midnight, s, np.minimum(dl["arrival_day"].to_numpy(), midnight.shape[1] - 1), DELIVERY_HOUR)
    return pd.DataFrame(
        {
            "store_id": world.stores["store_id"].to_numpy()[s],
            "sku": world.products["sku"].to_numpy()[k],
            "expected_at": pd.to_datetime(expected, utc=True),
            "expected_units": dl["units"].to_numpy(float),
            "received_at": pd.to_datetime(arrival, utc=True).where(arrival <= as_of_ns),
            "received_units": dl["units"].to_numpy(float),
        }
    )


def inputs_for_run(
    world: World,
    day: int,
    as_of: pd.Timestamp,
    fc: pd.DataFrame,
    dispersion: pd.DataFrame,
    readings: pd.DataFrame,
    midnight: np.ndarray,
) -> DetectionInputs:
    """What a run at `as_of` (on `day`) can see: sales up to yesterday, the books at last night's
    close, readings up to now, deliveries as recorded now."""
    stores, skus = world.stores["store_id"].to_numpy(), world.products["sku"].to_numpy()
    seen = readings[(readings["device_ts"] <= as_of.value) & (readings["device_ts"] > as_of.value - 2 * 86400 * 10**9)]
    s_idx, k_idx = np.meshgrid(np.arange(len(stores)), np.arange(len(skus)), indexing="ij")
    return DetectionInputs(
        as_of=as_of,
        stores=world.stores[["store_id", "timezone"]],
        products=world.products[["sku", "unit_price"]],
        readings=pd.DataFrame(
            {
                "store_id": stores[seen["s"]],
                "sku": skus[seen["k"]],
                "sensor_id": seen["sensor"].to_numpy(),
                "kind": "shelf_units",
                "units": seen["units"].to_numpy(),
                "seq": 0,
                "device_ts": pd.to_datetime(seen["device_ts"].to_numpy(), utc=True),
            }
        ),
        sales=long_sales(world, max(0, day - HISTORY_DAYS), day),
        records=pd.DataFrame(
            {
                "store_id": stores[s_idx.ravel()],
                "sku": skus[k_idx.ravel()],
                "book_units": world.book_close[day - 1].ravel(),
                "as_of": pd.Timestamp(world.dates[day]).tz_localize("UTC"),
            }
        ),  # counted after last night's close
        deliveries=deliveries_as_of(world, day, as_of.value, midnight),
        forecast=fc,
        lines=pd.DataFrame(columns=["store_id", "sku", "member_id", "date"]),
        sensors=pd.DataFrame(columns=["sensor_id", "store_id", "sku"]),
        dispersion=dispersion,
    )


def replay_world(
    spec: WorldSpec,
    days: int = 14,
    runs_per_day: int = 4,
    refit_every: int = 7,
    engine_settings: EngineSettings | None = None,
    log=lambda message: None,
    oracle: bool = False,
    world: World | None = None,
) -> Replay:
    """Run detection `runs_per_day` times a day (from 00:00 UTC, evenly spaced) over the last `days`
    days of a simulated world's history. `oracle` feeds the world's true demand distribution instead
    of the forecaster's: the bound any forecast-driven detector can reach."""
    seconds = {}
    t0 = time.perf_counter()
    world = world if world is not None else build_world(spec)
    seconds["simulate"] = time.perf_counter() - t0
    n, first = world.n_hist, world.n_hist - days
    if spec.lookahead_days < 8:
        raise ValueError("the replay needs the world's next 8 days to score the last run")
    midnight = local_midnights(world)
    readings = world_readings(world, first - 2, n + spec.lookahead_days, spec.seed + 1)
    engine_settings = engine_settings or EngineSettings()
    store_index = {sid: i for i, sid in enumerate(world.stores["store_id"])}
    sku_index = {sku: i for i, sku in enumerate(world.products["sku"])}
    settings = Settings()
    runs, fc, dispersion = [], None, None
    seconds["forecast"] = seconds["detect"] = 0.0
    run_day = np.repeat(np.arange(first, n), runs_per_day)
    run_at = np.array(
        [
            pd.Timestamp(world.dates[d]).tz_localize("UTC").value + int(i * 24 / runs_per_day * 3.6e12)
            for d in range(first, n)
            for i in range(runs_per_day)
        ]
    )
    for run, (day, at) in enumerate(zip(run_day, run_at, strict=True)):
        if run % (refit_every * runs_per_day) == 0:
            t0 = time.perf_counter()
            fc, dispersion = oracle_forecast(world, day) if oracle else fit_forecast(world, day, engine_settings)
            seconds["forecast"] += time.perf_counter() - t0
            log(f"seed {spec.seed}: forecast fitted on {day} days in {time.perf_counter() - t0:.0f} s")
        t0 = time.perf_counter()
        inp = inputs_for_run(world, int(day), pd.Timestamp(at, tz="UTC"), fc, dispersion, readings, midnight)
        risks = stock_risks(inp, settings)
        seconds["detect"] += time.perf_counter() - t0
        runs.append(
            pd.DataFrame(
                {
                    "run": run,
                    "s": risks["store_id"].map(store_index).to_numpy(),
                    "k": risks["sku"].map(sku_index).to_numpy(),
                    "p_stockout": risks["p_stockout"].to_numpy(float),
                    "p_zero_run": risks["p_zero_run"].to_numpy(float),
                    "window_days": risks["window_days"].fillna(0).to_numpy(int),
                    "source": risks["source"].to_numpy(),
                }
            )
        )
    log(
        f"seed {spec.seed}: {len(run_at)} runs ({runs_per_day} a day) over"
        f" {len(world.stores) * len(world.products):,} shelves, detection {seconds['detect']:.0f} s"
    )
    return Replay(world, spec, run_day, run_at, pd.concat(runs, ignore_index=True), readings, midnight, seconds)


# ------------------------------------------------------------------------------------------ scoring


@dataclass
class TypeScore:
    """One detector at one threshold on one or more worlds: counts, so worlds pool by adding."""

    alert_type: str
    threshold: float
    alerts: int  # episodes
    true_alerts: int
    events: int
    caught: int
    hours: np.ndarray  # predicted: lead before the shelf emptied; others: delay after it emptied

    @property
    def precision(self) -> float:
        return self.true_alerts / self.alerts if self.alerts else float("nan")

    @property
    def recall(self) -> float:
        return self.caught / self.events if self.events else float("nan")

    @property
    def median_hours(self) -> float:
        return float(np.median(self.hours)) if len(self.hours) else float("nan")

    def __add__(self, other: TypeScore) -> TypeScore:
        return TypeScore(
            self.alert_type,
            self.threshold,
            self.alerts + other.alerts,
            self.true_alerts + other.true_alerts,
            self.events + other.events,
            self.caught + other.caught,
            np.concatenate([self.hours, other.hours]),
        )


def as_cube(replay: Replay, column: str) -> np.ndarray:
    """A run figure as an array (runs, stores, SKUs); NaN where the detector had nothing to say."""
    w = replay.world
    cube = np.full((replay.runs["run"].max() + 1, len(w.stores), len(w.products)), np.nan)
    cube[replay.runs["run"], replay.runs["s"], replay.runs["k"]] = replay.runs[column].to_numpy(float)
    return cube


def rule_cube(replay: Replay, rule: RaiseRule, settings: Settings) -> np.ndarray:
    """A raise rule (core.domain.ALERT_TYPES) over every run's risks, as a boolean array (runs, stores,
    SKUs); False where the detector had nothing to say."""
    w = replay.world
    cube = np.zeros((replay.runs["run"].max() + 1, len(w.stores), len(w.products)), bool)
    cube[replay.runs["run"], replay.runs["s"], replay.runs["k"]] = rule(replay.runs, settings).to_numpy(bool)
    return cube


def empty_starts(replay: Replay) -> np.ndarray:
    """UTC nanoseconds at which each shelf was (or became) empty on each day, NaN on days it was not."""
    hours = replay.world.empty_at_hour
    return np.where(np.isnan(hours), np.nan, replay.midnight.T[:, :, None] + hours * 3.6e12)


def predicted_truth(replay: Replay) -> np.ndarray:
    """Per run, store and SKU: was the shelf empty at the run, or did it empty before the delivery the
    run's probability was about arrived (the actual arrival when that delivery was late)?"""
    w, runs = replay.world, replay.run_at
    window = as_cube(replay, "window_days")
    starts = empty_starts(replay)
    arrivals = np.full((len(w.dates) + 1, len(w.stores), len(w.products)), len(w.dates), dtype=int)
    dl = w.deliveries
    arrivals[dl["expected_day"].to_numpy(), dl["store_idx"].to_numpy(), dl["sku_idx"].to_numpy()] = np.minimum(
        dl["arrival_day"].to_numpy(), len(w.dates) - 1
    )
    truth = np.zeros(window.shape, dtype=bool)
    day_index = np.arange(len(w.dates))[:, None, None]
    for r, as_of in enumerate(runs):
        day = int(replay.run_day[r])
        end_day = day + np.nan_to_num(window[r]).astype(int)
        # the refill: the first delivery expected on or after the window's end, at its actual arrival
        refill_day = np.full(end_day.shape, len(w.dates) - 1)
        for ahead in range(8, -1, -1):
            expected = np.minimum(day + ahead, len(w.dates) - 1)
            has = (arrivals[expected] < len(w.dates)) & (day + ahead >= end_day)
            refill_day = np.where(has, arrivals[expected], refill_day)
        s_idx = np.arange(len(w.stores))[:, None]
        refill_ns = replay.midnight[s_idx, refill_day] + int(DELIVERY_HOUR * 3.6e12)
        until = np.maximum(refill_ns, as_of + 86400 * 10**9)
        empty_later = np.any((starts > as_of) & (starts < until[None]) & (day_index >= day), axis=0)
        before_delivery = as_of < replay.midnight[:, day] + int(DELIVERY_HOUR * 3.6e12)
        empty_now = (before_delivery[:, None] & (w.shelf_close[day - 1] <= 0)) | (starts[day] <= as_of)
        truth[r] = empty_later | empty_now
    return truth


def episodes(opens: np.ndarray, keeps: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Alert episodes as the lifecycle makes them: an alert opens at a run where `opens` holds and stays
    open while `keeps` holds (hysteresis; `keeps` defaults to `opens`). Returns, per run, the run the
    active episode opened at (-1 when none is active), and a boolean marking each episode's last run."""
    keeps = opens if keeps is None else keeps | opens
    opened = np.full(opens.shape, -1)
    for r in range(opens.shape[0]):
        previous = opened[r - 1] if r > 0 else np.full(opens.shape[1:], -1)
        opened[r] = np.where(
            previous >= 0, np.where(keeps[r], previous, np.where(opens[r], r, -1)), np.where(opens[r], r, -1)
        )
    active = opened >= 0
    ends = np.concatenate([opened[1:] != opened[:-1], np.ones((1,) + opens.shape[1:], bool)])
    return opened, active & ends


def episode_precision(opened: np.ndarray, last: np.ndarray, truth: np.ndarray) -> tuple[int, int]:
    """Episodes, and how many of them saw the truth hold at least once."""
    hit = np.zeros(opened.shape[1:], dtype=bool)
    true_episodes = alerts = 0
    for r in range(opened.shape[0]):
        hit = np.where(opened[r] == r, truth[r], hit | truth[r])
        ends = last[r]
        alerts += int(ends.sum())
        true_episodes += int((ends & hit).sum())
    return alerts, true_episodes


def stockout_events(replay: Replay) -> pd.DataFrame:
    """The shelf emptying during trading hours (customers turned away), within the replay's days;
    phantom shelves apart (theirs is a different event). `cause`: "surge" while an unannounced local
    demand surge runs on the shelf (no forecast can see it coming; only the shelf's readings can show
    it), else "forecastable" (demand as planned: promotions, prices, seasons; late trucks included)."""
    w = replay.world
    days = slice(replay.first_day, w.n_hist)
    hours = w.empty_at_hour[days]
    onset = ~np.isnan(hours) & (hours < CLOSE_HOUR) & (w.shelf_open[days] > 0) & ~w.incidents.phantom[None]
    d, s, k = np.nonzero(onset)
    d = d + replay.first_day
    t = at_hour(replay.midnight, s, d, w.empty_at_hour[d, s, k])
    surge = w.incidents.spike[s, k] & (d >= w.n_hist - SURGE_DAYS_BEFORE_NOW)
    return pd.DataFrame({"day": d, "s": s, "k": k, "at": t, "cause": np.where(surge, SURGE, FORECASTABLE)})


def score_predicted(
    replay: Replay, threshold: float, truth: np.ndarray, events: pd.DataFrame, keep_ratio: float = 0.5
) -> TypeScore:
    rule = ALERT_TYPES[PREDICTED_STOCKOUT]
    at = replace(Settings(), alert_probability_threshold=threshold, alert_keep_ratio=keep_ratio)
    opened, last = episodes(rule_cube(replay, rule.opens or rule.raises, at), rule_cube(replay, rule.raises, at))
    alerts, true_alerts = episode_precision(opened, last, truth)
    raised = opened >= 0
    runs = replay.run_at
    r = np.searchsorted(runs, events["at"].to_numpy(), side="left") - 1  # the last run before the event
    events = events[r >= 0]
    r = r[r >= 0]
    s, k = events["s"].to_numpy(), events["k"].to_numpy()
    caught = raised[r, s, k]
    lead = (events["at"].to_numpy() - runs[opened[r, s, k]]) / 3.6e12
    return TypeScore(PREDICTED_STOCKOUT, threshold, alerts, true_alerts, len(events), int(caught.sum()), lead[caught])


def score_phantom(replay: Replay, threshold: float) -> TypeScore:
    w = replay.world
    at = replace(Settings(), phantom_probability_threshold=threshold)
    raised = rule_cube(replay, ALERT_TYPES[PHANTOM_STOCKOUT].raises, at)
    runs = replay.run_at
    s_idx = np.arange(len(w.stores))[:, None]
    onset = np.where(
        w.incidents.phantom,
        replay.midnight[s_idx, np.clip(w.incidents.phantom_start, 0, len(w.dates) - 1)] + int(OPEN_HOUR * 3.6e12),
        np.iinfo(np.int64).max,
    )
    truth = w.incidents.phantom[None] & (runs[:, None, None] >= onset[None])
    alerts, true_alerts = episode_precision(*episodes(raised), truth)
    caught = raised & truth
    first_alert = np.where(caught.any(axis=0), runs[np.argmax(caught, axis=0)], 0)
    events = w.incidents.phantom & (onset < runs[-1] + 86400 * 10**9)
    found = events & caught.any(axis=0)
    delay = (first_alert[found] - onset[found]) / 3.6e12
    return TypeScore(PHANTOM_STOCKOUT, threshold, alerts, true_alerts, int(events.sum()), int(found.sum()), delay)


def score_shelf_empty(replay: Replay, empty_units: float, events: pd.DataFrame) -> TypeScore:
    """Readings that said "empty" vs the true shelf, and how soon after emptying a reading showed it."""
    w, rd = replay.world, replay.readings
    in_replay = (rd["device_ts"] >= replay.run_at[0]) & (rd["device_ts"] < replay.run_at[-1] + 86400 * 10**9)
    said_empty = rd[in_replay & (rd["units"] <= empty_units)]
    right = int((said_empty["true_units"] <= empty_units).sum())
    sensed = events[
        w.sensors.set_index(["store_idx", "sku_idx"]).index.get_indexer(pd.MultiIndex.from_frame(events[["s", "k"]]))
        >= 0
    ]
    empty_readings = rd[rd["units"] <= empty_units].sort_values("device_ts")
    first = pd.merge_asof(
        sensed.sort_values("at").rename(columns={"at": "device_ts"}).assign(onset=lambda f: f["device_ts"]),
        empty_readings[["s", "k", "device_ts"]].assign(seen=lambda f: f["device_ts"]),
        on="device_ts",
        by=["s", "k"],
        direction="forward",
    )
    refill_limit = first["onset"] + 36 * 3.6e12  # a reading more than a day and a half later belongs to another spell
    seen = first["seen"].notna() & (first["seen"] <= refill_limit)
    delay = (first.loc[seen, "seen"] - first.loc[seen, "onset"]) / 3.6e12
    return TypeScore(SHELF_EMPTY, empty_units, len(said_empty), right, len(sensed), int(seen.sum()), delay.to_numpy())


def perfect_at_precision(perfect: list[TypeScore], precision: float) -> TypeScore | None:
    """The perfect forecaster's row to compare with at `precision`: its best recall among thresholds
    at least that precise (its most precise row when none is)."""
    rows = [p for p in perfect if p.precision == p.precision]
    if not rows:
        return None
    precise = [p for p in rows if p.precision >= precision]
    return max(precise, key=lambda p: p.recall) if precise else max(rows, key=lambda p: p.precision)


def score_replay(
    replay: Replay, stockout_thresholds, phantom_thresholds, empty_units: float = 0.5, keep_ratio: float = 0.5
) -> list[TypeScore]:
    truth = predicted_truth(replay)
    events = stockout_events(replay)
    scores = [score_predicted(replay, t, truth, events, keep_ratio) for t in stockout_thresholds]
    for cause in (FORECASTABLE, SURGE):  # the same alerts (precision), recall and lead on one cause's events
        for t in stockout_thresholds:
            score = score_predicted(replay, t, truth, events[events["cause"] == cause], keep_ratio)
            scores.append(replace(score, alert_type=f"{PREDICTED_STOCKOUT}:{cause}"))
    scores += [score_phantom(replay, t) for t in phantom_thresholds]
    scores.append(score_shelf_empty(replay, empty_units, events))
    return scores


def oracle_forecast(world: World, day: int, horizon: int = 28) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The simulator's true demand distribution from `day` on, as far as it can be known ahead: what a
    perfect forecaster would say. It knows levels, seasons, promotions and prices exactly, but not the
    unannounced surges (`planned_demand`), as it knows no late truck or phantom stock either: those
    reach it, as they reach Shelfwatch, only through the shelf's readings and records. It bounds what
    any detector fed by a forecast can reach on this world."""
    stores, skus = world.stores["store_id"].to_numpy(), world.products["sku"].to_numpy()
    last = min(day + horizon, len(world.dates))
    known = world.planned_demand if world.planned_demand is not None else world.expected_demand
    mean = known[day:last].astype(float)
    d, s, k = np.meshgrid(np.arange(day, last), np.arange(len(stores)), np.arange(len(skus)), indexing="ij")
    fc = pd.DataFrame(
        {"store_id": stores[s.ravel()], "sku": skus[k.ravel()], "date": world.dates[d.ravel()], "mean": mean.ravel()}
    )
    fc["p10"] = fc["p90"] = fc["mean"]
    # anonymous demand is NB(rate, shape); members' visits add Poisson-like noise: dispersion of the sum
    shape = world.products["dispersion"].to_numpy()[None, :]
    s2, k2 = np.meshgrid(np.arange(len(stores)), np.arange(len(skus)), indexing="ij")
    anonymous = mean[0] - member_rates(world)
    disp = np.where(mean[0] > 0, (np.maximum(anonymous, 0) / np.maximum(mean[0], 1e-9)) ** 2 / shape, 0.0)
    return fc, pd.DataFrame({"store_id": stores[s2.ravel()], "sku": skus[k2.ravel()], "dispersion": disp.ravel()})


def member_rates(world: World) -> np.ndarray:
    """Expected daily purchases by favourite members per store x SKU (the simulator's Bernoulli visits)."""
    fav = world.favourites
    s = world.stores.set_index("store_id").index.get_indexer(fav["store_id"])
    out = np.zeros((len(world.stores), len(world.products)))
    np.add.at(out, (s, fav["sku_idx"].to_numpy()), 1.0 / fav["interval_days"].to_numpy())
    return out


# ------------------------------------------------------------------------------- live: shelf_empty


def shelf_empty_latency(db_url: str, mqtt_url: str, readings: int = 40, gap_seconds: float = 0.25) -> np.ndarray:
    """Seconds from publishing an empty-shelf reading to its shelf_empty alert being committed and
    visible to readers, with the ingest service running (real broker, real database): one reading per
    SKU, `gap_seconds` apart. The scratch store's rows are removed afterwards."""
    import threading
    import uuid
    from datetime import datetime

    from sqlalchemy import select

    from alerts.realtime import shelf_empty_on_stored
    from core.db import insert_ignore
    from iot_ingest.consumer import drain, open_session
    from lab.publisher import publish_readings
    from sql import schema
    from sql.migrate import migrate

    engine = migrate(db_url)
    store, skus = "LAT1", [f"LAT-{i:04d}" for i in range(readings)]
    with engine.begin() as conn:
        insert_ignore(
            conn,
            schema.stores,
            [{"store_id": store, "name": "latency", "timezone": "UTC", "manager_email": "m@lat.example"}],
        )
        insert_ignore(
            conn,
            schema.products,
            [
                {
                    "sku": s,
                    "name": s,
                    "category": "bench",
                    "unit_price": 1.0,
                    "unit_weight_g": 100.0,
                    "shelf_capacity": 10,
                }
                for s in skus
            ],
        )
    prefix, client_id = f"shelfwatch-bench/{uuid.uuid4().hex[:8]}/v1", f"bench-latency-{uuid.uuid4().hex[:8]}"
    open_session(mqtt_url, prefix, client_id)
    stop, ready = threading.Event(), threading.Event()
    service = threading.Thread(
        target=lambda: drain(
            engine,
            mqtt_url,
            prefix,
            client_id,
            until_idle=float("inf"),
            stop=stop,
            ready=ready,
            on_stored=shelf_empty_on_stored(Settings(database_url=db_url)),
        )
    )
    service.start()
    seconds = []
    a = schema.alerts
    try:
        ready.wait(15)
        for i, sku in enumerate(skus):
            sent = time.perf_counter()
            now = datetime.now(UTC)
            publish_readings(
                mqtt_url,
                [
                    {
                        "sensor_id": f"{store}-SH-{sku}",
                        "store_id": store,
                        "sku": sku,
                        "kind": "shelf_units",
                        "value": 0,
                        "ts": now.isoformat(),
                        "seq": i + 1,
                        "battery": 0.9,
                    }
                ],
                prefix,
            )
            visible = None
            while visible is None and time.perf_counter() - sent < 120:
                with engine.connect() as conn:  # committed and visible to any reader (the web page, notify send)
                    if conn.execute(
                        select(a.c.alert_id).where(a.c.store_id == store, a.c.sku == sku, a.c.alert_type == SHELF_EMPTY)
                    ).first():
                        visible = time.perf_counter() - sent
                time.sleep(0.002)
            seconds.append(np.inf if visible is None else visible)
            time.sleep(gap_seconds)
    finally:
        stop.set()
        service.join(timeout=30)
    with engine.begin() as conn:  # leave the database as it was
        ids = select(schema.alerts.c.alert_id).where(schema.alerts.c.store_id == store)
        for table in (schema.outbox, schema.alert_events):
            conn.execute(table.delete().where(table.c.alert_id.in_(ids)))
        conn.execute(schema.alerts.delete().where(schema.alerts.c.store_id == store))
        conn.execute(schema.sensor_readings.delete().where(schema.sensor_readings.c.store_id == store))
    return np.array(seconds)


# ------------------------------------------------------------------------------------------ the bench


def parse_worlds(text: str, history_days: int = 400, lookahead_days: int = 9) -> list[WorldSpec]:
    """ "50x500:11,20x500:12" -> world specs (stores x SKUs : seed)."""
    specs = []
    for item in text.split(","):
        size, _, seed = item.strip().partition(":")
        stores, _, skus = size.partition("x")
        try:
            specs.append(
                WorldSpec(
                    stores=int(stores),
                    skus=int(skus),
                    seed=int(seed or 1),
                    days=history_days,
                    members=max(500, 100 * int(stores)),
                    lookahead_days=lookahead_days,
                )
            )
        except ValueError:
            raise ValueError(f"world {item!r}: expected STORESxSKUS:SEED, e.g. 50x500:11") from None
    return specs


@dataclass
class AlertBench:
    per_world: list[
        tuple[WorldSpec, list[TypeScore], list[TypeScore], dict]
    ]  # spec, Shelfwatch, perfect forecaster, seconds

    def pooled(self, which: int) -> list[TypeScore]:
        """Scores over all worlds (counts added), for Shelfwatch (1) or the perfect forecaster (2)."""
        rows = [w[which] for w in self.per_world]
        return [sum(group[1:], group[0]) for group in zip(*rows, strict=True)]


def run_alert_bench(
    specs: list[WorldSpec],
    days: int,
    runs_per_day: int,
    refit_every: int,
    stockout_thresholds,
    phantom_thresholds,
    engine_settings: EngineSettings,
    keep_ratio: float,
    empty_units: float,
    log=lambda message: None,
) -> AlertBench:
    per_world = []
    for spec in specs:
        t0 = time.perf_counter()
        world = build_world(spec)
        log(f"world {spec.stores}x{spec.skus} seed {spec.seed}: simulated in {time.perf_counter() - t0:.0f} s")
        ours = replay_world(spec, days, runs_per_day, refit_every, engine_settings, log, world=world)
        perfect = replay_world(spec, days, runs_per_day, 1, engine_settings, log, oracle=True, world=world)
        per_world.append(
            (
                spec,
                score_replay(ours, stockout_thresholds, phantom_thresholds, empty_units, keep_ratio),
                score_replay(perfect, stockout_thresholds, phantom_thresholds, empty_units, keep_ratio),
                ours.seconds,
            )
        )
    return AlertBench(per_world)
