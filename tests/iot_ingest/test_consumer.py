"""MQTT contract and consumer: against the real Mosquitto (or the embedded broker) and both databases."""

import threading
import uuid
from datetime import UTC, datetime

import orjson
import pytest
from sqlalchemy import func, select

from core.db import insert_ignore
from iot_ingest.consumer import drain, open_session
from iot_ingest.contract import KnownEntities, parse_broker_url, parse_message, topic_for
from lab.brokers import EmbeddedBroker
from lab.publisher import publish_raw, publish_readings
from sql import schema

PREFIX = "shelfwatch/v1"
NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
KNOWN = KnownEntities(frozenset({"S1"}), {"A": 250.0, "B": 100.0}, {"S1-W": 50.0})


def reading(seq=1, **over):
    base = {
        "sensor_id": "S1-U",
        "store_id": "S1",
        "sku": "A",
        "kind": "shelf_units",
        "value": 7,
        "ts": "2026-11-23T10:00:00+01:00",
        "seq": seq,
        "battery": 0.9,
    }
    return {**base, **over}


def parse(payload, topic=None):
    item = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return parse_message(PREFIX, topic or topic_for(PREFIX, "S1", "S1-U"), item, KNOWN, NOW)


def test_valid_reading_is_converted_to_utc():
    rows, bad = parse(reading())
    assert bad == [] and rows[0]["units"] == 7.0
    assert rows[0]["device_ts"] == datetime(2026, 11, 23, 9, tzinfo=UTC)


def test_future_device_time_is_stored_but_flagged():
    rows, bad = parse(reading(ts="2026-11-25T10:00:00+00:00"))
    assert bad == [] and rows[0]["clock_skew"] is True
    assert parse(reading())[0][0]["clock_skew"] is False


def test_weight_is_converted_with_tare_and_unit_weight():
    rows, _ = parse(reading(sensor_id="S1-W", kind="shelf_weight_g", value=1050.0), topic_for(PREFIX, "S1", "S1-W"))
    assert rows[0]["units"] == pytest.approx((1050 - 50) / 250)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b'{"sensor_id": "S1-U", "value": ', "malformed JSON"),
        (reading(value=-3), "field 'value' is -3 (must be >= 0)"),
        (reading(sku="ZZ"), "unknown sku 'ZZ'"),
        (reading(kind="temperature"), "field 'kind' is 'temperature'"),
        (reading(battery=1.7), "field 'battery' is 1.7 (must be between 0 and 1)"),
        (reading(ts="2026-11-23T10:00:00"), "needs a UTC offset"),
        (reading(sensor_id="OTHER"), "does not match the topic's S1/S1-U"),
        ({k: v for k, v in reading().items() if k != "seq"}, "missing field 'seq'"),
        (reading(value="7"), "field 'value' is '7' (must be a number)"),
        (reading(seq=2**31), "field 'seq' is 2147483648 (must fit a 32-bit integer)"),
        (reading(ts="0001-01-01T00:00:00+01:00"), "(out of range)"),
        (reading(ts="yesterday"), "(must be an RFC 3339 time)"),
    ],
)
def test_bad_payloads_are_quarantined_with_reason(payload, reason):
    rows, bad = parse(payload)
    assert rows == [] and len(bad) == 1
    assert reason in bad[0]["reason"] and bad[0]["reason"].startswith(
        "topic shelfwatch/v1/stores/S1/sensors/S1-U/readings: "
    )
    assert bad[0]["raw_content"]  # the payload is kept


def test_unknown_store_and_foreign_topic():
    _, bad = parse(reading(store_id="S9", sensor_id="X"), topic_for(PREFIX, "S9", "X"))
    assert "unknown store 'S9'" in bad[0]["reason"]
    _, bad = parse(reading(), "other/topic")
    assert "not a readings topic" in bad[0]["reason"]


