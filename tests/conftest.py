"""Shared fixtures: the real PostgreSQL and Mosquitto when reachable, SQLite and an embedded broker
otherwise. Under CI=true an unreachable service is a test failure, never a skip."""

from __future__ import annotations

import os
import queue
import socket
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

# The CLI's Rich consoles fix their width from COLUMNS when first imported; tests give each CliRunner
# call its own COLUMNS, so import them here, before any test, with the width left to each call.
os.environ.pop("COLUMNS", None)
import shelfwatch.cli.common  # noqa: E402,F401,I001

from core.db import get_engine
from core.settings import Settings
from lab.simulator import simulate_world
from sql.migrate import migrate

ON_CI = os.environ.get("CI", "").lower() == "true"
PG_HOST, PG_PORT = os.environ.get("SHELFWATCH_TEST_PG_HOST", "127.0.0.1"), 5432
PG_BASE = os.environ.get("SHELFWATCH_TEST_PG_URL", f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/test")
PG_ADMIN_URL = f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/postgres"  # CREATE/DROP DATABASE
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
    """A fresh, empty PostgreSQL schema for one test, dropped afterwards."""
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


# ------------------------------------------------------------------------------ database templates
# Each test still gets a database of its own, but a copy, not a rebuild: every stage below is built
# once per session (per xdist worker) and engine, and copied per test in milliseconds (SQLite: the
# backup API; PostgreSQL: CREATE DATABASE ... TEMPLATE). A test's fixtures say which stage it needs.

STAGES = ("empty", "migrated", "loaded", "forecast", "web")
STAGE_OF_FIXTURE = {"engine": "migrated", "loaded_engine": "loaded", "forecast_engine": "forecast", "web_db": "web"}
PASSWORD = "correct horse battery"  # every web user's, in the web stage
WEB_USERS = {"planner": ("ann", None), "store_manager": ("bob", "S001"), "cx": ("cyd", None), "admin": ("dee", None)}
WEB_SECRET = "test-secret"


def stage_settings(url: str, out: Path) -> Settings:
    """The settings every stage and the tests over it use: the world's clock, the test's folders."""
    return Settings(data_dir=out / "data", database_url=url, output_dir=out, web_secret=WEB_SECRET, as_of=WORLD_AS_OF)


def build_stage(stage: str, url: str, world_dir: Path, out: Path) -> None:
    """Bring a copy of the previous stage's database to `stage` (what the tests used to do per test)."""
    engine = get_engine(url)
    if stage == "migrated":
        migrate(url)
    elif stage == "loaded":
        from lab.world_db import load_world_bulk

        load_world_bulk(engine, world_dir)
    elif stage == "forecast":
        from forecasting.engine import EngineSettings
        from forecasting.runs import run_forecast

        run_forecast(engine, EngineSettings(horizon=14, workers=1))
    elif stage == "web":  # what the alerts DAG leaves, plus one user per role
        from alerts.detect import detect_alerts
        from alerts.member_risk import refresh_member_risk
        from shelfwatch.web.auth import add_user

        settings = stage_settings(url, out)
        detect_alerts(engine, settings)
        refresh_member_risk(engine, settings.clock(), settings)
        for role, (name, store) in WEB_USERS.items():
            add_user(engine, name, PASSWORD, role, store)
    engine.dispose()  # a PostgreSQL template must have no open connection when it is copied


class DatabaseTemplates:
    """Stage templates per engine, built lazily on first use, and the per-test copies of them."""

    def __init__(self, root: Path, world: Callable[[], Path]):
        self.root, self.world = root, world
        self.tag = f"{os.environ.get('PYTEST_XDIST_WORKER', 'gw')}_{uuid.uuid4().hex[:8]}"
        self.built: dict[tuple[str, str], str] = {}
        self._drops: queue.Queue[str | None] = queue.Queue()
        self._dropper: threading.Thread | None = None
        self._admin = None

    # -- PostgreSQL: databases copied from template databases, dropped in the background
    def admin(self):
        if self._admin is None:
            from sqlalchemy import create_engine

            self._admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        return self._admin

    def _pg_copy(self, name: str, template: str | None) -> str:
        from sqlalchemy import text

        with self.admin().connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")))
        return f"postgresql+psycopg://postgres@{PG_HOST}:{PG_PORT}/{name}"

    def _drop_loop(self) -> None:
        from sqlalchemy import text

        while (name := self._drops.get()) is not None:
            with self.admin().connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    def drop_later(self, name: str) -> None:
        """DROP DATABASE waits for a checkpoint (about 0.5 s): a thread does it while the next test runs."""
        if self._dropper is None:
            self._dropper = threading.Thread(target=self._drop_loop, name="drop-test-databases", daemon=True)
            self._dropper.start()
        self._drops.put(name)

    # -- both engines
    def template(self, kind: str, stage: str) -> str:
        """The URL (SQLite: the path) of `stage`'s template for `kind`, built from the stage before."""
        key = (kind, stage)
        if key not in self.built:
            before = STAGES[STAGES.index(stage) - 1]
            name = f"sw_tpl_{self.tag}_{stage}"
            if kind == "sqlite":
                path = self.root / f"{stage}.db"
                if before != "empty":
                    sqlite_copy(self.template(kind, before), path)
                url = f"sqlite:///{path}"
            else:
                url = self._pg_copy(name, self._pg_name(self.template(kind, before)) if before != "empty" else None)
            build_stage(stage, url, self.world(), self.root / f"{kind}_{stage}_out")
            get_engine.cache_clear()
            self.built[key] = str(path) if kind == "sqlite" else url
        return self.built[key]

    @staticmethod
    def _pg_name(url: str) -> str:
        return url.rsplit("/", 1)[-1]

    def copy(self, kind: str, stage: str, tmp_path: Path) -> tuple[str, Callable[[], None]]:
        """A database of the test's own at `stage`: its URL and what to do when the test ends."""
        if kind == "sqlite":
            target = tmp_path / "shelfwatch.db"
            sqlite_copy(self.template(kind, stage), target)
            return f"sqlite:///{target}", lambda: None
        name = f"sw_test_{uuid.uuid4().hex[:12]}"
        url = self._pg_copy(name, self._pg_name(self.template(kind, stage)))

        def done() -> None:
            get_engine(url).dispose()
            get_engine.cache_clear()
            self.drop_later(name)

        return url, done

    def close(self) -> None:
        from sqlalchemy import text

        if self._dropper is not None:
            self._drops.put(None)
            self._dropper.join()
        get_engine.cache_clear()
        if self._admin is not None:
            with self._admin.connect() as conn:
                for (kind, _), url in self.built.items():
                    if kind == "postgresql":
                        conn.execute(text(f'DROP DATABASE IF EXISTS "{self._pg_name(url)}" WITH (FORCE)'))
            self._admin.dispose()


def sqlite_copy(source: str | Path, target: Path) -> None:
    """A consistent copy of an SQLite database, WAL included (the backup API, not a file copy)."""
    import sqlite3

    target.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    dst.close()
    src.close()


@pytest.fixture(scope="session")
def small_world(tmp_path_factory):
    """The small simulated world (2 stores x 15 SKUs x 150 days, 300 members), made once a session:
    tests read its files and never write into them."""
    return simulate_world(
        tmp_path_factory.mktemp("small_world"), stores=2, skus=15, days=150, members=300, seed=11, incident_share=0.1
    )


@pytest.fixture(scope="session")
def database_templates(tmp_path_factory, request):
    templates = DatabaseTemplates(
        tmp_path_factory.mktemp("db_templates"), world=lambda: request.getfixturevalue("small_world")
    )
    yield templates
    templates.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """Each test using it runs twice: on SQLite and on the real PostgreSQL. The database is the test's
    own, at the stage its fixtures need (STAGE_OF_FIXTURE) or its `database(STAGE)` mark names, or empty."""
    marked = request.node.get_closest_marker("database")
    stage = max(
        [STAGE_OF_FIXTURE[name] for name in request.fixturenames if name in STAGE_OF_FIXTURE]
        + ([marked.args[0]] if marked else []),
        key=STAGES.index,
        default="empty",
    )
    if request.param == "postgresql" and not require_service("PostgreSQL", PG_HOST, PG_PORT):
        pytest.skip("PostgreSQL not reachable (allowed outside CI)")
    if stage == "empty":
        return (
            f"sqlite:///{tmp_path / 'shelfwatch.db'}"
            if request.param == "sqlite"
            else request.getfixturevalue("pg_url")
        )
    url, done = request.getfixturevalue("database_templates").copy(request.param, stage, tmp_path)
    request.addfinalizer(done)
    return url


@pytest.fixture
def engine(db_url):
    """A migrated database (Alembic head), copied from the session's template."""
    return get_engine(db_url)


@pytest.fixture
def loaded_engine(engine):
    """The small world's reference data, sales, purchase lines and readings loaded (lab.world_db)."""
    return engine


@pytest.fixture
def forecast_engine(engine):
    """The loaded small world with a 14-day forecast run (one worker), as detection needs it."""
    return engine


@pytest.fixture
def web_db(db_url, tmp_path):
    """The small world loaded, forecast, alerts detected, members at risk refreshed, one user per role
    (WEB_USERS, PASSWORD): (engine, settings)."""
    return get_engine(db_url), stage_settings(db_url, tmp_path)


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
