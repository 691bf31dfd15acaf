"""Ingest commands: `ingest-sales` (POS files), `ingest-iot` (shelf-sensor readings), `stale-sensors`."""

from __future__ import annotations

from pathlib import Path

import typer

from shelfwatch.cli.common import DbOption, console, error, escape, say, settings_for, show


def ingest_sales(paths: list[Path] = typer.Argument(..., exists=True), db: str | None = DbOption) -> None:
    """Validate POS files (CSV/Parquet) with Great Expectations; load good rows, quarantine bad ones.

    Files and columns: docs/data-contract.md (`shelfwatch templates DIR` writes examples)."""
    from sales_ingest.pos_files import SalesFileError
    from shelfwatch import steps

    settings = settings_for(db)
    steps.migrate_database(settings)
    try:
        summary = steps.ingest_sales(settings, paths=paths)
    except SalesFileError as exc:
        error(exc, label="rejected:")
        raise typer.Exit(2) from None
    for line in summary["files"]:
        say(line)  # reasons like `[unknown sku: 2]` printed as they are, not read as markup
    if summary["rows_quarantined"]:
        say(
            f"{summary['rows_quarantined']} rows quarantined: `shelfwatch quarantine list --source sales` lists them "
            "with their reasons"
        )


def ingest_iot(
    broker: str | None = typer.Option(
        None, help="mqtt://user:pass@host:port or mqtts://... (default SHELFWATCH_MQTT_URL)."
    ),
    db: str | None = DbOption,
    client_id: str | None = typer.Option(
        None, help="Fixed client id of the persistent session (default SHELFWATCH_MQTT_CLIENT_ID)."
    ),
    group: str | None = typer.Option(
        None, help="Shared-subscription group ($share/GROUP/...): N consumers split the load."
    ),
    until_idle: float = typer.Option(
        0.0, help="Stop after this many seconds without a message; 0 = run until stopped (SIGTERM)."
    ),
    max_messages: int | None = typer.Option(None, help="Stop after this many messages."),
    ca_file: Path | None = typer.Option(None, help="CA bundle for mqtts://."),
    cert_file: Path | None = typer.Option(None, help="Client certificate for mqtts://."),
    key_file: Path | None = typer.Option(None, help="Client key for mqtts://."),
    stats: bool = typer.Option(False, "--stats", help="Print the consumers' health counters and exit."),
    init_session: bool = typer.Option(
        False,
        "--init-session",
        help="Create the persistent session (client id, subscription, QoS 1) and exit, so the broker queues readings "
        "published before the first run; run it once at deployment, before sensors publish.",
    ),
) -> None:
    """Consume shelf-sensor readings into the database: a service, or a bounded drain for tasks.

    A broker that is not up yet is retried with backoff for up to two minutes before the command
    gives up (exit 2).
    """
    import signal
    import threading
    from dataclasses import replace

    from core.db import get_engine
    from iot_ingest.consumer import BrokerError, open_session
    from shelfwatch import steps

    settings = settings_for(db, broker)
    if stats:
        steps.migrate_database(settings)
        show_ingest_stats(get_engine(settings.db_url))
        return
    if not settings.mqtt_url:
        error("pass --broker or set SHELFWATCH_MQTT_URL", label="no broker:")
        raise typer.Exit(2)
    service = replace(
        settings,
        mqtt_url=with_tls_files(settings.mqtt_url, ca_file, cert_file, key_file),
        mqtt_client_id=client_id or settings.mqtt_client_id,
    )
    try:
        if init_session:  # the broker only: no database needed yet
            done = open_session(service.mqtt_url, service.mqtt_topic_prefix, service.mqtt_client_id, group=group)
            expiry = (
                f"expires {done['session_expiry_seconds'] // 86400} days after the consumer's last disconnect"
                if done["session_expiry_seconds"]
                else "is kept as long as the broker's persistent_client_expiration allows"
            )
            say(
                f"persistent session {'already existed' if done['session_existed'] else 'created'} for client id "
                f"{done['client_id']} on {done['broker']}: subscribed to {done['subscription']} (QoS 1); the session "
                f"{expiry}. The broker queues readings from now on until `shelfwatch ingest-iot` drains them."
            )
            return
        steps.migrate_database(settings)
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())  # flush, acknowledge, disconnect
        summary = steps.ingest_sensor_readings(
            service,
            until_idle=until_idle if until_idle > 0 else float("inf"),
            max_messages=max_messages,
            max_seconds=None,
            stop=stop,
            group=group,
        )
    except BrokerError as exc:
        error(exc)
        raise typer.Exit(2) from None
    show(summary)


def with_tls_files(url: str, ca: Path | None, cert: Path | None, key: Path | None) -> str:
    from urllib.parse import quote

    extra = [f"{name}={quote(str(p))}" for name, p in (("ca", ca), ("cert", cert), ("key", key)) if p]
    return url if not extra else url + ("&" if "?" in url else "?") + "&".join(extra)


def show_ingest_stats(engine) -> None:
    import pandas as pd
    from rich.table import Table
    from sqlalchemy import select

    from sql import schema

    with engine.connect() as conn:
        frame = pd.read_sql(select(schema.ingest_stats).order_by(schema.ingest_stats.c.client_id), conn)
    table = Table(
        "client",
        "received",
        "stored",
        "duplicates",
        "quarantined",
        "batches",
        "reconnects",
        "db errors",
        "avg commit ms",
        "readings/s",
        "updated",
    )
    for r in frame.itertuples():
        avg_ms = 1000 * r.commit_seconds_total / r.batches if r.batches else 0.0
        table.add_row(
            escape(r.client_id),
            str(r.received),
            str(r.stored),
            str(r.duplicates),
            str(r.quarantined),
            str(r.batches),
            str(r.reconnects),
            str(r.db_errors),
            f"{avg_ms:.1f}",
            f"{r.readings_per_second:.0f}",
            str(r.updated_at)[:19],
        )
    console.print(table)


def stale_sensors(
    db: str | None = DbOption,
    max_age_hours: float | None = typer.Option(
        None, help="A sensor with no reading for this long is stale (default: SHELFWATCH_SENSOR_STALE_HOURS, else 12)."
    ),
) -> None:
    """Sensors that have gone quiet (a data problem, routed apart from stock-out alerts)."""
    from core.db import get_engine
    from iot_ingest.health import stale_sensors as find_stale

    settings = settings_for(db)
    hours = settings.sensor_stale_hours if max_age_hours is None else max_age_hours
    frame = find_stale(get_engine(settings.db_url), hours)
    say(frame.to_string(index=False) if len(frame) else "no stale sensors")


def mount(app: typer.Typer) -> None:
    app.command("ingest-sales")(ingest_sales)
    app.command("ingest-iot")(ingest_iot)
    app.command("stale-sensors")(stale_sensors)
