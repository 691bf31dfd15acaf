"""`shelfwatch bench actions`: do the recommended actions, substitutes and the at-risk list work?

One simulated world with members who switch to substitutes and leave after repeated empty
favourites (WorldSpec.member_behaviour), stores in two chains with coordinates. Scored against the
world's truth, each beside a baseline measured in the same run:

- **Actions.** Detection runs once a day (00:00 UTC, before trading) over the last `replay_days` days,
  seeing only what a store would know (lab.bench.alerts.inputs_for_run). Each alert's first action
  (refill / transfer / emergency order) is played against the world's true demand until the
  shelf's next actual arrival: it *prevents* the stock-out when that demand fits in the shelf at the
  start of trading plus the units the action brings (taken as arriving that morning). Reported: the
  share of alerts on shelves that did run empty that the action would have saved, units moved
  against units needed, units sent to shelves that did not run empty, and donors that a transfer
  left short. Baseline: the same plan covering only the expected demand (service level 0.5).
- **Members at risk.** At twelve points, every 10 days from 140 to 30 days before the end of history, the list is
  made from the purchase lines and stock-out days before then; a member *leaves* when the world's
  defection falls in the next 30 days. Precision at 50 and 100 against the count baseline
  (favourite outage-days in 30 days) and random order (the base rate, exactly), and how many days
  before they leave (and before their last visit) the list named them.
- **Substitutes.** For every favourite member of the last replay day's alerts, the world's
  acceptance probability (lab.simulator.substitute_acceptance) of the first and of the three
  suggested substitutes, against a random in-stock product of the same category (its mean
  acceptance, exactly).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from alerts.actions import NOTHING, ORDER, REFILL, TRANSFER, recommend_actions
from alerts.at_risk import count_baseline_score, members_at_risk
from alerts.detect import stock_risks
from alerts.members import favourite_members
from alerts.substitutes import suggest_substitutes
from core.domain import CLOSE_HOUR, OPEN_HOUR, STOCK_RISKS, ranked
from core.settings import Settings
from forecasting.engine import EngineSettings
from lab.bench.alerts import fit_forecast, inputs_for_run, local_midnights, world_readings
from lab.simulator import World, WorldSpec, build_world, shelf_capacity, substitute_acceptance

RISK_HORIZON_DAYS = 30  # a member flagged at t counts as found when they leave within this many days
RISK_POINTS_DAYS = tuple(range(140, 29, -10))  # the at-risk list is made this many days before the end of history
TOP_N = (50, 100)
SHELF_COVER_DAYS = 3.0  # tighter shelves than the default world: enough stock-outs (and members leaving) to score
LEVELS = {"shelfwatch (service level)": None, "baseline: cover the expected demand (0.5)": 0.5}


@dataclass
class ActionScore:
    """One plan (service level) over the replay: counts that add up across days."""

    name: str
    alerts: int = 0
    by_kind: dict = field(default_factory=dict)
    stockouts: int = 0  # alerts whose shelf did run empty before its next arrival
    prevented: int = 0
    acted_on_stockouts: int = 0  # of those, alerts whose plan moved or ordered any unit
    units_needed: float = 0.0  # on shelves that ran empty: demand beyond the shelf
    units_moved_there: float = 0.0
    units_to_fine_shelves: float = 0.0  # moved or ordered for shelves that did not run empty
    transfers: int = 0
    donors_left_short: int = 0  # transfers after which the donor's own shelf ran empty where it would not have

    @property
    def prevented_share(self) -> float:
        return self.prevented / self.stockouts if self.stockouts else float("nan")


def world_lines(world: World) -> pd.DataFrame:
    """The world's member purchase lines as Shelfwatch reads them: store_id, sku, date, member_id, units."""
    lines = world.purchase_lines
    return pd.DataFrame(
        {
            "store_id": world.stores["store_id"].to_numpy()[lines["store_idx"].to_numpy()],
            "sku": world.products["sku"].to_numpy()[lines["sku_idx"].to_numpy()],
            "date": world.dates[lines["day"].to_numpy()],
            "member_id": world.favourites["member_id"].to_numpy()[lines["member_idx"].to_numpy()],
            "units": 1.0,
        }
    )


