"""housekeeping: nightly upkeep of the tables that grow. On PostgreSQL, sensor_readings' day partitions
are created a week ahead and retention drops whole partitions; quarantine rows past their retention
are deleted; then VACUUM (ANALYZE) on PostgreSQL (ANALYZE on SQLite), so the tables stay well planned."""

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
    def ensure_reading_partitions() -> dict:
        """Day partitions of sensor_readings for today and SHELFWATCH_READINGS_PARTITION_DAYS_AHEAD days."""
        from shelfwatch.steps import ensure_reading_partitions as ensure

        return ensure(settings())

    @task
    def apply_retention(partitions: dict) -> dict:
        """Drop or delete readings and quarantine rows past SHELFWATCH_*_RETENTION_DAYS."""
        from shelfwatch.steps import apply_retention as retain

        return retain(settings())

    @task(execution_timeout=timedelta(hours=1))
    def maintain_database(retention: dict) -> dict:
        """VACUUM (ANALYZE) on PostgreSQL, ANALYZE on SQLite."""
        from shelfwatch.steps import maintain_database as maintain

        return maintain(settings())

    maintain_database(apply_retention(ensure_reading_partitions()))


housekeeping()
