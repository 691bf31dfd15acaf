"""housekeeping: nightly retention of raw sensor readings and quarantine rows, then VACUUM (ANALYZE)
on PostgreSQL (ANALYZE on SQLite), so the tables that churn stay small and well planned."""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import dag, task
from shelfwatch.dag_wiring import DAG_ARGS, settings


@dag(
    dag_id="housekeeping",
    schedule="30 2 * * *",
    doc_md=__doc__,
    **DAG_ARGS,
)
def housekeeping():
    @task
    def apply_retention() -> dict:
        """Delete readings and quarantine rows past SHELFWATCH_*_RETENTION_DAYS."""
        from shelfwatch.operations import apply_retention as retain

        return retain(settings())

    @task(execution_timeout=timedelta(hours=1))
    def maintain_database(retention: dict) -> dict:
        """VACUUM (ANALYZE) on PostgreSQL, ANALYZE on SQLite."""
        from shelfwatch.operations import maintain_database as maintain

        return maintain(settings())

    maintain_database(apply_retention())


housekeeping()
