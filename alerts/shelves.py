"""One line per shelf (store x SKU): what a person refilling it needs to read.

Detection raises one alert per store x SKU x type, so an empty shelf is often two or three alerts
(shelf_empty, predicted_stockout, phantom_stockout, sensor_stale). The people who act on it think in
shelves: `shelf_lines` folds a shelf's active alerts into one line with a plain-language reason built
from the evidence (store-local times, labelled with the zone) and the severity said in words
(favourite members affected, sales at risk) instead of the bare rank key.

Pure pandas over frames the caller read (the web inbox reads one page of them; the report can read
all): no database, no web.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from alerts.actions import ACTION_LABELS, action_text
from core import domain
from core.db import as_utc, local_time, store_zone
from core.domain import PHANTOM_STOCKOUT, PREDICTED_STOCKOUT, SENSOR_STALE, label_of, rank_of, ranked

ACTIVE = ("open", "acknowledged")  # worst first: a shelf with one open alert is open
# Each type's label, rank and reason wording are its core.domain.ALERT_TYPES entry; this mapping is
# that registry's labels as the web's filters read them, not a second list.
TYPE_LABELS = {t.name: t.label for t in ranked()}
# How detection ranks (alerts.detect.severity), said in words where the money or members are unknown.
SEVERITY_MADE_OF = (
    "ranked by likelihood × urgency × (daily sales value + 2 per favourite member + their loyalty scores)"
)
LINE_COLUMNS = [
    "store_id",
    "sku",
    "product",
    "alert_ids",
    "alert_types",
    "type_labels",
    "status",
    "open_alerts",
    "severity",
    "probability",
    "expected_empty_at",
    "opened_at",
    "members",
    "evidence",
    "priority",
    "reason",
    "units_short",
    "value_at_risk",
    "impact",
    "action_kind",
    "action",
    "escalated",
    "acknowledged_by",
]


def _stamp(ts: object) -> datetime | None:
    """A stored time (datetime, pandas Timestamp or evidence ISO string) as an aware UTC datetime."""
    if ts is None or ts == "" or (not isinstance(ts, str) and pd.isna(ts)):
        return None
    stamp = datetime.fromisoformat(ts) if isinstance(ts, str) else pd.Timestamp(ts).to_pydatetime()
    return as_utc(stamp)


def when(ts: object, zone: str | None, now: datetime | None = None) -> str:
    """A time as the store reads it, short where "now" makes it clear: "today 17:00 CET",
    "tomorrow 06:00 CET", "yesterday 18:00 GMT"; further away "Wed 25 Nov 06:00 CET"; without `now`
    the full store-local time of core.db.local_time. Always labelled with the zone; "" for no time."""
    stamp = _stamp(ts)
    if stamp is None:
        return ""
    if now is None:
        return local_time(stamp, zone)
    tz = store_zone(zone)
    local = stamp.astimezone(tz)
    days = (local.date() - as_utc(now).astimezone(tz).date()).days
    day = {-1: "yesterday", 0: "today", 1: "tomorrow"}.get(days)
    return local.strftime(f"{day} %H:%M %Z") if day else local.strftime("%a %d %b %H:%M %Z")


def _n(x: float) -> str:
    """A count of units as people write it: 12, 3.1, 0."""
    x = float(x)
    return f"{x:.0f}" if abs(x - round(x)) < 0.05 else f"{x:.1f}"


def _num(ev: Mapping[str, Any], key: str) -> float | None:
    v = ev.get(key)
    if v is None or isinstance(v, bool):
        return None
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def likelihood(p: float) -> str:
    """A probability in words: people act on "likely", not on 0.72 (the sentence adds the number)."""
    return (
        "Almost certain" if p >= 0.95 else "Likely" if p >= 0.7 else "More likely than not" if p >= 0.5 else "Possibly"
    )


@dataclass
class _Shelf:
    """One shelf's evidence as the reason wordings of core.domain read it (core.domain.ShelfEvidence)."""

    types: Sequence[str]
    ev: Mapping[str, Any]
    probability: float
    expected_empty_at: Any
    zone: str | None
    now: datetime | None

    def num(self, key: str) -> float | None:
        return _num(self.ev, key)

    def units(self, x: float) -> str:
        return _n(x)

    def when(self, ts: Any) -> str:
        return when(ts, self.zone, self.now)

    def likelihood(self, p: float) -> str:
        return likelihood(p)


