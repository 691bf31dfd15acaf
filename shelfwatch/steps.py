"""The steps: one function per DAG task, each over `Settings`, returning a JSON-able summary.

The DAGs, the CLI, the demo and the web views all call these, so a step behaves the same wherever it
runs, and each is unit-tested without Airflow. Heavy imports (Prophet, Great Expectations, paho) happen
inside the steps, not at import time, so DAG files parse fast.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
from sqlalchemy import Connection, Engine, delete, func, select, text

from core.db import get_engine
from core.domain import MQTT
from core.settings import Settings
from sql import schema
from sql.migrate import migrate
from sql.partitions import days_from, delete_default_rows_before, drop_day_partitions_before, ensure_day_partitions

log = logging.getLogger(__name__)


class QuarantineShareExceeded(RuntimeError):
    """More of a load went to quarantine than the configured share: the files need a person."""


class IngestUnhealthy(RuntimeError):
    """The sensor ingest service has stopped reporting, or readings arrive too late."""


# ---------------------------------------------------------------------------------------- set-up


def migrate_database(settings: Settings) -> dict:
    """Create or upgrade the schema (Alembic head)."""
    migrate(settings.db_url)
    return {"database": get_engine(settings.db_url).url.render_as_string(hide_password=True)}


def register_sensor_session(settings: Settings) -> dict:
    """Create the ingest's persistent MQTT session so the broker queues readings published from now on."""
    from iot_ingest.consumer import open_session

    open_session(settings.mqtt_url, settings.mqtt_topic_prefix, settings.mqtt_client_id)
    return {"client_id": settings.mqtt_client_id}


# ------------------------------------------------------------------------------------------ sales


def world_dir_or_default(settings: Settings, world_dir: str | Path | None) -> Path:
    return Path(world_dir) if world_dir else settings.data_dir / "world"


def existing_world_dir(settings: Settings, world_dir: str | Path | None) -> Path:
    """The input folder, or a clear error now rather than an empty load that fails two steps later."""
    folder = world_dir_or_default(settings, world_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"input folder {folder} does not exist")
    return folder


def load_reference(settings: Settings, world_dir: str | Path | None = None) -> dict:
    """Stores, products, members, sensors, deliveries and inventory records; then the purchase lines
    whose loyalty card was not yet a member get their member (`member_links_attached`)."""
    from sales_ingest.member_links import attach_pending_member_links
    from sales_ingest.reference_files import load_reference_data

    engine = get_engine(settings.db_url)
    loaded = load_reference_data(engine, existing_world_dir(settings, world_dir))
    with engine.begin() as conn:
        attached = attach_pending_member_links(conn)
    return {**loaded, "member_links_attached": attached}


def ingest_sales(
    settings: Settings, world_dir: str | Path | None = None, paths: list[str | Path] | None = None
) -> dict:
    """Validate (Great Expectations) and load POS files: `paths` (files or folders), by default every
    file under `<world_dir>/sales`. A file that cannot be read at all raises SalesFileError."""
    from sales_ingest.pos_files import ingest_sales_paths

    paths = paths if paths is not None else [existing_world_dir(settings, world_dir) / "sales"]
    summaries = ingest_sales_paths(get_engine(settings.db_url), paths)
    return {
        "files": [str(s) for s in summaries],
        "rows_loaded": sum(s.rows_loaded for s in summaries),
        "rows_quarantined": sum(s.rows_quarantined for s in summaries),
    }


def landing_files(landing_dir: Path) -> list[Path]:
    """POS files waiting in the landing folder (daily sales before purchase lines, then by name)."""
    from sales_ingest.pos_files import is_pos_file, load_order

    if not landing_dir.is_dir():
        raise FileNotFoundError(f"landing folder {landing_dir} does not exist (SHELFWATCH_LANDING_DIR)")
    return load_order([p for p in landing_dir.rglob("*") if is_pos_file(p)])


