"""Operations behind the production DAGs: the landing folder, the quarantine gate, ingest health,
retention and database upkeep. Plain functions over `Settings`, unit-tested without Airflow.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
from sqlalchemy import Connection, Engine, delete, func, select, text

from shelfwatch.config import Settings
from shelfwatch.db import get_engine
from sql import schema
from sql.partitions import days_from, delete_default_rows_before, drop_day_partitions_before, ensure_day_partitions

log = logging.getLogger(__name__)


class QuarantineShareExceeded(RuntimeError):
    """More of a load went to quarantine than the configured share: the files need a person."""


class IngestUnhealthy(RuntimeError):
    """The sensor ingest service has stopped reporting, or readings arrive too late."""


# ------------------------------------------------------------------------------------------ sales


def landing_files(landing_dir: Path) -> list[Path]:
    """POS files waiting in the landing folder (daily sales before purchase lines, then by name)."""
    from shelfwatch.sales_ingest import is_pos_file, load_order

    if not landing_dir.is_dir():
        raise FileNotFoundError(f"landing folder {landing_dir} does not exist (SHELFWATCH_LANDING_DIR)")
    return load_order([p for p in landing_dir.rglob("*") if is_pos_file(p)])


def ingest_landing(settings: Settings, landing_dir: str | Path | None = None) -> dict:
    """Validate and load every POS file in the landing folder that was not loaded before (same bytes
    are skipped). A file that cannot be read at all is quarantined whole and counted, and the others
    still load. Returns the counts the quarantine gate needs."""
    from shelfwatch.sales_ingest import SalesFileError, ingest_sales_file, known_ids

    engine = get_engine(settings.db_url)
    folder = Path(landing_dir) if landing_dir else settings.landing_path
    known = known_ids(engine)
    summary = {"landing_dir": str(folder), "files_loaded": [], "files_skipped": 0, "files_rejected": [], "rows_loaded": 0,
               "rows_quarantined": 0, "rows_total": 0}
    for path in landing_files(folder):
        try:
            result = ingest_sales_file(engine, path, known=known)
        except SalesFileError as exc:
            summary["files_rejected"].append(f"{path}: {exc}")
            continue
        if result.skipped_same_file:
            summary["files_skipped"] += 1
            continue
        summary["files_loaded"].append(str(result))
        summary["rows_loaded"] += result.rows_loaded
        summary["rows_quarantined"] += result.rows_quarantined
        summary["rows_total"] += result.rows_total
    return summary


def quarantine_gate(summary: dict, max_share: float) -> dict:
    """Pass a load on, or raise when its quarantined share (a rejected file counts as wholly bad) is
    above `max_share`: a feed that suddenly breaks must stop the forecast, not feed it half a day."""
    bad_rows = summary["rows_quarantined"]
    total = summary["rows_total"]
    share = bad_rows / total if total else 0.0
    if summary["files_rejected"] or share > max_share:
        why = [f"{bad_rows:,} of {total:,} rows quarantined ({share:.1%}, limit {max_share:.1%})"] + summary["files_rejected"]
        raise QuarantineShareExceeded("sales load held back: " + "; ".join(why))
    return {"quarantine_share": round(share, 4), "rows_loaded": summary["rows_loaded"], "new_data": bool(summary["files_loaded"])}


# ------------------------------------------------------------------------------------------ sensors


def ingest_health(settings: Settings, window_minutes: int = 60, now: datetime | None = None) -> dict:
    """What the ingest service has done lately: consumers' last reports, readings stored in the window,
    lag (arrival minus device time, median and p95), quarantined payloads, stale sensors.

    Raises IngestUnhealthy when no consumer reported within `SHELFWATCH_INGEST_MAX_SILENCE_MINUTES`
    or the p95 lag exceeds `SHELFWATCH_INGEST_MAX_LAG_SECONDS`.
    """
    from iot_ingest.health import stale_sensors

    engine = get_engine(settings.db_url)
    now = now or datetime.now(timezone.utc)
    since = now - timedelta(minutes=window_minutes)
    r, q, st = schema.sensor_readings, schema.quarantine, schema.ingest_stats
    with engine.connect() as conn:
        consumers = pd.read_sql(select(st.c.client_id, st.c.stored, st.c.readings_per_second, st.c.updated_at), conn)
        recent = pd.read_sql(select(r.c.device_ts, r.c.received_at).where(r.c.received_at >= since), conn)
        quarantined = conn.execute(select(func.count()).select_from(q).where(q.c.quarantined_at >= since, q.c.source.like("%/%"))).scalar_one()
    last_report = pd.to_datetime(consumers["updated_at"], utc=True).max() if len(consumers) else None
    lag = (pd.to_datetime(recent["received_at"], utc=True) - pd.to_datetime(recent["device_ts"], utc=True)).dt.total_seconds()
    stale = stale_sensors(engine, pd.Timedelta(hours=settings.sensor_stale_hours), pd.Timestamp(now))
    health = {
        "consumers": len(consumers),
        "last_report_at": None if last_report is None or pd.isna(last_report) else last_report.isoformat(),
        "readings_in_window": int(len(recent)),
        "lag_seconds_median": None if lag.empty else round(float(lag.median()), 1),
        "lag_seconds_p95": None if lag.empty else round(float(lag.quantile(0.95)), 1),
        "quarantined_in_window": int(quarantined),
        "stale_sensors": int(len(stale)),
        "window_minutes": window_minutes,
    }
    problems = []
    silence = timedelta(minutes=settings.ingest_max_silence_minutes)
    if last_report is None or pd.isna(last_report) or now - last_report.to_pydatetime() > silence:
        problems.append(f"no ingest consumer reported in the last {settings.ingest_max_silence_minutes} min (last: {health['last_report_at']})")
    if health["lag_seconds_p95"] is not None and health["lag_seconds_p95"] > settings.ingest_max_lag_seconds:
        problems.append(f"p95 lag {health['lag_seconds_p95']} s is above {settings.ingest_max_lag_seconds} s")
    if problems:
        raise IngestUnhealthy("; ".join(problems) + f" — {health}")
    return health


# ------------------------------------------------------------------------------------- housekeeping


def ensure_reading_partitions(settings: Settings, now: datetime | None = None, days_ahead: int | None = None) -> dict:
    """PostgreSQL: create the day partitions of sensor_readings for today and the `days_ahead` days
    after it (default SHELFWATCH_READINGS_PARTITION_DAYS_AHEAD) that do not exist yet. Idempotent;
    SQLite has one plain table and nothing to do."""
    engine = get_engine(settings.db_url)
    if engine.dialect.name != "postgresql":
        return {"dialect": engine.dialect.name, "created": []}
    today = (now or datetime.now(timezone.utc)).astimezone(timezone.utc).date()
    ahead = settings.readings_partition_days_ahead if days_ahead is None else days_ahead
    with engine.begin() as conn:
        created = ensure_day_partitions(conn, days_from(today, today + timedelta(days=ahead)))
    return {"dialect": "postgresql", "created": created}


def apply_retention(settings: Settings, now: datetime | None = None) -> dict:
    """Delete raw readings and quarantine rows past their retention (aggregates stay: sales, forecasts,
    alerts and their audit trail are kept). Idempotent: a second run deletes nothing.

    On PostgreSQL, whole device-day partitions older than the retention are dropped (no row-by-row
    DELETE, no vacuum debt) and only the DEFAULT partition's rows are deleted by arrival time.
    """
    engine = get_engine(settings.db_url)
    now = now or datetime.now(timezone.utc)
    readings_before = now - timedelta(days=settings.readings_retention_days)
    quarantine_before = now - timedelta(days=settings.quarantine_retention_days)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            dropped = drop_day_partitions_before(conn, readings_before)
            readings = delete_default_rows_before(conn, readings_before)
        else:
            dropped = []
            readings = conn.execute(delete(schema.sensor_readings).where(schema.sensor_readings.c.received_at < readings_before)).rowcount
        forget_silent_sensors(conn, readings_before)
        quarantine = conn.execute(delete(schema.quarantine).where(schema.quarantine.c.quarantined_at < quarantine_before)).rowcount
    return {"readings_deleted": readings, "reading_partitions_dropped": dropped, "quarantine_deleted": quarantine,
            "readings_before": readings_before.isoformat(), "quarantine_before": quarantine_before.isoformat()}


def forget_silent_sensors(conn: Connection, before: datetime) -> int:
    """Drop the latest-reading rows of sensors with no reading received since `before`: retention
    took all their readings (dropped partitions fire no trigger)."""
    latest = schema.latest_sensor_readings
    return conn.execute(delete(latest).where(latest.c.last_received_at < before)).rowcount


def maintain_database(settings: Settings, engine: Engine | None = None) -> dict:
    """PostgreSQL: VACUUM (ANALYZE) the tables that churn; SQLite: ANALYZE. Outside a transaction,
    as VACUUM requires."""
    engine = engine or get_engine(settings.db_url)
    tables = ["sensor_readings", "latest_sensor_readings", "quarantine", "alerts", "alert_events", "outbox", "forecasts", "forecast_models"]
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if engine.dialect.name == "postgresql":
            for table in tables:
                conn.execute(text(f"VACUUM (ANALYZE) {table}"))
            return {"dialect": "postgresql", "vacuumed": tables}
        conn.execute(text("ANALYZE"))
        return {"dialect": engine.dialect.name, "analyzed": True}


# ------------------------------------------------------------------------------------------- failures


def notify_task_failure(settings: Settings, dag_id: str, task_id: str, run_id: str, try_number: int, error: str, log_url: str | None) -> dict:
    """Tell operations a task failed: a JSON webhook post (`SHELFWATCH_WEBHOOK_URL`), keyed so a
    receiver can drop a duplicate, and an error log line either way."""
    from alerts.notify import send_webhook

    payload = {"text": f"Shelfwatch: {dag_id}.{task_id} failed (run {run_id}, try {try_number}): {error[:500]}",
               "dag_id": dag_id, "task_id": task_id, "run_id": run_id, "try_number": try_number, "log_url": log_url}
    log.error("task failed: %s.%s run %s try %s: %s", dag_id, task_id, run_id, try_number, error[:500])
    if not settings.webhook_url:
        return {"posted": False}
    send_webhook(settings, payload, f"airflow:{dag_id}:{run_id}:{task_id}:{try_number}")
    return {"posted": True}
