"""The production broker config (deploy/mosquitto): store gateways may publish only to their own
store's topics; anonymous and wrong-password clients are refused. Run on a private Mosquitto."""

import subprocess
import uuid

import orjson
import pytest

from core.db import insert_ignore
from iot_ingest.consumer import drain, open_session
from lab.mosquitto import MosquittoProcess, synthetic_reading
from lab.publisher import publish_payloads
from sql import schema
from sql.migrate import migrate
from tests.conftest import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy" / "mosquitto"
PREFIX = "shelfwatch/v1"


@pytest.fixture
def secured_broker(tmp_path, private_broker):
    """A private broker with the repo's ACL file and a password file for two stores and the ingest."""
    private_broker.stop()
    passwd = tmp_path / "passwd"
    passwd.write_text("S1:s1-secret\nS2:s2-secret\nshelfwatch-ingest:ingest-secret\n")
    subprocess.run(["mosquitto_passwd", "-U", str(passwd)], check=True)
    broker = MosquittoProcess(
        anonymous=False,
        workdir=tmp_path / "secured",
        extra_config=f"password_file {passwd}\nacl_file {DEPLOY / 'acl'}\n",
    )
    with broker:
        yield broker


def url(broker, user, password):
    return f"mqtt://{user}:{password}@127.0.0.1:{broker.port}"


def test_production_config_keeps_queues_and_persistence():
    conf = (DEPLOY / "mosquitto.conf").read_text()
    for line in (
        "persistence true",
        "allow_anonymous false",
        "max_inflight_messages 1000",
        "max_queued_messages 40000000",
    ):
        assert line in conf


def test_store_may_publish_only_its_own_topics(secured_broker, tmp_path):
    engine = migrate(f"sqlite:///{tmp_path / 'acl.db'}")
    with engine.begin() as conn:
        insert_ignore(
            conn,
            schema.stores,
            [{"store_id": s, "name": s, "timezone": "UTC", "manager_email": "m@x"} for s in ("S1", "S2")],
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
                    "shelf_capacity": 9,
                }
            ],
        )
    ingest_url = url(secured_broker, "shelfwatch-ingest", "ingest-secret")
    client_id = f"acl-{uuid.uuid4().hex[:6]}"
    open_session(ingest_url, PREFIX, client_id)
    own = [
        (f"{PREFIX}/stores/S1/sensors/X1/readings", orjson.dumps(synthetic_reading(1, i, "S1", "A"))) for i in range(20)
    ]
    foreign = [
        (f"{PREFIX}/stores/S2/sensors/X9/readings", orjson.dumps(synthetic_reading(9, i, "S2", "A"))) for i in range(3)
    ]
    publish_payloads(url(secured_broker, "S1", "s1-secret"), own)
    with pytest.raises(
        (PermissionError, TimeoutError, ConnectionError)
    ):  # refused (v5 reason code), never acknowledged, or cut off
        publish_payloads(url(secured_broker, "S1", "s1-secret"), foreign, timeout=5)
    stats = drain(engine, ingest_url, PREFIX, client_id, until_idle=2)
    assert (stats.received, stats.stored) == (20, 20)


@pytest.mark.parametrize(("user", "password"), [("S1", "wrong"), (None, None)])
def test_bad_credentials_are_refused(secured_broker, user, password):
    target = url(secured_broker, user, password) if user else secured_broker.url
    with pytest.raises(ConnectionError):
        publish_payloads(target, [(f"{PREFIX}/stores/S1/sensors/X1/readings", b"{}")])
