"""`shelfwatch bench dag-parse`: how long a fresh interpreter takes to run every DAG file (what
Airflow's DAG processor does on each parse), against a bare `import airflow.sdk` measured in the
same run, so the figure says what our files add on top of Airflow's own import.

Each measurement is a fresh Python process with an Airflow home of its own (no examples), timed
from inside; the best of `repeats` counts, as a noisy neighbour only ever adds time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

# Runs in the child: time the imports, then report the seconds and which heavy modules got loaded.
PROBE = """
import json, runpy, sys, time
start = time.perf_counter()
files = [f for f in sys.argv[1].split(",") if f]
if files:
    for f in files:
        runpy.run_path(f)
else:
    import airflow.sdk
print("DAG_PARSE_PROBE " + json.dumps({"seconds": time.perf_counter() - start, "modules": sorted(sys.modules)}))
"""


@dataclass(frozen=True)
class ParseTiming:
    name: str
    seconds: list[float]
    modules: int

    @property
    def best(self) -> float:
        return min(self.seconds)


def probe_env(airflow_home: Path, dags_folder: Path) -> dict[str, str]:
    """The caller's environment minus Airflow/Shelfwatch settings, with a scratch Airflow home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "SHELFWATCH_", "_AIRFLOW"))}
    env.update(
        AIRFLOW_HOME=str(airflow_home),
        AIRFLOW__CORE__DAGS_FOLDER=str(dags_folder),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


def run_probe(files: list[Path], env: dict[str, str], cwd: Path) -> dict:
    """One fresh interpreter importing `files` (none: only airflow.sdk); its seconds and modules."""
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, ",".join(map(str, files))],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("DAG_PARSE_PROBE "):
            return json.loads(line[len("DAG_PARSE_PROBE ") :])
    raise RuntimeError(f"the DAG-parse probe exited {proc.returncode} without a figure:\n{proc.stderr[-4000:]}")


def time_dag_parse(dags_folder: Path, repeats: int = 5) -> list[ParseTiming]:
    """The baseline (bare airflow.sdk) and every DAG file together, interleaved run by run."""
    files = sorted(dags_folder.glob("*.py"))
    runs: dict[str, list[dict]] = {"import airflow.sdk (baseline)": [], f"all {len(files)} DAG files": []}
    with tempfile.TemporaryDirectory(prefix="bench-dag-parse-") as home:
        env = probe_env(Path(home), dags_folder)
        for _ in range(repeats):
            for name, chosen in zip(runs, ([], files), strict=True):
                runs[name].append(run_probe(chosen, env, dags_folder.parent))
    return [ParseTiming(name, [r["seconds"] for r in rs], len(rs[-1]["modules"])) for name, rs in runs.items()]
