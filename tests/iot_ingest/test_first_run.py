"""The ingest's first run against real brokers and both databases: `ingest-iot --init-session` makes the
broker keep readings published before the consumer first runs; a broker that is down at start-up is
retried until it comes up; one that never does ends the command with exit 2 and one line, no traceback."""

import json
import os
import subprocess
import sys
import threading
import time
import uuid

import orjson
import pytest

from core.db import insert_ignore
from iot_ingest import consumer
from iot_ingest.consumer import BrokerError, drain, open_session
from lab.brokers import free_port
from lab.mosquitto import synthetic_reading
from lab.publisher import publish_payloads
from sql import schema
from tests.conftest import REPO_ROOT as ROOT


def seed(engine) -> None:
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


def publish(url: str, prefix: str, n: int, sensor: int = 1) -> int:
    return publish_payloads(
        url,
        [
            (f"{prefix}/stores/S1/sensors/X{sensor}/readings", orjson.dumps(synthetic_reading(sensor, i, "S1", "A")))
            for i in range(n)
        ],
    )


def shelfwatch(
    prefix: str, *args: str, budget: float | None = None, timeout: float = 180
) -> subprocess.CompletedProcess:
    """`shelfwatch ARGS` as its own process; `budget` shortens the consumer's connect retry budget."""
    code = "import sys; from iot_ingest import consumer; from shelfwatch.cli.app import app; "
    if budget is not None:
        code += f"consumer.CONNECT_BUDGET_SECONDS = {budget}; "
    code += "app(prog_name='shelfwatch')"
    env = {**os.environ, "SHELFWATCH_MQTT_TOPIC_PREFIX": prefix}
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def summary(out: str) -> dict:
    return json.loads(out[out.index("{") :])


def test_init_session_keeps_readings_published_before_the_first_run(mqtt_url, topic_prefix, engine, db_url):
    seed(engine)
    client_id = f"first-run-{uuid.uuid4().hex[:8]}"
    init = shelfwatch(topic_prefix, "ingest-iot", "--init-session", "--broker", mqtt_url, "--client-id", client_id)
    assert init.returncode == 0, init.stderr[-3000:]
    said = " ".join(init.stdout.split())
    assert (
        f"persistent session created for client id {client_id}" in said
        and f"subscribed to {topic_prefix}/" in said
        and "(QoS 1)" in said
    )

    published = publish(mqtt_url, topic_prefix, 300)  # the sensors start before the consumer ever ran
    run = shelfwatch(
        topic_prefix, "ingest-iot", "--broker", mqtt_url, "--db", db_url, "--client-id", client_id, "--until-idle", "3"
    )
    assert run.returncode == 0, run.stderr[-3000:]
    stats = summary(run.stdout)
    assert stats["received"] == stats["stored"] == published == 300
    assert "had no session" not in run.stderr

    again = shelfwatch(topic_prefix, "ingest-iot", "--init-session", "--broker", mqtt_url, "--client-id", client_id)
    assert again.returncode == 0 and "persistent session already existed" in " ".join(again.stdout.split())


def test_without_a_session_the_first_run_says_what_was_lost(mqtt_url, topic_prefix, engine, db_url):
    seed(engine)
    client_id = f"no-session-{uuid.uuid4().hex[:8]}"
    publish(mqtt_url, topic_prefix, 20)  # nobody subscribed yet: the broker keeps nothing
    run = shelfwatch(
        topic_prefix, "ingest-iot", "--broker", mqtt_url, "--db", db_url, "--client-id", client_id, "--until-idle", "2"
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert summary(run.stdout)["received"] == 0
    warning = " ".join(run.stderr.split())
    assert f"had no session for client id {client_id}" in warning and "shelfwatch ingest-iot --init-session" in warning


def test_broker_down_at_start_is_retried_until_it_comes_up(private_broker, topic_prefix, engine, db_url):
    seed(engine)
    client_id = f"late-broker-{uuid.uuid4().hex[:8]}"
    assert open_session(private_broker.url, topic_prefix, client_id)["session_existed"] is False
    published = publish(private_broker.url, topic_prefix, 500)
    private_broker.stop()  # graceful: Mosquitto keeps the session and its queue on disk
    env = {**os.environ, "SHELFWATCH_MQTT_TOPIC_PREFIX": topic_prefix}
    service = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "shelfwatch.cli",
            "ingest-iot",
            "--broker",
            private_broker.url,
            "--db",
            db_url,
            "--client-id",
            client_id,
            "--until-idle",
            "3",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(service.stderr), daemon=True)
    reader.start()
    try:
        # the broker comes back only once the consumer has found it down and said it retries: on a
        # loaded machine the interpreter's start alone can outlast any fixed sleep
        deadline = time.monotonic() + 120
        while not any("retrying in" in line for line in lines) and time.monotonic() < deadline:
            assert service.poll() is None, "".join(lines)[-3000:]
            time.sleep(0.2)
        private_broker.start()
        out = service.stdout.read()
        service.wait(timeout=120)
        reader.join(timeout=10)
        err = "".join(lines)
    finally:
        if service.poll() is None:
            service.kill()
    assert service.returncode == 0, err[-3000:]
    assert summary(out)["received"] == summary(out)["stored"] == published
    assert (
        f"MQTT broker at 127.0.0.1:{private_broker.port} not reachable (ConnectionRefusedError" in err
        and "retrying in" in err
    )


@pytest.mark.parametrize("mode", ["drain", "init-session"])
def test_broker_never_up_ends_with_exit_2_and_one_line(mode, db_url, topic_prefix):
    port = free_port()
    broker = f"mqtt://ingest:s3cret-pw@127.0.0.1:{port}"
    args = ["ingest-iot", "--broker", broker, "--client-id", "never-up"] + (
        ["--init-session"] if mode == "init-session" else ["--db", db_url, "--until-idle", "2"]
    )
    started = time.monotonic()
    run = shelfwatch(topic_prefix, *args, budget=3)
    assert run.returncode == 2, run.stdout + run.stderr
    assert time.monotonic() - started < 60
    lines = [line for line in run.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, run.stdout
    assert (
        lines[0].startswith("error: MQTT broker at 127.0.0.1:")
        and f":{port} not reachable" in lines[0]
        and "ConnectionRefusedError" in lines[0]
    )
    assert "Traceback" not in run.stdout + run.stderr
    assert "s3cret-pw" not in run.stdout + run.stderr  # retries are logged by host:port only
    assert run.stderr.count("retrying in") >= 2


def test_drain_gives_up_after_its_budget_and_stops_on_request(engine, topic_prefix):
    url = f"mqtt://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(BrokerError, match=r"not reachable: gave up after \d+ attempt\(s\) in 1.5 s"):
        drain(engine, url, topic_prefix, "budget", until_idle=1, connect_budget=1.5)
    assert time.monotonic() - started < 10
    # a stop request (SIGTERM) while waiting for the broker ends the run at once, with nothing consumed
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    stats = drain(engine, url, topic_prefix, "stopped", until_idle=1, stop=stop, connect_budget=60)
    assert stats.received == 0 and stats.seconds < 5
    assert consumer.CONNECT_BUDGET_SECONDS == 120.0
