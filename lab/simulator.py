"""A deterministic retail world: stores, products, members, POS sales, shelf sensors, deliveries and
injected incidents with their ground truth.

Why a simulator: the pipeline must be demonstrable and testable end to end without a retailer's data,
and alerts can only be scored against a world whose truth is known. Demand follows weekly and yearly
seasonality, promotions, shelf-price changes (each SKU with its own price elasticity) and
negative-binomial noise (a share of slow, intermittent movers); the shelf is replenished on a delivery
schedule; **sales are limited by the stock on the shelf** (an empty shelf
sells nothing). The world runs `lookahead_days` past "now" so the ground truth can say which shelves
really run empty before their next delivery; the files written describe only the past.

Stores, chains, products (issue 19). Every store has a `chain` (WorldSpec.chains: one chain
"Shelfwatch", or stores alternating between "Shelfwatch North" / "Shelfwatch South" / ... ) and
coordinates (`latitude`, `longitude`, 4 decimals: the city of its time zone, jittered by a few km),
written to stores.csv as the contract's optional columns. Every product has a `vegetarian` flag
(world.products: bool; products.csv: "yes"/"no"; every "vegetarian" product is, most produce,
bakery, snacks, drinks and household ones are, dairy is mixed, frozen about half) and a hidden
`taste_group` (2-4 groups per category), which only the world object and product_truth.json know.
These draw from their own random streams (LOCATION_STREAM, PRODUCT_STREAM), so every other file of a
seed is unchanged.

Members who substitute and leave (WorldSpec.member_behaviour, off by default: with it off every
sale is the same as before). A favourite purchase the shelf cannot serve makes the member pick one
product of the same category at that store, with probability proportional to
`substitute_acceptance` (the world's truth of which substitutes members accept), and buy one unit of
it when the pick is accepted (a uniform draw below the acceptance) and its shelf holds a unit: a
purchase line of that member, counted in `sold`. Each unserved favourite visit (a day with at least
one unserved favourite) may make the member leave: with k the unserved visits in the last
DEFECT_WINDOW_DAYS days, this one included, they leave with probability defect_probability(k) =
min(DEFECT_MAX, DEFECT_PER_MISS * (k - 1)): one miss never makes anyone leave. A member who left
never buys again. These draws use their own stream (MEMBER_STREAM); the main stream's draws keep
their shapes, so the anonymous demand, sensors and incidents are those of the same seed without
behaviour. The truth is in world.demand (the uncapped demand, accepted substitutions included),
world.defections, world.substitutions and world.missed_visits, and in member_truth.json.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from core.domain import CLOSE_HOUR, DELIVERY_HOUR, OPEN_HOUR

DEFAULT_END_DATE = date(2026, 11, 22)  # fixed so a seed always gives the same world
TIMEZONES = ["Europe/London", "Europe/Amsterdam", "Europe/Berlin", "Europe/Madrid", "Europe/Paris", "Europe/Dublin"]
CATEGORIES = {
    "produce": (0.2, 1.5, 3.5),  # (weekend lift, price low, price high)
    "dairy": (0.15, 0.8, 3.0),
    "bakery": (0.3, 0.9, 3.5),
    "frozen": (0.1, 2.0, 6.0),
    "vegetarian": (0.2, 2.5, 5.5),
    "drinks": (0.35, 0.8, 4.0),
    "snacks": (0.4, 1.0, 3.0),
    "household": (0.05, 1.5, 8.0),
}
PROMO_DAYS = 7
DELIVERY_PATTERNS = [(0, 2, 4), (1, 3, 5), (0, 3), (1, 4), (0, 2, 5)]  # weekdays (Mon=0)
# each time zone's city (latitude, longitude): stores stand within a few km of it
CITY_COORDINATES = {
    "Europe/London": (51.5074, -0.1278),
    "Europe/Amsterdam": (52.3676, 4.9041),
    "Europe/Berlin": (52.5200, 13.4050),
    "Europe/Madrid": (40.4168, -3.7038),
    "Europe/Paris": (48.8566, 2.3522),
    "Europe/Dublin": (53.3498, -6.2603),
}
STORE_JITTER_DEGREES = (0.06, 0.09)  # standard deviation of a store's (latitude, longitude) around its city
CHAIN_NAMES = ("North", "South", "East", "West")  # "Shelfwatch <name>"; beyond four, "Shelfwatch <n>"
# share of each category's products that are vegetarian
VEGETARIAN_SHARE = {
    "produce": 0.95,
    "dairy": 0.6,
    "bakery": 0.9,
    "frozen": 0.5,
    "vegetarian": 1.0,
    "drinks": 0.9,
    "snacks": 0.85,
    "household": 0.95,
}
TASTE_GROUPS = (2, 4)  # each category's products fall into this many taste groups (inclusive), hidden


@dataclass(frozen=True)
class WorldSpec:
    """Everything that determines a world; the same spec always gives the same files."""

    stores: int = 5
    skus: int = 60
    days: int = 730
    members: int = 2000
    seed: int = 42
    end_date: date = DEFAULT_END_DATE
    sensor_share: float = 0.8
    sensor_days: int = 14
    sensor_every_hours: int = 6
    lookahead_days: int = 7
    slow_mover_share: float = 0.3
    promo_share: float = 0.3
    price_change_share: float = 0.3  # of SKUs whose shelf price changes (every 60-150 days)
    incident_share: float = 0.04  # of store x SKU pairs, per incident kind
    chains: int = 1  # stores alternate between this many chains (CHAIN_NAMES); 1: one chain "Shelfwatch"
    shelf_cover_days: float = 5.5  # shelves hold about this many days of typical demand (tighter: more stock-outs)
    member_behaviour: bool = False  # members substitute for an empty favourite and leave after repeated misses

    @property
    def now(self) -> datetime:
        """The moment the history ends: midnight UTC after the last simulated day."""
        return datetime.combine(self.end_date + timedelta(days=1), datetime.min.time(), tzinfo=UTC)


def simulate_world(out_dir: Path, **spec_fields: object) -> Path:
    """Simulate a world and write it to `out_dir` (see README for the files); returns `out_dir`."""
    spec = WorldSpec(**spec_fields)  # type: ignore[arg-type]
    world = build_world(spec)
    write_world(world, spec, Path(out_dir))
    return Path(out_dir)


# --------------------------------------------------------------------------------------------- entities


def make_stores(spec: WorldSpec, rng: np.random.Generator) -> pd.DataFrame:
    ids = [f"S{i + 1:03d}" for i in range(spec.stores)]
    return pd.DataFrame(
        {
            "store_id": ids,
            "name": [f"Shelfwatch Market {i}" for i in ids],
            "timezone": [TIMEZONES[i % len(TIMEZONES)] for i in range(spec.stores)],
            "manager_email": [f"manager.{i.lower()}@stores.example" for i in ids],
            "size_factor": rng.uniform(0.6, 1.5, spec.stores).round(3),
            "delivery_days": [DELIVERY_PATTERNS[i % len(DELIVERY_PATTERNS)] for i in range(spec.stores)],
            **store_locations(spec),
        }
    )


def chain_name(chain: int, chains: int) -> str:
    """The name of chain number `chain` (from 0) of `chains`."""
    if chains <= 1:
        return "Shelfwatch"
    return f"Shelfwatch {CHAIN_NAMES[chain]}" if chains <= len(CHAIN_NAMES) else f"Shelfwatch {chain + 1}"


def store_locations(spec: WorldSpec) -> dict[str, list]:
    """Each store's chain (stores alternate between the spec's chains) and coordinates: its time
    zone's city, jittered (own stream: the seed's other draws are unchanged)."""
    if spec.chains < 1:
        raise ValueError("chains must be at least 1")
    rng = np.random.default_rng([spec.seed, LOCATION_STREAM])
    city = np.array([CITY_COORDINATES[TIMEZONES[i % len(TIMEZONES)]] for i in range(spec.stores)]).reshape(-1, 2)
    lat = city[:, 0] + rng.normal(0.0, STORE_JITTER_DEGREES[0], spec.stores)
    lon = city[:, 1] + rng.normal(0.0, STORE_JITTER_DEGREES[1], spec.stores)
    return {
        "chain": [chain_name(i % spec.chains, spec.chains) for i in range(spec.stores)],
        "latitude": np.clip(lat, -90.0, 90.0).round(4),
        "longitude": np.clip(lon, -180.0, 180.0).round(4),
    }


def make_products(spec: WorldSpec, rng: np.random.Generator) -> pd.DataFrame:
    cats = list(CATEGORIES)
    category = rng.choice(cats, spec.skus)
    slow = rng.random(spec.skus) < spec.slow_mover_share
    base = np.where(slow, rng.uniform(0.05, 0.6, spec.skus), rng.lognormal(np.log(5.0), 0.7, spec.skus))
    price = np.array([rng.uniform(CATEGORIES[c][1], CATEGORIES[c][2]) for c in category]).round(2)
    weight = rng.choice([80, 125, 200, 250, 330, 400, 500, 750, 1000], spec.skus).astype(float)
    return pd.DataFrame(
        {
            "sku": [f"SKU{i + 1:05d}" for i in range(spec.skus)],
            "name": [f"{c.title()} item {i + 1}" for i, c in enumerate(category)],
            "category": category,
            "unit_price": price,
            "unit_weight_g": weight,
            "base_rate": base,
            "slow_mover": slow,
            "yearly_amplitude": rng.uniform(0.0, 0.35, spec.skus),
            "yearly_phase": rng.uniform(0, 365.25, spec.skus),
            "dispersion": np.where(slow, 1.0, rng.uniform(3.0, 12.0, spec.skus)),
            **product_attributes(spec, category),
        }
    )


def product_attributes(spec: WorldSpec, category: np.ndarray) -> dict[str, np.ndarray]:
    """`vegetarian` (bool, VEGETARIAN_SHARE of each category) and the hidden `taste_group` (0-3: each
    category has 2-4 groups), from their own stream: the seed's other draws are unchanged."""
    rng = np.random.default_rng([spec.seed, PRODUCT_STREAM])
    category = np.asarray(category)
    vegetarian = rng.random(len(category)) < np.array([VEGETARIAN_SHARE[c] for c in category], dtype=float)
    groups = {c: int(rng.integers(TASTE_GROUPS[0], TASTE_GROUPS[1] + 1)) for c in CATEGORIES}
    draw = rng.random(len(category))
    taste_group = np.array([int(u * groups[c]) for u, c in zip(draw, category, strict=True)], dtype=int)
    return {"vegetarian": vegetarian, "taste_group": taste_group}


