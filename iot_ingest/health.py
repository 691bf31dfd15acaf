"""Sensor health: which sensors have gone quiet. The alerting step routes these apart (a data problem,
not an empty shelf)."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import Engine, func, select

from sql import schema


def stale_sensors(engine: Engine, max_age: pd.Timedelta, as_of: pd.Timestamp | None = None) -> pd.DataFrame:
    """Registered sensors whose newest reading (by receive time) is older than `max_age`, or missing
    (read from latest_sensor_readings: one row per sensor).

    Columns: sensor_id, store_id, sku, last_received_at (NaT if never), silent_hours.
    """
    as_of = as_of if as_of is not None else pd.Timestamp.now(tz="UTC")
    latest, s = schema.latest_sensor_readings, schema.sensors
    last = select(latest.c.sensor_id, func.max(latest.c.last_received_at).label("last_received_at")).group_by(latest.c.sensor_id).subquery()
    stmt = select(s.c.sensor_id, s.c.store_id, s.c.sku, last.c.last_received_at).outerjoin(last, last.c.sensor_id == s.c.sensor_id)
    with engine.connect() as conn:
        frame = pd.read_sql(stmt, conn)
    frame["last_received_at"] = pd.to_datetime(frame["last_received_at"], utc=True)
    silent = (as_of - frame["last_received_at"]).dt.total_seconds() / 3600
    frame["silent_hours"] = silent.round(1)
    stale = frame[frame["last_received_at"].isna() | (silent > max_age.total_seconds() / 3600)]
    return stale.sort_values(["store_id", "sensor_id"]).reset_index(drop=True)
