"""Fault tests of the MQTT ingest against real Mosquitto processes and the real PostgreSQL.

Each test uses a private broker (restartable, unlimited queue) so it can kill or restart it without
touching the shared one; the database is the real PostgreSQL (a fresh schema per test).
"""

import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import orjson
from sqlalchemy import create_engine, func, select, text

from core.db import insert_ignore
from iot_ingest.consumer import drain, open_session
from lab.mosquitto import publish_backlog, synthetic_reading
from lab.publisher import publish_payloads
from sql import schema
from sql.migrate import migrate
from tests.conftest import REPO_ROOT as ROOT

PREFIX = "shelfwatch/v1"


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
                    "unit_weight_g": 100.0,
                    "shelf_capacity": 40,
                }
            ],
        )


def readings_count(engine) -> tuple[int, int]:
    """(rows, distinct keys) in sensor_readings."""
    with engine.connect() as conn:
        rows = conn.execute(select(func.count()).select_from(schema.sensor_readings)).scalar_one()
        keys = conn.execute(
            text("select count(*) from (select distinct sensor_id, device_ts, seq from sensor_readings) k")
        ).scalar_one()
    return rows, keys


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def consumer_process(broker_url: str, db_url: str, client_id: str, *options: str) -> subprocess.Popen:
    """`shelfwatch ingest-iot` as its own process (default options: a bounded drain)."""
    env = {**os.environ, "SHELFWATCH_MQTT_TOPIC_PREFIX": PREFIX}
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "shelfwatch.cli",
            "ingest-iot",
            "--broker",
            broker_url,
            "--db",
            db_url,
            "--client-id",
            client_id,
            *(options or ("--until-idle", "3")),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def prepared(broker, pg_url: str, name: str):
    """A migrated, seeded database and a persistent session registered on the broker."""
    engine = migrate(pg_url)
    seed(engine)
    client_id = f"{name}-{uuid.uuid4().hex[:6]}"
    open_session(broker.url, PREFIX, client_id)
    return engine, client_id


def test_kill_9_mid_stream_then_restart_stores_every_reading_once(private_broker, pg_url):
    engine, client_id = prepared(private_broker, pg_url, "kill9")
    publish_backlog(private_broker.port, PREFIX, 50_000)

    first = consumer_process(private_broker.url, pg_url, client_id)
    wait_for(lambda: readings_count(engine)[0] >= 5_000, 120, "the consumer to store 5,000 readings")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    stored_at_kill = readings_count(engine)[0]
    assert stored_at_kill < 50_000, "kill -9 came too late to test anything"

    second = consumer_process(private_broker.url, pg_url, client_id)
    out, err = second.communicate(timeout=300)
    assert second.returncode == 0, err[-3000:]
    assert readings_count(engine) == (50_000, 50_000)


def test_broker_restart_mid_stream_loses_nothing(private_broker, pg_url):
    engine, client_id = prepared(private_broker, pg_url, "restart")
    publish_backlog(private_broker.port, PREFIX, 20_000)
    result, stop = {}, threading.Event()
    consumer = threading.Thread(
        target=lambda: result.update(
            stats=drain(engine, private_broker.url, PREFIX, client_id, until_idle=60, stop=stop)
        )
    )
    consumer.start()
    wait_for(lambda: readings_count(engine)[0] >= 2_000, 60, "the first readings")
    private_broker.restart()  # graceful: Mosquitto persists queued and in-flight messages
    stored_across_restart = readings_count(engine)[0]
    extra = [synthetic_reading(500, seq, "S1", "A") for seq in range(5_000)]  # the stream goes on after the restart
    publish_payloads(
        private_broker.url, ((f"{PREFIX}/stores/S1/sensors/X500/readings", orjson.dumps(r)) for r in extra)
    )
    wait_for(lambda: readings_count(engine)[0] >= 25_000, 120, "all readings after the restart")
    stop.set()
    consumer.join(timeout=60)
    assert stored_across_restart < 20_000, "the restart came after the backlog was drained"
    assert readings_count(engine) == (25_000, 25_000)
    assert result["stats"].reconnects >= 1