def make_members(spec: WorldSpec, stores: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    ids = [f"M{i + 1:07d}" for i in range(spec.members)]
    channel = rng.choice(["email", "sms", "app"], spec.members, p=[0.6, 0.25, 0.15])
    address = [
        f"member{i + 1}@mail.example"
        if ch == "email"
        else (f"+44770{i + 1:07d}" if ch == "sms" else f"app:{i + 1:07d}")
        for i, ch in enumerate(channel)
    ]
    return pd.DataFrame(
        {
            "member_id": ids,
            "home_store_id": rng.choice(stores["store_id"].to_numpy(), spec.members),
            "marketing_consent": rng.random(spec.members) < 0.7,
            "opted_out": rng.random(spec.members) < 0.08,
            "contact_channel": channel,
            "contact_address": address,
        }
    )


def make_favourites(
    spec: WorldSpec, members: pd.DataFrame, products: pd.DataFrame, rng: np.random.Generator
) -> pd.DataFrame:
    """Habitual (member, sku) pairs at the member's home store, with a purchase interval in days."""
    weights = products["base_rate"].to_numpy() + 0.5
    weights = weights / weights.sum()
    rows = []
    for member_id, store_id in zip(members["member_id"], members["home_store_id"], strict=True):
        n = int(rng.integers(1, 5))
        for sku_idx in rng.choice(len(products), size=min(n, len(products)), replace=False, p=weights):
            rows.append((member_id, store_id, int(sku_idx), float(rng.uniform(7, 21))))
    return pd.DataFrame(rows, columns=["member_id", "store_id", "sku_idx", "interval_days"])


# --------------------------------------------------------------------------------------------- dynamics


def demand_rates(
    spec: WorldSpec, stores: pd.DataFrame, products: pd.DataFrame, dates: pd.DatetimeIndex, rng
) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """Expected anonymous demand, shape (days, stores, skus): level x weekly x yearly x promotions;
    and the promotion calendar as (sku index, first day index)."""
    n_days = len(dates)
    weekend_lift = products["category"].map(lambda c: CATEGORIES[c][0]).to_numpy()
    dow = dates.dayofweek.to_numpy()
    weekly = (
        1.0
        + np.outer((dow >= 4).astype(float) * (dow < 6), weekend_lift)
        - 0.08 * np.outer(dow == 0, np.ones(len(products)))
    )
    doy = dates.dayofyear.to_numpy()[:, None]
    yearly = 1.0 + products["yearly_amplitude"].to_numpy() * np.sin(
        2 * np.pi * (doy - products["yearly_phase"].to_numpy()) / 365.25
    )
    trend = 1.0 + np.linspace(-0.05, 0.05, n_days)[:, None]
    level = stores["size_factor"].to_numpy()[:, None] * products["base_rate"].to_numpy()[None, :]
    rates = (weekly * yearly * trend)[:, None, :] * level[None, :, :]
    lift, calendar = promotion_lift(spec, n_days, len(stores), products, rng)
    return rates * lift, calendar


def promotion_lift(spec: WorldSpec, n_days: int, n_stores: int, products: pd.DataFrame, rng) -> tuple[np.ndarray, list]:
    """Chain-wide 7-day promotions on a share of SKUs, roughly every two months, lifting demand 1.5-2.5x.

    The calendar is planned ahead, as retailers' are: it also holds each SKU's next promotion after the
    simulated days (already drawn, so the world's random stream is unchanged)."""
    lift = np.ones((n_days, n_stores, len(products)))
    calendar = []
    promoted = np.flatnonzero(rng.random(len(products)) < spec.promo_share)
    for sku_idx in promoted:
        start = int(rng.integers(0, 60))
        while start < n_days:
            calendar.append((int(sku_idx), start))
            lift[start : start + PROMO_DAYS, :, sku_idx] *= rng.uniform(1.5, 2.5)
            start += int(rng.integers(45, 90))
        calendar.append((int(sku_idx), start))
    return lift, calendar


SURGE_DAYS_BEFORE_NOW = 3  # an unannounced local demand surge (incidents.spike) starts this many days before now
PRICE_STREAM = 16  # prices draw from their own random stream: every other draw of a seed is unchanged
LOCATION_STREAM = 17  # stores' coordinates (own stream, as PRICE_STREAM)
PRODUCT_STREAM = 18  # products' vegetarian flag and taste group
MEMBER_STREAM = 19  # member behaviour: substitutes, defections (and the served subset after "now")

# substitute_acceptance: the world's truth of which substitute a member accepts
ACCEPT_BASE = 0.10
ACCEPT_SAME_TASTE = 0.45  # added when the candidate is in the favourite's taste group
ACCEPT_SAME_VEGETARIAN = 0.15  # added when both are vegetarian, or both are not
ACCEPT_MAX = 0.9
# defection: after an unserved favourite visit, with k unserved visits in the last DEFECT_WINDOW_DAYS
# days (this one included), a member leaves with probability min(DEFECT_MAX, DEFECT_PER_MISS * (k - 1))
DEFECT_WINDOW_DAYS = 30
DEFECT_PER_MISS = 0.12
DEFECT_MAX = 0.6


def substitute_acceptance(products: pd.DataFrame, favourite_idx, candidate_idx) -> np.ndarray:
    """The world's truth: the probability that a member whose favourite product f (row index into
    `products`) is missing accepts product c instead; vectorised over (f, c) pairs (broadcast).

    0 when c is in another category or is f itself, and 0 for a non-vegetarian c when f is vegetarian.
    Otherwise (ACCEPT_BASE 0.10 + ACCEPT_SAME_TASTE 0.45 x [same taste group] + ACCEPT_SAME_VEGETARIAN
    0.15 x [both vegetarian or both not]) x exp(-|ln(size_c / size_f)|) with size = unit_weight_g (1 for
    equal sizes, 1/2 for double or half), capped to [0, ACCEPT_MAX 0.9]. Needs the columns category,
    taste_group, vegetarian (bool) and unit_weight_g."""
    f, c = np.broadcast_arrays(np.asarray(favourite_idx, dtype=int), np.asarray(candidate_idx, dtype=int))
    category = products["category"].to_numpy()
    group = products["taste_group"].to_numpy()
    veg = products["vegetarian"].to_numpy(dtype=bool)
    size = products["unit_weight_g"].to_numpy(dtype=float)
    score = ACCEPT_BASE + ACCEPT_SAME_TASTE * (group[f] == group[c]) + ACCEPT_SAME_VEGETARIAN * (veg[f] == veg[c])
    score = score * np.exp(-np.abs(np.log(size[c] / size[f])))
    allowed = (category[f] == category[c]) & (f != c) & ~(veg[f] & ~veg[c])
    return np.clip(np.where(allowed, score, 0.0), 0.0, ACCEPT_MAX)


def defect_probability(k) -> np.ndarray:
    """The chance a member leaves after an unserved favourite visit, with k unserved visits in the
    last DEFECT_WINDOW_DAYS days (this one included): min(DEFECT_MAX, DEFECT_PER_MISS * (k - 1))."""
    return np.clip(DEFECT_PER_MISS * (np.asarray(k, dtype=float) - 1.0), 0.0, DEFECT_MAX)


def price_calendar(
    spec: WorldSpec, products: pd.DataFrame, n_days: int
) -> tuple[np.ndarray, list[tuple[int, int, float]]]:
    """Chain-wide shelf prices and what they do to demand. Every SKU starts at its list price; a share
    of them changes price every 60-150 days to 0.8-1.2x the list price (changes after the history are
    planned ones, known ahead as a retailer's are). Demand answers with the SKU's own elasticity,
    1.0-2.5: (price / list price) ** -elasticity. Returns that multiplier (days, skus) and the rows."""
    rng = np.random.default_rng([spec.seed, PRICE_STREAM])
    list_price = products["unit_price"].to_numpy(float)
    elasticity = rng.uniform(1.0, 2.5, len(products))
    relative = np.ones((n_days, len(products)))
    rows = [(k, 0, float(list_price[k])) for k in range(len(products))]
    for k in np.flatnonzero(rng.random(len(products)) < spec.price_change_share):
        day = int(rng.integers(30, 150))
        while day < n_days:
            price = round(float(list_price[k] * rng.uniform(0.8, 1.2)), 2)
            relative[day:, k] = price / list_price[k]
            rows.append((int(k), day, price))
            day += int(rng.integers(60, 150))
    return relative ** -elasticity[None, :], rows


def sample_demand(rates: np.ndarray, dispersion: np.ndarray, rng) -> np.ndarray:
    """Negative-binomial demand (gamma-Poisson) with per-SKU dispersion: rarer items are burstier."""
    shape = np.broadcast_to(dispersion, rates.shape)
    return rng.poisson(rng.gamma(shape, rates / shape)).astype(float)


def shelf_capacity(products: pd.DataFrame, stores: pd.DataFrame, cover_days: float = 5.5) -> np.ndarray:
    """Facings sized for about a week of typical demand (`cover_days`), so promotions and bursts can empty a shelf."""
    mean_rate = products["base_rate"].to_numpy() * stores["size_factor"].mean()
    return np.clip(np.ceil(mean_rate * cover_days * 1.3 + 2.0), 3, 400).astype(int)


@dataclass
class Incidents:
    late: np.ndarray  # (stores, skus) bool: the last delivery before now is late
    late_delay_days: np.ndarray
    phantom: np.ndarray  # shelf empty while records show stock
    phantom_start: np.ndarray  # day index
    spike: np.ndarray  # local demand surge from a few days before now


def choose_incidents(spec: WorldSpec, has_sensor: np.ndarray, n_hist: int, rng) -> Incidents:
    shape = has_sensor.shape
    share = spec.incident_share
    phantom = (rng.random(shape) < share * 2.5) & ~has_sensor  # phantom stock hides from sensors
    spike = (rng.random(shape) < share) & has_sensor & ~phantom
    late = (rng.random(shape) < share) & ~phantom & ~spike
    return Incidents(
        late=late,
        late_delay_days=rng.integers(2, 5, shape),
        phantom=phantom,
        phantom_start=n_hist - rng.integers(3, 9, shape),
        spike=spike,
    )


DEFECTION_COLUMNS = ["member_id", "day", "date"]  # date: YYYY-MM-DD, the last day the member bought anything
SUBSTITUTION_COLUMNS = ["member_id", "store_id", "favourite_sku", "substitute_sku", "day"]  # bought substitutes
MISSED_COLUMNS = ["member_id", "store_id", "sku", "day"]  # every unserved favourite buy


@dataclass
class World:
    stores: pd.DataFrame
    products: pd.DataFrame
    members: pd.DataFrame
    favourites: pd.DataFrame
    sensors: pd.DataFrame
    dates: pd.DatetimeIndex
    n_hist: int
    sold: np.ndarray  # (days, stores, skus)
    shelf_open: np.ndarray  # shelf units at the start of trading (after any delivery)
    shelf_close: np.ndarray
    empty_at_hour: np.ndarray  # store-local hour the shelf emptied that day, NaN if it did not
    book_close: np.ndarray  # units on record at close
    deliveries: pd.DataFrame
    purchase_lines: pd.DataFrame
    incidents: Incidents
    promotions: list  # (sku index, first day index), chain-wide, PROMO_DAYS long
    expected_demand: np.ndarray  # (days, stores, skus): the true mean demand, anonymous + favourite members
    price_rows: list = field(default_factory=list)  # (sku index, first day index, price), chain-wide
    # the mean demand a forecaster could know at best: expected_demand without the unannounced surges
    # (incidents.spike), which nobody can see coming; None = no surges
    planned_demand: np.ndarray | None = None
    # the true demand per day (days, stores, skus), before the shelf cap: anonymous + favourite buys (of
    # members who have not left) + accepted substitutes (member_behaviour); sold <= demand
    demand: np.ndarray | None = None
    # favourite buys the shelf could not serve (days, stores, skus)
    unserved_member_buys: np.ndarray | None = None
    # member_behaviour's truth (empty without it); `day` indexes dates (day >= n_hist: after "now")
    defections: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=DEFECTION_COLUMNS))
    substitutions: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=SUBSTITUTION_COLUMNS))
    missed_visits: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=MISSED_COLUMNS))


