"""Database engines and write helpers: one entry point for SQLite and PostgreSQL (migrations: sql.migrate)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Connection, Engine, Table, create_engine, event
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry

if TYPE_CHECKING:  # pandas is imported where a frame is written: engines and inserts do without it
    import pandas as pd
    import psycopg
    from sqlalchemy.dialects.postgresql import Insert as PostgresqlInsert
    from sqlalchemy.dialects.sqlite import Insert as SqliteInsert

# the dialect's insert construct (both have on_conflict_do_nothing / on_conflict_do_update)
DialectInsert: TypeAlias = "Callable[[Table], PostgresqlInsert | SqliteInsert]"
# writes a frame's rows (columns named as the table's) into a table; returns how many
BulkWriter: TypeAlias = "Callable[[Connection, Table, pd.DataFrame], int]"


class NoDataYet(LookupError):
    """A step found nothing to work on yet (e.g. no sales on a fresh deployment): schedulers skip it
    rather than fail and page operations."""


@lru_cache(maxsize=16)
def get_engine(url: str) -> Engine:
    """A pooled engine per URL; SQLite gets WAL and foreign keys so it behaves like PostgreSQL.

    `hide_parameters`: a database error never quotes the values it was given (members' contact
    details among them) in its message or traceback."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 60}, hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True, hide_parameters=True)


def insert_ignore(conn: Connection, table: Table, rows: list[dict[str, Any]], chunk: int = 5000) -> int:
    """Insert rows, skipping those whose key already exists; returns how many were new.

    The same statement on SQLite and PostgreSQL (`ON CONFLICT DO NOTHING`), so loads are idempotent.
    """
    if not rows:
        return 0
    insert = dialect_insert(conn)
    added = 0
    for start in range(0, len(rows), chunk):
        # RETURNING counts only the rows really inserted, in batches on both dialects.
        stmt = insert(table).on_conflict_do_nothing().returning(*table.primary_key.columns)
        added += len(conn.execute(stmt, rows[start : start + chunk]).all())
    return added


def upsert(conn: Connection, table: Table, rows: list[dict[str, Any]], chunk: int = 5000) -> int:
    """Insert rows or update the non-key columns of existing ones (reference data that may change)."""
    if not rows:
        return 0
    insert = dialect_insert(conn)
    keys = [c.name for c in table.primary_key.columns]
    total = 0
    for start in range(0, len(rows), chunk):
        stmt = insert(table)
        updates = {c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys and c.name in rows[0]}
        stmt = (
            stmt.on_conflict_do_update(index_elements=keys, set_=updates) if updates else stmt.on_conflict_do_nothing()
        )
        total += len(conn.execute(stmt.returning(*table.primary_key.columns), rows[start : start + chunk]).all())
    return total


def dialect_insert(conn: Connection) -> DialectInsert:
    """The dialect's `insert` construct, which has `on_conflict_do_nothing` / `on_conflict_do_update`."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert


def copy_rows(conn: Connection, table: Table, frame: pd.DataFrame) -> int:
    """PostgreSQL: COPY a frame's rows (columns named as the table's) into `table`, in the connection's
    transaction; per-row INSERT binding costs more than the database's own work for bulk writes."""
    columns = ", ".join(frame.columns)
    # SQLAlchemy types the driver's own connection as Any | None; on PostgreSQL it is psycopg 3's
    driver = cast("psycopg.Connection[Any]", conn.connection.driver_connection)
    with driver.cursor() as cur:
        with cur.copy(f"COPY {table.name} ({columns}) FROM STDIN") as copy:
            for row in frame.itertuples(index=False, name=None):
                copy.write_row(row)
    return len(frame)


def insert_rows(conn: Connection, table: Table, frame: pd.DataFrame, chunk: int = 10000) -> int:
    """Batched INSERTs of a frame's rows (executemany): SQLite's bulk write."""
    rows = frame.to_dict("records")
    for start in range(0, len(rows), chunk):
        conn.execute(table.insert(), rows[start : start + chunk])
    return len(rows)


def bulk_writer(conn: Connection) -> BulkWriter:
    """How to write many rows on this connection: COPY on PostgreSQL, batched INSERTs elsewhere."""
    return copy_rows if conn.dialect.name == "postgresql" else insert_rows


def as_utc(ts: datetime) -> datetime:
    """A timestamp read back from either database as an aware UTC one: SQLite returns them naive
    (stored as UTC), PostgreSQL aware."""
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def store_zone(zone: str | None) -> ZoneInfo:
    """A store's time zone; an unknown name in the reference data reads as UTC (and is labelled so
    wherever a time is shown), so one bad row never breaks a page, report or e-mail."""
    try:
        return ZoneInfo(zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def local_time(ts: datetime | str | None, zone: str | None, with_zone: bool = True) -> str:
    """A stored time as a person in the store reads it: "2026-11-30 18:00 CET" in the store's own
    zone (UTC when the zone is unknown), always labelled; "" for no time. Accepts datetimes (pandas
    timestamps too) and ISO strings (evidence JSON); naive ones are UTC, as stored."""
    if ts is None or ts == "" or ts != ts:  # None, empty, NaN/NaT
        return ""
    stamp = datetime.fromisoformat(ts) if isinstance(ts, str) else ts
    local = as_utc(stamp).astimezone(store_zone(zone))
    return local.strftime("%Y-%m-%d %H:%M %Z" if with_zone else "%Y-%m-%d %H:%M")