def test_quarantine_rows_fit_postgresql_and_hash_the_raw_bytes():
    """Otherwise the database rejects the batch, nothing is acked, and the broker redelivers it forever."""
    (a,), (b,) = parse(b"\xff\xfe")[1], parse(b"\xfe\xff")[1]
    assert a["raw_content"] == b["raw_content"] and a["content_hash"] != b["content_hash"]  # two rows, not one
    assert parse(b"\xff\xfe")[1][0]["content_hash"] == a["content_hash"]  # the same payload again: one row
    assert "\x00" not in parse(b"\x00{")[1][0]["raw_content"]
    long_id = "X" * 400
    _, (entry,) = parse(reading(sensor_id=long_id), topic_for(PREFIX, "S1", long_id))
    assert len(entry["source"]) == 300 and "field 'sensor_id' is longer than 64 characters" in entry["reason"]


def test_gateway_list_keeps_good_items():
    rows, bad = parse([reading(1), reading(2, value=-1), reading(3)])
    assert [r["seq"] for r in rows] == [1, 3] and len(bad) == 1 and '"seq":2' in bad[0]["raw_content"]


def test_broker_url_parsing():
    a = parse_broker_url("mqtts://u%40x:p@broker.example:8884?protocol=3.1.1")
    assert (a.host, a.port, a.username, a.password, a.protocol, a.tls) == (
        "broker.example",
        8884,
        "u@x",
        "p",
        "3.1.1",
        True,
    )
    with pytest.raises(ValueError, match="mqtt://user:pass@host:port"):
        parse_broker_url("http://x")


# ------------------------------------------------------------------------------ against real services


def seed(engine):
    with engine.begin() as conn:
        insert_ignore(conn, schema.stores, [{"store_id": "S1", "name": "s", "timezone": "UTC", "manager_email": "m@x"}])
        insert_ignore(
            conn,
            schema.products,
            [
                {
                    "sku": "A",
                    "name": "a",
                    "category": "c",
                    "unit_price": 1.0,
                    "unit_weight_g": 250.0,
                    "shelf_capacity": 9,
                }
            ],
        )


def stream(n):
    return [
        reading(seq=i, sensor_id=f"S1-U{i % 7}", ts=f"2026-11-22T{i % 24:02d}:{i % 60:02d}:00+00:00") for i in range(n)
    ]


def count(engine, table):
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def run_ingest(engine, url, prefix, client_id, publish):
    """Drain in a thread while `publish()` sends, as the service and the sensors do."""
    result = {}
    consumer = threading.Thread(
        target=lambda: result.update(stats=drain(engine, url, prefix, client_id, until_idle=2.0))
    )
    consumer.start()
    publish()
    consumer.join(timeout=120)
    return result["stats"]


def test_readings_stored_once_and_bad_ones_quarantined(engine, mqtt_url, topic_prefix):
    seed(engine)
    client_id = f"test-{uuid.uuid4().hex[:8]}"
    open_session(mqtt_url, topic_prefix, client_id)
    good = stream(500)
    # malformed, invalid, undecodable, and two the database itself would refuse (NUL, seq overflow)
    broken = [
        b"{not json",
        orjson.dumps(reading(sensor_id="S1-U0", value=-2)),
        b"\xff\xfe",
        b"\x00\x01",
        orjson.dumps(reading(sensor_id="S1-U0", seq=2**40)),
    ]
    long_id = "L" * 100

    def publish():
        publish_readings(mqtt_url, good, topic_prefix)
        publish_raw(mqtt_url, topic_for(topic_prefix, "S1", "S1-U0"), broken)
        publish_raw(mqtt_url, topic_for(topic_prefix, "S1", long_id), [orjson.dumps(reading(sensor_id=long_id))])

    stats = run_ingest(engine, mqtt_url, topic_prefix, client_id, publish)
    assert (stats.received, stats.stored, stats.quarantined) == (506, 500, 6)
    assert count(engine, schema.sensor_readings) == 500
    with engine.connect() as conn:
        quarantined = dict(conn.execute(select(schema.quarantine.c.raw_content, schema.quarantine.c.reason)).all())
    assert len(quarantined) == 6
    on_u0 = [
        r for r in quarantined.values() if r.startswith(f"topic {topic_prefix}/stores/S1/sensors/S1-U0/readings: ")
    ]
    assert len(on_u0) == 5 and any("field 'value' is -2 (must be >= 0)" in r for r in on_u0)
    assert any("longer than 64 characters" in r for r in quarantined.values())
    # the same readings published again: received, recognised as duplicates, stored once
    stats = run_ingest(
        engine, mqtt_url, topic_prefix, client_id, lambda: publish_readings(mqtt_url, good, topic_prefix)
    )
    assert (stats.received, stats.stored, stats.duplicates) == (500, 0, 500)
    assert count(engine, schema.sensor_readings) == 500


