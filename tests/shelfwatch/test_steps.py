"""The production DAGs' operations, without Airflow: landing folder, quarantine gate, ingest health,
retention, database upkeep, failure notices. Both databases, a real HTTP server for the webhook."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from core.db import insert_ignore, upsert
from core.settings import url_from_connection_uri
from shelfwatch.steps import (
    IngestUnhealthy,
    QuarantineShareExceeded,
    apply_retention,
    ingest_health,
    ingest_landing,
    maintain_database,
    notify_task_failure,
    quarantine_gate,
)
from sql import schema
from tests.alerts.test_notify import webhook  # noqa: F401  (fixture)
from tests.iot_ingest.test_consumer import seed

NOW = datetime(2026, 11, 25, 12, tzinfo=UTC)


def load(total, bad, rejected=()):
    return {
        "rows_total": total,
        "rows_quarantined": bad,
        "rows_loaded": total - bad,
        "files_rejected": list(rejected),
        "files_loaded": ["f"] if total else [],
    }


def test_quarantine_gate_passes_small_shares_and_stops_large_ones():
    assert quarantine_gate(load(1000, 10), 0.05) == {"quarantine_share": 0.01, "rows_loaded": 990, "new_data": True}
    assert quarantine_gate(load(0, 0), 0.05)["new_data"] is False
    with pytest.raises(QuarantineShareExceeded, match=r"120 of 1,000 rows quarantined \(12.0%, limit 5.0%\)"):
        quarantine_gate(load(1000, 120), 0.05)
    with pytest.raises(QuarantineShareExceeded, match="landing/x.csv: unreadable"):
        quarantine_gate(load(1000, 0, ["landing/x.csv: unreadable"]), 0.05)


def test_airflow_connection_uris_become_settings():
    assert (
        url_from_connection_uri("database_url", "postgres://u:p@db:5432/shelfwatch")
        == "postgresql+psycopg://u:p@db:5432/shelfwatch"
    )
    assert (
        url_from_connection_uri("mqtt_url", "mqtt://ingest:s3cret@mosquitto:1883")
        == "mqtt://ingest:s3cret@mosquitto:1883"
    )
    with pytest.raises(ValueError, match="connection for webhook_url is not a URI"):
        url_from_connection_uri("webhook_url", "hooks.example")


def test_landing_loads_new_files_once_and_keeps_unreadable_ones(engine, settings, tmp_path):
    seed(engine)
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "sales_1.csv").write_text("store_id,sku,date,units\nS1,A,2026-11-20,4\nS1,A,2026-11-21,-1\n")
    (landing / "weird.csv").write_text("what,is,this\n1,2,3\n")
    first = ingest_landing(settings, landing)
    assert first["rows_loaded"] == 1 and first["rows_quarantined"] == 1 and len(first["files_rejected"]) == 1
    assert "weird.csv" in first["files_rejected"][0]
    with engine.connect() as conn:
        kept = conn.execute(select(schema.quarantine.c.source, schema.quarantine.c.raw_content)).all()
    assert any(src.endswith("weird.csv") and "what,is,this" in raw for src, raw in kept)  # nothing lost
    again = ingest_landing(settings, landing)
    assert again["files_skipped"] == 1 and again["rows_loaded"] == 0


def test_ingest_health_reports_and_fails_loudly(engine, settings):
    seed(engine)
    with pytest.raises(IngestUnhealthy, match="no ingest consumer reported in the last 10 min"):
        ingest_health(settings, now=NOW)
    row = {
        "client_id": "ingest-1",
        "received": 2,
        "stored": 2,
        "duplicates": 0,
        "quarantined": 0,
        "batches": 1,
        "reconnects": 0,
        "db_errors": 0,
        "commit_seconds_total": 0.01,
        "commit_seconds_max": 0.01,
        "readings_per_second": 2.0,
        "updated_at": NOW - timedelta(minutes=2),
    }
    reading = {
        "sensor_id": "S1-U",
        "store_id": "S1",
        "sku": "A",
        "kind": "shelf_units",
        "value": 5.0,
        "units": 5.0,
        "battery": 0.9,
    }
    with engine.begin() as conn:
        upsert(conn, schema.ingest_stats, [row])
        insert_ignore(
            conn,
            schema.sensor_readings,
            [
                {
                    **reading,
                    "seq": 1,
                    "device_ts": NOW - timedelta(seconds=70),
                    "received_at": NOW - timedelta(seconds=60),
                },
                {
                    **reading,
                    "seq": 2,
                    "device_ts": NOW - timedelta(seconds=50),
                    "received_at": NOW - timedelta(seconds=30),
                },
            ],
        )
    health = ingest_health(settings, now=NOW)
    assert health["consumers"] == 1 and health["readings_in_window"] == 2 and health["lag_seconds_median"] == 15.0
    late = {**reading, "seq": 3, "device_ts": NOW - timedelta(minutes=50), "received_at": NOW - timedelta(minutes=1)}
    with engine.begin() as conn:
        insert_ignore(conn, schema.sensor_readings, [late])
    with pytest.raises(IngestUnhealthy, match="p95 lag .* is above 300.0 s"):
        ingest_health(settings, now=NOW)


def test_retention_deletes_only_what_is_past_it_and_maintenance_runs(engine, settings):
    seed(engine)
    reading = {
        "sensor_id": "S1-U",
        "store_id": "S1",
        "sku": "A",
        "kind": "shelf_units",
        "value": 5.0,
        "units": 5.0,
        "battery": 0.9,
    }
    with engine.begin() as conn:
        insert_ignore(
            conn,
            schema.sensor_readings,
            [
                {**reading, "seq": i, "device_ts": NOW - timedelta(days=d), "received_at": NOW - timedelta(days=d)}
                for i, d in enumerate((1, 89, 91, 300))
            ],
        )
        insert_ignore(
            conn,
            schema.quarantine,
            [
                {
                    "channel": "sales_file",
                    "source": "f.csv",
                    "raw_content": "x",
                    "reason": "r",
                    "content_hash": str(d),
                    "quarantined_at": NOW - timedelta(days=d),
                }
                for d in (10, 200)
            ],
        )
    assert apply_retention(settings, NOW)["readings_deleted"] == 2
    assert apply_retention(settings, NOW)["readings_deleted"] == 0  # idempotent
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(schema.sensor_readings)).scalar_one() == 2
        assert conn.execute(select(func.count()).select_from(schema.quarantine)).scalar_one() == 1
    done = maintain_database(settings)
    assert done["dialect"] == engine.dialect.name


def test_task_failure_reaches_the_webhook(settings, webhook):  # noqa: F811
    received, _, url = webhook
    from dataclasses import replace

    assert notify_task_failure(
        replace(settings, webhook_url=url), "sales_ingest", "quarantine_gate", "manual__1", 1, "boom", None
    ) == {"posted": True}
    key, payload = received[0]
    assert (
        key == "airflow:sales_ingest:manual__1:quarantine_gate:1"
        and "sales_ingest.quarantine_gate failed" in payload["text"]
    )
    assert notify_task_failure(settings, "d", "t", "r", 1, "boom", None) == {
        "posted": False
    }  # no webhook configured: logged only
