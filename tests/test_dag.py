"""The Airflow DAG: parses fast with no heavy imports, and runs green under dag.test() on real data."""

import json
import os
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DAG_FILE = ROOT / "dags" / "shelfwatch_pipeline.py"
TASKS = {"migrate", "load_reference", "ingest_sales", "ingest_sensor_readings", "forecast", "detect_alerts", "write_report"}


def airflow_env(tmp_path: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "SHELFWATCH_"))}
    env.update(
        AIRFLOW_HOME=str(tmp_path / "airflow"),
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__UNIT_TEST_MODE="False",
        **extra,
    )
    return env


def run(cmd: list[str], env: dict, timeout: int = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(cmd[:3])} failed\nSTDOUT:\n{proc.stdout[-6000:]}\nSTDERR:\n{proc.stderr[-6000:]}"
    return proc


PARSE_PROBE = """
import json, sys, time
from airflow.dag_processing.dagbag import DagBag
import airflow.sdk  # the framework's own import is not the DAG's cost
start = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1])
dag = bag.dags.get("shelfwatch_pipeline")  # no metadata-DB access while parsing
heavy = sorted(m for m in ("prophet", "great_expectations", "paho", "cmdstanpy", "matplotlib") if m in sys.modules)
print(json.dumps({"seconds": time.perf_counter() - start, "errors": {k: str(v) for k, v in bag.import_errors.items()},
                  "tasks": sorted(dag.task_ids) if dag else [], "heavy": heavy}))
"""


@pytest.mark.slow
def test_dag_parses_quickly_without_heavy_imports(tmp_path):
    proc = run([sys.executable, "-c", PARSE_PROBE, str(ROOT / "dags")], airflow_env(tmp_path))
    probe = json.loads(proc.stdout.strip().splitlines()[-1])
    assert probe["errors"] == {}
    assert set(probe["tasks"]) == TASKS
    assert probe["heavy"] == [], "DAG parsing must not import the heavy libraries"
    assert probe["seconds"] < 2.0, f"parsing the DAG folder took {probe['seconds']:.2f} s"


DAG_TEST = """
from airflow.dag_processing.dagbag import DagBag
dag = DagBag(dag_folder="dags").get_dag("shelfwatch_pipeline")
run = dag.test()
print("DAG_RUN_STATE", run.state)
"""


@pytest.mark.slow
def test_dag_test_runs_every_task_on_sqlite(tmp_path, mqtt_url, topic_prefix):
    from shelfwatch import pipeline
    from shelfwatch.config import Settings
    from shelfwatch.simulator import simulate_world

    data = tmp_path / "data"
    simulate_world(data / "world", stores=2, skus=8, days=120, members=60, seed=7, incident_share=0.15)
    client_id = f"dag-test-{uuid.uuid4().hex[:8]}"
    shelfwatch_env = dict(
        SHELFWATCH_DATA_DIR=str(data), SHELFWATCH_OUTPUT_DIR=str(tmp_path / "out"), SHELFWATCH_MQTT_URL=mqtt_url,
        SHELFWATCH_MQTT_TOPIC_PREFIX=topic_prefix, SHELFWATCH_MQTT_CLIENT_ID=client_id,
    )
    settings = Settings(data_dir=data, mqtt_url=mqtt_url, mqtt_topic_prefix=topic_prefix, mqtt_client_id=client_id)
    pipeline.register_sensor_session(settings)  # the sensors publish before the DAG runs
    published = pipeline.publish_sensor_readings(settings, data / "world")["published"]

    env = airflow_env(tmp_path, **shelfwatch_env)
    run([sys.executable, "-m", "airflow", "db", "migrate"], env)
    proc = run([sys.executable, "-c", DAG_TEST], env)
    assert "DAG_RUN_STATE success" in proc.stdout, proc.stdout[-4000:]

    db = sqlite3.connect(data / "shelfwatch.db")
    count = lambda table: db.execute(f"select count(*) from {table}").fetchone()[0]  # noqa: E731
    assert count("sales_daily") == 2 * 8 * 120
    assert count("sensor_readings") == published
    assert db.execute("select count(distinct store_id || sku), count(*) from forecasts").fetchone() == (16, 16 * 28)
    assert count("alerts") > 0
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "Open alerts" in summary
