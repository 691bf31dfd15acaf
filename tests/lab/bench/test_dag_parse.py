"""`shelfwatch bench dag-parse`: times what it says, in fresh interpreters, against airflow.sdk."""

from __future__ import annotations

from lab.bench.dag_parse import time_dag_parse


def test_times_the_baseline_and_the_dag_files_in_fresh_interpreters(tmp_path):
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "tiny.py").write_text(
        "import json, sys\nsys.modules['bench_probe_marker'] = json\nfrom airflow.sdk import dag\n"
    )
    baseline, files = time_dag_parse(dags, repeats=2)
    assert baseline.name.startswith("import airflow.sdk") and files.name == "all 1 DAG files"
    assert len(baseline.seconds) == len(files.seconds) == 2
    assert all(0 < s < 120 for s in baseline.seconds + files.seconds)
    assert files.modules == baseline.modules + 1  # the DAG file ran, in its own interpreter: only it loaded the marker
