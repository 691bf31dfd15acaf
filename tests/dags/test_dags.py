"""The Airflow DAG: imports fast with no heavy modules, parses without errors into the expected graph,
and runs green end to end under `dag.test()` on SQLite and the test broker.

Airflow always runs in a subprocess with an environment of its own (AIRFLOW_HOME in tmp_path, no
examples, a fresh SQLite metadata DB): Airflow reads its configuration once at import, so importing it
into the pytest process would pin whatever AIRFLOW_HOME came first and leave ~/airflow behind. Every
subprocess's output is kept and shown when something fails, so a CI log explains the failure.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import uuid
from datetime import UTC
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT as ROOT
from tests.conftest import WORLD_AS_OF

DAGS_FOLDER = ROOT / "dags"
DAG_FILE = DAGS_FOLDER / "shelfwatch-pipeline.py"
DAG_ID = "shelfwatch_pipeline"
UPSTREAM = {
    "migrate": [],
    "load_reference": ["migrate"],
    "ingest_sales": ["load_reference"],
    "ingest_sensor_readings": ["load_reference"],
    "forecast": ["ingest_sales", "ingest_sensor_readings"],
    "detect_alerts": ["forecast"],
    "refresh_member_risk": ["detect_alerts"],
    "write_report": ["refresh_member_risk"],
}
DAG_FILES = sorted(p for p in DAGS_FOLDER.glob("*.py"))
PRODUCTION_UPSTREAM = {
    "sales_ingest": {"load_new_files": [], "quarantine_gate": ["load_new_files"]},
    "iot_ingest": {"check_ingest_health": [], "publish_new_readings": ["check_ingest_health"]},
    "demand_forecast": {"plan_shards": [], "forecast_shard": ["plan_shards"], "publish": ["forecast_shard"]},
    "stockout_alerts": {"detect": [], "notify": ["detect"], "refresh_member_risk": ["detect"]},
    "housekeeping": {
        "ensure_reading_partitions": [],
        "apply_retention": ["ensure_reading_partitions"],
        "maintain_database": ["apply_retention"],
    },
}
# Parsing the DAG files must import none of these: the tasks import them when they run. (The DAGs'
# shared wiring, shelfwatch.dag_wiring, imports only airflow.sdk and the standard library.)
HEAVY_MODULES = [
    "prophet",
    "cmdstanpy",
    "great_expectations",
    "paho",
    "matplotlib",
    "statsforecast",
    "pandas",
    "shelfwatch.steps",
    "core.settings",
    "core.db",
    "sql",
    "forecasting",
    "iot_ingest",
    "sales_ingest",
    "alerts",
    "lab",
]


def airflow_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The caller's environment minus any AIRFLOW*/SHELFWATCH_* settings, plus an Airflow home of the test's own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "SHELFWATCH_", "_AIRFLOW"))}
    env.update(
        SHELFWATCH_AS_OF=WORLD_AS_OF,  # the simulated world's "now"
        AIRFLOW_HOME=str(tmp_path / "airflow"),
        AIRFLOW__CORE__DAGS_FOLDER=str(DAGS_FOLDER),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__UNIT_TEST_MODE="False",
        PYTHONDONTWRITEBYTECODE="1",  # no __pycache__ in the repo's dags/ folder
        **extra,
    )
    return env


def run(cmd: list[str], env: dict[str, str], timeout: float = 600) -> tuple[subprocess.CompletedProcess, float]:
    """Run a command; on a non-zero exit or a timeout, fail with the tail of its output."""
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout or ""
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else exc.stderr or ""
        pytest.fail(f"{describe(cmd)} timed out after {timeout} s\nSTDOUT:\n{out[-8000:]}\nSTDERR:\n{err[-8000:]}")
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        pytest.fail(f"{describe(cmd)} exited {proc.returncode}\n{output_tail(proc)}")
    return proc, elapsed


def describe(cmd: list[str]) -> str:
    return " ".join(c if len(c) < 60 else c[:57] + "..." for c in cmd)


def output_tail(proc: subprocess.CompletedProcess, chars: int = 8000) -> str:
    return f"STDOUT:\n{proc.stdout[-chars:]}\nSTDERR:\n{proc.stderr[-chars:]}"


def last_json(proc: subprocess.CompletedProcess, marker: str) -> dict:
    """The JSON a probe printed after `marker` (Airflow may log to stdout around it)."""
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(marker):
            return json.loads(line[len(marker) :])
    pytest.fail(f"no {marker!r} line in the probe's output\n{output_tail(proc)}")


@pytest.fixture(scope="session")
def airflow_metadata(tmp_path_factory) -> tuple[Path, float]:
    """One `airflow db migrate` per session (per xdist worker): the migrated SQLite metadata database
    and how long the migration took. Each test gets a copy in its own AIRFLOW_HOME."""
    home = tmp_path_factory.mktemp("airflow_template")
    _, seconds = run([sys.executable, "-m", "airflow", "db", "migrate"], airflow_env(home), timeout=300)
    return home / "airflow" / "airflow.db", seconds


def copy_metadata(airflow_metadata: tuple[Path, float], tmp_path: Path) -> float:
    """The session's migrated metadata database as the test's own (AIRFLOW_HOME=tmp_path/airflow)."""
    (tmp_path / "airflow").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(airflow_metadata[0], tmp_path / "airflow" / "airflow.db")
    return airflow_metadata[1]


IMPORT_PROBE = """
import json, sys, time
t = time.time()
import runpy
files, heavy = sys.argv[1].split(","), sys.argv[2:]
for f in files:
    runpy.run_path(f)
