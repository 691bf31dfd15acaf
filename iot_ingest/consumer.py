"""MQTT consumer: persistent session, QoS 1, acknowledgement only after the database commit.

At-least-once end to end: paho's manual acks hold every PUBACK until the transaction that stored (or
quarantined) the message has committed, so a crash before the commit makes the broker redeliver;
the unique key (sensor, device time, seq) makes the redelivery harmless. The insert's trigger keeps
latest_sensor_readings (each sensor's newest reading) in the same transaction. The queue between paho's
network thread and the writer is bounded: when the database is slow, the network thread blocks and
the broker stops sending.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import InterfaceError, OperationalError

from core.db import insert_ignore, upsert
from iot_ingest.contract import (
    KnownEntities,
    names_unknown_entity,
    parse_broker_url,
    parse_message,
    quarantine_entry,
    subscription_topic,
)
from sql import schema

log = logging.getLogger(__name__)
# Called in the transaction that stores a batch, with its stored readings and the batch's time (e.g.
# the shelf_empty fast path of alerts.realtime.shelf_empty_on_stored): the ingest knows no
# alert, the caller wires one in.
OnStored = Callable[[Connection, list[dict], datetime], object]
SESSION_EXPIRY_SECONDS = 7 * 24 * 3600  # the broker keeps queuing for a week of consumer outage
RECEIVE_MAXIMUM = 1000  # unacknowledged messages the broker may have in flight to us
# A first connect to a broker that is not up yet (a deployment starting everything at once) is retried
# with backoff 1, 2, 4, ... CONNECT_MAX_DELAY s for this long before giving up with BrokerError.
CONNECT_BUDGET_SECONDS = 120.0
CONNECT_MAX_DELAY = 30.0
CONNACK_TIMEOUT = 15.0  # a broker that took the TCP connection but does not answer CONNECT


class BrokerError(ConnectionError):
    """The broker could not be reached within the connect budget, or refused the connection or the
    subscription. The message names host:port, never credentials."""


@dataclass
class IngestStats:
    """Health counters of one consumer run (also kept in the `ingest_stats` table)."""

    client_id: str = ""
    received: int = 0
    stored: int = 0
    duplicates: int = 0
    quarantined: int = 0
    batches: int = 0
    reconnects: int = 0
    db_errors: int = 0
    commit_seconds_total: float = 0.0
    commit_seconds_max: float = 0.0
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
        client.tls_set(
            ca_certs=addr.ca_file, certfile=addr.cert_file, keyfile=addr.key_file, cert_reqs=ssl.CERT_REQUIRED
        )
    connect_kwargs: dict = {"host": addr.host, "port": addr.port, "keepalive": 30}
    if v5:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = SESSION_EXPIRY_SECONDS
        props.ReceiveMaximum = RECEIVE_MAXIMUM
        connect_kwargs.update(clean_start=False, properties=props)
    return client, connect_kwargs


def broker_address(mqtt_url: str) -> str:
    """host:port of a broker URL, for messages and logs (never its credentials)."""
    addr = parse_broker_url(mqtt_url)
    return f"{addr.host}:{addr.port}"


def connect_with_retry(
    client: mqtt.Client, kwargs: dict, where: str, budget: float, stop: threading.Event | None = None
) -> bool:
    """`client.connect()` until the broker takes the connection, retrying with backoff 1, 2, 4, ...
    CONNECT_MAX_DELAY s for up to `budget` seconds (each retry logged). False if `stop` was set while
    waiting; BrokerError once the budget is spent, or at once for a certificate that fails verification."""
    deadline = time.monotonic() + budget
    delay, attempt = 1.0, 0
    while True:
        attempt += 1
        try:
            client.connect(**kwargs)
        except ssl.SSLCertVerificationError as exc:  # retrying cannot fix a certificate
            raise BrokerError(
                f"MQTT broker at {where}: TLS certificate verification failed ({exc.verify_message or exc})"
            ) from None
        except OSError as exc:  # refused, unreachable, name not resolvable yet, reset during the handshake
            why = f"{type(exc).__name__}: {exc.strerror or exc}"
        else:
            if attempt > 1:
                log.warning("reached the MQTT broker at %s on attempt %d", where, attempt)
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise BrokerError(
                f"MQTT broker at {where} not reachable: gave up after {attempt} attempt(s) in {budget:g} s (last "
                f"error: {why})"
            )
        wait = min(delay, CONNECT_MAX_DELAY, remaining)
        log.warning(
            "MQTT broker at %s not reachable (%s); attempt %d, retrying in %.0f s (gives up %.0f s after the first)",
            where,
            why,
            attempt,
            wait,
            budget,
        )
        if stop is not None:
            if stop.wait(wait):
                return False
        else:
            time.sleep(wait)
        delay *= 2


def start_client(
    client: mqtt.Client,
    kwargs: dict,
    where: str,
    budget: float,
    answered: threading.Event,
    refusal: list[str],
    stop: threading.Event | None = None,
) -> bool:
    """Connect (with retry), start paho's network thread and wait for the broker's CONNACK, which the
    client's on_connect reports through `answered` (and `refusal`, if refused). True once connected;
    False if `stop` was set meanwhile; BrokerError otherwise. On False or an error the client is stopped."""
    if not connect_with_retry(client, kwargs, where, budget, stop):
        return False
    client.loop_start()  # paho's thread reconnects on its own if the link drops before the CONNACK
    deadline = time.monotonic() + CONNACK_TIMEOUT
    try:
        while not answered.wait(0.1):
            if stop is not None and stop.is_set():
                client.disconnect()
                client.loop_stop()
                return False
            if time.monotonic() >= deadline:
                raise BrokerError(
                    f"MQTT broker at {where} took the connection but sent no CONNACK within {CONNACK_TIMEOUT:g} s"
                )
        if refusal:
            raise BrokerError(f"MQTT broker at {where} refused the connection: {refusal[0]}")
    except BaseException:
        client.disconnect()
        client.loop_stop()
        raise
    return True


def open_session(
    mqtt_url: str,
    topic_prefix: str,
    client_id: str,
    timeout: float = 10.0,
    group: str | None = None,
    connect_budget: float | None = None,
) -> dict:
    """Connect once and subscribe, so the broker queues readings for this session from now on.

    The session is the consumer's own: its fixed client id, no clean start, the consumer's session
    expiry (MQTT v5). A broker that is not up yet is retried for `connect_budget` seconds (default
    CONNECT_BUDGET_SECONDS). Returns what was done: client id, broker, subscription, whether the
    session existed already."""
    where = broker_address(mqtt_url)
    client, kwargs = make_client(mqtt_url, client_id)
    topic = subscription_for(topic_prefix, group)
    answered, subscribed = threading.Event(), threading.Event()
    refusal: list[str] = []
    flags_seen: dict = {}
    suback: list = []

    def on_connect(c, userdata, flags, rc, props):
        if rc.is_failure:
            refusal.append(str(rc))
        else:
            flags_seen["session_present"] = bool(flags.session_present)
            c.subscribe(topic, qos=1)
        answered.set()

    def on_subscribe(c, userdata, mid, rcs, props):
        suback.extend(rcs)
        subscribed.set()

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    budget = CONNECT_BUDGET_SECONDS if connect_budget is None else connect_budget
    start_client(client, kwargs, where, budget, answered, refusal)
    try:
        if not subscribed.wait(timeout):
            raise BrokerError(
                f"MQTT broker at {where} did not confirm the subscription (no SUBACK) within {timeout:g} s"
            )
        refused = [rc for rc in suback if rc.is_failure]
        if refused:
            raise BrokerError(f"MQTT broker at {where} refused the subscription to {topic}: {refused[0]}")
    finally:
        client.disconnect()
        client.loop_stop()
    v5 = parse_broker_url(mqtt_url).protocol == "5"
    return {
        "client_id": client_id,
        "broker": where,
        "subscription": topic,
        "qos": 1,
        "session_existed": flags_seen.get("session_present", False),
        "session_expiry_seconds": SESSION_EXPIRY_SECONDS if v5 else None,
    }


READING_COLUMNS = (
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


def copy_readings(conn, readings: list[dict]) -> int:
    """PostgreSQL fast path: COPY into a temporary table, then one INSERT ... ON CONFLICT DO NOTHING.

    Row-by-row parameter binding costs more than the database work at sensor rates; COPY does not.
    Returns how many readings were new.
    """
    if not readings:
        return 0
    cols = ", ".join(READING_COLUMNS)
    with conn.connection.driver_connection.cursor() as cur:
        # the columns only: no id default, so no id drawn per staged row and no tie to the id sequence
        cur.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS readings_incoming ON COMMIT DELETE ROWS AS SELECT {cols} FROM "
            "sensor_readings WITH NO DATA"
        )
        with cur.copy(f"COPY readings_incoming ({cols}) FROM STDIN") as copy:
            for r in readings:
                copy.write_row([r[c] for c in READING_COLUMNS])
        cur.execute(f"INSERT INTO sensor_readings ({cols}) SELECT {cols} FROM readings_incoming ON CONFLICT DO NOTHING")
        return cur.rowcount


def executemany_readings(conn, readings: list[dict]) -> int:
    """SQLite fast path: one executemany of INSERT OR IGNORE through the driver; returns new rows
    (the cursor's count: the connection's total would add the latest-reading trigger's writes)."""
    if not readings:
        return 0
    cursor = conn.connection.driver_connection.executemany(
        f"INSERT OR IGNORE INTO sensor_readings ({', '.join(READING_COLUMNS)}) VALUES "
        f"({', '.join('?' * len(READING_COLUMNS))})",
        [[sqlite_value(r[c]) for c in READING_COLUMNS] for r in readings],
    )
    return cursor.rowcount


def sqlite_value(value):
    """Datetimes as SQLAlchemy stores them on SQLite, so both write paths read back alike."""
    return value.strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(value, datetime) else value


BULK_INSERT = {"postgresql": copy_readings, "sqlite": executemany_readings}


def is_transient(engine: Engine, exc: BaseException) -> bool:
    """A lost or busy database (retry later), as opposed to one that rejected the data.

    The fast paths write through the raw driver, whose errors SQLAlchemy does not wrap, so the
    driver's own OperationalError/InterfaceError count too.
    """
    dbapi = engine.dialect.loaded_dbapi
    return isinstance(exc, OperationalError | InterfaceError | dbapi.OperationalError | dbapi.InterfaceError)


KNOWN_ENTITIES_MAX_AGE = 60.0  # seconds: master data loaded while the service runs counts this soon ...
KNOWN_ENTITIES_MIN_RELOAD = 2.0  # ... or at once when a reading names a store or SKU not known yet


class ReadingWriter:
    """Stores a batch of messages in one transaction and returns what happened to them."""

    def __init__(self, engine: Engine, topic_prefix: str, on_stored: OnStored | None = None) -> None:
        self.engine = engine
        self.topic_prefix = topic_prefix
        self.known = load_known_entities(engine)
        self.known_at = time.monotonic()
        self.on_stored = on_stored

    def refresh_known(self, unknown_seen: bool) -> bool:
        """Reload stores, SKUs and sensors when the copy is older than KNOWN_ENTITIES_MAX_AGE, or at
        once (at most every KNOWN_ENTITIES_MIN_RELOAD) when a reading names one not known yet: the
        service runs for months, and master data loaded meanwhile (a new store) must count without a
        restart. True when reloaded."""
        age = time.monotonic() - self.known_at
        if age < KNOWN_ENTITIES_MAX_AGE and not (unknown_seen and age >= KNOWN_ENTITIES_MIN_RELOAD):
            return False
        self.known, self.known_at = load_known_entities(self.engine), time.monotonic()
        return True

    def parse(self, messages: list[tuple[str, bytes]], now: datetime) -> tuple[list[dict], list[dict]]:
        readings, bad = [], []
        for topic, payload in messages:
            rows, quarantined = parse_message(self.topic_prefix, topic, payload, self.known, now)
            readings += rows
            bad += quarantined
        return readings, bad

    def write(self, messages: list[tuple[str, bytes]]) -> tuple[int, int, int]:
        """(stored, duplicates, quarantined) for the batch, after its commit.

        If the database rejects the batch (not merely unreachable), each message is written on its
        own and the one that still fails is quarantined, so one bad message cannot block the stream.
        """
        try:
            return self.write_batch(messages)
        except Exception as exc:
            if is_transient(self.engine, exc):
                raise
            log.warning(
                "batch of %d messages rejected (%s); writing them one by one", len(messages), type(exc).__name__
            )
        totals = [0, 0, 0]
        for message in messages:
            try:
                outcome = self.write_batch([message])
            except Exception as exc:
                if is_transient(self.engine, exc):
                    raise
                outcome = self.write_rejected(message, exc)
            totals = [a + b for a, b in zip(totals, outcome, strict=True)]
        return totals[0], totals[1], totals[2]

    def write_batch(self, messages: list[tuple[str, bytes]]) -> tuple[int, int, int]:
        now = datetime.now(UTC)
        readings, bad = self.parse(messages, now)
        unknown = any(names_unknown_entity(entry["reason"]) for entry in bad)
        if self.refresh_known(unknown) and unknown:
            readings, bad = self.parse(messages, now)
        with self.engine.begin() as conn:
            stored = BULK_INSERT[conn.dialect.name](conn, readings)
            insert_ignore(conn, schema.quarantine, bad)
            if self.on_stored is not None and readings:
                self.on_stored(conn, readings, now)
        if bad:  # topics only: reasons quote payload values, which stay in the quarantine table
            log.warning("quarantined %d message(s), e.g. from %s", len(bad), bad[0]["source"])
        return stored, len(readings) - stored, len(bad)

    def write_rejected(self, message: tuple[str, bytes], exc: Exception) -> tuple[int, int, int]:
        """Quarantine a message that failed even on its own; raise if that fails too (never drop it)."""
        topic, payload = message
        entry = quarantine_entry(
            topic,
            payload,
            f"could not be stored ({type(exc).__name__}); the database or the parser rejected it",
            datetime.now(UTC),
        )
        try:
            with self.engine.begin() as conn:
                insert_ignore(conn, schema.quarantine, [entry])
        except Exception as again:
            if is_transient(self.engine, again):
                raise
            raise RejectedMessage(f"could neither store nor quarantine a message from {entry['source']}") from again
        log.warning("quarantined a message that could not be stored, from %s", entry["source"])
        return 0, 0, 1


class RejectedMessage(Exception):
    """A message that neither its table nor the quarantine accepts: stop rather than drop it."""


def subscription_for(topic_prefix: str, group: str | None) -> str:
    """The consumer's subscription; with a group, an MQTT v5 shared subscription splitting the load."""
    topic = subscription_topic(topic_prefix)
    return f"$share/{group}/{topic}" if group else topic


class Inbox:
    """Messages handed from paho's network thread to the writer; bounded so a slow database pushes back.

    A deque and a sleep are far cheaper per message than queue.Queue's locks, which matters at
    10,000 messages a second under one GIL.
    """

    def __init__(self, limit: int) -> None:
        self.items: deque = deque()
        self.limit = limit
        self.last_put = 0.0

    def put(self, item) -> None:
        while len(self.items) >= self.limit:  # paho's thread waits: the broker stops sending
            time.sleep(0.002)
        self.items.append(item)
        self.last_put = time.monotonic()

    def settle(self, quiet: float = 0.2, most: float = 2.0) -> None:
        """Before disconnecting: accept whatever is still arriving (it stays unacknowledged) until the
        broker has been quiet for `quiet` s. Closing a socket with unread bytes makes the kernel send
        a reset, and a reset can make the broker drop the last acknowledgements it had not read yet,
        so it would deliver again messages already stored. The broker's in-flight window bounds what
        arrives."""
        self.limit = float("inf")
        deadline = time.monotonic() + most
        while time.monotonic() - self.last_put < quiet and time.monotonic() < deadline:
            time.sleep(0.02)

    def take(self, most: int) -> list:
        out = []
        while self.items and len(out) < most:
            out.append(self.items.popleft())
        return out


def drain(
    engine: Engine,
    mqtt_url: str,
    topic_prefix: str,
    client_id: str = "shelfwatch-ingest",
    until_idle: float = 2.0,
    max_messages: int | None = None,
    batch_size: int = 2000,
    batch_seconds: float = 0.25,
    queue_size: int = 10000,
    stop: threading.Event | None = None,
    ready: threading.Event | None = None,
    group: str | None = None,
    stats_every: float = 30.0,
    max_seconds: float | None = None,
    on_stored: OnStored | None = None,
    connect_budget: float | None = None,
) -> IngestStats:
    """Consume the persistent session until no message came for `until_idle` s (or `max_messages`).

    Batches are flushed when full, after `batch_seconds`, or after a short lull — the broker only sends
    as many unacknowledged messages as its in-flight window allows, so waiting for a full batch would
    stall. `ready` is set once the subscription is confirmed; `stop` (SIGTERM in the service) flushes,
    acknowledges and disconnects. `until_idle=inf` runs until stopped. `on_stored` runs in each
    batch's transaction (the shelf_empty fast path). A broker that is not up yet is retried for
    `connect_budget` seconds (default CONNECT_BUDGET_SECONDS), then BrokerError; once connected, paho
    reconnects on its own. `until_idle` counts from the connection, `max_seconds` from the call.
    """
    stats = IngestStats(client_id=client_id)
    started = time.monotonic()
    writer = ReadingWriter(engine, topic_prefix, on_stored)
    inbox = Inbox(queue_size)
    client, kwargs = make_client(mqtt_url, client_id)
    where = broker_address(mqtt_url)
    connected, answered = threading.Event(), threading.Event()
    refusal: list[str] = []
    stop = stop or threading.Event()

    def on_connect(c, userdata, flags, rc, props):
        if rc.is_failure:
            log.error("MQTT broker at %s refused the connection: %s", where, rc)
            if not connected.is_set():
                refusal.append(str(rc))
                answered.set()
            return
        if connected.is_set():
            stats.reconnects += 1
            log.warning("reconnected to the broker (session present: %s)", flags.session_present)
        elif not flags.session_present:
            log.warning(
                "MQTT broker at %s had no session for client id %s: readings published before now were not queued for "
                "it (create the session at deployment, before sensors publish: shelfwatch ingest-iot --init-session)",
                where,
                client_id,
            )
        c.subscribe(subscription_for(topic_prefix, group), qos=1)
        connected.set()
        answered.set()

    def on_subscribe(c, userdata, mid, rcs, props):
        if any(rc.is_failure for rc in rcs):
            log.error(
                "MQTT broker at %s refused the subscription to %s: %s",
                where,
                subscription_for(topic_prefix, group),
                rcs[0],
            )
        elif ready is not None:
            ready.set()

    def on_disconnect(c, userdata, flags, rc, props):
        if rc.is_failure and not stop.is_set():
            log.warning("lost the broker (%s); paho reconnects with backoff", rc)

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    client.on_message = lambda c, u, msg: inbox.put((msg.topic, msg.payload, msg.mid, msg.qos))
    client.on_subscribe = on_subscribe
    client.reconnect_delay_set(min_delay=1, max_delay=30)
    budget = CONNECT_BUDGET_SECONDS if connect_budget is None else connect_budget
    if not start_client(client, kwargs, where, budget, answered, refusal, stop):  # stopped before the broker came up
        stats.seconds = round(time.monotonic() - started, 3)
        return stats
    try:
        last_message = last_report = time.monotonic()
        batch: list = []
        batch_started = 0.0
        while True:
            room = batch_size - len(batch)
            if max_messages is not None:
                room = min(room, max_messages - stats.received)
            got = inbox.take(room) if room > 0 else []
            now = time.monotonic()
            if got:
                batch_started = batch_started if batch else now
                batch += got
                stats.received += len(got)
                last_message = now
            full = len(batch) >= batch_size or (max_messages is not None and stats.received >= max_messages)
            if batch and (full or not got or now - batch_started >= batch_seconds or stop.is_set()):
                flush(writer, client, batch, stats, stop)
                batch = []
            if not got:
                time.sleep(0.003)
            if now - last_report >= stats_every:
                report_stats(engine, stats, time.monotonic() - started)
                last_report = now
            timed_out = max_seconds is not None and now - started >= max_seconds
            if (
                stop.is_set()
                or timed_out
                or (max_messages is not None and stats.received >= max_messages)
                or now - last_message >= until_idle
            ):
                if timed_out and batch:
                    flush(writer, client, batch, stats, stop)
                break
        inbox.settle()
    finally:
        client.disconnect()
        client.loop_stop()
    stats.seconds = round(time.monotonic() - started, 3)
    report_stats(engine, stats, stats.seconds)
    return stats


def flush(
    writer: ReadingWriter, client: mqtt.Client, batch: list, stats: IngestStats, stop: threading.Event | None = None
) -> None:
    """Commit the batch, then acknowledge every message in it (never before).

    If the database is down, nothing is acknowledged: the write is retried with backoff while the
    bounded inbox fills and the broker holds the rest. A stop request gives up without acking, so the
    broker redelivers those messages to the next consumer.
    """
    delay = 0.5
    while True:
        t0 = time.perf_counter()
        try:
            stored, duplicates, quarantined = writer.write([(topic, payload) for topic, payload, _, _ in batch])
            break
        except Exception as exc:
            if not is_transient(writer.engine, exc):
                raise
            stats.db_errors += 1
            why = type(getattr(exc, "orig", None) or exc).__name__
            log.warning(
                "database unavailable (%s); %d messages held unacknowledged, retrying in %.1f s", why, len(batch), delay
            )
            if stop is None:
                time.sleep(delay)
            elif stop.wait(delay):
                return
            delay = min(delay * 2, 15.0)
    latency = time.perf_counter() - t0
    for _, _, mid, qos in batch:
        if qos > 0:
            client.ack(mid, qos)
    stats.stored += stored
    stats.duplicates += duplicates
    stats.quarantined += quarantined
    stats.batches += 1
    stats.commit_seconds_total += latency
    stats.commit_seconds_max = max(stats.commit_seconds_max, latency)


def report_stats(engine: Engine, stats: IngestStats, elapsed: float) -> None:
    """Log the counters and keep them in `ingest_stats`, where `shelfwatch ingest-iot --stats` reads them."""
    rate = stats.stored / elapsed if elapsed > 0 else 0.0
    log.info(
        "ingest %s: received=%d stored=%d duplicates=%d quarantined=%d batches=%d reconnects=%d db_errors=%d "
        "rate=%.0f/s",
        stats.client_id,
        stats.received,
        stats.stored,
        stats.duplicates,
        stats.quarantined,
        stats.batches,
        stats.reconnects,
        stats.db_errors,
        rate,
    )
    row = {**asdict(stats), "readings_per_second": round(rate, 1), "updated_at": datetime.now(UTC)}
    row.pop("seconds")
    try:
        with engine.begin() as conn:
            upsert(conn, schema.ingest_stats, [row])
    except OperationalError:
        log.warning("could not record ingest stats: database unavailable")