def build_world(spec: WorldSpec) -> World:
    rng = np.random.default_rng(spec.seed)
    stores = make_stores(spec, rng)
    products = make_products(spec, rng)
    members = make_members(spec, stores, rng)
    favourites = make_favourites(spec, members, products, rng)
    n_stores, n_skus = len(stores), len(products)
    start = spec.end_date - timedelta(days=spec.days - 1)
    dates = pd.date_range(start, periods=spec.days + spec.lookahead_days, freq="D")
    n_hist, n_days = spec.days, len(dates)

    has_sensor = rng.random((n_stores, n_skus)) < spec.sensor_share
    incidents = choose_incidents(spec, has_sensor, n_hist, rng)
    rates, promo_calendar = demand_rates(spec, stores, products, dates, rng)
    price_effect, price_rows = price_calendar(spec, products, n_days)
    rates = rates * price_effect[:, None, :]
    planned_rates = rates.copy()
    spike_from = n_hist - SURGE_DAYS_BEFORE_NOW
    rates[spike_from:] = np.where(incidents.spike, rates[spike_from:] * 3.0 + 1.0, rates[spike_from:])
    anon_demand = sample_demand(rates, products["dispersion"].to_numpy()[None, None, :], rng)

    capacity = shelf_capacity(products, stores, spec.shelf_cover_days)
    delivery_day = np.zeros((n_days, n_stores), dtype=bool)
    for s, days in enumerate(stores["delivery_days"]):
        delivery_day[:, s] = np.isin(dates.dayofweek.to_numpy(), days)

    fav_store = stores.set_index("store_id").index.get_indexer(favourites["store_id"])
    fav_sku = favourites["sku_idx"].to_numpy()
    fav_p = 1.0 / favourites["interval_days"].to_numpy()
    member_rate = np.zeros((n_stores, n_skus))
    np.add.at(member_rate, (fav_store, fav_sku), fav_p)

    shelf = capacity[None, :].repeat(n_stores, 0).astype(float)
    book = shelf.copy()
    sold = np.zeros((n_days, n_stores, n_skus))
    shelf_open = np.zeros_like(sold)
    shelf_close = np.zeros_like(sold)
    book_close = np.zeros_like(sold)
    empty_at = np.full_like(sold, np.nan)
    delivery_rows, line_rows = [], []
    pending: dict[tuple[int, int], list] = {}  # late deliveries in transit: (store, sku) -> [day_due, qty]
    was_late: set[tuple[int, int]] = set()
    mean_rate = rates.mean(axis=0)
    true_demand = np.zeros(sold.shape, dtype=np.float32)
    unserved = np.zeros(sold.shape, dtype=np.int32)
    behaviour = MemberBehaviour(spec, members, products, favourites, stores, dates) if spec.member_behaviour else None

    for d in range(n_days):
        # 1. deliveries at 06:00: order-up-to capacity, placed the evening before
        for s in np.flatnonzero(delivery_day[d]):
            qty = np.maximum(0, np.round(capacity - np.maximum(0, book[s] - mean_rate[s])))
            for k in np.flatnonzero(qty > 0):
                late = incidents.late[s, k] and n_hist - 2 <= d < n_hist and (s, k) not in was_late
                due = d + int(incidents.late_delay_days[s, k]) if late else d
                delivery_rows.append((s, k, d, qty[k], due))
                if late:
                    pending[(s, k)] = [due, qty[k]]
                    was_late.add((s, k))
                else:
                    shelf[s, k] += qty[k]
                    book[s, k] += qty[k]
        for (s, k), (due, qty) in list(pending.items()):
            if due == d:
                shelf[s, k] += qty
                book[s, k] += qty
                del pending[(s, k)]
        # phantom stock: the shelf is empty (goods misplaced) while the books still count them
        phantom_now = incidents.phantom & (d >= incidents.phantom_start)
        shelf[phantom_now] = 0.0
        shelf_open[d] = shelf

        # 2. trading: anonymous and member demand, capped by the shelf
        drawn = rng.random(len(fav_p)) < fav_p
        buys = behaviour.still_buying(drawn) if behaviour else drawn  # members who left buy nothing
        member_demand = np.zeros((n_stores, n_skus))
        np.add.at(member_demand, (fav_store[buys], fav_sku[buys]), 1.0)
        demand = anon_demand[d] + member_demand
        sold_today = np.minimum(demand, shelf)
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.where(demand > 0, shelf / demand, 1.0)
        emptied = (demand >= shelf) & (shelf_open[d] > 0) & (demand > 0)
        empty_at[d] = np.where(emptied, OPEN_HOUR + np.clip(frac, 0, 1) * (CLOSE_HOUR - OPEN_HOUR), np.nan)
        empty_at[d] = np.where(shelf_open[d] <= 0, OPEN_HOUR, empty_at[d])
        true_demand[d] = demand
        unserved[d] = member_demand - np.minimum(member_demand, sold_today)
        shelf = shelf - sold_today
        book = book - sold_today
        if d < n_hist or behaviour:
            # after "now" only the behaviour needs who was served: drawn from its own stream
            kept = served_member_buys(
                buys,
                fav_store,
                fav_sku,
                sold_today,
                member_demand,
                rng if d < n_hist else behaviour.rng,
                drawn,
                demand_today=demand if behaviour else None,
            )
            lines_today = lines_frame(d, favourites.index.to_numpy()[kept], fav_store[kept], fav_sku[kept])
            served = np.zeros((n_stores, n_skus))
            np.add.at(served, (fav_store[kept], fav_sku[kept]), 1.0)
            unserved[d] = member_demand - served
            if behaviour:
                missed = np.setdiff1d(np.flatnonzero(buys), kept)
                subs = behaviour.substitute(d, missed, fav_store, fav_sku, shelf, true_demand[d])
                for s, k in zip(subs["store_idx"], subs["sku_idx"], strict=True):
                    sold_today[s, k] += 1.0
                    shelf[s, k] -= 1.0
                    book[s, k] -= 1.0
                    if shelf[s, k] <= 0 and np.isnan(empty_at[d, s, k]):
                        empty_at[d, s, k] = CLOSE_HOUR  # the substitute took the last unit
                lines_today = pd.concat([lines_today, subs], ignore_index=True) if len(subs) else lines_today
                behaviour.defect(d, missed, fav_store, fav_sku)
            if d < n_hist:
                line_rows.append(lines_today)
        sold[d] = sold_today
        shelf_close[d] = shelf
        book_close[d] = book

    deliveries = pd.DataFrame(delivery_rows, columns=["store_idx", "sku_idx", "expected_day", "units", "arrival_day"])
    lines = pd.concat(line_rows, ignore_index=True) if line_rows else pd.DataFrame()
    sensors = make_sensors(stores, products, has_sensor, rng)
    member_expected = member_rate[None]
    if behaviour:  # a member who left adds no expected demand from the day after
        member_expected = behaviour.expected_member_rate(member_rate, fav_store, fav_sku, fav_p, n_days)
    world = World(
        stores,
        products,
        members,
        favourites,
        sensors,
        dates,
        n_hist,
        sold,
        shelf_open,
        shelf_close,
        empty_at,
        book_close,
        deliveries,
        lines,
        incidents,
        promo_calendar,
        (rates + member_expected).astype(np.float32),
        price_rows,
        (planned_rates + member_expected).astype(np.float32),
        true_demand,
        unserved,
    )
    if behaviour:
        world.defections, world.substitutions, world.missed_visits = behaviour.frames()
    return world