seconds = time.time() - t
print("IMPORT_PROBE " + json.dumps({"seconds": seconds, "heavy": sorted(m for m in heavy if m in sys.modules)}))
"""


PROJECT_PACKAGES = ["shelfwatch", "iot_ingest", "sales_ingest", "alerts", "forecasting", "sql"]
SHADOW_PROBE = """
import importlib.util, json, sys
sys.path.insert(0, sys.argv[1])  # what Airflow's workers do with the DAGs folder
print(json.dumps({name: importlib.util.find_spec(name).origin for name in sys.argv[2:]}))
"""


def test_dag_file_names_cannot_shadow_any_package():
    """Airflow puts dags/ first on its workers' import path: a DAG file named like a package
    (dags/iot_ingest.py) replaced the `iot_ingest` package in every task. A hyphen makes a name no
    `import` can reach, so no DAG file can shadow any package, whatever the path."""
    entries = [p for p in DAGS_FOLDER.iterdir() if p.name != "__pycache__"]
    importable = [p.name for p in entries if p.stem.split(".")[0].isidentifier()]
    assert not importable, f"rename these so `import` can't reach them (use a hyphen): {importable}"
    proc = subprocess.run(
        [sys.executable, "-c", SHADOW_PROBE, str(DAGS_FOLDER), *PROJECT_PACKAGES],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT.parent,
    )
    origins = json.loads(proc.stdout)
    for name, origin in origins.items():
        assert not origin.startswith(str(DAGS_FOLDER)), f"{name} resolves to {origin} with dags/ on the path"


def test_dag_files_import_no_heavy_modules(tmp_path):
    """A fresh interpreter runs all the DAG files without importing any heavy module: they are what
    would make every parse slow (the seconds themselves are `shelfwatch bench dag-parse`'s figure)."""
    env = airflow_env(tmp_path)
    assert len(DAG_FILES) == 6, DAG_FILES
    proc, _ = run([sys.executable, "-c", IMPORT_PROBE, ",".join(map(str, DAG_FILES)), *HEAVY_MODULES], env, timeout=120)
    probe = last_json(proc, "IMPORT_PROBE ")
    assert probe["heavy"] == [], f"importing the DAG files pulled in {probe['heavy']}: import them inside the tasks"


DAGBAG_PROBE = """
import json, sys, time
from sqlalchemy import event
from sqlalchemy.engine import Engine
queries = []
event.listen(Engine, "before_cursor_execute", lambda conn, cursor, statement, *a: queries.append(statement))
from airflow.dag_processing.dagbag import DagBag
start = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1])  # Airflow 3 has no include_examples: examples are a bundle of their own
seconds = time.perf_counter() - start
def describe(dag):
    return dict(
        upstream={t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks},
        schedule=str(dag.schedule) if isinstance(dag.schedule, str) else type(dag.timetable).__name__,
        catchup=dag.catchup, max_active_runs=dag.max_active_runs,
        params={k: dag.params[k] for k in dag.params},
        tasks={t.task_id: {"retries": t.retries, "retry_delay": t.retry_delay.total_seconds(), "pool": t.pool,
                           "on_failure": [type(c).__name__ for c in (t.on_failure_callback or [])],
                           "execution_timeout": t.execution_timeout.total_seconds() if t.execution_timeout else None}
               for t in dag.tasks},
    )
dag = bag.dags.get(sys.argv[2])  # not get_dag(): that one queries the metadata DB
out = {"seconds": seconds, "errors": {k: str(v) for k, v in bag.import_errors.items()}, "dag_ids": sorted(bag.dags),
       "queries": queries, "dags": {d: describe(bag.dags[d]) for d in bag.dags}}
if dag is not None:
    out.update(
        upstream={t.task_id: sorted(t.upstream_task_ids) for t in dag.tasks},
        schedule=str(dag.schedule), catchup=dag.catchup, max_active_runs=dag.max_active_runs,
        params={k: dag.params[k] for k in dag.params},
        tasks={t.task_id: {"retries": t.retries, "retry_delay": t.retry_delay.total_seconds(),
                           "execution_timeout": t.execution_timeout.total_seconds() if t.execution_timeout else None}
               for t in dag.tasks},
    )
print("DAGBAG_PROBE " + json.dumps(out, default=str))
"""


@pytest.mark.slow
def test_dagbag_has_no_import_errors_and_the_expected_graph(tmp_path):
    proc, _ = run([sys.executable, "-c", DAGBAG_PROBE, str(DAGS_FOLDER), DAG_ID], airflow_env(tmp_path), timeout=120)
    probe = last_json(proc, "DAGBAG_PROBE ")
    assert probe["errors"] == {}, f"DagBag import errors: {probe['errors']}"
    assert probe["dag_ids"] == sorted([DAG_ID, *PRODUCTION_UPSTREAM])
    assert probe["queries"] == [], "parsing the DAG must not touch a database"
    assert probe["upstream"] == UPSTREAM
    assert probe["schedule"] == "@daily" and probe["catchup"] is False and probe["max_active_runs"] == 1
    assert probe["params"] == {"world_dir": "", "until_idle": 3.0}
    for task_id, t in probe["tasks"].items():
        assert t["retries"] >= 1 and 0 < t["retry_delay"] <= 300, (task_id, t)
        assert t["execution_timeout"] and t["execution_timeout"] <= 4 * 3600, (task_id, t)
    for dag_id, upstream in PRODUCTION_UPSTREAM.items():
        d = probe["dags"][dag_id]
        assert d["upstream"] == upstream, dag_id
        assert d["catchup"] is False and d["max_active_runs"] == 1, dag_id
        for task_id, t in d["tasks"].items():
            assert t["on_failure"] == ["OpsNotifier"], (dag_id, task_id)  # failures reach operations
            assert t["execution_timeout"] and t["execution_timeout"] <= 4 * 3600, (dag_id, task_id)
    assert probe["dags"]["demand_forecast"]["tasks"]["forecast_shard"]["pool"] == "shelfwatch_forecasting"
    assert probe["dags"]["sales_ingest"]["tasks"]["load_new_files"]["pool"] == "shelfwatch_ingest"
    assert (
        probe["dags"]["demand_forecast"]["schedule"]
        == probe["dags"]["stockout_alerts"]["schedule"]
        == "AssetOrTimeSchedule"
    )
    assert set(probe["dags"]["demand_forecast"]["params"]) == {"stores", "until"}
    print(f"DagBag parse of {DAGS_FOLDER} ({len(probe['dag_ids'])} DAGs): {probe['seconds']:.2f} s")


DAG_TEST = """
import json, os, sys, time
from airflow import settings
from airflow.dag_processing.dagbag import DagBag
from airflow.models.xcom import XComModel

bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
assert not bag.import_errors, bag.import_errors
dag = bag.dags[sys.argv[1]]
# Fail fast: dag.test() honours retries, sleeping out retry_delay (minutes here) before a failure shows.
for t in dag.tasks:
    t.retries = 0
start = time.perf_counter()
dr = dag.test(run_conf=json.loads(sys.argv[2]))
seconds = time.perf_counter() - start
with settings.Session() as session:
    tis = {ti.task_id: {"state": ti.state, "seconds": ti.duration} for ti in dr.get_task_instances(session=session)}
    xcoms = {x.task_id: XComModel.deserialize_value(x)
             for x in session.scalars(XComModel.get_many(run_id=dr.run_id, dag_ids=dag.dag_id, key="return_value"))}
print("DAG_TEST_RESULT "
      + json.dumps({"state": dr.state, "seconds": seconds, "tasks": tis, "returns": xcoms}, default=str))
"""


@pytest.mark.slow
def test_dag_test_runs_every_task_on_sqlite(tmp_path, mqtt_url, topic_prefix, airflow_metadata):
    from core.settings import Settings
    from lab.publisher import publish_sensor_readings
    from lab.simulator import simulate_world
    from shelfwatch import steps

    data, out = tmp_path / "data", tmp_path / "out"
    world = data / "world"  # the DAG's default: world_dir="" means <SHELFWATCH_DATA_DIR>/world
    simulate_world(world, stores=2, skus=8, days=120, members=60, seed=7, incident_share=0.15)
    client_id = f"dag-test-{uuid.uuid4().hex[:8]}"  # tests sharing a broker never share a session
    settings = Settings(
        data_dir=data, output_dir=out, mqtt_url=mqtt_url, mqtt_topic_prefix=topic_prefix, mqtt_client_id=client_id
    )
    steps.register_sensor_session(settings)  # the sensors publish before the DAG runs
    published = publish_sensor_readings(settings, world)["published"]
    assert published > 0

    env = airflow_env(
        tmp_path,
        SHELFWATCH_DATA_DIR=str(data),
        SHELFWATCH_DATABASE_URL=f"sqlite:///{data / 'shelfwatch.db'}",
        SHELFWATCH_OUTPUT_DIR=str(out),
        SHELFWATCH_MQTT_URL=mqtt_url,
        SHELFWATCH_MQTT_TOPIC_PREFIX=topic_prefix,
        SHELFWATCH_MQTT_CLIENT_ID=client_id,
    )
    migrate_seconds = copy_metadata(airflow_metadata, tmp_path)
    proc, process_seconds = run(
        [sys.executable, "-c", DAG_TEST, DAG_ID, json.dumps({"until_idle": 3.0})], env, timeout=600
    )
    result = last_json(proc, "DAG_TEST_RESULT ")
    states = {task_id: ti["state"] for task_id, ti in result["tasks"].items()}
    assert result["state"] == "success" and states == dict.fromkeys(UPSTREAM, "success"), (
        f"{states}\n{output_tail(proc)}"
    )
    print(
        f"airflow db migrate (once a session): {migrate_seconds:.1f} s; dag.test(): {result['seconds']:.1f} s "
        f"({process_seconds:.1f} s with interpreter start and DAG parse); per task: "
        + ", ".join(f"{t} {ti['seconds'] or 0:.1f} s" for t, ti in result["tasks"].items())
    )

    returns = result["returns"]
    db = sqlite3.connect(data / "shelfwatch.db")
    count = lambda table: db.execute(f"select count(*) from {table}").fetchone()[0]  # noqa: E731
    assert returns["ingest_sales"]["rows_loaded"] > 0
    assert count("sales_daily") == 2 * 8 * 120  # every store x SKU x day
    assert count("sensor_readings") == published
    horizons = db.execute(
        "select store_id, sku, count(distinct date) from forecasts where run_id = ? group by store_id, sku",
        (returns["forecast"]["run_id"],),
    ).fetchall()
    assert len(horizons) == 2 * 8 and {n for _, _, n in horizons} == {28}, horizons
    assert count("alerts") > 0
    report_dir = Path(returns["write_report"]["report_dir"])
    assert report_dir == out and (report_dir / "summary.md").is_file()
    assert "Open alerts" in (report_dir / "summary.md").read_text()


PRODUCTION_DAG_TEST = """
import json, os, shutil, sys, time
from airflow import settings
from airflow.dag_processing.dagbag import DagBag
from airflow.models.xcom import XComModel

bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
assert not bag.import_errors, bag.import_errors
results = []
for step in json.loads(sys.argv[1]):
    if "copy" in step:
        shutil.copy(*step["copy"])
        continue
    dag = bag.dags[step["dag"]]
    for t in dag.tasks:
        t.retries = 0  # dag.test() would sleep out the retry delays before a failure shows
    start = time.perf_counter()
    dr = dag.test(run_conf=step.get("conf") or None)
    seconds = time.perf_counter() - start
    with settings.Session() as session:
        tis = {ti.task_id + ("" if ti.map_index < 0 else f"[{ti.map_index}]"): ti.state
               for ti in dr.get_task_instances(session=session)}
        xcoms = {x.task_id + ("" if x.map_index < 0 else f"[{x.map_index}]"): XComModel.deserialize_value(x)
                 for x in session.scalars(XComModel.get_many(run_id=dr.run_id, dag_ids=dag.dag_id, key="return_value"))}
    results.append({"dag": step["dag"], "state": dr.state, "seconds": seconds, "tasks": tis, "returns": xcoms})
print("PRODUCTION_DAG_TEST " + json.dumps(results, default=str))
"""


def live_readings(world_dir: Path, now) -> list[dict]:
    """Each sensor's last simulated reading, sent now: the ingest service's normal, on-time traffic."""
    last = {}
    for line in (world_dir / "sensor_readings.jsonl").read_text().splitlines():
        r = json.loads(line)
        last[r["sensor_id"]] = r
    return [{**r, "ts": now.isoformat(), "seq": r["seq"] + 10_000} for r in last.values()]


@pytest.mark.slow
def test_production_dags_run_green_with_data_flowing(tmp_path, db_url, mqtt_url, topic_prefix, airflow_metadata):
    """sales_ingest -> iot_ingest -> demand_forecast (mapped shards) -> stockout_alerts -> housekeeping
    under dag.test() on an SQLite Airflow metadata DB, against the project database (SQLite and
    PostgreSQL), a real broker, a real SMTP server and a real webhook; then a broken sales file fails
    the quarantine gate and the failure reaches the webhook."""
    import threading
    from datetime import datetime, timedelta
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from aiosmtpd.controller import Controller
    from sqlalchemy import func, select

    from alerts.realtime import shelf_empty_on_stored
    from core.db import get_engine, insert_ignore
    from core.settings import Settings
    from iot_ingest.consumer import drain, open_session
    from lab.publisher import publish_readings
    from lab.simulator import simulate_world
    from shelfwatch import steps
    from sql import schema
    from tests.alerts.test_notify import Inbox, free_port

    data, out, landing = tmp_path / "data", tmp_path / "out", tmp_path / "landing"
    world = simulate_world(tmp_path / "world", stores=3, skus=8, days=120, members=80, seed=7, incident_share=0.15)
    landing.mkdir()
    shutil.copy(world / "sales" / "sales_daily.csv", landing / "sales_daily.csv")
    shutil.copy(world / "sales" / "purchase_lines.csv", landing / "purchase_lines.csv")
    settings = Settings(
        data_dir=data,
        output_dir=out,
        database_url=db_url,
        mqtt_url=mqtt_url,
        mqtt_topic_prefix=topic_prefix,
        mqtt_client_id=f"dag-prod-{uuid.uuid4().hex[:8]}",
    )
    steps.migrate_database(settings)
    steps.load_reference(settings, world)  # master data sync (stores, products, members, sensors)
    engine = get_engine(db_url)
    old = datetime.now(UTC) - timedelta(days=400)
    with engine.begin() as conn:  # a reading past retention, for housekeeping to remove
        sensor = conn.execute(select(schema.sensors).limit(1)).first()
        insert_ignore(
            conn,
            schema.sensor_readings,
            [
                {
                    "sensor_id": sensor.sensor_id,
                    "store_id": sensor.store_id,
                    "sku": sensor.sku,
                    "kind": "shelf_units",
                    "value": 3.0,
                    "units": 3.0,
                    "seq": 1,
                    "battery": 0.9,
                    "device_ts": old,
                    "received_at": old,
                }
            ],
        )
    # the ingest service (here: a bounded drain) stores the sensors' on-time readings
    open_session(mqtt_url, topic_prefix, settings.mqtt_client_id)
    live = live_readings(world, datetime.now(UTC))
    publish_readings(mqtt_url, live, topic_prefix)
    drain(
        engine,
        mqtt_url,
        topic_prefix,
        settings.mqtt_client_id,
        until_idle=2.0,
        on_stored=shelf_empty_on_stored(settings),
    )

    inbox, smtp_port = Inbox(), free_port()
    smtp = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    posts = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):
            posts.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    hook = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    broken = tmp_path / "sales_broken.csv"
    broken.write_text("store_id,sku,date,units\n" + "".join(f"S999,NOPE,2026-13-{i:02d},-{i}\n" for i in range(1, 40)))
    env = airflow_env(
        tmp_path,
        SHELFWATCH_DATA_DIR=str(data),
        SHELFWATCH_OUTPUT_DIR=str(out),
        SHELFWATCH_LANDING_DIR=str(landing),
        SHELFWATCH_MQTT_URL=mqtt_url,
        SHELFWATCH_MQTT_TOPIC_PREFIX=topic_prefix,
        SHELFWATCH_MQTT_CLIENT_ID=settings.mqtt_client_id,
        SHELFWATCH_FORECAST_SHARDS="2",
        SHELFWATCH_FORECAST_WORKERS="1",
        # secrets the Airflow way: connections from the environment, not code
        AIRFLOW_CONN_SHELFWATCH_DB=db_url.replace("postgresql+psycopg://", "postgresql://"),
        AIRFLOW_CONN_SHELFWATCH_SMTP=f"smtp://127.0.0.1:{smtp_port}",
        AIRFLOW_CONN_SHELFWATCH_WEBHOOK=f"http://127.0.0.1:{hook.server_address[1]}/hook",
    )
    steps = [
        {"dag": "sales_ingest"},
        {"dag": "iot_ingest"},
        {"dag": "demand_forecast"},
        {"dag": "stockout_alerts"},
        {"dag": "housekeeping"},
        {"dag": "demand_forecast", "conf": {"stores": ["S002"], "until": ""}},
        {"dag": "sales_ingest"},  # nothing new: skipped, no asset event
        {"copy": [str(broken), str(landing / "sales_broken.csv")]},
        {"dag": "sales_ingest"},
    ]
    try:
        copy_metadata(airflow_metadata, tmp_path)
        run(
            [sys.executable, "-m", "airflow", "pools", "import", str(ROOT / "deploy" / "airflow" / "pools.json")],
            env,
            timeout=120,
        )
        proc, _ = run([sys.executable, "-c", PRODUCTION_DAG_TEST, json.dumps(steps)], env, timeout=900)
    finally:
        smtp.stop()
        hook.shutdown()
    results = last_json(proc, "PRODUCTION_DAG_TEST ")
    print("dag.test(): " + ", ".join(f"{r['dag']} {r['seconds']:.1f} s ({r['state']})" for r in results))
    ingest, health, fc, alerts, house, one_store, nothing_new, broken_run = results
    for r in (ingest, health, fc, alerts, house, one_store):
        assert r["state"] == "success" and set(r["tasks"].values()) == {"success"}, f"{r}\n{output_tail(proc)}"

    def count(table) -> int:
        with get_engine(db_url).connect() as conn:
            return conn.execute(select(func.count()).select_from(table)).scalar_one()

    assert ingest["returns"]["quarantine_gate"]["rows_loaded"] == count(schema.sales_daily) + count(
        schema.purchase_lines
    )
    assert count(schema.sales_daily) == 3 * 8 * 120
    assert health["returns"]["check_ingest_health"]["readings_in_window"] == len(live)
    assert health["returns"]["publish_new_readings"] == {"readings": len(live)}
    shards = [k for k in fc["tasks"] if k.startswith("forecast_shard[")]
    assert len(shards) == 2 and fc["returns"]["publish"]["series"] == 3 * 8  # every series, over both shards
    with get_engine(db_url).connect() as conn:
        per_series = conn.execute(
            select(schema.forecasts.c.store_id, schema.forecasts.c.sku, func.count())
            .where(schema.forecasts.c.run_id == fc["returns"]["publish"]["run_id"])
            .group_by(schema.forecasts.c.store_id, schema.forecasts.c.sku)
        ).all()
    assert len(per_series) == 3 * 8 and {n for *_, n in per_series} == {28}
    assert alerts["returns"]["detect"]["open_alerts"] > 0 and alerts["returns"]["notify"]["sent"] > 0
    assert len(inbox.messages) >= 1  # store managers' e-mails went through the real SMTP server
    assert house["returns"]["apply_retention"]["readings_deleted"] == 1
    assert one_store["returns"]["publish"]["series"] == 8
    assert nothing_new["state"] == "success" and nothing_new["tasks"]["quarantine_gate"] == "skipped"
    assert broken_run["state"] == "failed" and broken_run["tasks"]["quarantine_gate"] == "failed"
    assert count(schema.quarantine) >= 39  # the bad rows are kept, with their reasons
    # the web health page's DAG-run panel reads the same Airflow metadata database
    from shelfwatch.web.queries import airflow_runs

    runs = airflow_runs(f"sqlite:///{tmp_path / 'airflow' / 'airflow.db'}")
    assert set(runs["dag_id"]) == set(PRODUCTION_UPSTREAM)
    assert runs[runs["dag_id"] == "sales_ingest"]["state"].iloc[0] == "failed"  # the newest run first
    from dataclasses import replace

    from shelfwatch.web.auth import add_user
    from tests.shelfwatch.web.test_pages import client_for, login

    add_user(get_engine(db_url), "ops", "ops-password-1", "admin")
    web = client_for(
        replace(settings, airflow_db_url=f"sqlite:///{tmp_path / 'airflow' / 'airflow.db'}", web_secret="t")
    )
    login(web, "ops", "ops-password-1")
    health_page = web.get("/health").text
    assert 'id="dag-runs"' in health_page and "demand_forecast" in health_page and ">failed<" in health_page
    failures = [p for p in posts if p.get("dag_id") == "sales_ingest"]
    assert failures and failures[0]["task_id"] == "quarantine_gate" and "quarantined" in failures[0]["text"]
