"""MQTT consumer: persistent session, QoS 1, acknowledgement only after the database commit.

At-least-once end to end: paho's manual acks hold every PUBACK until the transaction that stored (or
quarantined) the message has committed, so a crash before the commit makes the broker redeliver;
the unique key (sensor, device time, seq) makes the redelivery harmless. The queue between paho's
network thread and the writer is bounded: when the database is slow, the network thread blocks and
the broker stops sending.
"""

from __future__ import annotations

import logging
import queue
import ssl
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy import Engine, select

from iot_ingest.contract import KnownEntities, parse_broker_url, parse_message, subscription_topic
from shelfwatch.db import insert_ignore
from sql import schema

log = logging.getLogger(__name__)
SESSION_EXPIRY_SECONDS = 7 * 24 * 3600  # the broker keeps queuing for a week of consumer outage
RECEIVE_MAXIMUM = 1000  # unacknowledged messages the broker may have in flight to us


@dataclass
class IngestStats:
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    batches: int = 0
    seconds: float = 0.0


def load_known_entities(engine: Engine) -> KnownEntities:
    with engine.connect() as conn:
        stores = frozenset(conn.execute(select(schema.stores.c.store_id)).scalars())
        weights = dict(conn.execute(select(schema.products.c.sku, schema.products.c.unit_weight_g)).all())
        tares = dict(conn.execute(select(schema.sensors.c.sensor_id, schema.sensors.c.tare_g)).all())
    return KnownEntities(stores, weights, tares)


def make_client(mqtt_url: str, client_id: str) -> tuple[mqtt.Client, dict]:
    """A paho client for a persistent session, and the keyword arguments its connect() needs."""
    addr = parse_broker_url(mqtt_url)
    v5 = addr.protocol == "5"
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        clean_session=None if v5 else False,
        manual_ack=True,
    )
    if addr.username:
        client.username_pw_set(addr.username, addr.password)
    if addr.tls:
        client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
    connect_kwargs: dict = {"host": addr.host, "port": addr.port, "keepalive": 30}
    if v5:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = SESSION_EXPIRY_SECONDS
        props.ReceiveMaximum = RECEIVE_MAXIMUM
        connect_kwargs.update(clean_start=False, properties=props)
    return client, connect_kwargs


def open_session(mqtt_url: str, topic_prefix: str, client_id: str, timeout: float = 10.0) -> None:
    """Connect once and subscribe, so the broker queues readings for this session from now on."""
    client, kwargs = make_client(mqtt_url, client_id)
    subscribed = threading.Event()
    client.on_connect = lambda c, u, f, rc, p: c.subscribe(subscription_topic(topic_prefix), qos=1) if not rc.is_failure else None
    client.on_subscribe = lambda c, u, mid, rcs, p: subscribed.set()
    client.connect(**kwargs)
    client.loop_start()
    try:
        if not subscribed.wait(timeout):
            raise TimeoutError(f"no SUBACK from {parse_broker_url(mqtt_url).host} within {timeout} s")
    finally:
        client.disconnect()
        client.loop_stop()


class ReadingWriter:
    """Stores a batch of messages in one transaction and returns what happened to them."""

    def __init__(self, engine: Engine, topic_prefix: str) -> None:
        self.engine = engine
        self.topic_prefix = topic_prefix
        self.known = load_known_entities(engine)

    def write(self, messages: list[tuple[str, bytes]]) -> tuple[int, int, int]:
        """(stored, duplicates, quarantined) for the batch, after its commit."""
        now = datetime.now(timezone.utc)
        readings, bad = [], []
        for topic, payload in messages:
            rows, quarantined = parse_message(self.topic_prefix, topic, payload, self.known, now)
            readings += rows
            bad += quarantined
        with self.engine.begin() as conn:
            stored = insert_ignore(conn, schema.sensor_readings, readings)
            insert_ignore(conn, schema.quarantine, bad)
        for entry in bad:
            log.warning("quarantined: %s", entry["reason"])  # the reason names topic and field, never contact data
        return stored, len(readings) - stored, len(bad)


def drain(
    engine: Engine,
    mqtt_url: str,
    topic_prefix: str,
    client_id: str = "shelfwatch-ingest",
    until_idle: float = 2.0,
    max_messages: int | None = None,
    batch_size: int = 1000,
    batch_seconds: float = 0.2,
    queue_size: int = 5000,
    stop: threading.Event | None = None,
    ready: threading.Event | None = None,
) -> IngestStats:
    """Consume the persistent session until no message came for `until_idle` s (or `max_messages`).

    Batches are flushed when full, after `batch_seconds`, or as soon as the inbox runs dry — the broker
    only sends as many unacknowledged messages as its in-flight window allows, so waiting for a full
    batch would stall. `ready` is set once the subscription is confirmed; `stop` ends the run early.
    """
    stats = IngestStats()
    started = time.monotonic()
    writer = ReadingWriter(engine, topic_prefix)
    inbox: queue.Queue = queue.Queue(maxsize=queue_size)
    client, kwargs = make_client(mqtt_url, client_id)
    connected = threading.Event()

    def on_connect(c, userdata, flags, rc, props):
        if rc.is_failure:
            log.error("broker refused connection: %s", rc)
            return
        c.subscribe(subscription_topic(topic_prefix), qos=1)
        connected.set()

    def on_message(c, userdata, msg):
        inbox.put((msg.topic, msg.payload, msg.mid, msg.qos))  # blocks when full: back-pressure

    client.on_connect = on_connect
    client.on_message = on_message
    client.on_subscribe = lambda c, u, mid, rcs, p: ready.set() if ready is not None else None
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    client.connect(**kwargs)
    client.loop_start()
    try:
        if not connected.wait(15):
            raise ConnectionError(f"could not connect to the broker at {parse_broker_url(mqtt_url).host}")
        last_message = time.monotonic()
        batch: list[tuple[str, bytes, int, int]] = []
        batch_started = 0.0
        while True:
            limit_reached = max_messages is not None and stats.received >= max_messages
            if not limit_reached:
                try:
                    item = inbox.get(timeout=0.05)
                    if not batch:
                        batch_started = time.monotonic()
                    batch.append(item)
                    stats.received += 1
                    last_message = time.monotonic()
                    if len(batch) < batch_size and time.monotonic() - batch_started < batch_seconds and not inbox.empty():
                        continue
                except queue.Empty:
                    pass
            if batch:
                flush(writer, client, batch, stats)
                batch = []
            if limit_reached or (stop is not None and stop.is_set()) or time.monotonic() - last_message >= until_idle:
                break
    finally:
        client.disconnect()
        client.loop_stop()
    stats.seconds = round(time.monotonic() - started, 3)
    log.info("ingest: %s", stats)
    return stats


def flush(writer: ReadingWriter, client: mqtt.Client, batch: list, stats: IngestStats) -> None:
    """Commit the batch, then acknowledge every message in it (never before)."""
    stored, duplicates, quarantined = writer.write([(topic, payload) for topic, payload, _, _ in batch])
    for _, _, mid, qos in batch:
        if qos > 0:
            client.ack(mid, qos)
    stats.stored += stored
    stats.duplicates += duplicates
    stats.quarantined += quarantined
    stats.batches += 1
