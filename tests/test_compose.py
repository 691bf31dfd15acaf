"""docker-compose.yml checked as data (no Docker engine here): services, files, settings names."""

from pathlib import Path

import yaml

from shelfwatch.config import Settings

ROOT = Path(__file__).resolve().parents[1]


def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_services_and_health():
    services = compose()["services"]
    assert {"postgres", "mosquitto", "demo", "ingest"} <= services.keys()
    for name in ("postgres", "mosquitto"):
        assert "healthcheck" in services[name]
    for name in ("demo", "ingest"):
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert services[name]["build"] == "." and (ROOT / "Dockerfile").exists()


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
    text = (ROOT / "docker-compose.yml").read_text()
    example = (ROOT / ".env.example").read_text()
    for name in ("POSTGRES_PASSWORD", "MQTT_INGEST_PASSWORD", "MQTT_DEMO_PASSWORD"):
        assert "${" + name + "}" in text and f"{name}=" in example


def test_environment_names_are_settings():
    known = {f.metadata["env"] for f in Settings.__dataclass_fields__.values()}
    for name in ("demo", "ingest"):
        env = compose()["services"][name]["environment"]
        assert set(env) <= known, set(env) - known
        assert env["SHELFWATCH_DATABASE_URL"].startswith("postgresql+psycopg://")


def test_commands_are_cli_commands():
    from typer.main import get_command

    from shelfwatch.cli import app

    commands = get_command(app).commands
    for name in ("demo", "ingest"):
        command = " ".join(compose()["services"][name]["command"])
        assert any(f"shelfwatch {c} " in command + " " for c in commands), command


def test_readme_documents_every_setting():
    readme = (ROOT / "README.md").read_text()
    for f in Settings.__dataclass_fields__.values():
        assert f.metadata["env"] in readme, f"README misses {f.metadata['env']}"
    assert "make demo" in readme and "make test" in readme
