"""What to do about a shelf that will run empty: refill, transfer, emergency order, or nothing.

An alert that only says "empty" leaves the store manager to work out the rest. From the same
lead-time demand distribution as the alert (alerts.risk.predicted_stockouts: the mean and variance
of demand until the next regular delivery), the shelf needs the demand's `service_level` quantile
(SHELFWATCH_SERVICE_LEVEL): the units that last until the truck with that chance. What the shelf
lacks of that comes, in this order, from

1. the store's own backroom (the books beyond what the sensor sees on the shelf), up to the shelf's
   capacity;
2. other stores of the same chain, nearest first: each gives what it holds above its own need until
   its own next delivery at the same service level (a transfer never makes a donor short);
3. an emergency order of the rest.

When nothing is short (the delivery lands before trading needs the units) the action is "nothing"
with the reason. Pure functions over frames: detection passes its stock risks for every store x SKU.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from forecasting.distribution import nb_ppf

REFILL, TRANSFER, ORDER, NOTHING = "refill", "transfer", "emergency_order", "nothing"
ACTION_LABELS = {
    REFILL: "Refill from the backroom",
    TRANSFER: "Transfer from another store",
    ORDER: "Emergency order",
    NOTHING: "Nothing to do",
}
MAX_DONORS = 2  # a transfer plan names at most this many stores: more trips cost more than an order
EARTH_RADIUS_KM = 6371.0
RISK_COLUMNS = [
    "store_id",
    "sku",
    "on_shelf",
    "source",
    "book_units",
    "expected_demand",
    "demand_var",
    "next_delivery_at",
]


def demand_quantile(mean: npt.ArrayLike, var: npt.ArrayLike, level: float) -> np.ndarray:
    """Units that cover demand of this mean and variance with chance `level`: a negative binomial
    matched by moments (Poisson where var <= mean), the same family as the alert's probability."""
    m, v = np.nan_to_num(np.asarray(mean, float)), np.nan_to_num(np.asarray(var, float))
    safe = np.where(m > 0, m, 1.0)
    dispersion = np.maximum(v - safe, 0.0) / safe**2
    return nb_ppf(level, m, dispersion)


def stock_split(risks: pd.DataFrame) -> pd.DataFrame:
    """On-shelf and backroom units per store x SKU. The backroom is known where a sensor reads the
    shelf (the books beyond the shelf); where only the books speak, their units count as the shelf's.
    Columns: store_id, sku, shelf_units, backroom_units, stock_units."""
    shelf = pd.to_numeric(risks["on_shelf"], errors="coerce").fillna(0.0).clip(lower=0.0)
    book = pd.to_numeric(risks["book_units"], errors="coerce")
    backroom = np.floor(
        np.nan_to_num(np.where((risks["source"] == "sensor") & book.notna(), (book - shelf).clip(lower=0.0), 0.0))
    )
    return pd.DataFrame(
        {
            "store_id": risks["store_id"],
            "sku": risks["sku"],
            "shelf_units": shelf.to_numpy(),
            "backroom_units": backroom,
            "stock_units": shelf.to_numpy() + backroom,
        }
    )


def distance_km(lat1: float | None, lon1: float | None, lat2: float | None, lon2: float | None) -> float:
    """Great-circle distance (haversine); NaN when a coordinate is unknown."""
    if lat1 is None or lon1 is None or lat2 is None or lon2 is None:
        return math.nan
    if any(isinstance(v, float) and math.isnan(v) for v in (lat1, lon1, lat2, lon2)):
        return math.nan
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(min(1.0, a)))


def donor_order(stores: pd.DataFrame) -> dict[str, list[tuple[str, float]]]:
    """For each store, the other stores of its chain, nearest first: [(store_id, km)]; stores whose
    distance is unknown come after the known ones, by id. A store without a chain is in the one
    unnamed chain (a retailer with one chain need not fill the column)."""
    frame = stores.copy()
    for col in ("chain", "latitude", "longitude"):
        if col not in frame:
            frame[col] = None
    frame["chain"] = frame["chain"].fillna("").astype(str).str.strip().str.casefold()
    rows = frame[["store_id", "chain", "latitude", "longitude"]].to_dict("records")
    order: dict[str, list[tuple[str, float]]] = {}
    for r in rows:
        lat, lon = pd.to_numeric(r["latitude"], errors="coerce"), pd.to_numeric(r["longitude"], errors="coerce")
        others = []
        for o in rows:
            if o["store_id"] == r["store_id"] or o["chain"] != r["chain"]:
                continue
            km = distance_km(
                lat, lon, pd.to_numeric(o["latitude"], errors="coerce"), pd.to_numeric(o["longitude"], errors="coerce")
            )
            others.append((o["store_id"], km))
        order[r["store_id"]] = sorted(
            others, key=lambda sk: (math.isnan(sk[1]), 0.0 if math.isnan(sk[1]) else sk[1], sk[0])
        )
    return order