def world_outages(world: World, last_day: int) -> pd.DataFrame:
    """Stock-out days before `last_day` as the stockout_days file gives them: the share of trading
    hours the shelf stood empty."""
    d, s, k = np.nonzero(~np.isnan(world.empty_at_hour[:last_day]))
    hour = world.empty_at_hour[d, s, k]
    return pd.DataFrame(
        {
            "store_id": world.stores["store_id"].to_numpy()[s],
            "sku": world.products["sku"].to_numpy()[k],
            "date": world.dates[d],
            "empty_share": np.clip((CLOSE_HOUR - hour) / (CLOSE_HOUR - OPEN_HOUR), 0.0, 1.0),
        }
    )


def next_arrivals(world: World) -> np.ndarray:
    """(days, stores, skus): the first day after each day on which a delivery actually arrives (the
    world's end when none does)."""
    n_days, n_stores, n_skus = world.sold.shape
    arrive = np.zeros((n_days + 1, n_stores, n_skus), dtype=bool)
    dl = world.deliveries
    ok = dl["arrival_day"].to_numpy() < n_days
    arrive[dl["arrival_day"].to_numpy()[ok], dl["store_idx"].to_numpy()[ok], dl["sku_idx"].to_numpy()[ok]] = True
    arrive[n_days] = True
    nxt = np.full((n_days + 1, n_stores, n_skus), n_days)
    for d in range(n_days - 1, -1, -1):
        nxt[d] = np.where(arrive[d + 1], d + 1, nxt[d + 1])
    return nxt[:n_days]


