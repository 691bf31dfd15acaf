"""day partitions for sensor_readings (PostgreSQL) and latest_sensor_readings

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 02:00:00

On PostgreSQL, sensor_readings becomes a table partitioned by device day (sql/partitions.py says why)
with a DEFAULT partition, day partitions for the retained days and the days ahead, and a 64-bit id;
the rows are copied over. On both databases, latest_sensor_readings (one row per sensor) is filled
from the readings and kept by triggers on sensor_readings, in the transaction that inserts or deletes.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from alembic import op

from core.settings import Settings
from sql.partitions import create_default_partition, days_from, ensure_day_partitions

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

READINGS, LATEST = "sensor_readings", "latest_sensor_readings"
KEY = ("store_id", "sku", "sensor_id", "kind")
LATEST_COLUMNS = (*KEY, "units", "seq", "device_ts", "last_device_ts", "last_received_at")
READING_COLUMNS = (
    "reading_id",
    "sensor_id",
    "store_id",
    "sku",
    "kind",
    "value",
    "units",
    "seq",
    "battery",
    "device_ts",
    "received_at",
    "clock_skew",
)


def same_key(a: str, b: str) -> str:
    return " AND ".join(f"{a}.{c} = {b}.{c}" for c in KEY)


def may_be_latest(gone: str, latest: str) -> str:
    """A deleted reading the latest row may rest on: the latest row must be worked out again."""
    return (
        f"({gone}.device_ts >= {latest}.device_ts OR {gone}.device_ts >= {latest}.last_device_ts "
        f"OR {gone}.received_at >= {latest}.last_received_at)"
    )


def newest_per_sensor(source: str) -> str:
    """Per sensor key of `source` (aliased r): its newest trusted reading (clock not skewed; by device
    time, then seq), its newest device time and its newest arrival. In key order, so concurrent
    upserts lock rows in one order and cannot deadlock."""
    key = ", ".join(f"r.{c}" for c in KEY)
    per_sensor = f"PARTITION BY {key}"

    def trusted(c: str) -> str:
        return f"CASE WHEN clock_skew THEN NULL ELSE {c} END"

    return (
        f"SELECT {', '.join(KEY)}, {trusted('units')}, {trusted('seq')}, {trusted('device_ts')}, "
        "last_device_ts, last_received_at "
        f"FROM (SELECT {key}, r.units, r.seq, r.device_ts, r.clock_skew, "
        f"ROW_NUMBER() OVER ({per_sensor} ORDER BY r.clock_skew, r.device_ts DESC, r.seq DESC) AS newest, "
        f"MAX(r.device_ts) OVER ({per_sensor}) AS last_device_ts, "
        f"MAX(r.received_at) OVER ({per_sensor}) AS last_received_at "
        f"FROM {source}) ranked WHERE newest = 1 ORDER BY {', '.join(KEY)}"
    )


def upsert_latest(rows: str) -> str:
    """Fold `rows` (a query of LATEST_COLUMNS, one row per sensor key) into latest_sensor_readings: the
    trusted reading changes only for a newer one (a late, older reading changes nothing); the newest
    device time and arrival only grow."""
    newer = (
        f"excluded.device_ts > {LATEST}.device_ts "
        f"OR (excluded.device_ts = {LATEST}.device_ts AND excluded.seq > {LATEST}.seq) "
        f"OR ({LATEST}.device_ts IS NULL AND excluded.device_ts IS NOT NULL)"
    )
    updates = [
        f"{c} = CASE WHEN {newer} THEN excluded.{c} ELSE {LATEST}.{c} END" for c in ("units", "seq", "device_ts")
    ]
    updates += [
        f"{c} = CASE WHEN excluded.{c} > {LATEST}.{c} THEN excluded.{c} ELSE {LATEST}.{c} END"
        for c in ("last_device_ts", "last_received_at")
    ]
    return (
        f"INSERT INTO {LATEST} ({', '.join(LATEST_COLUMNS)}) {rows} "
        f"ON CONFLICT ({', '.join(KEY)}) DO UPDATE SET {', '.join(updates)}"
    )


def postgresql_triggers() -> list[str]:
    """Statement-level triggers: one upsert per INSERT (or COPY) statement, from its transition table.
    Deletes straight from a partition (retention, partition moves) do not fire them."""
    recompute = (
        f"{READINGS} r WHERE ({', '.join(f'r.{c}' for c in KEY)}) IN (SELECT {', '.join(KEY)} FROM deleted_readings) "
        f"AND NOT EXISTS (SELECT 1 FROM {LATEST} l WHERE {same_key('l', 'r')})"
    )
    return [
        f"CREATE FUNCTION keep_{LATEST}() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$ BEGIN "
        f"{upsert_latest(newest_per_sensor('stored_readings r'))}; RETURN NULL; END $$",
        f"CREATE TRIGGER keep_{LATEST} AFTER INSERT ON {READINGS} REFERENCING NEW TABLE AS stored_readings "
        f"FOR EACH STATEMENT EXECUTE FUNCTION keep_{LATEST}()",
        f"CREATE FUNCTION forget_{LATEST}() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$ BEGIN "
        f"DELETE FROM {LATEST} l USING deleted_readings d WHERE {same_key('l', 'd')} AND {may_be_latest('d', 'l')}; "
        f"{upsert_latest(newest_per_sensor(recompute))}; RETURN NULL; END $$",
        f"CREATE TRIGGER forget_{LATEST} AFTER DELETE ON {READINGS} REFERENCING OLD TABLE AS deleted_readings "
        f"FOR EACH STATEMENT EXECUTE FUNCTION forget_{LATEST}()",
    ]


def sqlite_triggers() -> list[str]:
    """Row-level triggers (SQLite has no other kind); a delete works the sensor out again only when
    the deleted reading may be the one its latest row rests on."""
    trusted = [f"CASE WHEN NEW.clock_skew THEN NULL ELSE NEW.{c} END" for c in ("units", "seq", "device_ts")]
    new_row = "VALUES (" + ", ".join([*(f"NEW.{c}" for c in KEY), *trusted, "NEW.device_ts", "NEW.received_at"]) + ")"
    old_key = " AND ".join(f"{c} = OLD.{c}" for c in KEY)
    sensor_readings = f"{READINGS} r WHERE {same_key('r', 'OLD')}"
    return [
        f"CREATE TRIGGER keep_{LATEST} AFTER INSERT ON {READINGS} BEGIN {upsert_latest(new_row)}; END",
        f"CREATE TRIGGER forget_{LATEST} AFTER DELETE ON {READINGS} "
        f"WHEN EXISTS (SELECT 1 FROM {LATEST} l WHERE {same_key('l', 'OLD')} AND {may_be_latest('OLD', 'l')}) BEGIN "
        f"DELETE FROM {LATEST} WHERE {old_key}; {upsert_latest(newest_per_sensor(sensor_readings))}; END",
    ]


def drop_triggers(dialect: str) -> list[str]:
    drops = [
        f"DROP TRIGGER {name}_{LATEST}" + (f" ON {READINGS}" if dialect == "postgresql" else "")
        for name in ("keep", "forget")
    ]
    if dialect == "postgresql":
        drops += [f"DROP FUNCTION {name}_{LATEST}()" for name in ("keep", "forget")]
    return drops


def readings_columns(reading_id: sa.types.TypeEngine[int]) -> list[sa.Column[Any]]:
    return [
        sa.Column("reading_id", reading_id, autoincrement=False, nullable=False),  # the existing id sequence
        sa.Column("sensor_id", sa.String(length=64), nullable=False),
        sa.Column("store_id", sa.String(length=32), nullable=False),
        sa.Column("sku", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("units", sa.Float(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("battery", sa.Float(), nullable=True),
        sa.Column("device_ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("clock_skew", sa.Boolean(), server_default=sa.text("false"), nullable=False),
    ]


def set_aside_readings(suffix: str) -> str:
    """Rename sensor_readings, its constraints and index out of the way; returns the new name."""
    old = f"{READINGS}_{suffix}"
    op.execute(f"ALTER TABLE {READINGS} RENAME TO {old}")
    op.execute(f"ALTER TABLE {old} RENAME CONSTRAINT pk_{READINGS} TO pk_{old}")
    op.execute(f"ALTER TABLE {old} RENAME CONSTRAINT uq_{READINGS}_key TO uq_{old}_key")
    op.execute(f"ALTER INDEX ix_{READINGS}_store_sku_ts RENAME TO ix_{old}_store_sku_ts")
    return old


def move_readings(source: str, id_type: str) -> None:
    """Hand the id sequence to the new sensor_readings (it goes on after the old ids), copy every
    reading from `source` with its id, drop `source`."""
    sequence = f"{READINGS}_reading_id_seq"
    op.execute(f"ALTER SEQUENCE {sequence} AS {id_type} OWNED BY {READINGS}.reading_id")
    op.execute(f"ALTER TABLE {READINGS} ALTER COLUMN reading_id SET DEFAULT nextval('{sequence}')")
    cols = ", ".join(READING_COLUMNS)
    op.execute(f"INSERT INTO {READINGS} ({cols}) SELECT {cols} FROM {source}")
    op.drop_table(source)


def partition_readings() -> None:
    """PostgreSQL: sensor_readings as a table partitioned by device day, with its rows."""
    old = set_aside_readings("0006")
    op.create_table(
        READINGS,
        *readings_columns(sa.BigInteger()),
        sa.PrimaryKeyConstraint("reading_id", "device_ts", name=f"pk_{READINGS}"),
        sa.UniqueConstraint("sensor_id", "device_ts", "seq", name=f"uq_{READINGS}_key"),
        postgresql_partition_by="RANGE (device_ts)",
    )
    op.create_index(f"ix_{READINGS}_store_sku_ts", READINGS, ["store_id", "sku", "device_ts"])
    bind = op.get_bind()
    settings = Settings.from_env()
    today = datetime.now(UTC).date()
    oldest = bind.execute(sa.text(f"SELECT MIN(device_ts) FROM {old}")).scalar()
    first = max(
        oldest.astimezone(UTC).date() if oldest else today,
        today - timedelta(days=settings.readings_retention_days),
    )
    create_default_partition(bind)
    ensure_day_partitions(
        bind, days_from(min(first, today), today + timedelta(days=settings.readings_partition_days_ahead))
    )
    move_readings(old, "bigint")


def unpartition_readings() -> None:
    """PostgreSQL: back to one plain table (0006), with its rows."""
    old = set_aside_readings("0007")
    op.create_table(
        READINGS,
        *readings_columns(sa.Integer()),
        sa.PrimaryKeyConstraint("reading_id", name=f"pk_{READINGS}"),
        sa.UniqueConstraint("sensor_id", "device_ts", "seq", name=f"uq_{READINGS}_key"),
    )
    op.create_index(f"ix_{READINGS}_store_sku_ts", READINGS, ["store_id", "sku", "device_ts"])
    move_readings(old, "integer")


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.create_table(
        LATEST,
        sa.Column("store_id", sa.String(length=32), nullable=False),
        sa.Column("sku", sa.String(length=32), nullable=False),
        sa.Column("sensor_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("units", sa.Float(), nullable=True),
        sa.Column("seq", sa.Integer(), nullable=True),
        sa.Column("device_ts", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_device_ts", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("store_id", "sku", "sensor_id", "kind", name=op.f("pk_latest_sensor_readings")),
    )
    if dialect == "postgresql":
        partition_readings()
    op.execute(upsert_latest(newest_per_sensor(f"{READINGS} r")))
    for statement in postgresql_triggers() if dialect == "postgresql" else sqlite_triggers():
        op.execute(statement)
    if dialect == "postgresql":  # autovacuum never analyzes a partitioned parent; the planner needs it now
        op.execute(f"ANALYZE {READINGS}, {LATEST}")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for statement in drop_triggers(dialect):
        op.execute(statement)
    if dialect == "postgresql":
        unpartition_readings()
    op.drop_table(LATEST)
