"""Shelfwatch daily pipeline: POS files and shelf sensors in, member-linked stock-out alerts out.

Thin wiring only: every task is one call into `shelfwatch.steps` (imported inside the task, so
parsing this file stays cheap). Params let a planner point a manual run at another world folder.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Param, chain, dag, get_current_context, task

from shelfwatch.dag_wiring import DEFAULT_ARGS, settings


def param(name: str):
    return get_current_context()["params"][name]


@dag(
    dag_id="shelfwatch_pipeline",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    default_args=DEFAULT_ARGS,
    max_active_runs=1,  # one consumer of the fixed-client-id MQTT session at a time
    doc_md=__doc__,
    tags=["shelfwatch"],
    params={
        "world_dir": Param(
            "", type="string", description="Folder with reference files and sales/; empty = <SHELFWATCH_DATA_DIR>/world"
        ),
        "until_idle": Param(
            3.0, type="number", minimum=0.5, description="Stop draining sensor readings after this many idle seconds"
        ),
    },
)
def shelfwatch_pipeline():
    @task
    def migrate() -> dict:
        """Bring the database schema to the latest migration."""
        from shelfwatch import steps

        return steps.migrate_database(settings())

    @task
    def load_reference() -> dict:
        """Stores, products, members, sensors, deliveries, inventory records."""
        from shelfwatch import steps

        return steps.load_reference(settings(), param("world_dir"))

    @task
    def ingest_sales() -> dict:
        """POS files through the Great Expectations gate; bad rows to quarantine."""
        from shelfwatch import steps

        return steps.ingest_sales(settings(), param("world_dir"))

    @task
    def ingest_sensor_readings() -> dict:
        """Drain the persistent MQTT session of shelf-sensor readings."""
        from shelfwatch import steps

        return steps.ingest_sensor_readings(settings(), until_idle=float(param("until_idle")))

    @task(execution_timeout=timedelta(hours=2))
    def forecast() -> dict:
        """The model that backtests best per store x SKU, over all cores."""
        from shelfwatch import steps

        return steps.forecast_demand(settings())

    @task
    def detect_alerts() -> dict:
        """Stock-out risk, empty shelves, phantom stock-outs; favourite members linked."""
        from shelfwatch import steps

        return steps.detect_alerts(settings())

    @task
    def refresh_member_risk() -> dict:
        """Members whose favourites keep running out, ranked for CX (the report lists them)."""
        from shelfwatch import steps

        return steps.refresh_member_risk(settings())

    @task
    def write_report() -> dict:
        """Summary for store managers, CX contact list, forecast plots."""
        from shelfwatch import steps

        return steps.write_report(settings(), param("world_dir"))

    chain(
        migrate(),
        load_reference(),
        [ingest_sales(), ingest_sensor_readings()],
        forecast(),
        detect_alerts(),
        refresh_member_risk(),
        write_report(),
    )


shelfwatch_pipeline()
