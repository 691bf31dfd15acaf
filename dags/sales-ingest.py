"""sales_ingest: new POS files in the landing folder -> Great Expectations gate -> sales tables.

Each new file (by content) is validated and loaded once; bad rows go to quarantine. If the load
quarantined more than SHELFWATCH_QUARANTINE_MAX_SHARE of its rows (or a file could not be read at
all), the gate fails and operations are notified; otherwise new data publishes the sales asset,
which triggers demand_forecast.
"""

from __future__ import annotations

from airflow.sdk import Param, dag, get_current_context, task

from shelfwatch.dag_wiring import DAG_ARGS, POOL_INGEST, SALES, settings


@dag(
    dag_id="sales_ingest",
    schedule="*/30 * * * *",
    doc_md=__doc__,
    **DAG_ARGS,
    params={"landing_dir": Param("", type="string", description="Folder to load from; empty = SHELFWATCH_LANDING_DIR")},
)
def sales_ingest():
    @task(pool=POOL_INGEST)
    def load_new_files() -> dict:
        """Validate and load the files not loaded before; quarantine bad rows and unreadable files."""
        from shelfwatch.steps import ingest_landing

        return ingest_landing(settings(), get_current_context()["params"]["landing_dir"])

    @task(outlets=[SALES])
    def quarantine_gate(summary: dict) -> dict:
        """Fail (and notify) when too much was quarantined; publish the sales asset when data is new."""
        from airflow.sdk.exceptions import AirflowSkipException

        from shelfwatch.steps import quarantine_gate as gate

        result = gate(summary, settings().quarantine_max_share)
        if not result["new_data"]:
            raise AirflowSkipException("no new sales files")
        return result

    quarantine_gate(load_new_files())


sales_ingest()
