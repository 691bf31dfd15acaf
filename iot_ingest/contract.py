"""The MQTT contract (v1, see iot_ingest/README.md) as pure functions: topics and payload parsing.

`parse_message` turns one message into reading rows and quarantine rows; it never raises on bad
input, because one misbehaving sensor must not stop the stream.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, unquote, urlsplit

import orjson

from core.domain import MQTT
from sql import schema

KINDS = ("shelf_units", "shelf_weight_g", "backroom_units")
REQUIRED = ("sensor_id", "store_id", "sku", "kind", "value", "ts", "seq")
MAX_CLOCK_SKEW = timedelta(hours=1)  # a device time further ahead than this is flagged, not trusted
# Column limits, checked here so the database never rejects a batch over one message (a poison
# message would be redelivered forever, since nothing is acknowledged before the commit).
SENSOR_ID_MAX = schema.sensor_readings.c.sensor_id.type.length
SOURCE_MAX = schema.quarantine.c.source.type.length
SEQ_RANGE = (-(2**31), 2**31 - 1)  # sensor_readings.seq is INTEGER on PostgreSQL


@dataclass(frozen=True)
class KnownEntities:
    """What the database knows, to reject readings for stores and SKUs that do not exist."""

    stores: frozenset[str]
    unit_weight_g: dict[str, float]  # sku -> grams per unit
    tare_g: dict[str, float] = field(default_factory=dict)  # sensor_id -> grams of an empty shelf


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    username: str | None
    password: str | None
    protocol: str  # "5" or "3.1.1"
    tls: bool
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None


def parse_broker_url(url: str) -> BrokerAddress:
    """`mqtt://user:pass@host:port` or `mqtts://...` (TLS).

    Query options: `protocol=3.1.1` for brokers without MQTT v5; with mqtts, `ca=` (CA bundle),
    `cert=` and `key=` (client certificate) as file paths.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ValueError(f"broker URL must look like mqtt://user:pass@host:port, got {url!r}")
    tls = parts.scheme == "mqtts"
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    protocol = query.get("protocol", "5")
    if protocol not in ("5", "3.1.1"):
        raise ValueError(f"unsupported MQTT protocol {protocol!r} in {url!r}: use 5 or 3.1.1")
    return BrokerAddress(
        parts.hostname,
        parts.port or (8883 if tls else 1883),
        unquote(parts.username) if parts.username else None,
        unquote(parts.password) if parts.password else None,
        protocol,
        tls,
        query.get("ca"),
        query.get("cert"),
        query.get("key"),
    )


def topic_for(prefix: str, store_id: str, sensor_id: str) -> str:
    return f"{prefix}/stores/{store_id}/sensors/{sensor_id}/readings"


def subscription_topic(prefix: str) -> str:
    return f"{prefix}/stores/+/sensors/+/readings"


def topic_ids(prefix: str, topic: str) -> tuple[str, str] | None:
    """(store_id, sensor_id) of a readings topic, or None if the topic is not one."""
    head = prefix + "/stores/"
    if not topic.startswith(head):
        return None
    parts = topic[len(head) :].split("/")
    if len(parts) != 4 or parts[1] != "sensors" or parts[3] != "readings" or not parts[0] or not parts[2]:
        return None
    return parts[0], parts[2]


def quarantine_entry(topic: str, payload: bytes, reason: str, now: datetime) -> dict:
    """A quarantine row that any database accepts: the same bad payload twice gives the same hash.

    The hash covers the raw bytes (two different undecodable payloads stay two rows); NUL characters,
    which PostgreSQL text cannot hold, become U+FFFD, and an over-long topic is cut to the column size.
    """
    raw = payload.decode("utf-8", errors="replace").replace("\x00", "\ufffd")
    reason = f"topic {topic}: {reason}".replace("\x00", "\ufffd")
    digest = hashlib.sha256(payload + b"\x00" + reason.encode()).hexdigest()
    return {
        "channel": MQTT,
        "source": topic[:SOURCE_MAX],
        "raw_content": raw,
        "reason": reason,
        "content_hash": digest,
        "quarantined_at": now,
    }


UNKNOWN_STORE, UNKNOWN_SKU = "unknown store", "unknown sku"