def test_a_batch_the_database_rejects_is_split_and_only_the_culprit_quarantined(engine, monkeypatch):
    """Defence in depth: whatever the database refuses must not block the messages around it."""
    from sqlalchemy.exc import DataError

    from iot_ingest import consumer

    seed(engine)
    real_insert = consumer.BULK_INSERT[engine.dialect.name]

    def refuse_seq_13(conn, readings):
        if any(r["seq"] == 13 for r in readings):
            raise DataError("INSERT ...", {}, Exception("value out of range"))
        return real_insert(conn, readings)

    monkeypatch.setitem(consumer.BULK_INSERT, engine.dialect.name, refuse_seq_13)
    topic = topic_for(PREFIX, "S1", "S1-U")
    writer = consumer.ReadingWriter(engine, PREFIX)
    assert writer.write([(topic, orjson.dumps(reading(seq))) for seq in (12, 13, 14)]) == (2, 0, 1)
    with engine.connect() as conn:
        (reason,) = conn.execute(select(schema.quarantine.c.reason)).scalars().all()
    assert reason == f"topic {topic}: could not be stored (DataError); the database or the parser rejected it"


def test_lost_database_is_transient_and_refused_data_is_not(engine):
    """Lost connections are retried without acking; the raw-driver fast paths raise unwrapped errors."""
    from sqlalchemy.exc import DataError, OperationalError

    from iot_ingest.consumer import is_transient

    dbapi = engine.dialect.loaded_dbapi
    assert is_transient(engine, dbapi.OperationalError("server closed the connection"))
    assert is_transient(engine, OperationalError("SELECT 1", {}, Exception("gone")))
    assert not is_transient(engine, DataError("INSERT", {}, Exception("too long")))
    assert not is_transient(engine, dbapi.DataError("value out of range"))


def test_session_queues_while_consumer_is_away_and_nothing_is_acked_early(engine, mqtt_url, topic_prefix):
    seed(engine)
    client_id = f"test-{uuid.uuid4().hex[:8]}"
    open_session(mqtt_url, topic_prefix, client_id)
    publish_readings(mqtt_url, stream(300), topic_prefix)  # consumer offline: the broker queues
    first = drain(engine, mqtt_url, topic_prefix, client_id, until_idle=2.0, max_messages=100)
    assert first.received == 100 and count(engine, schema.sensor_readings) == 100
    rest = drain(engine, mqtt_url, topic_prefix, client_id, until_idle=2.0)
    assert rest.received + first.received >= 300  # unacknowledged ones may come again
    assert count(engine, schema.sensor_readings) == 300


def test_embedded_broker_round_trip_and_offline_queue(tmp_path):
    from sql.migrate import migrate

    engine = migrate(f"sqlite:///{tmp_path / 'e.db'}")
    seed(engine)
    with EmbeddedBroker() as broker:
        assert broker.url.endswith("?protocol=3.1.1")
        open_session(broker.url, PREFIX, "embedded-test")
        stats = run_ingest(
            engine, broker.url, PREFIX, "embedded-test", lambda: publish_readings(broker.url, stream(200), PREFIX)
        )
        assert stats.stored == 200
        # published while the consumer is away: queued by the broker for the persistent session
        publish_readings(broker.url, stream(300)[200:], PREFIX)
        later = drain(engine, broker.url, PREFIX, "embedded-test", until_idle=2.0)
    assert later.stored == 100 and count(engine, schema.sensor_readings) == 300


