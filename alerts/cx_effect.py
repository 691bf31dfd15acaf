"""Did notifying members work? Notified members against linked members of the same alerts who could
not be contacted (no marketing consent), by whether they bought the product or one of their suggested
substitutes at the alert's store soon after.

Members of one alert share its shelf, its timing and its substitutes, so the interval resamples whole
alerts (a cluster bootstrap), and only alerts with both notified and control members are compared.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

BOOTSTRAP_BATCH = 250  # resamples computed at once: bounds memory at batch x alerts
UNIT_KEY = ["alert_id", "member_id"]


def _day(times: pd.Series) -> pd.Series:
    """UTC timestamps (or dates) as naive midnights, the granularity of purchase lines."""
    ts = pd.to_datetime(times, utc=True)
    return ts.dt.tz_localize(None).dt.normalize()


def treated_units(notices: pd.DataFrame, linked: pd.DataFrame, kind: str | None = None) -> pd.DataFrame:
    """Notified (alert, member) pairs, measured from their first notice (of `kind`, when given).
    Columns: alert_id, member_id, store_id, sku, start (the notice's UTC day)."""
    sent = notices if kind is None else notices[notices["kind"] == kind]
    first = sent.assign(start=_day(sent["at"])).groupby(UNIT_KEY, as_index=False)["start"].min()
    where = linked[[*UNIT_KEY, "store_id", "sku"]].drop_duplicates(UNIT_KEY)
    return first.merge(where, on=UNIT_KEY)[[*UNIT_KEY, "store_id", "sku", "start"]]


def control_units(linked: pd.DataFrame, members: pd.DataFrame, notices: pd.DataFrame) -> pd.DataFrame:
    """Linked members without marketing consent who were never notified, measured from their alert's
    reference time. Columns: alert_id, member_id, store_id, sku, start."""
    no_consent = members.loc[members["marketing_consent"].eq(False), "member_id"]
    pairs = linked.drop_duplicates(UNIT_KEY)
    pairs = pairs[pairs["member_id"].isin(no_consent) & ~pairs["member_id"].isin(notices["member_id"])]
    return pairs.assign(start=_day(pairs["reference_at"]))[[*UNIT_KEY, "store_id", "sku", "start"]]


def bought_within(
    units: pd.DataFrame, lines: pd.DataFrame, substitutes: pd.DataFrame | None, window_days: int
) -> np.ndarray:
    """Whether each unit's member bought the alert's SKU or one of their substitutes at the alert's store
    in the `window_days` days after its start day. The start day itself is left out: daily lines cannot
    tell a purchase before the notice from one after it."""
    if units.empty or lines.empty:
        return np.zeros(len(units), bool)
    units = units.reset_index(drop=True).assign(unit=lambda u: np.arange(len(u)))
    targets = units[["unit", *UNIT_KEY, "store_id", "sku", "start"]]
    if substitutes is not None and len(substitutes):
        extra = targets.drop(columns="sku").merge(substitutes[[*UNIT_KEY, "sku"]].drop_duplicates(), on=UNIT_KEY)
        targets = pd.concat([targets, extra], ignore_index=True)
    bought = lines[lines["member_id"].isin(units["member_id"])][["store_id", "sku", "member_id", "date"]]
    hits = targets.merge(
        bought.assign(date=pd.to_datetime(bought["date"]).dt.normalize()), on=["store_id", "sku", "member_id"]
    )
    after = (hits["date"] > hits["start"]) & (hits["date"] <= hits["start"] + pd.Timedelta(days=window_days))
    return np.isin(units["unit"].to_numpy(), hits.loc[after, "unit"].to_numpy())


def _rate_difference(
    n_t: np.ndarray, b_t: np.ndarray, n_c: np.ndarray, b_c: np.ndarray, axis: int = -1
) -> np.ndarray | np.floating[Any]:
    """Pooled treated rate minus pooled control rate over (resampled) alerts: one number for one set
    of alerts, an array for the bootstrap's batch of resamples."""
    treated_rate = b_t.sum(axis=axis) / n_t.sum(axis=axis)
    difference: np.ndarray | np.floating[Any] = treated_rate - b_c.sum(axis=axis) / n_c.sum(axis=axis)
    return difference


def compare_groups(treated: pd.DataFrame, control: pd.DataFrame, n_boot: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Treated and control counts and rates over the comparable alerts, their difference (`effect`, in
    rate units: 0.6 = 60 percentage points) and its 95 % cluster-bootstrap interval (percentile).
    Both frames: alert_id, bought."""
    per_alert = pd.concat(
        [
            treated.groupby("alert_id")["bought"].agg(n_t="size", b_t="sum"),
            control.groupby("alert_id")["bought"].agg(n_c="size", b_c="sum"),
        ],
        axis=1,
    ).fillna(0)
    comparable = per_alert[(per_alert["n_t"] > 0) & (per_alert["n_c"] > 0)].sort_index()
    n_t, b_t, n_c, b_c = (comparable[c].to_numpy(float) for c in ("n_t", "b_t", "n_c", "b_c"))
    out: dict[str, Any] = {
        "treated_n": int(n_t.sum()),
        "treated_bought": int(b_t.sum()),
        "treated_rate": float(b_t.sum() / n_t.sum()) if n_t.sum() else None,
        "control_n": int(n_c.sum()),
        "control_bought": int(b_c.sum()),
        "control_rate": float(b_c.sum() / n_c.sum()) if n_c.sum() else None,
        "effect": None,
        "ci_low": None,
        "ci_high": None,
        "alerts": len(comparable),
        "alerts_left_out": len(per_alert) - len(comparable),
        "note": None,
    }
    if comparable.empty:
        out["note"] = "no alert has both notified and control members"
        return out
    out["effect"] = float(_rate_difference(n_t, b_t, n_c, b_c))
    if len(comparable) < 2:
        out["note"] = "one comparable alert: too few to resample for an interval"
        return out
    boot = stats.bootstrap(
        (n_t, b_t, n_c, b_c),
        _rate_difference,
        n_resamples=n_boot,
        batch=BOOTSTRAP_BATCH,
        vectorized=True,
        paired=True,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    out["ci_low"], out["ci_high"] = float(boot.confidence_interval.low), float(boot.confidence_interval.high)
    return out


def notice_effect(
    notices: pd.DataFrame,
    linked: pd.DataFrame,
    members: pd.DataFrame,
    lines: pd.DataFrame,
    substitutes: pd.DataFrame | None = None,
    window_days: int = 14,
    n_boot: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Purchase rate of notified members against uncontactable members of the same alerts.

    `notices`: member_id, alert_id, kind, at (UTC). `linked`: alert_id, member_id, store_id, sku,
    reference_at. `members`: member_id, marketing_consent, opted_out. `lines`: store_id, sku, date,
    member_id. `substitutes` (optional): alert_id, member_id, sku, counted as buying the product.
    Overall, a notified member counts once per alert, from their first notice; `by_kind` compares each
    kind's notices with the same control (from the alert's reference time). Returns compare_groups'
    keys plus window_days, n_boot and by_kind {kind: compare_groups' keys}.
    """
    if notices is None or notices.empty:
        notices = pd.DataFrame(columns=["member_id", "alert_id", "kind", "at"])
    control = control_units(linked, members, notices) if len(linked) else pd.DataFrame(columns=[*UNIT_KEY, "start"])
    control = control.assign(bought=bought_within(control, lines, substitutes, window_days))

    def measured(kind: str | None = None) -> dict[str, Any]:
        treated = (
            treated_units(notices, linked, kind)
            if len(notices) and len(linked)
            else pd.DataFrame(columns=[*UNIT_KEY, "start"])
        )
        treated = treated.assign(bought=bought_within(treated, lines, substitutes, window_days))
        return compare_groups(treated, control, n_boot, seed)

    result = measured() | {"window_days": window_days, "n_boot": n_boot}
    result["by_kind"] = {kind: measured(kind) for kind in sorted(notices["kind"].dropna().unique())}
    return result
