"""The Alembic migrations produce exactly sql/schema.py on both databases, and settings come from env."""

from datetime import UTC

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from core.settings import Settings, settings_table
from sql.migrate import migrate
from sql.partitions import autogenerate_includes, is_reading_partition
from sql.schema import metadata


def test_migrated_database_matches_schema(db_url):
    engine = migrate(db_url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "include_name": autogenerate_includes})
        diff = compare_metadata(context, metadata)
        assert diff == [], f"migration and sql/schema.py differ: {diff}"
        tables = {name for name in inspect(conn).get_table_names() if not is_reading_partition(name)}
        assert tables == set(metadata.tables) | {"alembic_version"}
        assert conn.execute(text("select version_num from alembic_version")).scalar() is not None


def test_0008_gives_existing_quarantine_rows_their_channel(db_url):
    """Rows quarantined before 0008 get a channel from their source: a .csv/.parquet path was a sales
    file, anything else an MQTT topic; ingest health then counts MQTT rows by channel, not by `/`."""
    engine = migrate(db_url, "0007")
    rows = [("landing/2026/sales_daily.CSV", "a"), ("/data/lines.parquet", "b"), ("shelfwatch/v1/S001/sensor-7", "c")]
    with engine.begin() as conn:
        for source, digest in rows:
            conn.execute(
                text(
                    "insert into quarantine (source, raw_content, reason, content_hash, quarantined_at) "
                    "values (:s, 'x', 'r', :h, CURRENT_TIMESTAMP)"
                ),
                {"s": source, "h": digest},
            )
    migrate(db_url)
    with engine.connect() as conn:
        channels = dict(conn.execute(text("select source, channel from quarantine")).all())
    assert channels == {
        "landing/2026/sales_daily.CSV": "sales_file",
        "/data/lines.parquet": "sales_file",
        "shelfwatch/v1/S001/sensor-7": "mqtt",
    }


def test_migrate_twice_is_harmless(db_url):
    """A second migrate (every start of every service runs one) keeps the revision, the schema and the rows."""
    engine = migrate(db_url)
    with engine.begin() as conn:
        conn.execute(
            text("insert into stores (store_id, name, timezone, manager_email) values ('S1', 's', 'UTC', 'm@x')")
        )
        revision = conn.execute(text("select version_num from alembic_version")).scalar()
        tables = set(inspect(conn).get_table_names())
    again = migrate(db_url)
    with again.connect() as conn:
        assert conn.execute(text("select version_num from alembic_version")).scalars().all() == [revision]
        assert set(inspect(conn).get_table_names()) == tables
        assert conn.execute(text("select store_id from stores")).scalars().all() == ["S1"]
        context = MigrationContext.configure(conn, opts={"compare_type": True, "include_name": autogenerate_includes})
        assert compare_metadata(context, metadata) == []


def test_one_open_alert_per_store_sku_is_enforced_by_the_database(engine):
    from datetime import datetime

    from sqlalchemy.exc import IntegrityError

    from sql import schema

    now = datetime(2026, 11, 23, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(schema.stores.insert().values(store_id="S1", name="s", timezone="UTC", manager_email="m@x"))
        conn.execute(
            schema.products.insert().values(
                sku="A", name="a", category="c", unit_price=1, unit_weight_g=100, shelf_capacity=5
            )
        )
    row = dict(
        store_id="S1",
        sku="A",
        alert_type="shelf_empty",
        probability=1.0,
        severity=1.0,
        evidence="{}",
        opened_at=now,
        updated_at=now,
    )
    with engine.begin() as conn:
        conn.execute(schema.alerts.insert().values(**row, status="resolved"))
        conn.execute(schema.alerts.insert().values(**row, status="open"))
    with pytest.raises(IntegrityError):
        with engine.begin() as conn:
            conn.execute(schema.alerts.insert().values(**row, status="open"))


def test_settings_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SHELFWATCH_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SHELFWATCH_ALERT_THRESHOLD", "0.7")
    monkeypatch.setenv("SHELFWATCH_FORECAST_WORKERS", "3")
    monkeypatch.delenv("SHELFWATCH_DATABASE_URL", raising=False)
    s = Settings.from_env()
    assert s.alert_probability_threshold == 0.7 and s.forecast_workers == 3
    assert s.db_url == f"sqlite:///{tmp_path.resolve() / 'shelfwatch.db'}"
    assert Settings.from_env(database_url="postgresql+psycopg://h/db").db_url == "postgresql+psycopg://h/db"
    assert "SHELFWATCH_MQTT_URL" in settings_table()
