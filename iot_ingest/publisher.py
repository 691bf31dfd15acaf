"""Publishing readings as shelf sensors do: one reading per message, QoS 1, waiting for every PUBACK."""

from __future__ import annotations

import threading
from collections.abc import Iterable

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from iot_ingest.contract import parse_broker_url, topic_for


def publisher_client(mqtt_url: str, client_id: str | None = None) -> mqtt.Client:
    addr = parse_broker_url(mqtt_url)
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id or "", protocol=mqtt.MQTTv5 if addr.protocol == "5" else mqtt.MQTTv311
    )
    if addr.username:
        client.username_pw_set(addr.username, addr.password)
    if addr.tls:
        client.tls_set(ca_certs=addr.ca_file, certfile=addr.cert_file, keyfile=addr.key_file)
    client.max_inflight_messages_set(200)
    connected = threading.Event()
    client.on_connect = lambda c, u, f, rc, p: connected.set() if not rc.is_failure else None
    client.connect(addr.host, addr.port, keepalive=30)
    client.loop_start()
    if not connected.wait(15):
        client.loop_stop()
        raise ConnectionError(f"could not connect to the broker at {addr.host}:{addr.port}")
    return client


def publish_payloads(mqtt_url: str, messages: Iterable[tuple[str, bytes]], qos: int = 1, client_id: str | None = None) -> int:
    """Publish (topic, payload) pairs and return once the broker acknowledged all of them."""
    client = publisher_client(mqtt_url, client_id)
    try:
        infos = [client.publish(topic, payload, qos=qos) for topic, payload in messages]
        for info in infos:
            info.wait_for_publish(timeout=60)
            if not info.is_published():
                raise TimeoutError(f"broker did not acknowledge message {info.mid}")
        return len(infos)
    finally:
        client.disconnect()
        client.loop_stop()


def publish_readings(mqtt_url: str, readings: Iterable[dict], topic_prefix: str, qos: int = 1, client_id: str | None = None) -> int:
    """One message per reading, on its sensor's topic."""
    return publish_payloads(
        mqtt_url, ((topic_for(topic_prefix, r["store_id"], r["sensor_id"]), orjson.dumps(r)) for r in readings), qos, client_id
    )


def publish_raw(mqtt_url: str, topic: str, payloads: list[bytes], qos: int = 1) -> int:
    """Arbitrary payloads on one topic (tests and the demo use it to send broken messages)."""
    return publish_payloads(mqtt_url, ((topic, p) for p in payloads), qos)
