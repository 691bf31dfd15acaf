"""`shelfwatch bench ingest`: drain a preloaded backlog from a private Mosquitto into PostgreSQL and
SQLite, against `mosquitto_sub` draining an identical backlog in the same run.

The backlog is queued for the consumer's persistent session before it connects (the hardest case:
one reading per message, QoS 1, acknowledged only after commit, deduplicated on insert).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, func, select, text

from alerts.realtime import shelf_empty_on_stored
from core.db import get_engine, insert_ignore
from core.settings import Settings
from iot_ingest.consumer import drain, open_session
from lab.mosquitto import MosquittoProcess, publish_backlog
from sql import schema
from sql.migrate import migrate

PREFIX = "bench/v1"


@dataclass
class BenchResult:
    name: str
    readings: int
    messages: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.readings / self.seconds if self.seconds else 0.0


def fresh_database(kind: str, pg_url: str, workdir: Path) -> str:
    """An empty, migrated database with the one store and SKU the synthetic readings use."""
    if kind == "sqlite":
        url = f"sqlite:///{workdir / f'bench-{uuid.uuid4().hex[:6]}.db'}"
    else:
        schema_name = f"bench_{uuid.uuid4().hex[:8]}"
        with create_engine(pg_url, isolation_level="AUTOCOMMIT").connect() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema_name}"'))
        url = f"{pg_url}?options=-csearch_path%3D{schema_name}"
    engine = migrate(url)
    with engine.begin() as conn:
        insert_ignore(
            conn, schema.stores, [{"store_id": "S1", "name": "bench", "timezone": "UTC", "manager_email": "m@x"}]
        )
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
    return url


def drop_database(url: str, pg_url: str) -> None:
    get_engine(url).dispose()
    if url.startswith("postgresql") and "search_path%3D" in url:
        name = url.rsplit("%3D", 1)[1]
        with create_engine(pg_url, isolation_level="AUTOCOMMIT").connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))


def bench_consumer(broker: MosquittoProcess, db_url: str, messages: int, per_message: int, name: str) -> BenchResult:
    client_id = f"bench-{uuid.uuid4().hex[:6]}"
    open_session(broker.url, PREFIX, client_id)
    readings = publish_backlog(broker.port, PREFIX, messages, per_message=per_message)
    start = time.perf_counter()
    # as the service runs in production: shelf_empty alerts raised on arrival, in the same transaction
    stats = drain(
        get_engine(db_url),
        broker.url,
        PREFIX,
        client_id,
        until_idle=10,
        max_messages=messages,
        on_stored=shelf_empty_on_stored(Settings(database_url=db_url)),
    )
    seconds = time.perf_counter() - start
    assert stats.stored == readings, f"{name}: stored {stats.stored} of {readings}"
    return BenchResult(name, readings, messages, seconds)


def bench_mosquitto_sub(broker: MosquittoProcess, messages: int) -> BenchResult:
    """The C client draining an identical backlog from its own persistent session (QoS 1)."""
    sub_id = f"mosquitto-sub-{uuid.uuid4().hex[:6]}"
    topic = f"{PREFIX}/stores/+/sensors/+/readings"
    base = ["mosquitto_sub", "-p", str(broker.port), "-c", "-i", sub_id, "-q", "1", "-t", topic]
    subprocess.run([*base, "-E"], check=True)  # create the session, then exit
    publish_backlog(broker.port, PREFIX, messages)
    start = time.perf_counter()
    subprocess.run([*base, "-C", str(messages)], check=True, stdout=subprocess.DEVNULL)
    return BenchResult("mosquitto_sub (C client, no storage)", messages, messages, time.perf_counter() - start)


def bench_shared(broker: MosquittoProcess, db_url: str, messages: int, processes: int) -> BenchResult:
    """N consumer processes in one MQTT v5 shared subscription, timed until every reading is stored."""
    group = f"g{uuid.uuid4().hex[:4]}"
    ids = [f"bench-shared-{group}-{i}" for i in range(processes)]
    for client_id in ids:
        open_session(broker.url, PREFIX, client_id, group=group)
    readings = publish_backlog(broker.port, PREFIX, messages)
    engine = get_engine(db_url)
    env = {**os.environ, "SHELFWATCH_MQTT_TOPIC_PREFIX": PREFIX}
    start = time.perf_counter()
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "shelfwatch.cli",
                "ingest-iot",
                "--broker",
                broker.url,
                "--db",
                db_url,
                "--client-id",
                cid,
                "--group",
                group,
                "--until-idle",
                "5",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for cid in ids
    ]
    count, first_stored = 0, None
    while count < readings and any(p.poll() is None for p in procs):
        time.sleep(0.02)
        with engine.connect() as conn:
            count = conn.execute(select(func.count()).select_from(schema.sensor_readings)).scalar_one()
        if count and first_stored is None:
            first_stored = time.perf_counter()
    seconds = time.perf_counter() - (first_stored or start)
    for p in procs:
        p.wait(timeout=60)
    assert count == readings, f"shared subscription stored {count} of {readings}"
    # timed from the first reading stored, so the processes' start-up (imports, connect) is left out
    return BenchResult(
        f"shelfwatch, {processes} processes, shared subscription -> postgresql", readings, messages, seconds
    )


def run_ingest_bench(
    messages: int = 200_000,
    gateway_messages: int = 4_000,
    pg_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    shared_processes: int = 2,
    console=None,
) -> list[BenchResult]:
    say = console.print if console else print
    workdir = Path(tempfile.mkdtemp(prefix="shelfwatch-bench-"))
    results: list[BenchResult] = []
    with MosquittoProcess(workdir=workdir / "broker") as broker:
        say(f"private Mosquitto on port {broker.port}; backlog of {messages:,} messages per run")
        results.append(bench_mosquitto_sub(broker, messages))
        say(f"  {results[-1].name}: {results[-1].rate:,.0f} msg/s")
        for kind in ("postgresql", "sqlite"):
            url = fresh_database(kind, pg_url, workdir)
            try:
                results.append(bench_consumer(broker, url, messages, 1, f"shelfwatch, 1 process -> {kind}"))
            finally:
                drop_database(url, pg_url)
            say(f"  {results[-1].name}: {results[-1].rate:,.0f} readings/s")
        if shared_processes > 1:
            url = fresh_database("postgresql", pg_url, workdir)
            try:
                results.append(bench_shared(broker, url, messages, shared_processes))
            finally:
                drop_database(url, pg_url)
            say(f"  {results[-1].name}: {results[-1].rate:,.0f} readings/s")
        if gateway_messages:
            url = fresh_database("postgresql", pg_url, workdir)
            try:
                results.append(
                    bench_consumer(
                        broker, url, gateway_messages, 50, "gateway batches of 50 -> postgresql (not the target)"
                    )
                )
            finally:
                drop_database(url, pg_url)
            say(f"  {results[-1].name}: {results[-1].rate:,.0f} readings/s")
    return results