def ingest_landing(settings: Settings, landing_dir: str | Path | None = None) -> dict:
    """Validate and load every POS file in the landing folder that was not loaded before (same bytes
    are skipped). A file that cannot be read at all is quarantined whole and counted, and the others
    still load. Returns the counts the quarantine gate needs."""
    from sales_ingest.contract import Gate
    from sales_ingest.pos_files import SalesFileError, ingest_sales_file, known_ids

    engine = get_engine(settings.db_url)
    folder = Path(landing_dir) if landing_dir else settings.landing_path
    known, gate = known_ids(engine), Gate()  # one GX context for the whole landing folder
    summary = {
        "landing_dir": str(folder),
        "files_loaded": [],
        "files_skipped": 0,
        "files_rejected": [],
        "rows_loaded": 0,
        "rows_quarantined": 0,
        "rows_total": 0,
    }
    for path in landing_files(folder):
        try:
            result = ingest_sales_file(engine, path, known=known, gate=gate)
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
        why = [f"{bad_rows:,} of {total:,} rows quarantined ({share:.1%}, limit {max_share:.1%})"] + summary[
            "files_rejected"
        ]
        raise QuarantineShareExceeded("sales load held back: " + "; ".join(why))
    return {
        "quarantine_share": round(share, 4),
        "rows_loaded": summary["rows_loaded"],
        "new_data": bool(summary["files_loaded"]),
    }


# ------------------------------------------------------------------------------------------ sensors


def ingest_sensor_readings(
    settings: Settings,
    until_idle: float = 3.0,
    max_messages: int | None = None,
    ready=None,
    max_seconds: float | None = 600.0,
    stop=None,
    group: str | None = None,
) -> dict:
    """Drain the persistent session into the database: a bounded run for tasks and the demo, or the
    ingest service (`until_idle=inf`, `max_seconds=None`, ended by the `stop` event).

    `max_seconds` ends the run even if sensors never go quiet, so a scheduled task finishes; `group`
    joins a shared subscription so several consumers split the load.
    """
    from dataclasses import asdict

    from alerts.realtime import shelf_empty_on_stored
    from iot_ingest.consumer import drain

    stats = drain(
        get_engine(settings.db_url),
        settings.mqtt_url,
        settings.mqtt_topic_prefix,
        settings.mqtt_client_id,
        until_idle=until_idle,
        max_messages=max_messages,
        ready=ready,
        max_seconds=max_seconds,
        stop=stop,
        group=group,
        on_stored=shelf_empty_on_stored(settings),
    )
    return asdict(stats)


def ingest_health(settings: Settings, window_minutes: int = 60, now: datetime | None = None) -> dict:
    """What the ingest service has done lately: consumers' last reports, readings stored in the window,
    lag (arrival minus device time, median and p95), quarantined payloads, stale sensors.

    Raises IngestUnhealthy when no consumer reported within `SHELFWATCH_INGEST_MAX_SILENCE_MINUTES`
    or the p95 lag exceeds `SHELFWATCH_INGEST_MAX_LAG_SECONDS`.
    """
    from iot_ingest.health import stale_sensors

    engine = get_engine(settings.db_url)
    now = now or datetime.now(UTC)
    since = now - timedelta(minutes=window_minutes)
    r, q, st = schema.sensor_readings, schema.quarantine, schema.ingest_stats
    with engine.connect() as conn:
        consumers = pd.read_sql(select(st.c.client_id, st.c.stored, st.c.readings_per_second, st.c.updated_at), conn)
        recent = pd.read_sql(select(r.c.device_ts, r.c.received_at).where(r.c.received_at >= since), conn)
        quarantined = conn.execute(
            select(func.count()).select_from(q).where(q.c.channel == MQTT, q.c.quarantined_at >= since)
        ).scalar_one()
    last_report = pd.to_datetime(consumers["updated_at"], utc=True).max() if len(consumers) else None
    lag = (
        pd.to_datetime(recent["received_at"], utc=True) - pd.to_datetime(recent["device_ts"], utc=True)
    ).dt.total_seconds()
    stale = stale_sensors(engine, settings.sensor_stale_hours, pd.Timestamp(now))
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
        problems.append(
            f"no ingest consumer reported in the last {settings.ingest_max_silence_minutes} min (last: "
            f"{health['last_report_at']})"
        )
    if health["lag_seconds_p95"] is not None and health["lag_seconds_p95"] > settings.ingest_max_lag_seconds:
        problems.append(f"p95 lag {health['lag_seconds_p95']} s is above {settings.ingest_max_lag_seconds} s")
    if problems:
        raise IngestUnhealthy("; ".join(problems) + f" — {health}")
    return health


