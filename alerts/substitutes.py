"""Substitutes for a member's missing favourite: in-stock products of the same store they are likely to
accept, so a stock-out notice can offer something instead of only bad news.

A candidate is in the favourite's category, on the shelf (the caller's `in_stock`), and never breaks
a vegetarian favourite. Its score in [0, 1] weighs what members with the same favourite also buy
(co-purchase), what the member bought themselves, and how close its size and price are; a vegetarian
favourite's candidate of unknown kind counts for less.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import numpy.typing as npt
import pandas as pd

CO_PURCHASE_WEIGHT = 0.40  # members with the same favourite who also buy it: the strongest evidence
OWN_HISTORY_WEIGHT = 0.25  # the member bought it themselves: 1 - 0.5^days (0.5 after one day, 0.75 after two)
SIZE_WEIGHT = 0.20  # exp(-|ln(size_c / size_f)|): 1 for the same size, 0.5 for twice or half
PRICE_WEIGHT = 0.15  # exp(-|ln(price_c / price_f)|), the same measure over unit prices
UNKNOWN_MEASURE = 0.5  # size or price closeness when a size or price is missing or zero
UNKNOWN_VEGETARIAN_FACTOR = 0.8  # a vegetarian favourite's candidate of unknown kind: allowed, scored lower
PRIOR_MEMBERS = (
    5.0  # co-purchase share smoothing: (n_both + a x prior) / (n_fav + a), prior = the product's buyer share
)
FAVOURITE_DAYS = 2  # a member "loves" a product they bought on at least this many days of the window
SIMILAR = 0.8  # closeness at or above this reads "similar" in the reason

COLUMNS = ["alert_id", "member_id", "rank", "sku", "score", "reason"]


def member_purchase_days(lines: pd.DataFrame) -> pd.DataFrame:
    """Distinct days each member bought each SKU (any store). Columns: member_id, sku, days."""
    lines = lines.dropna(subset=["member_id"])
    days = lines[["member_id", "sku"]].assign(date=pd.to_datetime(lines["date"]).dt.normalize())
    return days.drop_duplicates().groupby(["member_id", "sku"]).size().rename("days").reset_index()


def smoothed_share(
    n_both: npt.ArrayLike, n_fav: npt.ArrayLike, prior: npt.ArrayLike, strength: float = PRIOR_MEMBERS
) -> np.ndarray:
    """(n_both + a x prior) / (n_fav + a): few members with a favourite say little, so their share
    leans on how common the product is among all members."""
    return (np.asarray(n_both, float) + strength * np.asarray(prior, float)) / (np.asarray(n_fav, float) + strength)


def _fans_and_buyers(
    days: pd.DataFrame, min_days: int, skus: Iterable[str] | None = None, other_skus: Iterable[str] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    """(member, favourite SKU) pairs with >= min_days purchase days, (member, SKU) purchases, and each
    SKU's buyer share among all members in the window."""
    members = days["member_id"].nunique()
    prior = (days.groupby("sku")["member_id"].nunique() / max(members, 1)).rename("prior")
    fans = days[days["days"] >= min_days][["member_id", "sku"]]
    buyers = days[["member_id", "sku"]]
    if skus is not None:
        fans = fans[fans["sku"].isin(skus)]
    if other_skus is not None:
        buyers = buyers[buyers["sku"].isin(other_skus)]
    return fans, buyers, prior


def co_purchase_shares(
    lines: pd.DataFrame,
    min_days: int = FAVOURITE_DAYS,
    skus: Iterable[str] | None = None,
    other_skus: Iterable[str] | None = None,
    strength: float = PRIOR_MEMBERS,
) -> pd.DataFrame:
    """What members with the same favourite also buy: among members who bought `sku` on >= `min_days`
    days, how many (`n_both`) also bought `other_sku`, and the smoothed share (smoothed_share).

    `skus` / `other_skus` restrict either side (the pairs a caller needs), so the pairs stay few.
    Only pairs with n_both >= 1 are returned. Columns: sku, other_sku, n_fav, n_both, share.
    """
    cols = ["sku", "other_sku", "n_fav", "n_both", "share"]
    days = member_purchase_days(lines)
    if days.empty:
        return pd.DataFrame(columns=cols)
    fans, buyers, prior = _fans_and_buyers(days, min_days, skus, other_skus)
    n_fav = fans.groupby("sku").size().rename("n_fav")
    pairs = fans.merge(buyers.rename(columns={"sku": "other_sku"}), on="member_id")
    pairs = pairs[pairs["sku"] != pairs["other_sku"]]
    out = pairs.groupby(["sku", "other_sku"]).size().rename("n_both").reset_index()
    out = out.join(n_fav, on="sku").join(prior, on="other_sku")
    out["share"] = smoothed_share(out["n_both"], out["n_fav"], out["prior"], strength)
    return out[cols].sort_values(["sku", "share", "other_sku"], ascending=[True, False, True], ignore_index=True)


