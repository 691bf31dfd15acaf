"""The production topology, started as an operator would without Docker (`make stack`): Airflow's
api-server, scheduler, dag-processor, triggerer and two Celery workers, the ingest service and the web
views under supervisord, installed from the lock files, on a Redis broker, a PostgreSQL metadata DB
and result backend, Mosquitto and a real SMTP server. The DAGs run by themselves from POS files in the
landing folder to alerts and e-mails; a killed worker's task is retried by the other worker.

The fast tests check how the stack is derived from docker-compose.yml; the slow one runs it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from core.settings import Settings
from lab.brokers import free_port
from shelfwatch import stack
from tests.conftest import ON_CI, PG_BASE, PG_HOST, PG_PORT, WORLD_AS_OF, require_service
from tests.conftest import REPO_ROOT as ROOT

PRODUCTION_DAGS = ["sales_ingest", "iot_ingest", "demand_forecast", "stockout_alerts", "housekeeping"]


def example_settings() -> tuple[stack.StackSettings, Settings]:
    cfg = stack.StackSettings(
        dir=Path("/tmp/shelfwatch-stack-example"),
        api_port=18080,
        web_port=18000,
        scheduler_health_port=18974,
        log_port=18793,
        workers=3,
    )
    settings = Settings(
        database_url="postgresql+psycopg://sw:pw@db.example:5433/shelfwatch",
        mqtt_url="mqtt://u:p@broker.example:1884",
        smtp_url="smtp://mail.example:2525",
        webhook_url="http://hook.example/ops",
    )
    return cfg, settings


VARIABLES = {
    "AIRFLOW_FERNET_KEY": "fernet",
    "AIRFLOW_JWT_SECRET": "jwt",
    "SHELFWATCH_FORECAST_SHARDS": "4",
    "SHELFWATCH_WEB_SECRET": "web",
}


def test_every_airflow_process_gets_composes_environment_with_local_addresses(monkeypatch):
    """Same keys as compose; the same values except container names, volumes and fixed ports."""
    for key in [k for k in os.environ if k.startswith("AIRFLOW__")]:
        monkeypatch.delenv(key)
    cfg, settings = example_settings()
    compose_env = stack.compose()["services"]["airflow-scheduler"]["environment"]
    env = stack.program_environment("airflow-scheduler", cfg, settings, VARIABLES)
    assert set(compose_env) <= set(env)
    local = stack.local_values(cfg, settings)
    for key, value in compose_env.items():
        if key not in local:
            assert env[key] == stack.substitute(value, VARIABLES), key
    for key in env:
        assert "postgres:5432" not in env[key] and "redis:6379" not in env[key] and "mosquitto:1883" not in env[key], (
            key
        )
    assert (
        env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor" and env["AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK"] == "true"
    )
    assert env["AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT"] == "18974"
    assert env["AIRFLOW_CONN_SHELFWATCH_DB"] == "postgresql://sw:pw@db.example:5433/shelfwatch"
    assert env["AIRFLOW__CORE__FERNET_KEY"] == "fernet" and env["AIRFLOW__CORE__DAGS_FOLDER"] == str(ROOT / "dags")
    # an operator's AIRFLOW__* tuning reaches every Airflow process
    monkeypatch.setenv("AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT", "45")
    assert (
        stack.program_environment("airflow-worker-2", cfg, settings, VARIABLES)[
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT"
        ]
        == "45"
    )


def test_programs_are_composes_services_with_one_named_worker_per_replica():
    cfg, settings = example_settings()
    commands = stack.program_commands(cfg)
    assert set(commands) == {
        "airflow-apiserver",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
        "ingest",
        "web",
        "airflow-worker-1",
        "airflow-worker-2",
        "airflow-worker-3",
    }
    assert commands["airflow-scheduler"] == ["airflow", "scheduler"]
    assert commands["airflow-worker-2"][:3] == ["airflow", "celery", "worker"]
    assert commands["airflow-worker-2"][-1] == f"celery@{stack.container_hostname('airflow-worker-2')}"
    assert commands["web"][-1] == "18000" and "0.0.0.0" not in commands["web"]
    ports = {
        stack.program_environment(w, cfg, settings, VARIABLES)["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"]
        for w in cfg.worker_names()
    }
    assert len(ports) == 3  # workers on one machine must not fight over the log server's port
    conf = stack.supervisord_conf(cfg, settings, VARIABLES)
    assert conf.count("[program:") == len(commands) and conf.count("stopasgroup=true") == len(commands)


def test_every_compose_health_check_has_a_local_command():
    cfg, settings = example_settings()
    checks = stack.health_check_commands(cfg, settings, VARIABLES)
    services = stack.compose()["services"]
    with_checks = {
        name
        for name, spec in services.items()
        if "healthcheck" in spec and name in stack.PROGRAMS + stack.INFRASTRUCTURE
    }
    expected = (with_checks - {"airflow-worker"}) | set(cfg.worker_names())
    assert set(checks) == expected
    assert "127.0.0.1:18974/health" in checks["airflow-scheduler"][0]
    assert "127.0.0.1:18080/api/v2/version" in checks["airflow-apiserver"][0]
    assert (
        "-h broker.example -p 1884 -u u" in checks["mosquitto"][0]
        and checks["mosquitto"][1]["MQTT_INGEST_PASSWORD"] == "p"
    )
    assert checks["airflow-worker-3"][1]["HOSTNAME"] == stack.container_hostname("airflow-worker-3")


def test_images_and_make_install_share_one_install_script():
    """The Airflow image, the Shelfwatch image and `make install` (so `make stack`) run deploy/install.sh,
    which installs both lock files and imports the Celery executor."""
    script = (ROOT / "deploy" / "install.sh").read_text()
    assert "-r requirements.lock -r deploy/airflow/requirements-airflow.lock" in script
    assert "import airflow.providers.celery.executors.celery_executor" in script
    assert "deploy/install.sh python deps" in (ROOT / "deploy/airflow/Dockerfile").read_text()
    assert "deploy/install.sh python project" in (ROOT / "deploy/airflow/Dockerfile").read_text()
    assert "deploy/install.sh .venv/bin/python project" in (ROOT / "Dockerfile").read_text()
    assert "deploy/install.sh $(BIN)/python" in (ROOT / "Makefile").read_text()


def test_the_locked_executor_imports():
    """What broke production: `pip check` passed while the Celery provider could not import celery."""
    proc = subprocess.run(
        [sys.executable, "-c", "import airflow.providers.celery.executors.celery_executor"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "AIRFLOW_HOME": str(ROOT / ".pytest_cache" / "airflow-import")},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]


# ------------------------------------------------------------------------------------------ the real stack


def need_binary(name: str) -> None:
    if shutil.which(name) is None:
        if ON_CI:
            pytest.fail(f"{name} is required on CI (.ci/run installs it)")
        pytest.skip(f"{name} not installed")


class Hook(BaseHTTPRequestHandler):
    posts: list = []

    def do_POST(self):
        Hook.posts.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


class Stack:
    """Handles on the running stack: its environment, the metadata DB, the CLI."""

    def __init__(self, folder: Path, env: dict[str, str], airflow_db: str, shelfwatch_db: str):
        self.folder, self.env, self.airflow_db, self.shelfwatch_db = folder, env, airflow_db, shelfwatch_db
        from sqlalchemy import create_engine

        self.meta = create_engine(airflow_db.replace("+psycopg2://", "+psycopg://"))

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """`airflow ...` or `shelfwatch ...` in the stack's environment, as an operator would (`stack exec`)."""
        proc = subprocess.run(
            [str(Path(sys.executable).parent / "shelfwatch"), "stack", "exec", "--", *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert proc.returncode == 0, f"{' '.join(args)}: {proc.stdout[-3000:]}\n{proc.stderr[-3000:]}\n{self.logs()}"
        return proc

    def rows(self, sql: str, **params) -> list:
        from sqlalchemy import text

        with self.meta.connect() as conn:
            return conn.execute(text(sql), params).all()

    def runs(self, dag_id: str) -> list:
        return self.rows(
            "SELECT run_id, state, run_type, start_date, end_date FROM dag_run WHERE dag_id = :d ORDER BY id", d=dag_id
        )

    def tasks(self, dag_id: str, run_id: str) -> dict[str, str]:
        rows = self.rows(
            "SELECT task_id, map_index, state FROM task_instance WHERE dag_id = :d AND run_id = :r", d=dag_id, r=run_id
        )
        return {(t if m < 0 else f"{t}[{m}]"): s for t, m, s in rows}

    def wait_for_run(self, dag_id: str, after: int, timeout: float, run_type: str | None = None):
        """The first run of `dag_id` after the first `after` runs to end (success or failed)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            runs = [r for r in self.runs(dag_id)[after:] if run_type is None or r.run_type == run_type]
            if runs and runs[0].state in ("success", "failed"):
                return runs[0]
            time.sleep(2)
        pytest.fail(
            f"{dag_id}: no finished run after {after} within {timeout:.0f} s; runs: {self.runs(dag_id)}\n{self.logs()}"
        )

    def logs(self, chars: int = 3000) -> str:
        out = []
        for log in sorted((self.folder / "logs").glob("*.log")):
            out.append(f"--- {log.name}\n{log.read_text(errors='replace')[-chars:]}")
        return "\n".join(out)


@pytest.fixture(scope="module")
def running_stack(tmp_path_factory):
    """`make stack` on free ports and fresh databases; `make stack-stop` afterwards."""
    if not require_service("PostgreSQL", PG_HOST, PG_PORT):
        pytest.skip("PostgreSQL not reachable (allowed outside CI)")
    for binary in ("redis-server", "redis-cli", "mosquitto", "mosquitto_sub", "pg_isready", "curl"):
        need_binary(binary)
    from aiosmtpd.controller import Controller
    from sqlalchemy import create_engine, text

    from lab.mosquitto import MosquittoProcess
    from tests.alerts.test_notify import Inbox

    tmp = tmp_path_factory.mktemp("stack")
    suffix = uuid.uuid4().hex[:10]
    pg = PG_BASE.rsplit("/", 1)[0]
    shelfwatch_db, airflow_db = f"{pg}/sw_stack_{suffix}", f"{pg.replace('+psycopg:', '+psycopg2:')}/af_stack_{suffix}"
    redis_port = free_port()
    redis = subprocess.Popen(
        ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    broker = MosquittoProcess(workdir=tmp / "mosquitto").__enter__()
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    hook = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    folder = tmp / "stack"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "SHELFWATCH_", "_AIRFLOW"))}
    env.update(
        SHELFWATCH_DATABASE_URL=shelfwatch_db,
        SHELFWATCH_MQTT_URL=f"mqtt://127.0.0.1:{broker.port}",
        SHELFWATCH_AS_OF=WORLD_AS_OF,
        SHELFWATCH_SMTP_URL=f"smtp://127.0.0.1:{smtp.port}",
        SHELFWATCH_WEBHOOK_URL=f"http://127.0.0.1:{hook.server_address[1]}/ops",
        SHELFWATCH_FORECAST_SHARDS="2",
        SHELFWATCH_STACK_DIR=str(folder),
        SHELFWATCH_STACK_AIRFLOW_DB_URL=airflow_db,
        SHELFWATCH_STACK_REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
        SHELFWATCH_STACK_API_PORT=str(free_port()),
        SHELFWATCH_STACK_WEB_PORT=str(free_port()),
        SHELFWATCH_STACK_SCHEDULER_HEALTH_PORT=str(free_port()),
        SHELFWATCH_STACK_LOG_PORT=str(free_port()),
        SHELFWATCH_STACK_WORKERS="2",
        # an operator's tuning for a test that can't wait 5 minutes for a dead worker's task to be noticed
        AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT="30",
        AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL="5",
        AIRFLOW__API__WORKERS="1",
    )
    handle = Stack(folder, env, airflow_db, shelfwatch_db)
    started = time.perf_counter()
    proc = subprocess.run(
        ["make", "stack", f"STACK_DIR={folder}"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    handle.up_seconds = time.perf_counter() - started
    try:
        assert proc.returncode == 0, f"make stack: {proc.stdout[-4000:]}\n{proc.stderr[-4000:]}\n{handle.logs()}"
        handle.inbox, handle.broker = inbox, broker
        yield handle
    finally:
        stop = subprocess.run(
            ["make", "stack-stop", f"STACK_DIR={folder}"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        handle.meta.dispose()
        smtp.stop()
        hook.shutdown()
        broker.__exit__(None, None, None)
        redis.terminate()
        redis.wait(30)
        admin = create_engine(PG_BASE, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            for db in (f"sw_stack_{suffix}", f"af_stack_{suffix}"):
                conn.execute(text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        admin.dispose()
        assert stop.returncode == 0, f"make stack-stop: {stop.stdout}\n{stop.stderr}"
        assert not stack.supervisord_pid(stack.StackSettings(dir=folder))


def run_seconds(run) -> float:
    return (run.end_date - run.start_date).total_seconds()


@pytest.mark.slow
def test_the_stack_runs_the_dags_by_themselves_and_survives_a_killed_worker(running_stack, tmp_path):
    from sqlalchemy import func, select

    from core.db import get_engine
    from lab.publisher import publish_readings
    from lab.simulator import simulate_world
    from sql import schema
    from tests.dags.test_dags import live_readings

    s = running_stack
    timings = {"make stack (init + healthy)": s.up_seconds}
    # every compose health check passes against the processes (the scheduler's /health included)
    status = subprocess.run(
        [str(Path(sys.executable).parent / "shelfwatch"), "stack", "status"],
        env=s.env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert status.returncode == 0 and "UNHEALTHY" not in status.stdout, status.stdout + status.stderr
    for program in (
        "airflow-scheduler",
        "airflow-apiserver",
        "airflow-worker-1",
        "airflow-worker-2",
        "airflow-triggerer",
        "postgres",
        "redis",
    ):
        assert f"healthy   {program}" in status.stdout

    # master data, and the sensors' live traffic through the supervised ingest service
    world = simulate_world(tmp_path / "world", stores=4, skus=60, days=120, members=150, seed=7, incident_share=0.15)
    s.cli("shelfwatch", "load-reference", str(world), "--db", s.shelfwatch_db)
    landing = s.folder / "data" / "landing"

    # a fresh deployment: unpausing with no sales yet skips, it does not fail or page anyone
    for dag_id in PRODUCTION_DAGS:
        s.cli("airflow", "dags", "unpause", dag_id)
    for dag_id in ("sales_ingest", "demand_forecast", "stockout_alerts"):
        first = s.wait_for_run(dag_id, 0, timeout=300)
        assert first.state == "success", (dag_id, s.tasks(dag_id, first.run_id))
    assert "skipped" in s.tasks("demand_forecast", s.runs("demand_forecast")[0].run_id).values()
    assert not Hook.posts, Hook.posts  # no failure reached operations

    publish_readings(f"mqtt://127.0.0.1:{s.broker.port}", live_readings(world, datetime.now(UTC)), "shelfwatch/v1")

    # POS files land; one trigger of sales_ingest (its schedule is every 30 min) starts the asset chain
    runs_before = {d: len(s.runs(d)) for d in PRODUCTION_DAGS}
    for name in ("sales_daily.csv", "purchase_lines.csv"):
        shutil.copy(world / "sales" / name, landing / name)
    s.cli("airflow", "dags", "trigger", "sales_ingest")
    ingest = s.wait_for_run("sales_ingest", runs_before["sales_ingest"], timeout=300)
    assert ingest.state == "success" and set(s.tasks("sales_ingest", ingest.run_id).values()) == {"success"}
    timings["sales_ingest"] = run_seconds(ingest)

    # kill -9 the whole worker (process group) running the first forecast shard; keep it down
    victim, killed_at = None, None
    deadline = time.monotonic() + 300
    while victim is None and time.monotonic() < deadline:
        running = s.rows(
            "SELECT hostname, map_index FROM task_instance WHERE dag_id = 'demand_forecast' "
            "AND task_id = 'forecast_shard' AND state = 'running' "
            "AND run_id IN (SELECT run_id FROM dag_run WHERE dag_id = 'demand_forecast' "
            "AND run_type = 'asset_triggered')"
        )
        for hostname, map_index in running:
            program = hostname.rsplit("-airflow-", 1)[-1]
            victim = (f"airflow-{program}", map_index)
            os.killpg(stack.program_pid(stack.StackSettings(dir=s.folder), victim[0]), signal.SIGKILL)
            killed_at = time.monotonic()
            stack.supervisorctl(stack.StackSettings(dir=s.folder), "stop", victim[0])
            break
        time.sleep(0.3)
    assert victim is not None, f"no forecast shard seen running\n{s.logs()}"
    forecast = s.wait_for_run(
        "demand_forecast", runs_before["demand_forecast"], timeout=600, run_type="asset_triggered"
    )
    assert forecast.state == "success", (s.tasks("demand_forecast", forecast.run_id), s.logs())
    timings["demand_forecast (incl. the killed worker's retry)"] = run_seconds(forecast)
    retried = s.rows(
        "SELECT try_number, hostname, state FROM task_instance WHERE dag_id = 'demand_forecast' AND run_id = :r "
        "AND task_id = 'forecast_shard' AND map_index = :m",
        r=forecast.run_id,
        m=victim[1],
    )[0]
    survivor = next(w for w in ("airflow-worker-1", "airflow-worker-2") if w != victim[0])
    assert (
        retried.state == "success"
        and retried.try_number >= 2
        and retried.hostname == stack.container_hostname(survivor)
    ), retried
    first_try = s.rows(
        "SELECT try_number, hostname, state FROM task_instance_history WHERE dag_id = 'demand_forecast' "
        "AND run_id = :r AND task_id = 'forecast_shard' AND map_index = :m ORDER BY try_number",
        r=forecast.run_id,
        m=victim[1],
    )
    assert (
        first_try and first_try[0].hostname == stack.container_hostname(victim[0]) and first_try[0].state == "failed"
    ), first_try
    timings["worker killed -> retry succeeded"] = time.monotonic() - killed_at
    for map_index, try_number, seconds in s.rows(
        "SELECT map_index, try_number, EXTRACT(EPOCH FROM end_date - start_date) FROM task_instance "
        "WHERE dag_id = 'demand_forecast' AND run_id = :r AND task_id = 'forecast_shard'",
        r=forecast.run_id,
    ):
        timings[f"forecast_shard[{map_index}] try {try_number}"] = float(seconds)
    stack.supervisorctl(stack.StackSettings(dir=s.folder), "start", victim[0])

    # the forecasts asset starts stockout_alerts: alerts detected, store managers e-mailed
    alerts = s.wait_for_run("stockout_alerts", runs_before["stockout_alerts"], timeout=300, run_type="asset_triggered")
    assert alerts.state == "success" and set(s.tasks("stockout_alerts", alerts.run_id).values()) == {"success"}
    timings["stockout_alerts"] = run_seconds(alerts)
    engine = get_engine(s.shelfwatch_db)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(schema.sales_daily)).scalar_one() == 4 * 60 * 120
        assert (
            conn.execute(
                select(func.count(func.distinct(schema.forecasts.c.sku + schema.forecasts.c.store_id)))
            ).scalar_one()
            == 4 * 60
        )
        open_alerts = conn.execute(select(func.count()).select_from(schema.alerts)).scalar_one()
    assert open_alerts > 0
    deadline = time.monotonic() + 60
    while not s.inbox.messages and time.monotonic() < deadline:
        time.sleep(1)
    assert s.inbox.messages, "no store-manager e-mail reached the SMTP server"

    # the supervising DAG sees the ingest service's readings; housekeeping runs on PostgreSQL
    for dag_id in ("iot_ingest", "housekeeping"):
        before = len(s.runs(dag_id))
        s.cli("airflow", "dags", "trigger", dag_id)
        run = s.wait_for_run(dag_id, before, timeout=300, run_type="manual")
        assert run.state == "success" and set(s.tasks(dag_id, run.run_id).values()) == {"success"}, (
            dag_id,
            s.tasks(dag_id, run.run_id),
        )
        timings[dag_id] = run_seconds(run)

    # nothing new in the landing folder: the next sales_ingest skips and starts nothing
    before = len(s.runs("sales_ingest"))
    forecasts_before = len(s.runs("demand_forecast"))
    s.cli("airflow", "dags", "trigger", "sales_ingest")
    again = s.wait_for_run("sales_ingest", before, timeout=300, run_type="manual")
    assert again.state == "success" and s.tasks("sales_ingest", again.run_id)["quarantine_gate"] == "skipped"
    time.sleep(10)
    assert len([r for r in s.runs("demand_forecast")[forecasts_before:] if r.run_type == "asset_triggered"]) == 0
    print("\nprocess stack timings: " + "; ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
