"""Publishing readings as shelf sensors do: one reading per message, QoS 1, waiting for every PUBACK."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from core.settings import Settings
from iot_ingest.contract import parse_broker_url, topic_for
from shelfwatch.steps import existing_world_dir


def publisher_client(mqtt_url: str, client_id: str | None = None) -> mqtt.Client:
    addr = parse_broker_url(mqtt_url)
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id or "",
        protocol=mqtt.MQTTv5 if addr.protocol == "5" else mqtt.MQTTv311,
    )
    if addr.username:
        client.username_pw_set(addr.username, addr.password)
    if addr.tls:
        client.tls_set(ca_certs=addr.ca_file, certfile=addr.cert_file, keyfile=addr.key_file)
    client.max_inflight_messages_set(200)
    answered, refusal = threading.Event(), []

    def on_connect(c, userdata, flags, rc, props):
        if rc.is_failure:
            refusal.append(str(rc))
        answered.set()

    client.on_connect = on_connect
    client.connect(addr.host, addr.port, keepalive=30)
    client.loop_start()
    if not answered.wait(15) or refusal:
        client.loop_stop()
        why = f"refused: {refusal[0]}" if refusal else "no answer"
        raise ConnectionError(f"could not connect to the broker at {addr.host}:{addr.port} ({why})")
    return client


def publish_payloads(
    mqtt_url: str,
    messages: Iterable[tuple[str, bytes]],
    qos: int = 1,
    client_id: str | None = None,
    timeout: float = 60.0,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Publish (topic, payload) pairs and return once the broker acknowledged all of them.

    Raises PermissionError if the broker refused any (MQTT v5 PUBACK reason code, e.g. an ACL).
    `progress(n)` is told of acknowledged messages in steps of 500.
    """
    client = publisher_client(mqtt_url, client_id)
    refused: list[str] = []
    client.on_publish = lambda c, u, mid, rc, p: refused.append(f"{mid}: {rc}") if rc.is_failure else None
    try:
        infos = [client.publish(topic, payload, qos=qos) for topic, payload in messages]
        for done, info in enumerate(infos, 1):
            try:
                info.wait_for_publish(timeout=timeout)
            except RuntimeError as exc:  # paho: the broker closed the connection (e.g. on an ACL refusal)
                raise ConnectionError(
                    f"the broker closed the connection before acknowledging message {info.mid} ({exc})"
                ) from None
            if not info.is_published():
                raise TimeoutError(f"broker did not acknowledge message {info.mid}")
            if progress and (done % 500 == 0 or done == len(infos)):
                progress(done % 500 or 500)
        if refused:
            raise PermissionError(f"broker refused {len(refused)} of {len(infos)} messages ({refused[0]})")
        return len(infos)
    finally:
        client.disconnect()
        client.loop_stop()


def publish_readings(
    mqtt_url: str,
    readings: Iterable[dict],
    topic_prefix: str,
    qos: int = 1,
    client_id: str | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """One message per reading, on its sensor's topic."""
    return publish_payloads(
        mqtt_url,
        ((topic_for(topic_prefix, r["store_id"], r["sensor_id"]), orjson.dumps(r)) for r in readings),
        qos,
        client_id,
        progress=progress,
    )


def publish_raw(mqtt_url: str, topic: str, payloads: list[bytes], qos: int = 1) -> int:
    """Arbitrary payloads on one topic (tests and the demo use it to send broken messages)."""
    return publish_payloads(mqtt_url, ((topic, p) for p in payloads), qos)


def read_sensor_readings(world_dir: Path) -> list[dict]:
    with open(world_dir / "sensor_readings.jsonl") as fh:
        return [json.loads(line) for line in fh]


def publish_sensor_readings(
    settings: Settings, world_dir: str | Path | None = None, malformed: int = 0, progress=None
) -> dict:
    """Publish a world's readings as its shelf sensors would (one reading per message, QoS 1).

    `malformed` adds that many broken payloads, as a misbehaving device would send, so the demo shows
    them landing in quarantine.
    """
    readings = read_sensor_readings(existing_world_dir(settings, world_dir))
    sent = publish_readings(settings.mqtt_url, readings, settings.mqtt_topic_prefix, progress=progress)
    bad = [b'{"sensor_id": "broken', b'{"store_id": "S001"}', b"\xff\xfe not json"][: max(0, malformed)]
    if bad and readings:
        first = readings[0]
        publish_raw(
            settings.mqtt_url, topic_for(settings.mqtt_topic_prefix, first["store_id"], first["sensor_id"]), bad
        )
    return {"published": sent, "malformed_published": len(bad)}