def window_truth(
    world: World, day: int, s: np.ndarray, k: np.ndarray, nxt: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For shelves (s, k) from the start of trading on `day` until their next arrival: the units on
    the shelf then, the true demand over the window, and whether the shelf ran empty in it."""
    end = nxt[day, s, k]
    demand = np.zeros(len(s))
    emptied = np.zeros(len(s), dtype=bool)
    for j in range(day, int(end.max(initial=day)) if len(s) else day):
        inside = j < end
        demand += np.where(inside, world.demand[j, s, k], 0.0)
        emptied |= inside & ~np.isnan(world.empty_at_hour[j, s, k])
    return world.shelf_open[day, s, k], demand, emptied


def score_plan(
    score: ActionScore, plan: pd.DataFrame, world: World, day: int, nxt: np.ndarray, store_index: dict, sku_index: dict
) -> None:
    """Add one day's newly opened alerts' plans to `score`."""
    if plan.empty:
        return
    s = plan["store_id"].map(store_index).to_numpy()
    k = plan["sku"].map(sku_index).to_numpy()
    shelf, demand, emptied = window_truth(world, day, s, k, nxt)
    units = (plan["refill_units"] + plan["transfer_units"] + plan["order_units"]).to_numpy(float)
    score.alerts += len(plan)
    for kind, n in plan["action"].value_counts().items():
        score.by_kind[kind] = score.by_kind.get(kind, 0) + int(n)
    score.stockouts += int(emptied.sum())
    score.prevented += int((emptied & (demand <= shelf + units) & (units > 0)).sum())
    score.acted_on_stockouts += int((emptied & (units > 0)).sum())
    score.units_needed += float(np.maximum(demand - shelf, 0.0)[emptied].sum())
    score.units_moved_there += float(units[emptied].sum())
    score.units_to_fine_shelves += float(units[~emptied].sum())
    for row in plan[plan["transfer_units"] > 0].itertuples():
        for tr in row.transfers:
            ds, dk = np.array([store_index[tr["store_id"]]]), np.array([sku_index[row.sku]])
            d_shelf, d_demand, d_emptied = window_truth(world, day, ds, dk, nxt)
            score.transfers += 1
            score.donors_left_short += int(d_demand[0] > d_shelf[0] - tr["units"] and not d_emptied[0])


def opens_alert(risks: pd.DataFrame, settings: Settings, empty_now: bool = False) -> pd.Series:
    """The shelves on which detection would open an alert (core.domain.ALERT_TYPES: each stock-risk
    type's `opens` rule, else its raise rule); with `empty_now`, only by the types that say the shelf
    is empty now."""
    raised = pd.Series(False, index=risks.index)
    for t in ranked(STOCK_RISKS):
        if t.empty_now or not empty_now:
            raised |= (t.opens or t.raises)(risks, settings)
    return raised


def replay_actions(
    world: World,
    spec: WorldSpec,
    replay_days: int,
    refit_every: int,
    service_level: float,
    threshold: float,
    engine_settings: EngineSettings,
    log=lambda m: None,
) -> tuple[list[ActionScore], dict]:
    """Daily detection over the last `replay_days` days; each newly alerted shelf's plan at each level, scored.
    Also returns the last day's risks and alerted shelves (for the substitutes)."""
    n, first = world.n_hist, world.n_hist - replay_days
    midnight = local_midnights(world)
    readings = world_readings(world, first - 2, n + 1, spec.seed + 1)
    nxt = next_arrivals(world)
    settings = Settings()
    rules = replace(settings, alert_probability_threshold=threshold)  # the raise rules at the bench's threshold
    store_index = {sid: i for i, sid in enumerate(world.stores["store_id"])}
    sku_index = {sku: i for i, sku in enumerate(world.products["sku"])}
    capacity = dict(
        zip(world.products["sku"], shelf_capacity(world.products, world.stores, spec.shelf_cover_days), strict=True)
    )
    stores = world.stores[["store_id", "timezone", "chain", "latitude", "longitude"]]
    scores = {name: ActionScore(name) for name in LEVELS}
    previous: set = set()
    fc = dispersion = None
    last = {}
    for i, day in enumerate(range(first, n)):
        if i % refit_every == 0:
            t0 = time.perf_counter()
            fc, dispersion = fit_forecast(world, day, engine_settings)
            log(f"forecast fitted on {day} days in {time.perf_counter() - t0:.0f} s")
        as_of = pd.Timestamp(world.dates[day]).tz_localize("UTC")
        inp = replace(inputs_for_run(world, day, as_of, fc, dispersion, readings, midnight), stores=stores)
        risks = stock_risks(inp, settings)
        raised = opens_alert(risks, rules)
        keys = set(zip(risks.loc[raised, "store_id"], risks.loc[raised, "sku"], strict=True))
        new = risks[
            raised
            & np.array([key not in previous for key in zip(risks["store_id"], risks["sku"], strict=True)], dtype=bool)
        ]
        targets = new[["store_id", "sku"]].assign(shelf_empty_now=opens_alert(new, rules, empty_now=True).to_numpy())
        for name, level in LEVELS.items():
            plan = recommend_actions(targets, risks, stores, service_level if level is None else level, capacity)
            score_plan(scores[name], plan, world, day, nxt, store_index, sku_index)
        previous = keys
        last = {"day": day, "as_of": as_of, "risks": risks, "raised": raised}
    return list(scores.values()), last


def substitute_acceptance_scores(world: World, last: dict) -> dict:
    """Acceptance, in the world's truth, of the substitutes suggested to the favourite members of the
    last day's alerts, against a random in-stock product of the same category."""
    risks, raised, as_of = last["risks"], last["raised"], last["as_of"]
    lines = world_lines(world)
    lines = lines[lines["date"] < as_of.tz_localize(None)]
    favourites = favourite_members(lines, as_of)
    alerted = risks.loc[raised, ["store_id", "sku"]]
    affected = favourites.merge(alerted, on=["store_id", "sku"])[["store_id", "sku", "member_id"]]
    affected = affected.assign(alert_id=pd.factorize(affected["store_id"] + "|" + affected["sku"])[0])
    in_stock = risks.loc[~raised & (risks["on_shelf"] >= 1), ["store_id", "sku"]]
    products = world.products[["sku", "name", "category", "unit_price", "unit_weight_g", "vegetarian"]]
    recent = lines[lines["date"] >= as_of.tz_localize(None) - pd.Timedelta(days=180)]
    t0 = time.perf_counter()
    subs = suggest_substitutes(affected, products, in_stock, recent)
    seconds = time.perf_counter() - t0
    sku_index = {sku: i for i, sku in enumerate(world.products["sku"])}
    picked = subs.merge(affected, on=["alert_id", "member_id"], suffixes=("", "_favourite"))
    accept = substitute_acceptance(
        world.products, picked["sku_favourite"].map(sku_index).to_numpy(), picked["sku"].map(sku_index).to_numpy()
    )
    picked = picked.assign(acceptance=accept)
    # a random in-stock product of the same category: the mean acceptance over all of them, per member
    category = dict(zip(world.products["sku"], world.products["category"], strict=True))
    pool = affected.merge(in_stock, on="store_id", suffixes=("", "_candidate"))
    pool = pool[
        (pool["sku_candidate"] != pool["sku"]) & (pool["sku_candidate"].map(category) == pool["sku"].map(category))
    ]
    pool = pool.assign(
        acceptance=substitute_acceptance(
            world.products, pool["sku"].map(sku_index).to_numpy(), pool["sku_candidate"].map(sku_index).to_numpy()
        )
    )
    per_member_random = pool.groupby(["alert_id", "member_id"])["acceptance"].mean()
    served = picked[["alert_id", "member_id"]].drop_duplicates()
    random_same = per_member_random.reindex(pd.MultiIndex.from_frame(served)).mean()
    return {
        "affected_members": int(len(affected)),
        "members_with_a_substitute": int(len(served)),
        "members_with_a_same_category_product_in_stock": int(len(per_member_random)),
        "top1_acceptance": float(picked.loc[picked["rank"] == 1, "acceptance"].mean()) if len(picked) else float("nan"),
        "top3_acceptance": float(picked["acceptance"].mean()) if len(picked) else float("nan"),
        "random_same_category_acceptance": float(random_same) if len(served) else float("nan"),
        "suggest_seconds": seconds,
    }


def at_risk_scores(world: World, seed: int) -> list[dict]:
    """Precision at 50/100 of the at-risk list, the count baseline and random order, at each point."""
    lines = world_lines(world)
    defections = world.defections.assign(date=lambda f: pd.to_datetime(f["date"]))
    left_on = dict(zip(defections["member_id"], defections["date"], strict=True))
    out = []
    for back in RISK_POINTS_DAYS:
        day = world.n_hist - back
        t = pd.Timestamp(world.dates[day])
        before = lines[lines["date"] < t]
        outages = world_outages(world, day)
        # who could still leave: bought something in the 90 days before t and had not left by then
        active = set(before.loc[before["date"] >= t - pd.Timedelta(days=90), "member_id"])
        active = {m for m in active if not (m in left_on and left_on[m] < t)}
        leaves = {m for m in active if m in left_on and left_on[m] < t + pd.Timedelta(days=RISK_HORIZON_DAYS)}
        t0 = time.perf_counter()
        ours = members_at_risk(before, outages, t)
        seconds = time.perf_counter() - t0
        ours = ours[ours["member_id"].isin(active)].sort_values("rank")["member_id"].tolist()
        count = count_baseline_score(before, outages, t)
        count = (
            count[count["member_id"].isin(active)]
            .sort_values(["score", "member_id"], ascending=[False, True])["member_id"]
            .tolist()
        )
        rng = np.random.default_rng(seed)
        shuffled = rng.permutation(sorted(active)).tolist()
        last_visit = lines.groupby("member_id")["date"].max()
        row = {
            "as_of": str(t.date()),
            "active_members": len(active),
            "leave_within_30d": len(leaves),
            "base_rate": len(leaves) / len(active) if active else float("nan"),
            "listed": len(ours),
            "seconds": seconds,
        }
        for n_top in TOP_N:
            row[f"ours@{n_top}"] = len(set(ours[:n_top]) & leaves) / n_top
            row[f"count@{n_top}"] = len(set(count[:n_top]) & leaves) / n_top
            row[f"random_draw@{n_top}"] = len(set(shuffled[:n_top]) & leaves) / n_top
        found = [m for m in ours[:100] if m in leaves]
        row["found@100"] = len(found)
        row["median_days_before_leaving"] = (
            float(np.median([(left_on[m] - t).days for m in found])) if found else float("nan")
        )
        row["median_days_before_last_visit"] = (
            float(np.median([(last_visit[m] - t).days for m in found])) if found else float("nan")
        )
        out.append(row)
    return out


def bench_spec(stores: int, skus: int, days: int, members: int, seed: int) -> WorldSpec:
    """The bench's world: members who substitute and leave, two chains, a week to look ahead."""
    return WorldSpec(
        stores=stores,
        skus=skus,
        days=days,
        members=members,
        seed=seed,
        lookahead_days=9,
        member_behaviour=True,
        chains=2,
        shelf_cover_days=SHELF_COVER_DAYS,
    )


def run_actions_bench(
    spec: WorldSpec,
    replay_days: int,
    refit_every: int,
    service_level: float,
    threshold: float,
    engine_settings: EngineSettings,
    log=lambda m: None,
) -> dict:
    t0 = time.perf_counter()
    world = build_world(spec)
    log(
        f"world {spec.stores}x{spec.skus}, {spec.members:,} members, seed {spec.seed}:"
        f" simulated in {time.perf_counter() - t0:.0f} s; "
        f"{len(world.defections):,} members left over {spec.days} days"
    )
    scores, last = replay_actions(world, spec, replay_days, refit_every, service_level, threshold, engine_settings, log)
    return {
        "scores": scores,
        "substitutes": substitute_acceptance_scores(world, last),
        "at_risk": at_risk_scores(world, spec.seed),
        "defections": len(world.defections),
        "kinds": (REFILL, TRANSFER, ORDER, NOTHING),
    }
