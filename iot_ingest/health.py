"""Sensor health: which sensors have gone quiet, by the one stale-sensor rule of
core.domain. The alerting step routes these apart (a data problem, not an empty shelf)."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Engine, func, select

from core.domain import is_stale, silent_hours
from sql import schema


def stale_sensors(engine: Engine, stale_after_hours: float, as_of: pd.Timestamp | None = None) -> pd.DataFrame:
    """Registered sensors that are stale at `as_of` (default now): never heard from, or whose newest
    trusted reading (device time, from latest_sensor_readings: one row per sensor) is at least
    `stale_after_hours` old.

    Columns: sensor_id, store_id, sku, last_reading_at (NaT if never), silent_hours.
    """
    as_of = as_of if as_of is not None else pd.Timestamp.now(tz="UTC")
    latest, s = schema.latest_sensor_readings, schema.sensors
    last = (
        select(latest.c.sensor_id, func.max(latest.c.device_ts).label("last_reading_at"))
        .group_by(latest.c.sensor_id)
        .subquery()
    )
    stmt = select(s.c.sensor_id, s.c.store_id, s.c.sku, last.c.last_reading_at).outerjoin(
        last, last.c.sensor_id == s.c.sensor_id
    )
    with engine.connect() as conn:
        frame = pd.read_sql(stmt, conn)
    frame["last_reading_at"] = pd.to_datetime(frame["last_reading_at"], utc=True)
    silent = silent_hours(frame["last_reading_at"], as_of)
    frame["silent_hours"] = silent.round(1)
    stale = frame[is_stale(silent, stale_after_hours)]
    return stale.sort_values(["store_id", "sensor_id"]).reset_index(drop=True)