def served_member_buys(
    buys, fav_store, fav_sku, sold_today, member_demand, rng, drawn=None, demand_today=None
) -> np.ndarray:
    """Which member purchases (favourites rows) were served: on a short shelf, a random subset as
    large as the sales allow. `drawn`: the buys before members who left were masked out; the random
    draw keeps their shape, so masking does not move the stream. With `demand_today` (the day's whole
    demand: member_behaviour) members come in among the other shoppers, so a short shelf serves them
    in the same proportion as everyone (sold / demand) rather than first."""
    idx = np.flatnonzero(buys)
    if drawn is None or drawn is buys:
        noise = rng.random(len(idx))
    else:
        all_idx = np.flatnonzero(drawn)
        noise = rng.random(len(all_idx))[np.searchsorted(all_idx, idx)]
    cell = fav_store[idx] * 10**6 + fav_sku[idx]
    order = np.lexsort((noise, cell))
    idx, cell = idx[order], cell[order]
    first = np.r_[0, np.flatnonzero(np.diff(cell)) + 1]
    rank = np.arange(len(idx)) - np.repeat(first, np.diff(np.r_[first, len(idx)]))
    servable = np.minimum(member_demand, sold_today)
    if demand_today is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(demand_today > 0, np.minimum(sold_today / demand_today, 1.0), 1.0)
        servable = np.floor(member_demand * share + 0.5)
    return idx[rank < servable[fav_store[idx], fav_sku[idx]]]


