"""PostgreSQL day partitions of `sensor_readings`: names, bounds and DDL, shared by migration 0007 and
housekeeping. SQLite keeps one plain table.

The partition key is the device time (UTC days), not the arrival time: PostgreSQL enforces a unique key
on a partitioned table only if the key holds the partition key, and the dedup key is
(sensor_id, device_ts, seq). A redelivered reading has the original's device time, so it meets the
original in the same partition, whatever day it arrives. A DEFAULT partition takes what no day
partition covers (clocks far off, days not created yet), so an insert never fails.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Connection, text

from sql import schema

if TYPE_CHECKING:
    from alembic.runtime.environment import NameFilterParentNames, NameFilterType

PARENT = schema.sensor_readings.name
DEFAULT_PARTITION = f"{PARENT}_default"
DAY_PARTITION = re.compile(rf"^{PARENT}_p(\d{{8}})$")
COLUMNS = ", ".join(c.name for c in schema.sensor_readings.columns)


def partition_name(day: date) -> str:
    return f"{PARENT}_p{day:%Y%m%d}"


def partition_day(name: str) -> date | None:
    """The day a partition's name stands for, or None for any other table."""
    found = DAY_PARTITION.match(name)
    return datetime.strptime(found.group(1), "%Y%m%d").date() if found else None


def is_reading_partition(name: str) -> bool:
    """A partition of sensor_readings (sql/schema.py describes the parent only)."""
    return name == DEFAULT_PARTITION or partition_day(name) is not None


def autogenerate_includes(name: str | None, type_: NameFilterType, parent_names: NameFilterParentNames) -> bool:
    """Alembic's `include_name`: compare sql/schema.py's tables, which leave the partitions out (only a
    schema's name is ever None: the default schema)."""
    return not (type_ == "table" and name is not None and is_reading_partition(name))


def day_bounds(day: date) -> tuple[str, str]:
    """The partition's range as UTC timestamp literals: [midnight, next midnight)."""
    start = datetime.combine(day, time(), tzinfo=UTC)
    return start.isoformat(sep=" "), (start + timedelta(days=1)).isoformat(sep=" ")


def days_from(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def day_partitions(conn: Connection) -> dict[date, str]:
    """The day partitions that exist, by day."""
    names = conn.execute(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = CAST(:parent AS regclass)"
        ),
        {"parent": PARENT},
    ).scalars()
    return {day: name for name in names if (day := partition_day(name)) is not None}


def create_default_partition(conn: Connection) -> None:
    conn.execute(text(f"CREATE TABLE {DEFAULT_PARTITION} PARTITION OF {PARENT} DEFAULT"))


def create_day_partition(conn: Connection, day: date) -> int:
    """Create one day's partition; returns how many readings it took over from the DEFAULT partition.

    PostgreSQL refuses a new partition while the DEFAULT one holds rows of its range (e.g. from a
    clock running days ahead), so those rows are moved into the new table before it is attached.
    Nothing leaves sensor_readings for good, so the latest-reading triggers (on the parent) stay out.
    """
    name, (start, end) = partition_name(day), day_bounds(day)
    conn.execute(text(f"CREATE TABLE {name} (LIKE {PARENT} INCLUDING DEFAULTS)"))
    moved = conn.execute(
        text(
            f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} WHERE device_ts >= :start AND device_ts < :end "
            f"RETURNING {COLUMNS}) "
            f"INSERT INTO {name} ({COLUMNS}) SELECT {COLUMNS} FROM moved"
        ),
        {"start": start, "end": end},
    ).rowcount
    conn.execute(text(f"ALTER TABLE {PARENT} ATTACH PARTITION {name} FOR VALUES FROM ('{start}') TO ('{end}')"))
    return moved


def ensure_day_partitions(conn: Connection, days: list[date]) -> list[str]:
    """Create the partitions of `days` that do not exist yet; returns the names created."""
    existing = day_partitions(conn)
    missing = [day for day in days if day not in existing]
    for day in missing:
        create_day_partition(conn, day)
    return [partition_name(day) for day in missing]


def drop_day_partitions_before(conn: Connection, cutoff: datetime) -> list[str]:
    """Drop the day partitions wholly older than `cutoff` (their day ends at or before it)."""
    old = sorted(
        name for day, name in day_partitions(conn).items() if day + timedelta(days=1) <= cutoff.astimezone(UTC).date()
    )
    for name in old:
        conn.execute(text(f"DROP TABLE {name}"))
    return old


def delete_default_rows_before(conn: Connection, before: datetime) -> int:
    """Delete the DEFAULT partition's readings that arrived before `before`; returns how many."""
    return conn.execute(
        text(f"DELETE FROM {DEFAULT_PARTITION} WHERE received_at < :before"), {"before": before}
    ).rowcount
