"""Wiring shared by the Shelfwatch DAGs: default task arguments, assets, pools, the failure notifier
and the settings (Airflow connections over SHELFWATCH_* variables). Light imports only (airflow.sdk
and the standard library): DAG files import this at parse time; everything heavy is imported inside
the functions tasks call.
"""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime, timedelta

from airflow.sdk import Asset, BaseNotifier

SALES = Asset(name="shelfwatch_sales", uri="shelfwatch://sales_daily")
SENSOR_READINGS = Asset(name="shelfwatch_sensor_readings", uri="shelfwatch://sensor_readings")
FORECASTS = Asset(name="shelfwatch_forecasts", uri="shelfwatch://forecasts")

# Separate pools: forecasting gets a bounded share of the workers' slots, so a long forecast can
# never hold the slots the ingest and alert tasks need (deploy/airflow/pools.json creates them).
POOL_FORECASTING = "shelfwatch_forecasting"
POOL_INGEST = "shelfwatch_ingest"


def settings():
    """Shelfwatch's settings, with any `shelfwatch_*` Airflow connection (AIRFLOW_CONN_SHELFWATCH_DB,
    ..._MQTT, ..._SMTP, ..._WEBHOOK) taking precedence. Call it inside tasks only: connection look-ups
    must not happen while the scheduler parses the file."""
    from airflow.sdk import BaseHook

    from core.settings import AIRFLOW_CONNECTIONS, Settings, url_from_connection_uri

    overrides = {}
    for conn_id, setting in AIRFLOW_CONNECTIONS.items():
        try:
            conn = BaseHook.get_connection(conn_id)
        except Exception:  # not defined: the SHELFWATCH_* variable (or its default) applies
            continue
        overrides[setting] = url_from_connection_uri(setting, conn.get_uri())
    return Settings.from_env(**overrides)


def run_step(step, *args, **kwargs):
    """Run one Shelfwatch step in a task. "Nothing to work on yet" (`NoDataYet`, e.g. no sales on a
    fresh deployment) skips the task instead of failing it, so unpausing a new deployment pages no one."""
    from airflow.sdk.exceptions import AirflowSkipException

    from core.db import NoDataYet

    try:
        return step(*args, **kwargs)
    except NoDataYet as exc:
        raise AirflowSkipException(str(exc)) from exc


def worker_hostname() -> str:
    """This machine's name, plus SHELFWATCH_PROCESS_NAME when several Airflow processes share one
    machine (the process stack, `shelfwatch stack`): the metadata DB and the UI then say which worker
    ran a try. Set as `[core] hostname_callable`; in a container it is the container's name."""
    name = os.environ.get("SHELFWATCH_PROCESS_NAME", "")
    return f"{socket.getfqdn()}-{name}" if name else socket.getfqdn()


class OpsNotifier(BaseNotifier):
    """On a task's failure, post it to operations' webhook (shelfwatch.steps.notify_task_failure)."""

    def notify(self, context) -> None:
        from shelfwatch.steps import notify_task_failure

        ti = context["ti"]
        notify_task_failure(
            settings(),
            ti.dag_id,
            ti.task_id,
            ti.run_id,
            ti.try_number,
            str(context.get("exception")),
            getattr(ti, "log_url", None),
        )


DEFAULT_ARGS = {
    "retries": 2,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": 2.0,  # Airflow 3: a multiplier (1 min, then 2 min, jittered)
    "max_retry_delay": timedelta(minutes=10),
    "execution_timeout": timedelta(minutes=30),
    "on_failure_callback": [OpsNotifier()],
}

# What every Shelfwatch DAG shares: no backfill of missed intervals (each run looks at "now"), one
# run at a time (runs would race for the same rows), the defaults above.
DAG_ARGS = {
    "start_date": datetime(2026, 1, 1, tzinfo=UTC),
    "catchup": False,
    "max_active_runs": 1,
    "default_args": DEFAULT_ARGS,
    "tags": ["shelfwatch"],
}
