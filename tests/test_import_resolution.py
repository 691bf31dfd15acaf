"""Every import of the repository's own packages resolves for a path-reading tool: pyright (pinned in
package-lock.json, configured by pyrightconfig.json to resolve imports only; mypy is the type checker)
reads the folders as the packages their imports name (`import alerts.detect` is alerts/detect.py), with
the project's .venv for everything else. An import pyright cannot resolve to one of those folders fails
the test, named with its file and line.

Pyright comes from `npm ci` (`make test` runs it). Without it the test is skipped, except under CI=true,
where it fails.
"""

from __future__ import annotations

import json
import re
import subprocess
import time

import pytest

from tests.conftest import ON_CI, REPO_ROOT

PYRIGHT = REPO_ROOT / "node_modules" / ".bin" / "pyright"
# the repository's packages (pyrightconfig.json's "include")
PACKAGES = {"core", "sql", "sales_ingest", "iot_ingest", "forecasting", "alerts", "lab", "shelfwatch", "dags", "tests"}
# installed dependencies every part imports: unresolved, they mean pyright did not find the .venv
DEPENDENCIES = {"sqlalchemy", "pandas", "numpy"}
MIN_FILES = 150  # the repository has ~190 Python files: fewer analysed means the include list lost some
UNRESOLVED = re.compile(r'Import "([\w.]+)" could not be resolved')


def unresolved_imports(report: dict) -> list[tuple[str, str]]:
    """(module, "file:line") of each import pyright could not resolve."""
    found = []
    for d in report.get("generalDiagnostics", []):
        match = UNRESOLVED.search(d.get("message", ""))
        if d.get("rule") == "reportMissingImports" or match:
            module = match.group(1) if match else d.get("message", "")
            where = f"{d.get('file', '?')}:{d.get('range', {}).get('start', {}).get('line', -1) + 1}"
            found.append((module, where.removeprefix(f"{REPO_ROOT}/")))
    return found


@pytest.fixture(scope="module")
def pyright_report() -> dict:
    if not PYRIGHT.exists():
        if ON_CI:
            pytest.fail("pyright is not installed and CI=true: `make test` installs it with npm ci (package-lock.json)")
        pytest.skip("pyright not installed (npm ci)")
    start = time.perf_counter()
    proc = subprocess.run(
        [str(PYRIGHT), "--outputjson"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=800, check=False
    )
    seconds = time.perf_counter() - start
    # 0: no errors, 1: errors reported; anything else is pyright failing to run
    assert proc.returncode in (0, 1), f"pyright exited {proc.returncode}: {proc.stderr or proc.stdout}"
    report = json.loads(proc.stdout)
    print(f"pyright {report.get('version')}: {report['summary']} in {seconds:.1f} s")
    return report


def test_pyright_reads_the_repository(pyright_report: dict) -> None:
    analysed = pyright_report["summary"]["filesAnalyzed"]
    assert analysed >= MIN_FILES, f"pyright analysed {analysed} files (expected >= {MIN_FILES}): pyrightconfig.json"


def test_every_import_of_the_repositorys_packages_resolves(pyright_report: dict) -> None:
    unresolved = unresolved_imports(pyright_report)
    ours = [f"{where}: {module}" for module, where in unresolved if module.split(".")[0] in PACKAGES]
    assert not ours, "imports of the repository's packages that pyright cannot resolve:\n" + "\n".join(ours)
    dependencies = [f"{where}: {module}" for module, where in unresolved if module.split(".")[0] in DEPENDENCIES]
    assert not dependencies, "pyright did not find the .venv (pyrightconfig.json venvPath/venv):\n" + "\n".join(
        dependencies
    )
