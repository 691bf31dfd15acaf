"""Favourite products of loyalty members, derived from their purchase lines.

Rule (thresholds in Settings): a SKU at a store is a member's favourite when, within the last
`window_days`, the member bought it there on at least `min_days` distinct days and last bought it no
more than `max_days_since` days ago. Score = distinct purchase days x exp(-days since last / 30):
frequent and recent buyers first.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def favourite_members(
    lines: pd.DataFrame, as_of: pd.Timestamp, window_days: int = 90, min_days: int = 3, max_days_since: int = 45
) -> pd.DataFrame:
    """Columns: store_id, sku, member_id, purchase_days, days_since_last, score."""
    cols = ["store_id", "sku", "member_id", "purchase_days", "days_since_last", "score"]
    lines = lines.dropna(subset=["member_id"])
    if lines.empty:
        return pd.DataFrame(columns=cols)
    day = pd.to_datetime(lines["date"])
    today = pd.Timestamp(as_of.date()) if hasattr(as_of, "date") else pd.Timestamp(as_of)
    recent = lines[(day > today - pd.Timedelta(days=window_days)) & (day < today)].assign(date=day)
    agg = (
        recent.groupby(["store_id", "sku", "member_id"])
        .agg(purchase_days=("date", "nunique"), last=("date", "max"))
        .reset_index()
    )
    agg["days_since_last"] = (today - agg["last"]).dt.days
    fav = agg[(agg["purchase_days"] >= min_days) & (agg["days_since_last"] <= max_days_since)].copy()
    fav["score"] = (fav["purchase_days"] * np.exp(-fav["days_since_last"] / 30.0)).round(4)
    return fav[cols].sort_values(["store_id", "sku", "score"], ascending=[True, True, False]).reset_index(drop=True)


def contactable(members_of_alert: pd.DataFrame, members: pd.DataFrame) -> pd.DataFrame:
    """Only members with marketing consent who have not opted out may be contacted."""
    m = members_of_alert.merge(members, on="member_id")
    return m[m["marketing_consent"].astype(bool) & ~m["opted_out"].astype(bool)]