def names_unknown_entity(reason: str) -> bool:
    """A quarantine reason that master data loaded since could cure (a store or SKU not known yet)."""
    return f": {UNKNOWN_STORE} " in reason or f": {UNKNOWN_SKU} " in reason


def reading_problem(
    item: object, ids: tuple[str, str], known: KnownEntities, now: datetime
) -> tuple[str | None, dict | None]:
    """Why one reading is invalid (None if valid) and, if valid, its database row."""
    if not isinstance(item, dict):
        return f"a reading must be a JSON object, got {type(item).__name__}", None
    missing = [f for f in REQUIRED if f not in item or item[f] is None]
    if missing:
        return "missing field " + ", ".join(repr(f) for f in missing), None
    for name in ("sensor_id", "store_id", "sku", "kind", "ts"):
        if not isinstance(item[name], str):
            return f"field {name!r} must be a string", None
    value, seq, battery = item["value"], item["seq"], item.get("battery")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return f"field 'value' is {value!r} (must be a number)", None
    if isinstance(seq, bool) or not isinstance(seq, int):
        return f"field 'seq' is {seq!r} (must be an integer)", None
    if not SEQ_RANGE[0] <= seq <= SEQ_RANGE[1]:
        return f"field 'seq' is {seq} (must fit a 32-bit integer)", None
    if (item["store_id"], item["sensor_id"]) != ids:
        return (
            f"payload store/sensor {item['store_id']}/{item['sensor_id']} does not match the topic's {ids[0]}/{ids[1]}",
            None,
        )
    if len(item["sensor_id"]) > SENSOR_ID_MAX:
        return f"field 'sensor_id' is longer than {SENSOR_ID_MAX} characters", None
    if item["kind"] not in KINDS:
        return f"field 'kind' is {item['kind']!r} (must be one of {', '.join(KINDS)})", None
    if value < 0:
        return f"field 'value' is {value} (must be >= 0)", None
    if battery is not None and (
        isinstance(battery, bool) or not isinstance(battery, int | float) or not 0 <= battery <= 1
    ):
        return f"field 'battery' is {battery!r} (must be between 0 and 1)", None
    if item["store_id"] not in known.stores:
        return f"{UNKNOWN_STORE} {item['store_id']!r}", None
    if item["sku"] not in known.unit_weight_g:
        return f"{UNKNOWN_SKU} {item['sku']!r}", None
    try:
        ts = datetime.fromisoformat(item["ts"].replace("Z", "+00:00"))
    except ValueError:
        return f"field 'ts' is {item['ts']!r} (must be an RFC 3339 time)", None
    if ts.tzinfo is None:
        return f"field 'ts' is {item['ts']!r} (needs a UTC offset)", None
    try:
        ts = ts.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        return f"field 'ts' is {item['ts']!r} (out of range)", None
    units = float(value)
    if item["kind"] == "shelf_weight_g":
        units = max(0.0, float(value) - known.tare_g.get(item["sensor_id"], 0.0)) / known.unit_weight_g[item["sku"]]
    return None, {
        "sensor_id": item["sensor_id"],
        "store_id": item["store_id"],
        "sku": item["sku"],
        "kind": item["kind"],
        "value": float(value),
        "units": units,
        "seq": int(seq),
        "battery": None if battery is None else float(battery),
        "device_ts": ts,
        "received_at": now,
        "clock_skew": ts > now + MAX_CLOCK_SKEW,
    }


def parse_message(
    prefix: str, topic: str, payload: bytes, known: KnownEntities, now: datetime
) -> tuple[list[dict], list[dict]]:
    """(reading rows, quarantine rows) of one message; a list payload is checked item by item."""
    ids = topic_ids(prefix, topic)
    if ids is None:
        return [], [
            quarantine_entry(
                topic, payload, f"not a readings topic (expected {topic_for(prefix, '{store_id}', '{sensor_id}')})", now
            )
        ]
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        return [], [quarantine_entry(topic, payload, f"malformed JSON ({exc})", now)]
    items = body if isinstance(body, list) else [body]
    if not items:
        return [], [quarantine_entry(topic, payload, "empty list of readings", now)]
    rows, bad = [], []
    for item in items:
        problem, row = reading_problem(item, ids, known, now)
        if problem:
            bad.append(quarantine_entry(topic, orjson.dumps(item) if len(items) > 1 else payload, problem, now))
        else:
            rows.append(row)
    return rows, bad