def reason(
    types: Sequence[str],
    ev: Mapping[str, Any],
    probability: float,
    expected_empty_at: object,
    zone: str | None,
    now: datetime | None = None,
) -> str:
    """Why the shelf needs attention, in one or two sentences from the shelf's combined evidence (the
    keys alerts.detect.alert_candidates and alerts.realtime write), times store-local."""
    shelf = _Shelf(types, ev, probability, expected_empty_at, zone, now)
    # each type's own sentences (its core.domain.ALERT_TYPES entry), the most concrete claim first
    sentences = [text for t in ranked() if t.name in types for text in t.reason(shelf)]
    deliveries = []
    if ev.get("late_delivery_since"):
        deliveries.append(f"the delivery due {when(ev['late_delivery_since'], zone, now)} has not arrived")
    if ev.get("next_delivery_at") and any(t not in domain.ALERT_TYPES or domain.ALERT_TYPES[t].stockout for t in types):
        units = _num(ev, "next_delivery_units")
        deliveries.append(
            f"next delivery {when(ev['next_delivery_at'], zone, now)}" + (f", {_n(units)} units" if units else "")
        )
    if deliveries and sentences:
        sentences[0] += "; " + "; ".join(deliveries)
    return ". ".join(sentences)


def units_short(types: Sequence[str], ev: Mapping[str, Any], empty_now: bool) -> tuple[float | None, str]:
    """Expected units the shelf will not sell, and what that means ("short before the next delivery"):
    the forecast demand until the next delivery beyond what is on the shelf; for phantom stock (the
    evidence keeps no forecast) the usual daily sales, each day. (None, "") when the evidence does not say."""
    demand = _num(ev, "expected_demand_until_delivery")
    if demand is not None:
        on_shelf = 0.0 if empty_now else (_num(ev, "on_shelf") or 0.0)
        return max(demand - on_shelf, 0.0), "short before the next delivery"
    usual = _num(ev, "usual_daily_units")
    if PHANTOM_STOCKOUT in types and usual:
        return usual, "not sold each day"
    return None, ""


def impact(members: int, short: float | None, over: str, price: float | None) -> tuple[str, float | None]:
    """The severity in words: members affected (a count, never who), and units short with their
    value at shelf price; where the money is unknown, what the rank is made of. Returns the text and
    the value at risk (None when unknown)."""
    parts = [
        f"{members} favourite member{'' if members == 1 else 's'} affected"
        if members
        else "no favourite members affected"
    ]
    value = None
    if short is not None and short > 0:
        units = "under 1 unit" if short < 1 else f"about {short:.0f} unit{'' if round(short) == 1 else 's'}"
        if price is not None and price > 0:
            value = round(short * price, 2)
            units += f" (worth {value:,.2f} at shelf price)"
        parts.append(f"{units} {over}")
    elif short is not None:
        parts.append(f"{over} only if sales beat the forecast")
    if value is None:
        parts.append(SEVERITY_MADE_OF)
    return "; ".join(parts), value


def priority(types: Sequence[str], expected_empty_at: object, now: datetime | None) -> str:
    """When to act, in words, from the claims and the expected empty time: "Act now" for a shelf seen
    or inferred empty, "Today" within 24 hours, else "Soon"; a silent sensor alone is "Check sensor"."""
    if any(t.empty_now for t in ranked() if t.name in types):
        return "Act now"
    if PREDICTED_STOCKOUT not in types:
        return "Check sensor"
    empty_at = _stamp(expected_empty_at)
    if empty_at is None or now is None:
        return "Soon"
    if empty_at <= as_utc(now):
        return "Act now"
    return "Today" if empty_at <= as_utc(now) + timedelta(hours=24) else "Soon"


def combined_evidence(alerts: Sequence[tuple[str, Mapping[str, Any] | str | None]]) -> dict[str, Any]:
    """A shelf's alerts' evidence, (alert type, evidence) pairs, in one dict: the keys are mostly
    shared (one stock position per shelf); where two alerts say different things the more concrete
    claim (the lower core.domain rank) wins. A silent sensor's last reading is kept apart (`stale_last_reading_at`)."""
    merged: dict[str, Any] = {}
    for alert_type, stored in sorted(alerts, key=lambda te: -rank_of(te[0])):
        ev: dict[str, Any] = json.loads(stored) if isinstance(stored, str) else dict(stored or {})
        if alert_type == SENSOR_STALE and "last_reading_at" in ev:
            ev["stale_last_reading_at"] = ev.pop("last_reading_at")
        merged.update({k: v for k, v in ev.items() if v is not None or k not in merged})
    merged["detectors"] = sorted({t for t, _ in alerts})
    return merged


def _earliest(values: Iterable[Any]) -> pd.Timestamp | None:
    present = [v for v in values if v is not None and not pd.isna(v)]
    return min(present) if present else None


