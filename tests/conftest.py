"""Shared fixtures: the real PostgreSQL and Mosquitto when reachable, SQLite and an embedded broker
otherwise. Under CI=true an unreachable service is a test failure, never a skip."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

import pytest

from core.db import get_engine
from core.settings import Settings
from sql.migrate import migrate

ON_CI = os.environ.get("CI", "").lower() == "true"
PG_HOST, PG_PORT = os.environ.get("SHELFWATCH_TEST_PG_HOST", "127.0.0.1"), 5432
PG_BASE = os.environ.get("SHELFWATCH_TEST_PG_URL", f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/test")
MQTT_HOST, MQTT_PORT = "127.0.0.1", int(os.environ.get("SHELFWATCH_TEST_MQTT_PORT", "1883"))
REPO_ROOT = Path(__file__).resolve().parents[1]  # tests import it: test files sit at different depths
SHARED_DIR = REPO_ROOT.parent / "shared"


def reachable(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> bool:
    """True if the service answers; under CI a missing service fails the test instead of skipping."""
    if reachable(host, port):
        return True
    if ON_CI:
        pytest.fail(f"{name} is not reachable at {host}:{port} and CI=true: start it (see .ci/run)")
    return False


@pytest.fixture
def pg_url():
    """A fresh PostgreSQL schema for one test, dropped afterwards."""
    if not require_service("PostgreSQL", PG_HOST, PG_PORT):
        pytest.skip("PostgreSQL not reachable (allowed outside CI)")
    from sqlalchemy import create_engine, text

    schema = f"sw_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_BASE, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{PG_BASE}?options=-csearch_path%3D{schema}"
    yield url
    get_engine(url).dispose()
    get_engine.cache_clear()
    with admin.connect() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """Each test using it runs twice: on SQLite and on the real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'shelfwatch.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def engine(db_url):
    """A migrated database (Alembic head)."""
    return migrate(db_url)


@pytest.fixture(scope="session")
def mqtt_url():
    """The real Mosquitto when it answers, else an embedded in-process broker (not allowed on CI)."""
    if require_service("Mosquitto", MQTT_HOST, MQTT_PORT):
        yield f"mqtt://{MQTT_HOST}:{MQTT_PORT}"
        return
    from lab.brokers import EmbeddedBroker

    with EmbeddedBroker() as broker:
        yield broker.url


@pytest.fixture
def topic_prefix():
    """A topic root of its own per test, so tests sharing a broker never see each other's messages."""
    return f"shelfwatch-test/{uuid.uuid4().hex[:10]}/v1"


# The simulated worlds end on the simulator's default day: tests replay them at its "now"
# (SHELFWATCH_AS_OF), as the wall clock has moved on.
WORLD_AS_OF = "2026-11-23T00:00:00+00:00"


@pytest.fixture
def settings(tmp_path, db_url) -> Settings:
    return Settings(data_dir=tmp_path / "data", database_url=db_url, output_dir=tmp_path / "out", as_of=WORLD_AS_OF)


@pytest.fixture
def private_broker(tmp_path):
    """A Mosquitto process of the test's own (restartable, configurable), on a free port."""
    import shutil

    from lab.mosquitto import MosquittoProcess

    if shutil.which("mosquitto") is None or shutil.which("mosquitto_pub") is None:
        if ON_CI:
            pytest.fail("mosquitto and mosquitto_pub are required on CI (apt-get install mosquitto mosquitto-clients)")
        pytest.skip("mosquitto not installed")
    with MosquittoProcess(workdir=tmp_path / "mosquitto") as broker:
        yield broker
