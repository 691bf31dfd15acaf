"""iot_ingest: supervises the long-running sensor ingest service.

Why supervise rather than drain: readings arrive all day at thousands a second, and the shelf_empty
alert is raised by the service as each reading is stored; bounded drains from a scheduler would
add minutes of latency and compete for the persistent session. So the service (docker compose
`ingest`, scalable replicas on a shared subscription) consumes, and this DAG checks every five
minutes that it is alive and on time — consumers' reports, lag, quarantined payloads, stale sensors —
failing and notifying when not, and publishing the sensor asset when new readings arrived.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, get_current_context, task

from shelfwatch.dag_wiring import DAG_ARGS, DEFAULT_ARGS, SENSOR_READINGS, settings


@dag(
    dag_id="iot_ingest",
    schedule="*/5 * * * *",
    doc_md=__doc__,
    **{**DAG_ARGS, "default_args": {**DEFAULT_ARGS, "retries": 0}},  # a failing health check should say so now
    params={
        "window_minutes": Param(60, type="integer", minimum=1, description="How far back to look at arrivals and lag")
    },
)
def iot_ingest():
    @task
    def check_ingest_health() -> dict:
        """Consumers reporting, readings stored, lag, quarantine and stale sensors; fail if unhealthy."""
        from shelfwatch.steps import ingest_health

        return ingest_health(settings(), int(get_current_context()["params"]["window_minutes"]))

    @task(outlets=[SENSOR_READINGS])
    def publish_new_readings(health: dict) -> dict:
        """Tell the alert DAG that new readings are in (skipped when none arrived)."""
        from airflow.sdk.exceptions import AirflowSkipException

        if not health["readings_in_window"]:
            raise AirflowSkipException("no readings arrived in the window")
        return {"readings": health["readings_in_window"]}

    publish_new_readings(check_ingest_health())


iot_ingest()
