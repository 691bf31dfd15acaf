"""The database side of the members-at-risk list: the purchase lines and the empty shelves it reads,
the `member_risk` table it replaces, and the list CX reads back. The maths is alerts.at_risk.

Empty shelves come from two places: `stockout_days` (a day's share of trading hours the shelf was
empty) and the shelf_empty / phantom_stockout alerts (every store-local day they were active, as
a whole day: an alert does not say when in the day the shelf emptied).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, delete, func, insert, or_, select

from alerts.at_risk import COLUMNS, LIST_WINDOW_DAYS, AsOf, members_at_risk
from core.db import store_zone
from core.domain import EMPTY_NOW_TYPES
from core.settings import Settings
from sql import schema

FAVOURITE_DAYS = 180  # purchase history read: favourites are what a member bought over half a year
TRADING_OPENS, TRADING_CLOSES = 8.0, 22.0  # store-local trading hours the empty share is a share of
OUTAGE_COLUMNS = ["store_id", "sku", "date", "empty_share"]
LIST_COLUMNS = [
    "rank",
    "member_id",
    "score",
    "reason",
    "home_store_id",
    "contactable",
    "favourites",
    "favourites_out_30",
    "out_days_30",
    "favourites_out_90",
    "out_days_90",
    "missed_visits_30",
    "days_since_last_visit",
    "usual_interval_days",
    "as_of",
]


def _utc(as_of: AsOf) -> pd.Timestamp:
    ts = pd.Timestamp(as_of)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def stockout_day_outages(days: pd.DataFrame) -> pd.DataFrame:
    """stockout_days as outages: the share of the 08-22 trading day the shelf was empty,
    (22 - empty_from_hour) / 14 within [0, 1]; a whole day when the hour is unknown."""
    hour = pd.to_numeric(days["empty_from_hour"], errors="coerce")
    share = ((TRADING_CLOSES - hour) / (TRADING_CLOSES - TRADING_OPENS)).clip(0.0, 1.0).fillna(1.0)
    return days.assign(date=pd.to_datetime(days["date"]), empty_share=share)[OUTAGE_COLUMNS].reset_index(drop=True)


def alert_day_outages(alerts: pd.DataFrame, zones: Mapping[str, str], as_of: AsOf) -> pd.DataFrame:
    """Each store-local day an empty-shelf alert was active, from opened_at to resolved_at (still
    active: to `as_of`), as a whole empty day. `alerts`: store_id, sku, opened_at, resolved_at (UTC)."""
    if alerts.empty:
        return pd.DataFrame(columns=OUTAGE_COLUMNS)
    now = _utc(as_of)
    spans = []
    for r in alerts.itertuples(index=False):
        zone = store_zone(zones.get(r.store_id))
        start = pd.Timestamp(r.opened_at)
        end = now if pd.isna(r.resolved_at) else min(pd.Timestamp(r.resolved_at), now)
        start, end = (t.tz_localize("UTC") if t.tzinfo is None else t for t in (start, end))
        if end < start:
            continue
        days = pd.date_range(start.tz_convert(zone).date(), end.tz_convert(zone).date(), freq="D")
        spans.append(pd.DataFrame({"store_id": r.store_id, "sku": r.sku, "date": days, "empty_share": 1.0}))
    return pd.concat(spans, ignore_index=True)[OUTAGE_COLUMNS] if spans else pd.DataFrame(columns=OUTAGE_COLUMNS)


def load_risk_inputs(
    engine: Engine, as_of: AsOf, favourite_days: int = FAVOURITE_DAYS
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What members_at_risk reads before `as_of`: members' purchase lines of the last `favourite_days`
    (store_id, sku, date, member_id) and the outages of the last 90 days, both sources together."""
    now = _utc(as_of)
    today = now.date()
    lines_from = today - timedelta(days=favourite_days + 1)
    outages_from = today - timedelta(days=LIST_WINDOW_DAYS + 1)
    pl, sd, a, st = schema.purchase_lines, schema.stockout_days, schema.alerts, schema.stores
    with engine.connect() as conn:
        lines = pd.read_sql(
            select(pl.c.store_id, pl.c.sku, pl.c.date, pl.c.member_id).where(
                pl.c.member_id.is_not(None), pl.c.date >= lines_from, pl.c.date <= today
            ),
            conn,
        )
        days = pd.read_sql(select(sd).where(sd.c.date >= outages_from, sd.c.date <= today), conn)
        alerts = pd.read_sql(
            select(a.c.store_id, a.c.sku, a.c.opened_at, a.c.resolved_at).where(
                a.c.alert_type.in_(EMPTY_NOW_TYPES),  # the alerts that say the shelf is empty now
                a.c.opened_at <= now.to_pydatetime(),
                or_(
                    a.c.resolved_at.is_(None),
                    a.c.resolved_at >= (now - pd.Timedelta(days=LIST_WINDOW_DAYS + 1)).to_pydatetime(),
                ),
            ),
            conn,
        )
        zones = dict(conn.execute(select(st.c.store_id, st.c.timezone)).all())
    for col in ("opened_at", "resolved_at"):
        alerts[col] = pd.to_datetime(alerts[col], utc=True)
    found = [frame for frame in (stockout_day_outages(days), alert_day_outages(alerts, zones, now)) if len(frame)]
    outages = pd.concat(found, ignore_index=True) if found else pd.DataFrame(columns=OUTAGE_COLUMNS)
    return lines.assign(date=pd.to_datetime(lines["date"])), outages