# ------------------------------------------------------------------------------------- forecasts


def forecast_demand(
    settings: Settings,
    progress=None,
    shard: tuple[int, int] | None = None,
    stores: list[str] | None = None,
    until: str | None = None,
    horizon: int | None = None,
    quantiles: tuple[float, ...] = (0.1, 0.5, 0.9),
    as_of: datetime | None = None,
) -> dict:
    """The model that backtests best per store x SKU, over all cores; stores one run (or one shard of
    it, or only `stores`). It forecasts from the history before `as_of`'s day (default
    `settings.clock()`), so a partial day or a row dated in the future moves nothing; `until`
    (YYYY-MM-DD) forecasts from the history up to that day instead. `horizon` defaults to
    SHELFWATCH_FORECAST_HORIZON_DAYS."""
    from forecasting.runs import engine_settings, run_forecast

    if not until:
        until = ((as_of or settings.clock()).astimezone(UTC).date() - timedelta(days=1)).isoformat()
    return run_forecast(
        get_engine(settings.db_url),
        engine_settings(settings, horizon, quantiles),
        shard=shard,
        progress=progress,
        stores=stores or None,
        until=until,
    )


# ---------------------------------------------------------------------------------------- alerts


def detect_alerts(settings: Settings, as_of: datetime | None = None) -> dict:
    """Stock-out risk, empty shelves and phantom stock-outs at `as_of` (default `settings.clock()`),
    linked to favourite members; stores whose sales lag as-of are named in `warnings`."""
    from alerts.detect import detect_alerts as detect

    return detect(get_engine(settings.db_url), settings, as_of=None if as_of is None else pd.Timestamp(as_of))


def refresh_member_risk(settings: Settings, as_of: datetime | None = None) -> dict:
    """Rank the members whose favourites keep running out at `as_of` (default `settings.clock()`) and
    replace the at-risk list CX reads (member_risk); running it again changes nothing."""
    from alerts.member_risk import refresh_member_risk as refresh

    return refresh(get_engine(settings.db_url), as_of if as_of is not None else settings.clock(), settings)


def send_notifications(settings: Settings, limit: int = 1000) -> dict:
    """Deliver at most `limit` of what the outbox holds that is due (e-mail, webhook, members' notices);
    nothing is sent twice."""
    from dataclasses import asdict

    from alerts.notify import send_pending

    return asdict(send_pending(get_engine(settings.db_url), settings, datetime.now(UTC), limit))


# ---------------------------------------------------------------------------------------- report


def write_report(settings: Settings, world_dir: str | Path | None = None) -> dict:
    """The report folder: summary, CX contact list, forecast plots, and scores against ground truth."""
    from shelfwatch.report import write_report as write

    world = world_dir_or_default(settings, world_dir)
    return write(get_engine(settings.db_url), settings, world if (world / "ground_truth.json").exists() else None)


# ------------------------------------------------------------------------------------- housekeeping


def ensure_reading_partitions(settings: Settings, now: datetime | None = None, days_ahead: int | None = None) -> dict:
    """PostgreSQL: create the day partitions of sensor_readings for today and the `days_ahead` days
    after it (default SHELFWATCH_READINGS_PARTITION_DAYS_AHEAD) that do not exist yet. Idempotent;
    SQLite has one plain table and nothing to do."""
    engine = get_engine(settings.db_url)
    if engine.dialect.name != "postgresql":
        return {"dialect": engine.dialect.name, "created": []}
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    ahead = settings.readings_partition_days_ahead if days_ahead is None else days_ahead
    with engine.begin() as conn:
        created = ensure_day_partitions(conn, days_from(today, today + timedelta(days=ahead)))
    return {"dialect": "postgresql", "created": created}


