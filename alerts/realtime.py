"""shelf_empty on arrival: the ingest opens (and closes) empty-shelf alerts in the transaction that
stores the reading, so a store manager hears of an empty shelf seconds after the sensor saw it
instead of at the next scheduled detection.

Only the newest shelf reading of a store x SKU counts (by device time: a late, older reading cannot
reopen a shelf that has been restocked since). The scheduled detection later links the affected
members and refines the severity; the store manager's outbox rows are queued here, so the next
`notify send` delivers them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select, tuple_

from alerts.lifecycle import ACTIVE, DETECTOR, record_event, transition
from alerts.notify import message_row
from core.db import as_utc as utc
from core.db import insert_ignore
from core.domain import ALERT_TYPES, SHELF_EMPTY
from core.settings import Settings
from sql import schema

SHELF_KINDS = ("shelf_units", "shelf_weight_g")
RESTOCKED = ALERT_TYPES[SHELF_EMPTY].closes_when
# a sensor reading as the ingest hands it over (iot_ingest): kind, store_id, sku, sensor_id, units, seq,
# device_ts, clock_skew
Reading = dict[str, Any]


def newest_shelf_readings(readings: list[Reading]) -> dict[tuple[str, str], Reading]:
    """Per store x SKU, the batch's newest usable shelf reading (device time, then sequence)."""
    newest: dict[tuple[str, str], Reading] = {}
    for r in readings:
        if r["kind"] not in SHELF_KINDS or r.get("units") is None or r.get("clock_skew"):
            continue
        key = (r["store_id"], r["sku"])
        if key not in newest or (utc(r["device_ts"]), r["seq"]) > (utc(newest[key]["device_ts"]), newest[key]["seq"]):
            newest[key] = r
    return newest


def apply_shelf_readings(
    conn: Connection, readings: list[Reading], settings: Settings, now: datetime
) -> dict[str, int]:
    """Open shelf_empty for shelves that now read empty; resolve it for shelves that read stocked."""
    newest = newest_shelf_readings(readings)
    if not newest:
        return {"opened": 0, "resolved": 0}
    a = schema.alerts
    active = {
        (row.store_id, row.sku): row.alert_id
        for row in conn.execute(
            select(a.c.store_id, a.c.sku, a.c.alert_id).where(
                a.c.alert_type == SHELF_EMPTY, a.c.status.in_(ACTIVE), tuple_(a.c.store_id, a.c.sku).in_(list(newest))
            )
        )
    }
    empty = settings.empty_shelf_units
    to_open = [k for k, r in newest.items() if r["units"] <= empty and k not in active]
    to_resolve = [k for k, r in newest.items() if r["units"] > empty and k in active]
    if not to_open and not to_resolve:
        return {"opened": 0, "resolved": 0}
    latest = latest_device_times(conn, to_open + to_resolve)
    current = [
        k for k in to_open + to_resolve if utc(newest[k]["device_ts"]) >= latest.get(k, utc(newest[k]["device_ts"]))
    ]
    opened = [open_shelf_empty(conn, newest[k], settings, now) for k in to_open if k in current]
    for k in to_resolve:
        if k in current:
            transition(conn, active[k], "resolved", DETECTOR, now, RESTOCKED)
    return {"opened": len(opened), "resolved": len([k for k in to_resolve if k in current])}


def latest_device_times(conn: Connection, keys: list[tuple[str, str]]) -> dict[tuple[str, str], datetime]:
    """The newest stored shelf reading's device time per store x SKU, from latest_sensor_readings (this
    batch's rows included: the insert's trigger folded them in)."""
    latest = schema.latest_sensor_readings
    rows = conn.execute(
        select(latest.c.store_id, latest.c.sku, func.max(latest.c.last_device_ts))
        .where(latest.c.kind.in_(SHELF_KINDS), tuple_(latest.c.store_id, latest.c.sku).in_(keys))
        .group_by(latest.c.store_id, latest.c.sku)
    ).all()
    return {(store_id, sku): utc(ts) for store_id, sku, ts in rows}


def open_shelf_empty(conn: Connection, reading: Reading, settings: Settings, now: datetime) -> int:
    """One shelf_empty alert from one reading, its audit event and the store manager's outbox rows."""
    a, sales, products = schema.alerts, schema.sales_daily, schema.products
    price = conn.execute(select(products.c.unit_price).where(products.c.sku == reading["sku"])).scalar() or 0.0
    recent = (
        select(sales.c.units)
        .where(sales.c.store_id == reading["store_id"], sales.c.sku == reading["sku"])
        .order_by(sales.c.date.desc())
        .limit(28)
        .subquery()
    )
    daily = conn.execute(select(func.avg(recent.c.units))).scalar() or 0.0
    revenue = round(float(daily) * float(price), 2)
    evidence = {
        "source": "sensor",
        "sensor_id": reading["sensor_id"],
        "last_reading_at": utc(reading["device_ts"]).isoformat(),
        "last_reading_units": round(float(reading["units"]), 2),
        "on_shelf": round(max(float(reading["units"]), 0.0), 2),
        "detectors": [SHELF_EMPTY],
        "raised_on_arrival": True,
    }
    alert_id: int = conn.execute(
        a.insert()
        .values(
            store_id=reading["store_id"],
            sku=reading["sku"],
            alert_type=SHELF_EMPTY,
            status="open",
            probability=1.0,
            expected_empty_at=utc(reading["device_ts"]),
            severity=revenue,
            evidence=json.dumps(evidence, sort_keys=True),
            opened_at=now,
            updated_at=now,
        )
        .returning(a.c.alert_id)
    ).scalar_one()
    record_event(
        conn, alert_id, now, DETECTOR, "opened", None, "open", f"reading of sensor {reading['sensor_id']} on arrival"
    )
    kinds = ["store_email"] + (["store_webhook"] if settings.webhook_url else [])
    insert_ignore(
        conn, schema.outbox, [message_row(f"alert:{alert_id}:{kind}:opened", kind, alert_id, now) for kind in kinds]
    )
    return alert_id


def shelf_empty_on_stored(settings: Settings) -> Callable[[Connection, list[Reading], datetime], dict[str, int]]:
    """The ingest's `on_stored` hook: shelf_empty opened and resolved in the transaction that stores
    the readings."""

    def on_stored(conn: Connection, readings: list[Reading], now: datetime) -> dict[str, int]:
        return apply_shelf_readings(conn, readings, settings, now)

    return on_stored
