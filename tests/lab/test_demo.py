"""`shelfwatch demo` end to end, as a user runs it: embedded broker + SQLite, and Mosquitto + PostgreSQL."""

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

SMALL_DEMO = [
    "--stores",
    "2",
    "--skus",
    "12",
    "--days",
    "150",
    "--members",
    "300",
    "--seed",
    "5",
    "--incident-share",
    "0.15",
]


def run_demo(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SHELFWATCH_")}
    full_env.update(
        SHELFWATCH_DATA_DIR=str(tmp_path / "data"), SHELFWATCH_OUTPUT_DIR=str(tmp_path / "out"), COLUMNS="160", **env
    )
    proc = subprocess.run(
        [sys.executable, "-m", "shelfwatch.cli", "demo", *SMALL_DEMO],
        cwd=tmp_path,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"demo failed\nSTDOUT:\n{proc.stdout}\nSTDERR:\n{proc.stderr}"
    return proc


def check_report(out: Path, stdout: str) -> None:
    for step in ("simulate world", "ingest sales", "sensor readings", "forecast", "detect alerts", "write report"):
        assert step in stdout, f"step {step!r} not reported"
    assert "precision" in stdout and "recall" in stdout
    evaluation = json.loads((out / "evaluation.json").read_text())
    assert evaluation["alerts"] > 0 and evaluation["precision"] > 0.3 and evaluation["recall"] > 0.3
    summary = (out / "summary.md").read_text()
    assert "Top" in summary and "@" not in summary  # no contact details in the store managers' view
    with open(out / "members_to_contact.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert rows, "at least one alert must be linked to contactable members"
    assert len(list((out / "plots").glob("*.png"))) > 0
    assert "http://127.0.0.1:8000" in stdout
    for role, user in (
        ("planner", "demo-planner"),
        ("store_manager", "demo-manager"),
        ("cx", "demo-cx"),
        ("admin", "demo-admin"),
    ):
        assert re.search(rf"{role}\s+{user} / \S{{8,}}", stdout), f"no demo login printed for {role}"


@pytest.mark.slow
def test_demo_with_embedded_broker_and_sqlite(tmp_path):
    proc = run_demo(tmp_path)
    check_report(tmp_path / "out", proc.stdout)
    assert (tmp_path / "data" / "shelfwatch.db").exists()
    # a second run over the same world changes nothing and still succeeds
    again = run_demo(tmp_path)
    assert json.loads((tmp_path / "out" / "evaluation.json").read_text())["alerts"] > 0
    assert "opened=0" in again.stdout


@pytest.mark.slow
def test_demo_with_mosquitto_and_postgresql(tmp_path, pg_url, mqtt_url, topic_prefix):
    proc = run_demo(
        tmp_path,
        SHELFWATCH_DATABASE_URL=pg_url,
        SHELFWATCH_MQTT_URL=mqtt_url,
        SHELFWATCH_MQTT_TOPIC_PREFIX=topic_prefix,
        SHELFWATCH_MQTT_CLIENT_ID=f"demo-{topic_prefix.split('/')[1]}",
    )
    check_report(tmp_path / "out", proc.stdout)