INTEGER_COLUMNS = {"rank", "favourites", "favourites_out_30", "favourites_out_90", "days_since_last_visit"}


def _value(column: str, v: Any) -> Any:  # a cell of any column's type
    """A frame cell as the database takes it: NaN as NULL, whole numbers as int, numpy scalars as Python ones."""
    if v is None or (isinstance(v, (float, np.floating)) and np.isnan(v)):
        return None
    if column in INTEGER_COLUMNS:
        return int(v)
    return v.item() if isinstance(v, np.generic) else v


def refresh_member_risk(
    engine: Engine, as_of: AsOf | None = None, settings: Settings | None = None
) -> dict[str, str | int | float | None]:
    """Rank the members at risk at `as_of` (default: the settings' clock) and replace `member_risk`
    whole, in one transaction: a re-run on the same data leaves the same table."""
    settings = settings or Settings()
    now = _utc(as_of if as_of is not None else settings.clock())
    lines, outages = load_risk_inputs(engine, now)
    risk = members_at_risk(lines, outages, now, FAVOURITE_DAYS, settings.favourite_min_purchase_days)
    rows = [{**{c: _value(c, r[c]) for c in COLUMNS}, "as_of": now.to_pydatetime()} for r in risk.to_dict("records")]
    with engine.begin() as conn:
        conn.execute(delete(schema.member_risk))
        if rows:
            conn.execute(insert(schema.member_risk), rows)
    return {
        "as_of": now.isoformat(),
        "members_at_risk": len(rows),
        "outage_days": int(len(outages)),
        "top_score": float(risk["score"].iloc[0]) if len(risk) else None,
    }


def at_risk_count(engine: Engine) -> int:
    """How many members the at-risk list holds."""
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(schema.member_risk)).scalar_one()


def at_risk_list(engine: Engine, limit: int | None = 50, offset: int = 0) -> tuple[pd.DataFrame, int]:
    """One page of the ranked list as last refreshed, with each member's home store and whether CX may
    contact them (marketing consent and not opted out), and how many members it holds in all. Never
    contact details. Columns: LIST_COLUMNS."""
    r, m = schema.member_risk, schema.members
    contactable = (m.c.marketing_consent.is_(True) & m.c.opted_out.is_(False)).label("contactable")
    stmt = (
        select(
            r.c.rank,
            r.c.member_id,
            r.c.score,
            r.c.reason,
            m.c.home_store_id,
            contactable,
            r.c.favourites,
            r.c.favourites_out_30,
            r.c.out_days_30,
            r.c.favourites_out_90,
            r.c.out_days_90,
            r.c.missed_visits_30,
            r.c.days_since_last_visit,
            r.c.usual_interval_days,
            r.c.as_of,
        )
        .join(m, m.c.member_id == r.c.member_id)
        .order_by(r.c.rank)
        .offset(offset)
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    total = at_risk_count(engine)
    with engine.connect() as conn:
        frame = pd.read_sql(stmt, conn)
    frame["contactable"] = frame["contactable"].astype(bool)
    frame["as_of"] = pd.to_datetime(frame["as_of"], utc=True)
    return frame[LIST_COLUMNS], total
