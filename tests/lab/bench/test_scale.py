"""`shelfwatch bench scale` at a tiny size: both designs built, measured, tabulated and dropped."""

from datetime import UTC

import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from lab.bench.scale import WorldSize, ingest_messages, reading_chunks
from shelfwatch.cli.app import app
from tests.conftest import PG_BASE, PG_HOST, PG_PORT, require_service


def test_the_world_has_the_rows_asked_for():
    from datetime import datetime

    size = WorldSize("t", 3, 4, 1000, days=10)
    now = datetime(2026, 11, 30, tzinfo=UTC)
    chunks = list(reading_chunks(size, now, chunk_rows=100))
    readings = [r for chunk in chunks for r in chunk.itertuples()]
    assert len(readings) == 1000 and len(chunks) > 1
    assert len({(r.sensor_id, r.device_ts, r.seq) for r in readings}) == 1000  # no duplicates to lose
    assert max(r.device_ts for r in readings) < now
    assert len(ingest_messages(size, now, 25)) == 25


def test_bench_scale_prints_both_designs_and_their_ratio():
    if not require_service("PostgreSQL", PG_HOST, PG_PORT):
        pytest.skip("PostgreSQL not reachable (allowed outside CI)")
    result = CliRunner().invoke(
        app,
        ["bench", "scale", "--worlds", "tiny:2x5:2000", "--ingest-readings", "300", "--pg-url", PG_BASE],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    header = next(line for line in result.output.splitlines() if "measure" in line)
    for column in ("readings rows", "forecast rows", "before (0006)", "after (0007)", "speed-up"):
        assert column in header
    for measure in ("ingest (readings/s)", "detection (s)", "forecast write (s)"):
        line = next(line for line in result.output.splitlines() if measure in line)
        assert "2,000" in line and "280" in line and line.rstrip(" │┃").endswith("x")  # 10 series x 28 days written
    assert "migration 0006 -> 0007 of 2,000 readings" in result.output
    with create_engine(PG_BASE).connect() as conn:
        left = conn.execute(
            text("SELECT count(*) FROM information_schema.schemata WHERE schema_name LIKE 'bench_scale_tiny%'")
        ).scalar()
    assert left == 0
