"""docker-compose.yml checked as data (no Docker engine here): services, files, settings names."""

import yaml

from core.settings import Settings
from tests.conftest import REPO_ROOT as ROOT


def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


AIRFLOW_SERVICES = {
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
}


def test_services_and_health():
    services = compose()["services"]
    assert {"postgres", "redis", "mosquitto", "demo", "ingest", "web"} | AIRFLOW_SERVICES <= services.keys()
    for name in ("postgres", "redis", "mosquitto", "web") + tuple(AIRFLOW_SERVICES - {"airflow-init"}):
        assert "healthcheck" in services[name], name
    for name in ("demo", "ingest"):
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert services[name]["build"] == "." and (ROOT / "Dockerfile").exists()
    for name in AIRFLOW_SERVICES:
        service = services[name]
        assert (ROOT / service["build"]["dockerfile"]).exists()
        assert (
            service["depends_on"]["postgres"]["condition"]
            == service["depends_on"]["redis"]["condition"]
            == "service_healthy"
        )
        assert service["environment"]["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        if name != "airflow-init":  # everything waits for the metadata schema and the pools
            assert service["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
    # scalable: no fixed container names on the services meant to be scaled
    assert "container_name" not in services["airflow-worker"] and "container_name" not in services["ingest"]
    assert "8080:8080" in services["airflow-apiserver"]["ports"]


def test_airflow_commands_exist():
    """Every Airflow service runs a command this Airflow version has (`celery worker` comes with the
    Celery provider the Airflow image installs, deploy/airflow/requirements-airflow.lock)."""
    import subprocess
    import sys

    services = compose()["services"]
    commands = {name: services[name]["command"] for name in AIRFLOW_SERVICES}
    assert commands["airflow-worker"] == ["airflow", "celery", "worker"]
    assert "apache-airflow-providers-celery==" in (ROOT / "deploy/airflow/requirements-airflow.lock").read_text()
    init = commands["airflow-init"][-1]
    assert (
        "airflow db migrate" in init
        and "airflow pools import /opt/shelfwatch/deploy/airflow/pools.json" in init
        and "shelfwatch migrate" in init
    )
    for name in ("airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"):
        sub = commands[name][1]
        proc = subprocess.run(
            [sys.executable, "-m", "airflow", sub, "--help"],
            capture_output=True,
            text=True,
            timeout=120,
            env={"AIRFLOW_HOME": str(ROOT / ".pytest_cache" / "airflow-help"), "PATH": "/usr/bin:/bin"},
        )
        assert proc.returncode == 0, f"airflow {sub}: {proc.stderr[-500:]}"


def test_pools_file_matches_the_dags():
    """Read from the source: importing Airflow into the test process would pin its configuration."""
    import ast
    import json

    tree = ast.parse((ROOT / "shelfwatch" / "dag_wiring.py").read_text())
    names = {
        node.targets[0].id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "").startswith("POOL_")
    }
    pools = json.loads((ROOT / "deploy/airflow/pools.json").read_text())
    assert set(pools) == set(names.values()) == {"shelfwatch_forecasting", "shelfwatch_ingest"}


def test_compose_config_parses_offline(tmp_path):
    """`docker-compose config` (the client, no engine needed) accepts the file with the example .env."""
    import shutil
    import subprocess

    import pytest

    client = shutil.which("docker-compose")
    if client is None:
        pytest.skip("no docker-compose client on this machine (.ci/run installs it)")
    proc = subprocess.run(
        [client, "--env-file", str(ROOT / ".env.example"), "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr


GENERATED = {"./deploy/mosquitto/passwd": "deploy/mosquitto/make-passwd.sh"}  # built by the user, never committed


def test_mounted_files_exist():
    for service in compose()["services"].values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source in GENERATED:
                assert (ROOT / GENERATED[source]).exists()
            elif source.startswith("."):
                assert (ROOT / source).exists(), source


def test_secrets_come_from_the_env_file():
    import re

    text = (ROOT / "docker-compose.yml").read_text()
    example = (ROOT / ".env.example").read_text()
    used = set(re.findall(r"(?<!\$)\$\{(\w+)\}", text))  # $${X} is left to the container's shell
    assert {
        "POSTGRES_PASSWORD",
        "AIRFLOW_DB_PASSWORD",
        "MQTT_INGEST_PASSWORD",
        "MQTT_DEMO_PASSWORD",
        "AIRFLOW_FERNET_KEY",
        "AIRFLOW_JWT_SECRET",
    } <= used
    for name in used:
        assert re.search(rf"^{name}=", example, re.M), f".env.example misses {name}"


def test_environment_names_are_settings():
    from core.settings import AIRFLOW_CONNECTIONS

    known = {f.metadata["env"] for f in Settings.__dataclass_fields__.values()}
    connections = {f"AIRFLOW_CONN_{c.upper()}" for c in AIRFLOW_CONNECTIONS}
    for name in ("demo", "ingest", "web"):
        env = compose()["services"][name]["environment"]
        assert set(env) <= known, set(env) - known
        assert env["SHELFWATCH_DATABASE_URL"].startswith("postgresql+psycopg://")
    for name in AIRFLOW_SERVICES:
        env = compose()["services"][name]["environment"]
        shelfwatch = {k for k in env if k.startswith("SHELFWATCH_")}
        assert shelfwatch <= known, shelfwatch - known
        assert {k for k in env if k.startswith("AIRFLOW_CONN_")} == connections  # every secret as a connection


def test_commands_are_cli_commands():
    from typer.main import get_command

    from shelfwatch.cli.app import app

    commands = get_command(app).commands
    for name in ("demo", "ingest", "web"):
        command = " ".join(compose()["services"][name]["command"])
        assert any(f"shelfwatch {c} " in command + " " for c in commands), command


def test_readme_documents_every_setting():
    readme = (ROOT / "README.md").read_text()
    for f in Settings.__dataclass_fields__.values():
        assert f.metadata["env"] in readme, f"README misses {f.metadata['env']}"
    assert "make demo" in readme and "make test" in readme