def lines_frame(d: int, member_idx, store_idx, sku_idx) -> pd.DataFrame:
    """Purchase lines of day d; member_idx is a favourites row (its member_id names the member)."""
    return pd.DataFrame({"day": d, "member_idx": member_idx, "store_idx": store_idx, "sku_idx": sku_idx})


def member_lines(d, buys, fav_store, fav_sku, favourites, sold_today, member_demand, rng) -> pd.DataFrame:
    """Which member purchases were served, as purchase lines of day d."""
    kept = served_member_buys(buys, fav_store, fav_sku, sold_today, member_demand, rng)
    return lines_frame(d, favourites.index.to_numpy()[kept], fav_store[kept], fav_sku[kept])


class MemberBehaviour:
    """WorldSpec.member_behaviour: substitutes for unserved favourites, and defection after repeated
    unserved visits (see the module docstring). Every draw comes from MEMBER_STREAM."""

    def __init__(self, spec: WorldSpec, members, products, favourites, stores, dates):
        self.rng = np.random.default_rng([spec.seed, MEMBER_STREAM])
        self.products, self.favourites, self.stores, self.dates = products, favourites, stores, dates
        self.member_ids = members["member_id"].to_numpy()
        self.fav_member = pd.Index(members["member_id"]).get_indexer(favourites["member_id"])
        self.left = np.zeros(len(members), dtype=bool)
        self.misses: dict[int, list[int]] = {}  # member -> days of unserved visits in the window
        self.category = products["category"].to_numpy()
        self._candidates: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        self.defection_rows: list[tuple] = []
        self.substitution_rows: list[tuple] = []
        self.missed_rows: list[np.ndarray] = []

    def still_buying(self, drawn: np.ndarray) -> np.ndarray:
        return drawn & ~self.left[self.fav_member]

    def candidates(self, f: int):
        """Same-category products with their acceptance for favourite f, and its cumulative share."""
        if f not in self._candidates:
            cands = np.flatnonzero(self.category == self.category[f])
            acc = substitute_acceptance(self.products, f, cands)
            cands, acc = cands[acc > 0], acc[acc > 0]
            self._candidates[f] = (cands, acc, np.cumsum(acc) / acc.sum() if len(acc) else acc)
        return self._candidates[f]

    def substitute(self, d: int, missed, fav_store, fav_sku, shelf, demand_today) -> pd.DataFrame:
        """Each unserved favourite buy picks a candidate in proportion to its acceptance; an accepted
        pick is demand, and a sale when its shelf holds a unit (taken off `shelf` by the caller).
        Adds accepted picks to `demand_today`; returns the bought substitutes as purchase lines."""
        pick, accept = self.rng.random(len(missed)), self.rng.random(len(missed))
        out, taken = [], {}
        for i, u_pick, u_accept in zip(missed, pick, accept, strict=True):
            s, f = int(fav_store[i]), int(fav_sku[i])
            cands, acc, cum = self.candidates(f)
            if not len(cands):
                continue
            j = min(int(np.searchsorted(cum, u_pick, side="right")), len(cands) - 1)
            c = int(cands[j])
            if u_accept >= acc[j]:
                continue
            demand_today[s, c] += 1.0
            if shelf[s, c] - taken.get((s, c), 0) >= 1.0:
                taken[(s, c)] = taken.get((s, c), 0) + 1
                out.append((d, int(self.favourites.index[i]), s, c))
                self.substitution_rows.append(
                    (
                        self.member_ids[self.fav_member[i]],
                        self.stores["store_id"].iloc[s],
                        self.products["sku"].iloc[f],
                        self.products["sku"].iloc[c],
                        d,
                    )
                )
        frame = pd.DataFrame(out, columns=["day", "member_idx", "store_idx", "sku_idx"])
        return frame.astype({"member_idx": int, "store_idx": int, "sku_idx": int}) if len(frame) else frame

    def defect(self, d: int, missed, fav_store, fav_sku) -> None:
        """Each member with an unserved favourite today (one visit) may leave: defect_probability(k)."""
        if len(missed):
            self.missed_rows.append(
                np.column_stack([self.fav_member[missed], fav_store[missed], fav_sku[missed], np.full(len(missed), d)])
            )
        members = np.unique(self.fav_member[missed])
        draws = self.rng.random(len(members))
        for m, u in zip(members, draws, strict=True):
            window = [day for day in self.misses.get(int(m), []) if day > d - DEFECT_WINDOW_DAYS] + [d]
            self.misses[int(m)] = window
            if u < defect_probability(len(window)):
                self.left[m] = True
                self.defection_rows.append((self.member_ids[m], d, self.dates[d].strftime("%Y-%m-%d")))

    def expected_member_rate(self, member_rate, fav_store, fav_sku, fav_p, n_days) -> np.ndarray:
        """The members' expected demand per day (days, stores, skus): without those who left, from the
        day after they left."""
        rate = np.repeat(member_rate[None], n_days, axis=0)
        left_on = {
            m: d
            for m, d in zip(
                pd.Index(self.member_ids).get_indexer([r[0] for r in self.defection_rows]),
                [r[1] for r in self.defection_rows],
                strict=True,
            )
        }
        for i, m in enumerate(self.fav_member):
            if m in left_on:
                rate[left_on[m] + 1 :, fav_store[i], fav_sku[i]] -= fav_p[i]
        return np.maximum(rate, 0.0)

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        defections = pd.DataFrame(self.defection_rows, columns=DEFECTION_COLUMNS)
        substitutions = pd.DataFrame(self.substitution_rows, columns=SUBSTITUTION_COLUMNS)
        missed = np.concatenate(self.missed_rows) if self.missed_rows else np.zeros((0, 4), dtype=int)
        missed_visits = pd.DataFrame(
            {
                "member_id": self.member_ids[missed[:, 0]],
                "store_id": self.stores["store_id"].to_numpy()[missed[:, 1]],
                "sku": self.products["sku"].to_numpy()[missed[:, 2]],
                "day": missed[:, 3],
            }
        )
        return defections, substitutions, missed_visits