def vegetarian_flag(values: pd.Series) -> pd.Series:
    """1.0 vegetarian, 0.0 not, NaN unknown (None, NaN and pd.NA all read as unknown)."""
    return values.map(
        lambda v: np.nan if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)) else float(bool(v))
    )


def closeness(candidate: npt.ArrayLike, favourite: npt.ArrayLike) -> np.ndarray:
    """exp(-|ln(c / f)|) = min/max: 1 for equal, 0.5 for double or half; UNKNOWN_MEASURE when either
    is missing or not positive."""
    c, f = np.asarray(candidate, float), np.asarray(favourite, float)
    ok = (c > 0) & (f > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(ok, np.minimum(c, f) / np.where(ok, np.maximum(c, f), 1.0), UNKNOWN_MEASURE)
    return ratio


def candidate_pairs(affected: pd.DataFrame, products: pd.DataFrame, in_stock: pd.DataFrame) -> pd.DataFrame:
    """Every (store, favourite, candidate) allowed by the rules: in stock at the store, same category,
    not the favourite, never known non-vegetarian for a vegetarian favourite.
    Columns: store_id, fav_sku, sku and both products' name, unit_price, unit_weight_g, veg."""
    info = products.assign(veg=vegetarian_flag(products["vegetarian"]) if "vegetarian" in products else np.nan)
    info = info[["sku", "name", "category", "unit_price", "unit_weight_g", "veg"]].drop_duplicates("sku")
    favs = affected[["store_id", "sku"]].drop_duplicates().merge(info, on="sku")
    favs = favs.rename(columns={c: f"fav_{c}" for c in favs.columns if c != "store_id"})
    shelf = in_stock[["store_id", "sku"]].drop_duplicates().merge(info, on="sku")
    pairs = favs.merge(shelf, left_on=["store_id", "fav_category"], right_on=["store_id", "category"])
    pairs = pairs[pairs["sku"] != pairs["fav_sku"]]
    return pairs[~((pairs["fav_veg"] == 1.0) & (pairs["veg"] == 0.0))].reset_index(drop=True)


def suggest_substitutes(
    affected: pd.DataFrame, products: pd.DataFrame, in_stock: pd.DataFrame, lines: pd.DataFrame, max_per_member: int = 3
) -> pd.DataFrame:
    """Up to `max_per_member` in-stock substitutes per member linked to an alert, best first.

    `affected`: alert_id, store_id, sku (the missing favourite), member_id. `products`: sku, name,
    category, unit_price, unit_weight_g, vegetarian. `in_stock`: store_id, sku on the shelf with no
    open alert (nothing else is suggested). `lines`: the recent window's store_id, sku, date, member_id.
    Co-purchase leaves the member out (their own purchases count once, as own history); ties go to
    the lower SKU. Columns: alert_id, member_id, rank, sku, score, reason.
    """
    affected = affected.dropna(subset=["member_id"])
    pairs = candidate_pairs(affected, products, in_stock) if len(affected) and len(in_stock) else pd.DataFrame()
    if pairs.empty:
        return pd.DataFrame(columns=COLUMNS)
    days = member_purchase_days(lines)
    fans, buyers, prior = _fans_and_buyers(days, FAVOURITE_DAYS, set(pairs["fav_sku"]), set(pairs["sku"]))
    n_fav = fans.groupby("sku").size().rename("n_fav")
    n_both = (
        fans.merge(buyers.rename(columns={"sku": "other_sku"}), on="member_id")
        .groupby(["sku", "other_sku"])
        .size()
        .rename("n_both")
    )

    rows = affected[["alert_id", "member_id", "store_id", "sku"]].drop_duplicates().rename(columns={"sku": "fav_sku"})
    rows = rows.merge(pairs, on=["store_id", "fav_sku"])
    member_days = days.set_index(["member_id", "sku"])["days"]
    own = member_days.reindex(pd.MultiIndex.from_arrays([rows["member_id"], rows["sku"]]), fill_value=0).to_numpy(float)
    fav_own = member_days.reindex(
        pd.MultiIndex.from_arrays([rows["member_id"], rows["fav_sku"]]), fill_value=0
    ).to_numpy(float)
    is_fan = fav_own >= FAVOURITE_DAYS
    fan_count = n_fav.reindex(rows["fav_sku"], fill_value=0).to_numpy(float) - is_fan  # leave the member out
    both = n_both.reindex(pd.MultiIndex.from_arrays([rows["fav_sku"], rows["sku"]]), fill_value=0).to_numpy(float) - (
        is_fan & (own > 0)
    )
    base = prior.reindex(rows["sku"], fill_value=0.0).to_numpy(float)

    co = smoothed_share(both, fan_count, base)
    size = closeness(rows["unit_weight_g"], rows["fav_unit_weight_g"])
    price = closeness(rows["unit_price"], rows["fav_unit_price"])
    history = 1.0 - 0.5**own
    unknown_veg = (rows["fav_veg"] == 1.0).to_numpy() & rows["veg"].isna().to_numpy()
    score = CO_PURCHASE_WEIGHT * co + OWN_HISTORY_WEIGHT * history + SIZE_WEIGHT * size + PRICE_WEIGHT * price
    rows = rows.assign(
        score=np.round(score * np.where(unknown_veg, UNKNOWN_VEGETARIAN_FACTOR, 1.0), 4),
        size_close=size,
        price_close=price,
        n_fav=fan_count.astype(int),
        n_both=both.astype(int),
        own_days=own.astype(int),
    )

    rows = rows.sort_values(
        ["alert_id", "member_id", "score", "sku"], ascending=[True, True, False, True], kind="stable"
    )
    rows["rank"] = rows.groupby(["alert_id", "member_id"]).cumcount() + 1
    top = rows[rows["rank"] <= max_per_member].reset_index(drop=True)
    return top.assign(reason=substitute_reasons(top))[COLUMNS]


def _grams(weight: float) -> str:
    return f"{weight:.0f}" if weight >= 10 else f"{weight:.2g}"


def substitute_reasons(rows: pd.DataFrame) -> list[str]:
    """Why each candidate was offered, in words: kind, size, price, co-purchase, own history."""
    reasons = []
    for r in rows.itertuples(index=False):
        kind = ["same category"]
        if r.fav_veg == 1.0:
            kind.append("vegetarian" if r.veg == 1.0 else "vegetarian not known")
        if r.unit_weight_g > 0 and r.fav_unit_weight_g > 0:
            sizes = f"{_grams(r.unit_weight_g)} g vs {_grams(r.fav_unit_weight_g)} g"
            kind.append(f"similar size ({sizes})" if r.size_close >= SIMILAR else f"size {sizes}")
        if r.unit_price > 0 and r.fav_unit_price > 0:
            prices = f"{r.unit_price:.2f} vs {r.fav_unit_price:.2f}"
            kind.append(f"similar price ({prices})" if r.price_close >= SIMILAR else f"price {prices}")
        parts = [", ".join(kind)]
        if r.n_both > 0:
            parts.append(f"{r.n_both} of {r.n_fav} members who love {r.fav_name} also buy it")
        if r.own_days > 0:
            parts.append(f"they bought it themselves on {r.own_days} day{'s' if r.own_days != 1 else ''}")
        reasons.append("; ".join(parts))
    return reasons


def shelves_in_stock(risks: pd.DataFrame, alerted: pd.DataFrame) -> pd.DataFrame:
    """Store x SKU a substitute may come from: at least one unit on the shelf (`risks`' on_shelf) and
    no active alert of any kind (`alerted`: store_id, sku), as a silent sensor's shelf is not known
    to be stocked either. Columns: store_id, sku."""
    on_shelf = pd.to_numeric(risks["on_shelf"], errors="coerce") >= 1 if len(risks) else pd.Series(dtype=bool)
    shelf = (
        risks.loc[on_shelf, ["store_id", "sku"]].drop_duplicates()
        if len(risks)
        else pd.DataFrame(columns=["store_id", "sku"])
    )
    keys = set(zip(alerted["store_id"], alerted["sku"], strict=True)) if len(alerted) else set()
    free = [key not in keys for key in zip(shelf["store_id"], shelf["sku"], strict=True)]
    return shelf[free].reset_index(drop=True)


def substitute_slots(substitutes: pd.DataFrame, blocked_skus: Iterable[str], slots: int = 3) -> pd.DataFrame:
    """Each member's substitutes as the CX export's columns substitute_1..`slots`, "Name (SKU)", best
    first, leaving out `blocked_skus` (those with an alert of their own at the store now) and moving
    the rest up; "" where there is none. `substitutes`: member_id, rank, sku, name. Columns:
    member_id, substitute_1..substitute_<slots>."""
    cols = [f"substitute_{i}" for i in range(1, slots + 1)]
    kept = substitutes[~substitutes["sku"].isin(set(blocked_skus))].sort_values(["member_id", "rank"])
    if kept.empty:
        return pd.DataFrame(columns=["member_id", *cols])
    kept = kept.assign(slot=kept.groupby("member_id").cumcount() + 1, label=kept["name"] + " (" + kept["sku"] + ")")
    wide = kept[kept["slot"] <= slots].pivot(index="member_id", columns="slot", values="label")
    wide = wide.reindex(columns=range(1, slots + 1)).fillna("")
    wide.columns = cols
    return wide.reset_index()