def recommend_actions(
    targets: pd.DataFrame,
    risks: pd.DataFrame,
    stores: pd.DataFrame,
    service_level: float,
    capacity: dict[str, float] | None = None,
) -> pd.DataFrame:
    """One recommended action per target shelf.

    `targets`: store_id, sku, and `shelf_empty_now` (True where the shelf is known empty whatever the
    books say: phantom stock, a sensor reading empty). `risks`: every store x SKU's stock risk
    (alerts.detect.stock_risks; RISK_COLUMNS are read), the donors' included. `capacity`: units that
    fit on each SKU's shelf (refills stop there). Returns store_id, sku, action (REFILL | TRANSFER |
    ORDER | NOTHING: the first step), need_units (the demand quantile until the next delivery),
    shelf_units, short_units, refill_units, transfers (list of {store_id, units, km}),
    transfer_units, order_units, expected_demand, next_delivery_at, service_level.
    """
    cols = [
        "store_id",
        "sku",
        "action",
        "need_units",
        "shelf_units",
        "short_units",
        "refill_units",
        "transfers",
        "transfer_units",
        "order_units",
        "backroom_units",
        "expected_demand",
        "next_delivery_at",
        "service_level",
    ]
    if targets.empty:
        return pd.DataFrame(columns=cols)
    risks = risks[RISK_COLUMNS].reset_index(drop=True)
    split = stock_split(risks)
    need = demand_quantile(risks["expected_demand"], risks["demand_var"], service_level)
    # the window's demand is NaN where no forecast reaches the shelf: nothing known to cover
    spare = pd.Series(
        np.floor(
            split["stock_units"].to_numpy() - np.where(np.isnan(risks["expected_demand"].astype(float)), np.inf, need)
        ),
        index=pd.MultiIndex.from_frame(risks[["store_id", "sku"]]),
    )
    at = {k: i for i, k in enumerate(zip(risks["store_id"], risks["sku"], strict=True))}
    donors = donor_order(stores)
    capacity = capacity or {}
    out = []
    for t in targets.to_dict("records"):
        i = at.get((t["store_id"], t["sku"]))
        if i is None:
            continue
        known_empty = bool(t.get("shelf_empty_now", False))
        shelf = 0.0 if known_empty else float(split.at[i, "shelf_units"])
        backroom = float(split.at[i, "backroom_units"])  # known only where a sensor reads the shelf (stock_split)
        demand = risks.at[i, "expected_demand"]
        need_i = float(need[i]) if pd.notna(demand) else math.nan
        short = max(math.ceil(need_i - shelf), 0) if pd.notna(demand) else 0
        cap = capacity.get(t["sku"])
        room = max(math.floor(cap - shelf), 0) if cap is not None and pd.notna(cap) else math.inf
        refill = int(min(backroom, short, room))
        left = short - refill
        transfers: list[dict[str, Any]] = []  # store_id, units, km (None when unknown)
        moved = 0
        for donor, km in donors.get(t["store_id"], []):
            if left <= 0 or len(transfers) == MAX_DONORS:
                break
            give = int(min(spare.get((donor, t["sku"]), 0.0), left))
            if give >= 1:
                transfers.append({"store_id": donor, "units": give, "km": None if math.isnan(km) else round(km, 1)})
                moved += give
                left -= give
        order = int(max(left, 0))
        action = REFILL if refill else TRANSFER if moved else ORDER if order else NOTHING
        out.append(
            {
                "store_id": t["store_id"],
                "sku": t["sku"],
                "action": action,
                "need_units": need_i,
                "shelf_units": shelf,
                "short_units": short,
                "refill_units": refill,
                "transfers": transfers,
                "transfer_units": moved,
                "order_units": order,
                "backroom_units": backroom,
                "expected_demand": None if pd.isna(demand) else float(demand),
                "next_delivery_at": risks.at[i, "next_delivery_at"],
                "service_level": service_level,
            }
        )
    return pd.DataFrame(out, columns=cols)


def action_evidence(row: Mapping[str, Any]) -> dict[str, Any]:
    """The action as the alert's evidence keeps it (JSON-able, small): what to do and the numbers."""
    nxt = row.get("next_delivery_at")
    return {
        "kind": row["action"],
        "need_units": None
        if row["need_units"] is None or pd.isna(row["need_units"])
        else round(float(row["need_units"]), 1),
        "shelf_units": round(float(row["shelf_units"]), 1),
        "short_units": int(row["short_units"]),
        "refill_units": int(row["refill_units"]),
        "transfers": row["transfers"],
        "order_units": int(row["order_units"]),
        "backroom_units": round(float(row["backroom_units"]), 1),
        "expected_demand": None if row["expected_demand"] is None else round(float(row["expected_demand"]), 1),
        "until": pd.Timestamp(nxt).isoformat() if nxt is not None and pd.notna(nxt) else None,
        "service_level": row["service_level"],
    }


def action_text(action: Mapping[str, Any] | None, until_text: str = "") -> str:
    """The action in words, with the numbers behind it: "Refill 4 from the backroom, transfer 6 from
    S003 (12 km): covers 10 of the 14 units needed until the delivery tomorrow 06:00 CET (95 %)".
    `until_text` is the next delivery's time as the store reads it ("" when there is none)."""
    if not action:
        return ""
    level = f"{100 * float(action.get('service_level') or 0):.0f} %"
    until = f"the delivery {until_text}" if until_text else "the end of the forecast"
    if action.get("kind") == NOTHING:
        if action.get("need_units") is None:
            return "Nothing to do yet: no forecast reaches this shelf"
        return f"Nothing to do: the shelf's {action['shelf_units']:g} units last until {until} ({level} chance)"
    steps = []
    if action.get("refill_units"):
        steps.append(f"refill {action['refill_units']} from the backroom")
    for tr in action.get("transfers") or []:
        km = f" ({tr['km']:g} km)" if tr.get("km") is not None else ""
        steps.append(f"transfer {tr['units']} from {tr['store_id']}{km}")
    if action.get("order_units"):
        steps.append(f"emergency order of {action['order_units']}")
    text = ", ".join(steps)
    text = text[:1].upper() + text[1:]
    return (
        f"{text}: {action['short_units']} units short of the {action['need_units']:g} needed until {until} "
        f"({level} chance; {action['shelf_units']:g} on the shelf)"
    )