def apply_retention(settings: Settings, now: datetime | None = None) -> dict:
    """Delete raw readings, quarantine rows and pending member links past their retention (aggregates
    stay: sales, forecasts, alerts and their audit trail are kept). Idempotent: a second run deletes nothing.

    On PostgreSQL, whole device-day partitions older than the retention are dropped (no row-by-row
    DELETE, no vacuum debt) and only the DEFAULT partition's rows are deleted by arrival time.
    """
    engine = get_engine(settings.db_url)
    now = now or datetime.now(UTC)
    readings_before = now - timedelta(days=settings.readings_retention_days)
    quarantine_before = now - timedelta(days=settings.quarantine_retention_days)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            dropped = drop_day_partitions_before(conn, readings_before)
            readings = delete_default_rows_before(conn, readings_before)
        else:
            dropped = []
            readings = conn.execute(
                delete(schema.sensor_readings).where(schema.sensor_readings.c.received_at < readings_before)
            ).rowcount
        forget_silent_sensors(conn, readings_before)
        quarantine = conn.execute(
            delete(schema.quarantine).where(schema.quarantine.c.quarantined_at < quarantine_before)
        ).rowcount
        # member links whose member never came, kept as long as quarantine (the sales themselves stay)
        pending = schema.pending_member_links
        links = conn.execute(delete(pending).where(pending.c.first_seen_at < quarantine_before)).rowcount
    return {
        "readings_deleted": readings,
        "reading_partitions_dropped": dropped,
        "quarantine_deleted": quarantine,
        "pending_links_deleted": links,
        "readings_before": readings_before.isoformat(),
        "quarantine_before": quarantine_before.isoformat(),
    }


def forget_silent_sensors(conn: Connection, before: datetime) -> int:
    """Drop the latest-reading rows of sensors with no reading received since `before`: retention
    took all their readings (dropped partitions fire no trigger)."""
    latest = schema.latest_sensor_readings
    return conn.execute(delete(latest).where(latest.c.last_received_at < before)).rowcount


def maintain_database(settings: Settings, engine: Engine | None = None) -> dict:
    """PostgreSQL: VACUUM (ANALYZE) the tables that churn; SQLite: ANALYZE. Outside a transaction,
    as VACUUM requires."""
    engine = engine or get_engine(settings.db_url)
    tables = [
        "sensor_readings",
        "latest_sensor_readings",
        "quarantine",
        "alerts",
        "alert_events",
        "outbox",
        "forecasts",
        "forecast_models",
    ]
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        if engine.dialect.name == "postgresql":
            for table in tables:
                conn.execute(text(f"VACUUM (ANALYZE) {table}"))
            return {"dialect": "postgresql", "vacuumed": tables}
        conn.execute(text("ANALYZE"))
        return {"dialect": engine.dialect.name, "analyzed": True}


# ------------------------------------------------------------------------------------------- failures


def notify_task_failure(
    settings: Settings, dag_id: str, task_id: str, run_id: str, try_number: int, error: str, log_url: str | None
) -> dict:
    """Tell operations a task failed: a JSON webhook post (`SHELFWATCH_WEBHOOK_URL`), keyed so a
    receiver can drop a duplicate, and an error log line either way."""
    from alerts.notify import send_webhook

    payload = {
        "text": f"Shelfwatch: {dag_id}.{task_id} failed (run {run_id}, try {try_number}): {error[:500]}",
        "dag_id": dag_id,
        "task_id": task_id,
        "run_id": run_id,
        "try_number": try_number,
        "log_url": log_url,
    }
    log.error("task failed: %s.%s run %s try %s: %s", dag_id, task_id, run_id, try_number, error[:500])
    if not settings.webhook_url:
        return {"posted": False}
    send_webhook(settings, payload, f"airflow:{dag_id}:{run_id}:{task_id}:{try_number}")
    return {"posted": True}
