"""The CX effectiveness report's database side: the notices sent, the members linked to the notified
alerts, their consent, what they bought and their substitutes, read for alerts.cx_effect; and its
result in one sentence for the CX page, the report and the CLI.

A notice is a member put on an alert's CX list or export (`member_contacts`, stockout_notice) or a
back-in-stock e-mail (`member_contacts`, and the outbox's sent back_in_stock rows, at sent_at). An
alert's reference time is its first notice; alerts nobody was told about are not comparable. Only
notices whose whole window is over by `as_of` count, so every member is measured over the same days.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Engine, select

from alerts.cx_effect import notice_effect
from sql import schema

NOTICE_KINDS = ("stockout_notice", "back_in_stock")
NOTICE_COLUMNS = ["member_id", "alert_id", "kind", "at"]


def _utc(ts: datetime | str) -> pd.Timestamp:
    stamp = pd.Timestamp(ts)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def first_notices(contacts: pd.DataFrame, sent: pd.DataFrame, until: pd.Timestamp) -> pd.DataFrame:
    """Each member's first notice per alert and kind, from both sources, at or before `until` (UTC).
    Columns: member_id, alert_id, kind, at."""
    notices = (
        pd.concat([f for f in (contacts, sent) if len(f)], ignore_index=True)
        if len(contacts) or len(sent)
        else pd.DataFrame(columns=NOTICE_COLUMNS)
    )
    notices = notices.assign(at=pd.to_datetime(notices["at"], utc=True))
    notices = notices[notices["kind"].isin(NOTICE_KINDS) & (notices["at"] <= until)]
    return notices.groupby(["member_id", "alert_id", "kind"], as_index=False)["at"].min()[NOTICE_COLUMNS]


def load_effect_inputs(engine: Engine, as_of: datetime, window_days: int = 14) -> dict[str, pd.DataFrame]:
    """notice_effect's frames (notices, linked, members, lines, substitutes) for the notices whose
    `window_days` are over by `as_of`."""
    now = _utc(as_of)
    until = now - pd.Timedelta(days=window_days + 1)  # the notice's day is left out, then window_days more
    c, o, a, am, m, pl, s = (
        schema.member_contacts,
        schema.outbox,
        schema.alerts,
        schema.alert_members,
        schema.members,
        schema.purchase_lines,
        schema.alert_substitutes,
    )
    with engine.connect() as conn:
        contacts = pd.read_sql(
            select(c.c.member_id, c.c.alert_id, c.c.kind, c.c.at).where(c.c.kind.in_(NOTICE_KINDS)), conn
        )
        sent = pd.read_sql(
            select(o.c.member_id, o.c.alert_id, o.c.kind, o.c.sent_at.label("at")).where(
                o.c.kind == "back_in_stock", o.c.status == "sent", o.c.member_id.is_not(None), o.c.sent_at.is_not(None)
            ),
            conn,
        )
        notices = first_notices(contacts, sent, until)
        ids = sorted({int(i) for i in notices["alert_id"]})
        linked = pd.read_sql(
            select(am.c.alert_id, am.c.member_id, a.c.store_id, a.c.sku)
            .join(a, a.c.alert_id == am.c.alert_id)
            .where(am.c.alert_id.in_(ids)),
            conn,
        )
        members = pd.read_sql(
            select(m.c.member_id, m.c.marketing_consent, m.c.opted_out).where(
                m.c.member_id.in_(select(am.c.member_id).where(am.c.alert_id.in_(ids)))
            ),
            conn,
        )
        since = (notices["at"].min() if len(notices) else now).date()
        lines = pd.read_sql(
            select(pl.c.store_id, pl.c.sku, pl.c.date, pl.c.member_id)
            .distinct()
            .join(am, am.c.member_id == pl.c.member_id)
            .where(am.c.alert_id.in_(ids), pl.c.date >= since, pl.c.date <= (now + timedelta(days=1)).date()),
            conn,
        )
        substitutes = pd.read_sql(select(s.c.alert_id, s.c.member_id, s.c.sku).where(s.c.alert_id.in_(ids)), conn)
    reference = notices.groupby("alert_id")["at"].min().rename("reference_at")
    linked = linked.join(reference, on="alert_id")
    members = members.assign(
        marketing_consent=members["marketing_consent"].astype(bool), opted_out=members["opted_out"].astype(bool)
    )
    return {
        "notices": notices,
        "linked": linked,
        "members": members,
        "lines": lines.assign(date=pd.to_datetime(lines["date"])),
        "substitutes": substitutes,
    }


def cx_effect(
    engine: Engine, as_of: datetime, window_days: int = 14, n_boot: int = 2000, seed: int = 0
) -> dict[str, Any]:
    """Did the notices work (alerts.cx_effect.notice_effect over what the database holds at `as_of`):
    its counts, rates, effect and interval, plus `alerts_notified`, `as_of` and the `sentence`."""
    frames = load_effect_inputs(engine, as_of, window_days)
    result = notice_effect(
        frames["notices"],
        frames["linked"],
        frames["members"],
        frames["lines"],
        frames["substitutes"],
        window_days=window_days,
        n_boot=n_boot,
        seed=seed,
    )
    result["alerts_notified"] = int(frames["notices"]["alert_id"].nunique())
    result["as_of"] = _utc(as_of).isoformat()
    result["sentence"] = effect_sentence(result)
    return result


def _percent(rate: float) -> str:
    return f"{rate * 100:.0f} %"


def _points(effect: float) -> str:
    return f"{effect * 100:+.0f}"


def effect_sentence(result: Mapping[str, Any]) -> str:
    """notice_effect's result in words, or why there is nothing to say yet."""
    days = result["window_days"]
    if result.get("effect") is None:
        why = (
            "no member was notified long enough ago"
            if not result.get("alerts_notified") and not result.get("treated_n")
            else "no notified alert also has members we could not contact to compare with"
        )
        return f"Not enough data yet to tell whether notices work: {why} (each notice needs {days} days to show)."
    text = (
        f"Notified members bought the product or a substitute within {days} days"
        f" {_percent(result['treated_rate'])} of the time, against {_percent(result['control_rate'])} of comparable"
        f" members we could not contact: {_points(result['effect'])} points"
    )
    if result.get("ci_low") is None:
        return text + " (one comparable alert: too few for an interval)."
    return text + f" (95 % interval {_points(result['ci_low'])} to {_points(result['ci_high'])})."