def make_sensors(stores: pd.DataFrame, products: pd.DataFrame, has_sensor: np.ndarray, rng) -> pd.DataFrame:
    s_idx, k_idx = np.nonzero(has_sensor)
    kind = np.where(rng.random(len(s_idx)) < 0.6, "shelf_units", "shelf_weight_g")
    return pd.DataFrame(
        {
            "sensor_id": [f"{stores.store_id[s]}-SH-{products.sku[k]}" for s, k in zip(s_idx, k_idx, strict=True)],
            "store_id": stores.store_id.to_numpy()[s_idx],
            "sku": products.sku.to_numpy()[k_idx],
            "kind": kind,
            "tare_g": np.where(kind == "shelf_weight_g", 0.0, 0.0),
            "store_idx": s_idx,
            "sku_idx": k_idx,
        }
    )


# --------------------------------------------------------------------------------------------- outputs


def shelf_units_at(world: World, d: int, s, k, hour: float):
    """Units on the shelf at a store-local hour of day d (arrays of s, k welcome).

    Demand arrives evenly over trading hours, so a shelf that empties at hour e sells its opening
    units by then: readings agree with the moment the shelf really emptied.
    """
    if hour < DELIVERY_HOUR:
        return world.shelf_close[d - 1, s, k] if d > 0 else world.shelf_open[d, s, k]
    opening = world.shelf_open[d, s, k]
    if hour <= OPEN_HOUR:
        return opening
    empty_at = world.empty_at_hour[d, s, k]
    frac = min(1.0, (hour - OPEN_HOUR) / (CLOSE_HOUR - OPEN_HOUR))
    with np.errstate(divide="ignore", invalid="ignore"):
        emptying = np.clip((hour - OPEN_HOUR) / (empty_at - OPEN_HOUR), 0.0, 1.0)
    return np.where(
        np.isnan(empty_at),
        opening - world.sold[d, s, k] * frac,
        np.where(empty_at <= OPEN_HOUR, 0.0, opening * (1.0 - emptying)),
    )


