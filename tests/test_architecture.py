"""The house keeps its shape: one import root, and floors whose imports only point down.

docs/architecture.md explains the floors; this test is their guard. It reads every module's imports
(including those inside functions) with `ast`, resolves them to Shelfwatch modules and fails on:
- an import of a top-level name other than `shelfwatch` for code of this repository (`import alerts`);
- an import of a module on a higher floor, or of another package on the same floor;
- product code (anything but the lab itself) importing `shelfwatch.lab`.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

# (module prefix, floor); the longest matching prefix wins. Same floor = only within the same package.
FLOORS = [
    ("shelfwatch.core", 1),  # settings, engine/session helpers, domain facts
    ("shelfwatch.sql", 2),  # the schema, partitions, migrations
    ("shelfwatch.sales_ingest", 3), ("shelfwatch.iot_ingest", 3),  # the front doors
    ("shelfwatch.forecasting", 4),
    ("shelfwatch.alerts", 5),
    ("shelfwatch.report", 6),  # the planners' and CX team's report over alerts and forecasts
    ("shelfwatch.steps", 7),  # one function per DAG task
    ("shelfwatch.web", 8), ("shelfwatch.stack", 8), ("shelfwatch.dag_wiring", 8),  # the faces
    ("shelfwatch.cli", 9), ("dags", 9),  # the CLI (mounts the lab by entry point, not by import); the DAG files
    ("shelfwatch.lab", 10),  # simulator, benchmarks, baselines, test brokers, demo
]
# Folders of this repository that were import roots before the one-root layout.
OLD_ROOTS = {"alerts", "forecasting", "iot_ingest", "sql", "sales_ingest", "lab"}


def package_dirs() -> dict[str, Path]:
    """Import name -> folder, from pyproject's setuptools package-dir (the one mapping of the tree)."""
    mapping = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    return {name: REPO_ROOT / folder for name, folder in mapping.items()}


def product_modules() -> dict[str, Path]:
    """Every module of the repository by its import name (DAG files as `dags.<file stem>`)."""
    modules: dict[str, Path] = {}
    for package, folder in sorted(package_dirs().items(), key=lambda kv: len(kv[0])):
        for path in folder.rglob("*.py"):
            if "migrations" in path.parts and path.parent.name == "versions":
                continue
            rel = path.relative_to(folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            modules.setdefault(".".join([package, *parts]), path)
    for path in (REPO_ROOT / "dags").glob("*.py"):
        modules[f"dags.{path.stem}"] = path
    return modules


def floor_of(module: str) -> tuple[str, int] | None:
    """(package prefix, floor) of a module, or None for the root package's own face."""
    best = None
    for prefix, floor in FLOORS:
        if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > len(best[0])):
            best = (prefix, floor)
    return best


def imported_names(source: str, module: str, is_package: bool, known: set[str]) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in `source`: `from a import b` is module `a.b`
    where that is a module, else `a`."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {(node.lineno, alias.name) for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            found |= {(node.lineno, f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base) for alias in node.names}
    return sorted(found)


def violations(module: str, source: str, known: set[str], is_package: bool = False) -> list[str]:
    """What is wrong with one module's imports under the house rules."""
    problems = []
    own = floor_of(module)
    for line, name in imported_names(source, module, is_package, known):
        root = name.split(".")[0]
        where = f"{module}:{line} imports {name}"
        if root in OLD_ROOTS:
            problems.append(f"{where}: import Shelfwatch code as shelfwatch.… (one import root)")
            continue
        if root != "shelfwatch" or name not in known:
            continue  # third-party
        target = floor_of(name)
        if target is None or own is None or target[0] == own[0]:
            continue
        if name.startswith("shelfwatch.lab") and not module.startswith("shelfwatch.lab"):
            problems.append(f"{where}: product code never imports the lab")
        elif target[1] > own[1]:
            problems.append(f"{where}: floor {own[1]} ({own[0]}) must not import floor {target[1]} ({target[0]})")
        elif target[1] == own[1]:
            problems.append(f"{where}: {own[0]} and {target[0]} share floor {own[1]} and must not import each other")
    return problems


def test_every_module_sits_on_a_floor():
    homeless = [m for m in product_modules() if floor_of(m) is None and m != "shelfwatch"]
    assert not homeless, f"give these a floor in FLOORS and in docs/architecture.md: {homeless}"


def test_imports_only_point_down_and_use_one_root():
    modules = product_modules()
    known = set(modules)
    problems = [p for module, path in modules.items()
                for p in violations(module, path.read_text(), known, path.name == "__init__.py")]
    assert not problems, "imports against the house rules (docs/architecture.md):\n" + "\n".join(problems)


def test_tests_import_shelfwatch_code_by_the_one_root():
    problems = []
    for path in (REPO_ROOT / "tests").rglob("*.py"):
        for line, name in imported_names(path.read_text(), "tests", False, set()):
            if name.split(".")[0] in OLD_ROOTS:
                problems.append(f"{path.relative_to(REPO_ROOT)}:{line} imports {name}")
    assert not problems, problems


@pytest.mark.parametrize("module, source, complaint", [
    ("shelfwatch.iot_ingest.consumer", "from shelfwatch.alerts.realtime import apply_shelf_readings", "must not import floor 5"),
    ("shelfwatch.core.db", "def f():\n    from shelfwatch.sql import schema\n", "must not import floor 2"),
    ("shelfwatch.alerts.detect", "import shelfwatch.steps", "must not import floor 7"),
    ("shelfwatch.steps", "from shelfwatch.lab.simulator import simulate_world", "never imports the lab"),
    ("shelfwatch.sales_ingest.pos_files", "from shelfwatch.iot_ingest import contract", "share floor 3"),
    ("shelfwatch.web.app", "from shelfwatch.cli import app", "must not import floor 9"),
    ("shelfwatch.forecasting.engine", "from forecasting.metrics import rmsse", "one import root"),
    ("dags.sales-ingest", "from shelfwatch.lab import demo", "never imports the lab"),
])
def test_the_rule_fails_on_an_upward_import(module, source, complaint):
    known = set(product_modules())
    problems = violations(module, source, known)
    assert len(problems) == 1 and complaint in problems[0], problems


def test_the_rule_allows_downward_imports():
    known = set(product_modules())
    assert violations("shelfwatch.alerts.risk", "from shelfwatch.forecasting.distribution import nb_cdf", known) == []
    assert violations("shelfwatch.cli", "from shelfwatch.web.app import create_app", known) == []
    assert violations("shelfwatch.lab.demo", "from shelfwatch import steps", known) == []