def test_ten_thousand_malformed_payloads_are_quarantined_and_valid_ones_stored(private_broker, pg_url):
    engine, client_id = prepared(private_broker, pg_url, "malformed")
    topic = f"{PREFIX}/stores/S1/sensors/X1/readings"
    kinds = [
        lambda i: b'{"sensor_id": "X1", "seq": ' + str(i).encode(),  # truncated JSON
        lambda i: orjson.dumps({**synthetic_reading(1, i, "S1", "A"), "value": -i - 1}),  # negative
        lambda i: orjson.dumps({**synthetic_reading(1, i, "S1", "ZZZ")}),  # unknown SKU
        lambda i: orjson.dumps({**synthetic_reading(2, i, "S1", "A")}),  # topic says X1, payload X2
        lambda i: orjson.dumps({"sensor_id": "X1", "store_id": "S1", "seq": i}),  # missing fields
    ]
    messages = []
    for i in range(10_000):
        messages.append((topic, orjson.dumps(synthetic_reading(1, i, "S1", "A"))))
        messages.append((topic, kinds[i % len(kinds)](i)))
    publish_payloads(private_broker.url, messages)
    stats = drain(engine, private_broker.url, PREFIX, client_id, until_idle=3)
    assert (stats.received, stats.stored, stats.quarantined) == (20_000, 10_000, 10_000)
    assert readings_count(engine) == (10_000, 10_000)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(schema.quarantine)).scalar_one() == 10_000
    # and the consumer keeps going: a valid reading published now is stored
    publish_payloads(private_broker.url, [(topic, orjson.dumps(synthetic_reading(1, 99_999, "S1", "A")))])
    assert drain(engine, private_broker.url, PREFIX, client_id, until_idle=2).stored == 1


def test_database_outage_holds_acks_then_catches_up(private_broker, pg_url):
    from lab.tcp_proxy import TcpProxy

    direct = migrate(pg_url)
    seed(direct)
    proxy = TcpProxy(("127.0.0.1", 5432))
    proxied_url = pg_url.replace("@127.0.0.1:5432/", f"@127.0.0.1:{proxy.port}/")
    engine = create_engine(proxied_url, pool_pre_ping=True, pool_size=2)
    client_id = f"dbdown-{uuid.uuid4().hex[:6]}"
    open_session(private_broker.url, PREFIX, client_id)
    result, stop = {}, threading.Event()
    consumer = threading.Thread(
        target=lambda: result.update(
            stats=drain(engine, private_broker.url, PREFIX, client_id, until_idle=60, stop=stop)
        )
    )
    consumer.start()
    try:
        publish_backlog(private_broker.port, PREFIX, 3_000, sensors=10)
        wait_for(lambda: readings_count(direct)[0] == 3_000, 60, "the first 3,000 readings")
        proxy.cut()
        publish_backlog(private_broker.port, PREFIX, 6_000, sensors=20)  # 3,000 repeat keys + 3,000 new
        time.sleep(4)
        assert readings_count(direct)[0] == 3_000  # nothing could be written...
        proxy.restore()
        wait_for(lambda: readings_count(direct)[0] == 6_000, 120, "the consumer to catch up")  # ...and nothing was lost
    finally:
        stop.set()
        consumer.join(timeout=60)
        proxy.close()
        engine.dispose()
    assert result["stats"].db_errors >= 1
    assert readings_count(direct) == (6_000, 6_000)


def test_sigterm_flushes_acknowledges_and_exits_cleanly(private_broker, pg_url):
    engine, client_id = prepared(private_broker, pg_url, "sigterm")
    service = consumer_process(
        private_broker.url, pg_url, client_id, "--until-idle", "0"
    )  # service mode: runs until signalled
    publish_backlog(private_broker.port, PREFIX, 20_000)
    wait_for(lambda: readings_count(engine)[0] >= 1_000, 60, "the service to store readings")
    service.send_signal(signal.SIGTERM)
    out, err = service.communicate(timeout=60)
    assert service.returncode == 0, err[-3000:]
    stored = readings_count(engine)[0]
    with engine.connect() as conn:
        recorded = conn.execute(
            select(schema.ingest_stats.c.stored).where(schema.ingest_stats.c.client_id == client_id)
        ).scalar_one()
    assert recorded == stored  # everything it received was committed before it left
    # what it acknowledged is gone from the session; the rest is still queued for the next run
    rest = drain(engine, private_broker.url, PREFIX, client_id, until_idle=3)
    assert readings_count(engine) == (20_000, 20_000)
    assert rest.duplicates == 0, "a message acknowledged before the exit came back"