def sensor_readings(world: World, spec: WorldSpec, rng) -> list[dict]:
    """Readings in the MQTT contract (iot_ingest/README.md), every few hours over the last days."""
    out = []
    first_day = world.n_hist - spec.sensor_days
    hours = range(0, 24, spec.sensor_every_hours)
    for row in world.sensors.itertuples():
        tz = ZoneInfo(world.stores.timezone[row.store_idx])
        weight = float(world.products.unit_weight_g[row.sku_idx])
        seq = 0
        for d in range(max(first_day, 0), world.n_hist):
            day = world.dates[d].date()
            for h in hours:
                seq += 1
                units = max(0.0, float(shelf_units_at(world, d, row.store_idx, row.sku_idx, float(h))))
                value = units if row.kind == "shelf_units" else max(0.0, units * weight + rng.normal(0, 2.0))
                ts = datetime(day.year, day.month, day.day, h, tzinfo=tz)
                out.append(
                    {
                        "sensor_id": row.sensor_id,
                        "store_id": row.store_id,
                        "sku": row.sku,
                        "kind": row.kind,
                        "value": round(value, 1),
                        "ts": ts.isoformat(),
                        "seq": seq,
                        "battery": round(max(0.05, 1.0 - 0.002 * seq), 3),
                    }
                )
    return out


def local_ts(world: World, s: int, d: int, hour: float) -> pd.Timestamp:
    """A store-local hour of a simulated day, in UTC."""
    tz = ZoneInfo(world.stores.timezone[s])
    day = world.dates[d].date()
    local = datetime(day.year, day.month, day.day, tzinfo=tz) + timedelta(hours=float(hour))
    return pd.Timestamp(local).tz_convert("UTC")


def deliveries_frame(world: World) -> pd.DataFrame:
    """Deliveries as the retailer's records see them at "now": a late one has no receipt yet."""
    dl = world.deliveries
    rows = []
    for r in dl.itertuples():
        received = r.arrival_day < world.n_hist
        if r.expected_day < world.n_hist - 28:  # the records keep the last four weeks
            continue
        rows.append(
            {
                "delivery_id": (
                    f"D-{world.stores.store_id[r.store_idx]}-{world.products.sku[r.sku_idx]}"
                    f"-{world.dates[r.expected_day]:%Y%m%d}"
                ),
                "store_id": world.stores.store_id[r.store_idx],
                "sku": world.products.sku[r.sku_idx],
                "expected_at": local_ts(world, r.store_idx, r.expected_day, DELIVERY_HOUR).isoformat(),
                "expected_units": float(r.units),
                "received_at": local_ts(world, r.store_idx, r.arrival_day, DELIVERY_HOUR).isoformat()
                if received
                else "",
                "received_units": float(r.units) if received else "",
            }
        )
    return pd.DataFrame(rows)


def ground_truth(world: World, spec: WorldSpec) -> list[dict]:
    """Store x SKU pairs whose shelf is empty at "now" or empties before its next delivery arrives."""
    out = []
    n = world.n_hist
    inc = world.incidents
    arrivals = world.deliveries[world.deliveries.arrival_day >= n]
    next_arrival = arrivals.groupby(["store_idx", "sku_idx"]).arrival_day.min().to_dict()
    for s in range(len(world.stores)):
        for k in range(len(world.products)):
            cause = (
                "phantom_stock"
                if inc.phantom[s, k]
                else "late_delivery"
                if inc.late[s, k]
                else "demand_spike"
                if inc.spike[s, k]
                else "natural"
            )
            base = {
                "store_id": world.stores.store_id[s],
                "sku": world.products.sku[k],
                "cause": cause,
                "injected": cause != "natural",
            }
            if inc.phantom[s, k]:
                out.append(
                    {
                        **base,
                        "kind": "phantom_stock",
                        "empty_since": str(local_ts(world, s, int(inc.phantom_start[s, k]), OPEN_HOUR)),
                        "book_units": float(world.book_close[n - 1, s, k]),
                    }
                )
                continue
            if world.shelf_close[n - 1, s, k] <= 0:
                last = np.flatnonzero(~np.isnan(world.empty_at_hour[:n, s, k]))
                since = (
                    local_ts(world, s, int(last[-1]), float(world.empty_at_hour[last[-1], s, k])) if len(last) else None
                )
                out.append({**base, "kind": "empty_now", "empty_since": str(since)})
                continue
            due = next_arrival.get((s, k), n + spec.lookahead_days)
            for d in range(n, min(due, n + spec.lookahead_days)):
                if not np.isnan(world.empty_at_hour[d, s, k]):
                    out.append(
                        {
                            **base,
                            "kind": "empty_before_delivery",
                            "empty_at": str(local_ts(world, s, d, float(world.empty_at_hour[d, s, k]))),
                            "next_delivery_at": str(local_ts(world, s, due, DELIVERY_HOUR))
                            if due < n + spec.lookahead_days
                            else None,
                        }
                    )
                    break
    return out


def promotions_frame(world: World) -> pd.DataFrame:
    """The promotion calendar, chain-wide (empty store_id), past and planned, with inclusive end dates."""
    first = world.dates[0]
    rows = [
        ("", world.products.sku.iloc[k], first + pd.Timedelta(days=d), first + pd.Timedelta(days=d + PROMO_DAYS - 1))
        for k, d in sorted(world.promotions, key=lambda p: (p[1], p[0]))
    ]
    frame = pd.DataFrame(rows, columns=["store_id", "sku", "start_date", "end_date"])
    return frame.assign(
        start_date=pd.to_datetime(frame.start_date).dt.strftime("%Y-%m-%d"),
        end_date=pd.to_datetime(frame.end_date).dt.strftime("%Y-%m-%d"),
    )


def prices_frame(world: World) -> pd.DataFrame:
    """Shelf prices, chain-wide (empty store_id), from each row's date on: history and planned changes."""
    first = world.dates[0]
    rows = [
        ("", world.products.sku.iloc[k], (first + pd.Timedelta(days=d)).strftime("%Y-%m-%d"), price)
        for k, d, price in sorted(world.price_rows, key=lambda r: (r[1], r[0]))
    ]
    return pd.DataFrame(rows, columns=["store_id", "sku", "date", "price"])


