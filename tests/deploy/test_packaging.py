"""The wheel installs exactly the repository's packages, each folder under its own name, and works on its own.

Each top-level folder of the design (sql/, alerts/, forecasting/, iot_ingest/, sales_ingest/, lab/,
core/, shelfwatch/) is the package its imports name. This builds the wheel as an image would,
installs it into a folder of its own and runs it from outside the checkout: the migrations,
templates and the lab's CLI entry point must all come with it, and nothing else (no tests, no dags).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile

from tests.conftest import REPO_ROOT

PROBE = """
import json, sys
from importlib.metadata import entry_points
from pathlib import Path
import sql.schema, alerts.detect, shelfwatch.web.app, lab.cli, shelfwatch.cli.app
from sql.migrate import migrate
from sqlalchemy import inspect
engine = migrate("sqlite:///" + sys.argv[1])
print(json.dumps({
    "files": sorted({Path(m.__file__).resolve().parents[1].as_posix() for m in (sql.schema, alerts.detect, lab.cli)}),
    "tables": sorted(inspect(engine).get_table_names()),
    "templates": (Path(shelfwatch.web.app.__file__).parent / "templates" / "alerts.html").exists(),
    "plugins": sorted(ep.value for ep in entry_points(group="shelfwatch.cli")),
}))
"""


def test_wheel_holds_the_packages_and_runs_outside_the_checkout(tmp_path):
    source = tmp_path / "source"  # a copy, so the build leaves no build/ or *.egg-info in the checkout
    shutil.copytree(
        REPO_ROOT,
        source,
        ignore=shutil.ignore_patterns(".git", ".venv", ".stack", "out", "data", "build", "*.egg-info", "__pycache__"),
    )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", str(source), "-w", str(tmp_path / "dist")],
        check=True,
        capture_output=True,
        timeout=300,
    )
    wheel = next((tmp_path / "dist").glob("shelfwatch-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    expected = {"shelfwatch", "core", "sql", "sales_ingest", "iot_ingest", "forecasting", "alerts", "lab"}
    assert top_level == expected, (
        f"the wheel installs other import names than the repository's packages: {sorted(top_level)}"
    )
    for needed in (
        "sql/alembic.ini",
        "sql/migrations/env.py",
        "sql/migrations/versions/0008_quarantine_channel.py",
        "shelfwatch/web/templates/alerts.html",
        "lab/cli.py",
        "lab/bench/forecast.py",
        "shelfwatch/web/routers/alerts.py",
    ):
        assert needed in names, f"{needed} is missing from {wheel.name}"

    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    env = {**os.environ, "PYTHONPATH": str(target)}  # before the editable install of the checkout
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, str(tmp_path / "probe.db")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    assert found["files"] == [target.resolve().as_posix()], "the modules came from the checkout, not the wheel"
    assert {"alerts", "quarantine", "sensor_readings", "latest_sensor_readings", "alembic_version"} <= set(
        found["tables"]
    )
    assert found["templates"] is True
    assert "lab.cli:mount" in found["plugins"]


def locked(path) -> dict[str, str]:
    """name -> version of a pip lock file (comments and blank lines skipped), names normalised."""
    pins = {}
    for line in (REPO_ROOT / path).read_text().splitlines():
        if "==" in line and not line.lstrip().startswith("#"):
            name, version = line.split("==", 1)
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    return pins


def test_the_runtime_set_carries_no_test_or_lint_tools():
    """The images install requirements.lock and the Airflow lock only (deploy/install.sh deps); the
    test and lint tools are pinned apart, in requirements-dev.lock, for `make install`."""
    runtime = locked("requirements.lock") | locked("deploy/airflow/requirements-airflow.lock")
    dev = locked("requirements-dev.lock")
    tools = {
        "pytest",
        "pytest-timeout",
        "pytest-xdist",
        "pytest-cov",
        "coverage",
        "aiosmtpd",
        "playwright",
        "ruff",
        "mypy",
    }
    assert tools <= set(dev), f"pin these in requirements-dev.lock: {sorted(tools - set(dev))}"
    assert not tools & set(runtime), f"test tools in the runtime set: {sorted(tools & set(runtime))}"
    assert not set(dev) & set(runtime), f"pinned twice: {sorted(set(dev) & set(runtime))}"
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    runtime_names = {
        d.split("[")[0].split(">")[0].split("=")[0].split("<")[0].strip().lower() for d in project["dependencies"]
    }
    assert not tools & runtime_names, (
        "pyproject's [project] dependencies name a test tool: use the [test]/[lint] extras"
    )
    for dockerfile in ("Dockerfile", "deploy/airflow/Dockerfile"):
        steps = re.findall(r"deploy/install\.sh \S+ (\w+)", (REPO_ROOT / dockerfile).read_text())
        assert steps and set(steps) <= {"deps", "project"}, f"{dockerfile} installs {steps}"