def test_max_seconds_bounds_a_run_and_stats_are_kept(engine, mqtt_url, topic_prefix):
    import time

    from typer.testing import CliRunner

    from shelfwatch.cli.app import app

    seed(engine)
    client_id = f"test-{uuid.uuid4().hex[:8]}"
    open_session(mqtt_url, topic_prefix, client_id)
    publish_readings(mqtt_url, stream(50), topic_prefix)
    started = time.monotonic()
    stats = drain(engine, mqtt_url, topic_prefix, client_id, until_idle=120, max_seconds=2)
    assert time.monotonic() - started < 10 and stats.stored == 50
    with engine.connect() as conn:
        row = conn.execute(select(schema.ingest_stats).where(schema.ingest_stats.c.client_id == client_id)).one()
    assert (row.received, row.stored, row.batches) == (50, 50, stats.batches)
    result = CliRunner().invoke(
        app, ["ingest-iot", "--stats", "--db", engine.url.render_as_string(hide_password=False)], env={"COLUMNS": "300"}
    )
    assert result.exit_code == 0 and client_id[:12] in result.output


def test_stale_sensors(engine):
    import pandas as pd

    from iot_ingest.health import stale_sensors

    seed(engine)
    now = pd.Timestamp("2026-11-23 12:00", tz="UTC")
    with engine.begin() as conn:
        insert_ignore(
            conn,
            schema.sensors,
            [
                {"sensor_id": s, "store_id": "S1", "sku": "A", "kind": "shelf_units", "tare_g": 0.0}
                for s in ("fresh", "quiet", "never")
            ],
        )
        insert_ignore(
            conn,
            schema.sensor_readings,
            [
                {
                    "sensor_id": s,
                    "store_id": "S1",
                    "sku": "A",
                    "kind": "shelf_units",
                    "value": 1.0,
                    "units": 1.0,
                    "seq": 1,
                    "battery": None,
                    "device_ts": t.to_pydatetime(),
                    "received_at": t.to_pydatetime(),
                }
                for s, t in (("fresh", now - pd.Timedelta(hours=1)), ("quiet", now - pd.Timedelta(hours=30)))
            ],
        )
    stale = stale_sensors(engine, 12.0, as_of=now)
    assert stale["sensor_id"].tolist() == ["never", "quiet"]
    assert stale.set_index("sensor_id").loc["quiet", "silent_hours"] == 30.0


def test_publisher_reports_progress(mqtt_url, topic_prefix):
    steps = []
    assert publish_readings(mqtt_url, stream(1_200), topic_prefix, progress=steps.append) == 1_200
    assert steps == [500, 500, 200]


def test_a_running_service_sees_stores_and_skus_loaded_after_it_started(engine, monkeypatch):
    """Found by the process stack: the ingest service starts before the reference data is loaded, and
    quarantined every reading as from an 'unknown store' until restarted."""
    from iot_ingest import consumer

    writer = consumer.ReadingWriter(engine, PREFIX)  # the service starts on an empty database
    topic = topic_for(PREFIX, "S1", "S1-U")
    assert writer.write([(topic, orjson.dumps(reading(1)))]) == (0, 0, 1)  # genuinely unknown: quarantined
    seed(engine)  # then the stores and products are loaded
    monkeypatch.setattr(consumer, "KNOWN_ENTITIES_MIN_RELOAD", 0.0)
    assert writer.write([(topic, orjson.dumps(reading(2)))]) == (1, 0, 0)
    # and without any unknown reading, the copy is refreshed once it is older than the maximum age
    with engine.begin() as conn:
        insert_ignore(
            conn, schema.stores, [{"store_id": "S2", "name": "s2", "timezone": "UTC", "manager_email": "m@x"}]
        )
    assert "S2" not in writer.known.stores
    monkeypatch.setattr(consumer, "KNOWN_ENTITIES_MAX_AGE", 0.0)
    writer.write([(topic, orjson.dumps(reading(3)))])
    assert "S2" in writer.known.stores