def write_world(world: World, spec: WorldSpec, out_dir: Path) -> None:
    """Write reference files, POS files, sensor readings and the ground truth."""
    rng = np.random.default_rng(spec.seed + 1)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "sales").mkdir(exist_ok=True)
    n = world.n_hist
    stores, products = world.stores, world.products
    stores[["store_id", "name", "timezone", "manager_email", "chain", "latitude", "longitude"]].to_csv(
        out_dir / "stores.csv", index=False
    )
    capacity = shelf_capacity(products, stores, spec.shelf_cover_days)
    products.assign(shelf_capacity=capacity, vegetarian=np.where(products["vegetarian"], "yes", "no"))[
        ["sku", "name", "category", "unit_price", "unit_weight_g", "shelf_capacity", "vegetarian"]
    ].to_csv(out_dir / "products.csv", index=False)
    world.members.to_csv(out_dir / "members.csv", index=False)
    world.sensors[["sensor_id", "store_id", "sku", "kind", "tare_g"]].to_csv(out_dir / "sensors.csv", index=False)
    deliveries_frame(world).to_csv(out_dir / "deliveries.csv", index=False)
    promotions_frame(world).to_csv(out_dir / "promotions.csv", index=False)
    prices_frame(world).to_csv(out_dir / "prices.csv", index=False)
    # what a perfect forecaster would predict: the benchmark's lower bound on error
    np.savez_compressed(
        out_dir / "expected_demand.npz",
        stores=stores.store_id.to_numpy(),
        skus=products.sku.to_numpy(),
        start=str(world.dates[0].date()),
        mean=world.expected_demand[: world.n_hist],
    )

    s_idx, k_idx = np.meshgrid(np.arange(len(stores)), np.arange(len(products)), indexing="ij")
    pd.DataFrame(
        {
            "store_id": stores.store_id.to_numpy()[s_idx.ravel()],
            "sku": products.sku.to_numpy()[k_idx.ravel()],
            "as_of": spec.now.isoformat(),
            "book_units": world.book_close[n - 1].ravel(),
        }
    ).to_csv(out_dir / "inventory_records.csv", index=False)

    d_idx, s_idx, k_idx = np.meshgrid(np.arange(n), np.arange(len(stores)), np.arange(len(products)), indexing="ij")
    sales = pd.DataFrame(
        {
            "store_id": stores.store_id.to_numpy()[s_idx.ravel()],
            "sku": products.sku.to_numpy()[k_idx.ravel()],
            "date": world.dates[:n].strftime("%Y-%m-%d").to_numpy()[d_idx.ravel()],
            "units": world.sold[:n].ravel().astype(int),
        }
    )
    sales.to_csv(out_dir / "sales" / "sales_daily.csv", index=False)

    lines = world.purchase_lines
    if len(lines):
        lines = lines.sort_values(["day", "store_idx"], kind="stable").reset_index(drop=True)
        store_ids = stores.store_id.to_numpy()[lines.store_idx.to_numpy()]
        member_ids = world.favourites.member_id.to_numpy()[lines.member_idx.to_numpy()]
        day_str = world.dates.strftime("%Y%m%d").to_numpy()[lines.day.to_numpy()]
        receipts = pd.Series([f"R{s}-{dd}-{m}" for s, dd, m in zip(store_ids, day_str, member_ids, strict=True)])
        pd.DataFrame(
            {
                "store_id": store_ids,
                "receipt_id": receipts,
                "line_no": receipts.groupby(receipts).cumcount().to_numpy() + 1,
                "sku": products.sku.to_numpy()[lines.sku_idx.to_numpy()],
                "date": world.dates.strftime("%Y-%m-%d").to_numpy()[lines.day.to_numpy()],
                "member_id": member_ids,
                "units": 1,
            }
        ).to_csv(out_dir / "sales" / "purchase_lines.csv", index=False)

    with open(out_dir / "sensor_readings.jsonl", "w") as fh:
        for reading in sensor_readings(world, spec, rng):
            fh.write(json.dumps(reading) + "\n")

    empty_days = np.argwhere(~np.isnan(world.empty_at_hour[:n]))
    pd.DataFrame(
        {
            "store_id": stores.store_id.to_numpy()[empty_days[:, 1]],
            "sku": products.sku.to_numpy()[empty_days[:, 2]],
            "date": world.dates.strftime("%Y-%m-%d").to_numpy()[empty_days[:, 0]],
            "empty_from_hour": world.empty_at_hour[:n][~np.isnan(world.empty_at_hour[:n])].round(2),
        }
    ).to_csv(out_dir / "stockout_days.csv", index=False)

    truth = ground_truth(world, spec)
    spec_dict = {k: (str(v) if isinstance(v, date) else v) for k, v in asdict(spec).items()}
    (out_dir / "ground_truth.json").write_text(json.dumps({"now": spec.now.isoformat(), "incidents": truth}, indent=1))
    (out_dir / "world.json").write_text(json.dumps({"spec": spec_dict, "now": spec.now.isoformat()}, indent=1))
    write_truth_files(world, spec, out_dir)


def write_truth_files(world: World, spec: WorldSpec, out_dir: Path) -> None:
    """The hidden truth the actions benchmark scores against, as JSON (a .csv at the top would be read
    as an unknown reference file): member_truth.json (every defection, member_id, day index and date,
    after "now" too; empty without member_behaviour) and product_truth.json (each product's taste group)."""
    defections = [
        {"member_id": str(m), "day": int(d), "date": str(dt)}
        for m, d, dt in world.defections[DEFECTION_COLUMNS].itertuples(index=False)
    ]
    (out_dir / "member_truth.json").write_text(
        json.dumps(
            {"now": spec.now.isoformat(), "member_behaviour": spec.member_behaviour, "defections": defections}, indent=1
        )
    )
    groups = [
        {"sku": str(k), "taste_group": int(g)}
        for k, g in zip(world.products["sku"], world.products["taste_group"], strict=True)
    ]
    (out_dir / "product_truth.json").write_text(json.dumps({"products": groups}, indent=1))


def load_world_meta(world_dir: Path) -> dict:
    """The spec and "now" of a simulated world."""
    return json.loads((Path(world_dir) / "world.json").read_text())


def world_now(world_dir: Path) -> str:
    """The moment a simulated world's history ends (ISO, UTC): the as-of to replay it at
    (SHELFWATCH_AS_OF), since the wall clock has moved on since it was simulated."""
    return json.loads((Path(world_dir) / "ground_truth.json").read_text())["now"]
