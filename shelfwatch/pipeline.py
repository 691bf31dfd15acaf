"""The pipeline's steps, each a small function over `Settings` returning a JSON-able summary.

The CLI, the demo and the Airflow DAG all call these, so a step behaves the same wherever it runs.
Heavy imports (Prophet, Great Expectations, paho) happen inside the steps, not at import time.
"""

from __future__ import annotations

import json
from pathlib import Path

from shelfwatch.config import Settings
from shelfwatch.db import get_engine, migrate

def world_dir_or_default(settings: Settings, world_dir: str | Path | None) -> Path:
    return Path(world_dir) if world_dir else settings.data_dir / "world"


def existing_world_dir(settings: Settings, world_dir: str | Path | None) -> Path:
    """The input folder, or a clear error now rather than an empty load that fails two steps later."""
    folder = world_dir_or_default(settings, world_dir)
    if not folder.is_dir():
        raise FileNotFoundError(f"input folder {folder} does not exist")
    return folder


def migrate_database(settings: Settings) -> dict:
    """Create or upgrade the schema (Alembic head)."""
    migrate(settings.db_url)
    return {"database": get_engine(settings.db_url).url.render_as_string(hide_password=True)}


def load_reference(settings: Settings, world_dir: str | Path | None = None) -> dict:
    """Stores, products, members, sensors, deliveries and inventory records."""
    from shelfwatch.reference import load_reference_data

    return load_reference_data(get_engine(settings.db_url), existing_world_dir(settings, world_dir))


def ingest_sales(settings: Settings, world_dir: str | Path | None = None) -> dict:
    """Validate (Great Expectations) and load every POS file under `<world_dir>/sales`."""
    from shelfwatch.sales_ingest import ingest_sales_paths

    summaries = ingest_sales_paths(get_engine(settings.db_url), [existing_world_dir(settings, world_dir) / "sales"])
    return {
        "files": [str(s) for s in summaries],
        "rows_loaded": sum(s.rows_loaded for s in summaries),
        "rows_quarantined": sum(s.rows_quarantined for s in summaries),
    }


def register_sensor_session(settings: Settings) -> dict:
    """Create the ingest's persistent MQTT session so the broker queues readings published from now on."""
    from iot_ingest.consumer import open_session

    open_session(settings.mqtt_url, settings.mqtt_topic_prefix, settings.mqtt_client_id)
    return {"client_id": settings.mqtt_client_id}


def read_sensor_readings(world_dir: Path) -> list[dict]:
    with open(world_dir / "sensor_readings.jsonl") as fh:
        return [json.loads(line) for line in fh]


def publish_sensor_readings(settings: Settings, world_dir: str | Path | None = None, malformed: int = 0, progress=None) -> dict:
    """Publish a world's readings as its shelf sensors would (one reading per message, QoS 1).

    `malformed` adds that many broken payloads, as a misbehaving device would send, so the demo shows
    them landing in quarantine.
    """
    from iot_ingest.contract import topic_for
    from iot_ingest.publisher import publish_raw, publish_readings

    readings = read_sensor_readings(existing_world_dir(settings, world_dir))
    sent = publish_readings(settings.mqtt_url, readings, settings.mqtt_topic_prefix, progress=progress)
    bad = [b'{"sensor_id": "broken', b'{"store_id": "S001"}', b"\xff\xfe not json"][: max(0, malformed)]
    if bad and readings:
        first = readings[0]
        publish_raw(settings.mqtt_url, topic_for(settings.mqtt_topic_prefix, first["store_id"], first["sensor_id"]), bad)
    return {"published": sent, "malformed_published": len(bad)}


def ingest_sensor_readings(
    settings: Settings, until_idle: float = 3.0, max_messages: int | None = None, ready=None, max_seconds: float | None = 600.0
) -> dict:
    """Drain the persistent session into the database (bounded run for tasks and the demo).

    `max_seconds` ends the run even if sensors never go quiet, so a scheduled task finishes.
    """
    from dataclasses import asdict

    from iot_ingest.consumer import drain

    stats = drain(
        get_engine(settings.db_url), settings.mqtt_url, settings.mqtt_topic_prefix, settings.mqtt_client_id,
        until_idle=until_idle, max_messages=max_messages, ready=ready, max_seconds=max_seconds, alert_settings=settings,
    )
    return asdict(stats)


def forecast_demand(settings: Settings, progress=None, shard: tuple[int, int] | None = None, stores: list[str] | None = None,
                    until: str | None = None) -> dict:
    """The model that backtests best per store x SKU, over all cores; stores one run (or one shard of
    it, or only `stores`); `until` (YYYY-MM-DD) forecasts from the history up to that day."""
    from forecasting.runs import engine_settings, run_forecast

    return run_forecast(get_engine(settings.db_url), engine_settings(settings), shard=shard, progress=progress,
                        stores=stores or None, until=until or None)


def send_notifications(settings: Settings) -> dict:
    """Deliver what the outbox holds that is due (e-mail, webhook, members' notices)."""
    from dataclasses import asdict
    from datetime import datetime, timezone

    from alerts.notify import send_pending

    return asdict(send_pending(get_engine(settings.db_url), settings, datetime.now(timezone.utc)))


def detect_alerts(settings: Settings) -> dict:
    """Stock-out risk, empty shelves and phantom stock-outs, linked to favourite members."""
    from alerts.detect import detect_alerts as detect

    return detect(get_engine(settings.db_url), settings)


def write_report(settings: Settings, world_dir: str | Path | None = None) -> dict:
    """The report folder: summary, CX contact list, forecast plots, and scores against ground truth."""
    from shelfwatch.report import write_report as write

    world = world_dir_or_default(settings, world_dir)
    return write(get_engine(settings.db_url), settings, world if (world / "ground_truth.json").exists() else None)