def shelf_lines(
    alerts: pd.DataFrame, zone: str | Mapping[str, str] | None, now: datetime | None = None
) -> pd.DataFrame:
    """Active alerts (one row per alert) -> one line per (store_id, sku), most severe first.

    Reads the columns alert_id, store_id, sku, alert_type, status, probability, expected_empty_at,
    severity, evidence (dict or JSON) and opened_at; optional: product, unit_price, escalated_at,
    acknowledged_by, and the linked favourite members as `shelf_members` (distinct per shelf) or per
    alert as `members` / `members_affected` (the shelf's alerts link the same favourites: the largest
    count is taken). `zone` is the store's time zone, or a mapping store_id -> zone for several stores
    (the report); `now` makes times relative ("tomorrow 06:00 CET") and dates the urgency.

    A line: all its alert ids and types, the worst status, the largest severity and probability, the
    earliest expected empty and opening times, the combined evidence, `reason` (plain language),
    `priority` (Act now / Today / Soon / Check sensor), `units_short`, `value_at_risk` (units short x
    unit price, None when unknown), `impact` (the severity in words), and the recommended action
    (alerts.actions) as `action_kind` (its label) and `action` (in words, with the numbers).

    The frame is prepared once (times parsed, alerts ordered by claim) and the shelves folded in plain
    Python: a page of lines costs about a millisecond, not a pandas call per shelf.
    """
    alerts = alerts[alerts["status"].isin(ACTIVE)] if len(alerts) else alerts
    if not len(alerts):
        return pd.DataFrame(columns=LINE_COLUMNS)
    members_col = next((c for c in ("shelf_members", "members", "members_affected") if c in alerts), None)
    frame = alerts.assign(
        _rank=[rank_of(t) for t in alerts["alert_type"]],
        expected_empty_at=pd.to_datetime(alerts["expected_empty_at"], utc=True),
        opened_at=pd.to_datetime(alerts["opened_at"], utc=True),
    )
    shelves: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in frame.sort_values(["_rank", "alert_id"], kind="stable").to_dict("records"):
        shelves.setdefault((row["store_id"], row["sku"]), []).append(row)
    lines = []
    for (store_id, sku), rows in shelves.items():
        types = list(dict.fromkeys(r["alert_type"] for r in rows))
        ev = combined_evidence([(r["alert_type"], r["evidence"]) for r in rows])
        empty_at = _earliest(r["expected_empty_at"] for r in rows)
        probability = max(float(r["probability"]) for r in rows)
        members = max(int(r[members_col]) if members_col and pd.notna(r[members_col]) else 0 for r in rows)
        price = rows[0].get("unit_price")
        price = float(price) if price is not None and pd.notna(price) else None
        urgent = priority(types, empty_at, now)
        short, over = units_short(types, ev, empty_now=urgent == "Act now")
        said, value = impact(members, short, over, price)
        store_zone_name = zone.get(store_id) if isinstance(zone, Mapping) else zone
        action = ev.get("action") if isinstance(ev.get("action"), dict) else None
        acknowledged = list(dict.fromkeys(r["acknowledged_by"] for r in rows if r.get("acknowledged_by")))
        n_open = sum(r["status"] == "open" for r in rows)
        lines.append(
            {
                "store_id": store_id,
                "sku": sku,
                "product": rows[0].get("product", sku),
                "alert_ids": [int(r["alert_id"]) for r in rows],
                "alert_types": types,
                "type_labels": [label_of(t) for t in types],
                "status": "open" if n_open else "acknowledged",
                "open_alerts": n_open,
                "severity": max(float(r["severity"]) for r in rows),
                "probability": probability,
                "expected_empty_at": empty_at,
                "opened_at": _earliest(r["opened_at"] for r in rows),
                "members": members,
                "evidence": ev,
                "priority": urgent,
                "reason": reason(types, ev, probability, empty_at, store_zone_name, now),
                "units_short": short,
                "value_at_risk": value,
                "impact": said,
                "action_kind": ACTION_LABELS.get(action["kind"]) if action else None,
                "action": action_text(action, when(action.get("until"), store_zone_name, now)) if action else "",
                "escalated": any(r.get("escalated_at") is not None and not pd.isna(r["escalated_at"]) for r in rows),
                "acknowledged_by": ", ".join(acknowledged) or None,
            }
        )
    out = pd.DataFrame(lines, columns=LINE_COLUMNS)
    return out.sort_values(["severity", "sku"], ascending=[False, True], kind="stable").reset_index(drop=True)
