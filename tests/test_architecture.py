"""The house keeps its shape: folders that are the import paths, and floors whose imports only point down.

docs/architecture.md explains the floors; this test is their guard. It reads every module's imports
(including those inside functions) with `ast`, resolves them to Shelfwatch modules and fails on:
- an import by the names of the old single-root layout (`shelfwatch.alerts`, `shelfwatch.core`, ...);
- an import of a module on a higher floor, or of another package on the same floor;
- product code (anything but the lab itself) importing `lab`.
It also checks that each folder is the package its imports name, and that no other installed
distribution ships a top-level module of one of those names.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import tomllib
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

# (module prefix, floor); the longest matching prefix wins. Same floor = only within the same package.
FLOORS = [
    ("core", 1),  # settings, engine/session helpers, domain facts
    ("sql", 2),  # the schema, partitions, migrations
    ("sales_ingest", 3),
    ("iot_ingest", 3),  # the front doors
    ("forecasting", 4),
    ("alerts", 5),
    ("shelfwatch.report", 6),  # the planners' and CX team's report over alerts and forecasts
    ("shelfwatch.steps", 7),  # one function per DAG task
    ("shelfwatch.web", 8),
    ("shelfwatch.stack", 8),
    ("shelfwatch.dag_wiring", 8),  # the faces
    ("shelfwatch.cli", 9),
    ("dags", 9),  # the CLI (mounts the lab by entry point, not by import); the DAG files
    ("lab", 10),  # simulator, benchmarks, baselines, test brokers, demo
]
# The import names of the single-root layout before each folder became its own package.
OLD_NAMES = {
    f"shelfwatch.{name}" for name in ("core", "sql", "sales_ingest", "iot_ingest", "forecasting", "alerts", "lab")
}


def top_level_packages() -> list[str]:
    """The packages the wheel installs, from pyproject's `packages.find` include list (one place)."""
    find = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    return [pattern.rstrip("*") for pattern in find["include"]]


def product_modules() -> dict[str, Path]:
    """Every module of the repository by its import name, which is its path (DAG files as `dags.<stem>`)."""
    modules: dict[str, Path] = {}
    for package in top_level_packages():
        for path in (REPO_ROOT / package).rglob("*.py"):
            if "migrations" in path.parts and path.parent.name == "versions":
                continue
            rel = path.relative_to(REPO_ROOT).with_suffix("")
            modules[".".join(p for p in rel.parts if p != "__init__")] = path
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
            found |= {
                (node.lineno, f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base)
                for alias in node.names
            }
    return sorted(found)


def violations(module: str, source: str, known: set[str], is_package: bool = False) -> list[str]:
    """What is wrong with one module's imports under the house rules."""
    problems = []
    own = floor_of(module)
    for line, name in imported_names(source, module, is_package, known):
        where = f"{module}:{line} imports {name}"
        if ".".join(name.split(".")[:2]) in OLD_NAMES:
            problems.append(
                f"{where}: import Shelfwatch code by its folder's name (alerts.detect, not shelfwatch.alerts.detect)"
            )
            continue
        if name not in known:
            continue  # third-party
        target = floor_of(name)
        if target is None or own is None or target[0] == own[0]:
            continue
        if target[0] == "lab" and own[0] != "lab":
            problems.append(f"{where}: product code never imports the lab")
        elif target[1] > own[1]:
            problems.append(f"{where}: floor {own[1]} ({own[0]}) must not import floor {target[1]} ({target[0]})")
        elif target[1] == own[1]:
            problems.append(f"{where}: {own[0]} and {target[0]} share floor {own[1]} and must not import each other")
    return problems


def test_every_module_sits_on_a_floor():
    homeless = [m for m in product_modules() if floor_of(m) is None and m != "shelfwatch"]
    assert not homeless, f"give these a floor in FLOORS and in docs/architecture.md: {homeless}"


def test_imports_only_point_down_and_name_their_folders():
    modules = product_modules()
    known = set(modules)
    problems = [
        p
        for module, path in modules.items()
        for p in violations(module, path.read_text(), known, path.name == "__init__.py")
    ]
    assert not problems, "imports against the house rules (docs/architecture.md):\n" + "\n".join(problems)


def test_tests_import_shelfwatch_code_by_its_folder():
    problems = []
    for path in (REPO_ROOT / "tests").rglob("*.py"):
        for line, name in imported_names(path.read_text(), "tests", False, set()):
            if ".".join(name.split(".")[:2]) in OLD_NAMES:
                problems.append(f"{path.relative_to(REPO_ROOT)}:{line} imports {name}")
    assert not problems, problems


@pytest.mark.parametrize("package", top_level_packages())
def test_each_folder_is_the_package_its_imports_name(package):
    """What a path-reading tool assumes (an editor, pyright, an import map) is what Python does."""
    spec = importlib.util.find_spec(package)
    assert spec is not None and spec.origin == str(REPO_ROOT / package / "__init__.py")


def test_no_other_installed_distribution_ships_our_top_level_names():
    """Generic names (`sql`, `core`, `alerts`) are safe only while nothing else in the locked set,
    which the Airflow image installs too, provides a module of the same name."""
    owners = importlib.metadata.packages_distributions()
    clashes = {name: owners[name] for name in top_level_packages() if set(owners.get(name, [])) - {"shelfwatch"}}
    assert not clashes, f"another distribution ships these import names: {clashes}"


@pytest.mark.parametrize(
    "module, source, complaint",
    [
        ("iot_ingest.consumer", "from alerts.realtime import apply_shelf_readings", "must not import floor 5"),
        ("core.db", "def f():\n    from sql import schema\n", "must not import floor 2"),
        ("alerts.detect", "import shelfwatch.steps", "must not import floor 7"),
        ("shelfwatch.steps", "from lab.simulator import simulate_world", "never imports the lab"),
        ("sales_ingest.pos_files", "from iot_ingest import contract", "share floor 3"),
        ("shelfwatch.web.app", "from shelfwatch.cli import app", "must not import floor 9"),
        ("forecasting.engine", "from shelfwatch.forecasting.metrics import rmsse", "by its folder's name"),
        ("dags.sales-ingest", "from lab import demo", "never imports the lab"),
    ],
)
def test_the_rule_fails_on_an_upward_import(module, source, complaint):
    known = set(product_modules())
    problems = violations(module, source, known)
    assert len(problems) == 1 and complaint in problems[0], problems


def test_the_rule_allows_downward_imports():
    known = set(product_modules())
    assert violations("alerts.risk", "from forecasting.distribution import nb_cdf", known) == []
    assert violations("shelfwatch.cli", "from shelfwatch.web.app import create_app", known) == []
    assert violations("lab.demo", "from shelfwatch import steps", known) == []
