"""`shelfwatch demo`: a retailer's two years, from raw files and sensor messages to member-linked alerts.

Runs every pipeline step on a simulated world, times each one, and scores the alerts against the
world's ground truth. Without SHELFWATCH_MQTT_URL it starts an embedded broker in-process.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import replace
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from core.settings import Settings
from lab.publisher import publish_sensor_readings
from shelfwatch import steps


class StepTimer:
    """Runs named steps, printing and keeping how long each took."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.timings: list[tuple[str, float, str]] = []

    def run(self, name: str, fn, *args, **kwargs):
        start = time.perf_counter()
        with self.console.status(f"[bold]{name}[/bold] ..."):
            result = fn(*args, **kwargs)
        seconds = time.perf_counter() - start
        note = summarise(result)
        self.timings.append((name, seconds, note))
        self.console.print(f"[green]✓[/green] {escape(name)} [dim]({seconds:.1f} s)[/dim] {escape(note)}")
        return result

    def table(self) -> Table:
        table = Table("step", "seconds", "result", title="Demo step timings")
        for name, seconds, note in self.timings:
            table.add_row(escape(name), f"{seconds:.1f}", escape(note))
        table.add_row("[bold]total[/bold]", f"[bold]{sum(t for _, t, _ in self.timings):.1f}[/bold]", "")
        return table


def summarise(result) -> str:
    if not isinstance(result, dict):
        return ""
    return ", ".join(f"{k}={v}" for k, v in result.items() if not isinstance(v, list | dict))[:150]


def forecast_with_progress(settings: Settings, console: Console, series: int) -> dict:
    columns = [TextColumn("forecasting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("forecast", total=series)
        return steps.forecast_demand(settings, progress=lambda n: progress.advance(task, n))


def publish_and_ingest(settings: Settings, world_dir: Path, console: Console) -> dict:
    """Publish the world's readings while the ingest drains them, as sensors and the service would."""
    steps.register_sensor_session(settings)
    result: dict = {}
    subscribed = threading.Event()
    consumer = threading.Thread(
        target=lambda: result.update(steps.ingest_sensor_readings(settings, until_idle=5.0, ready=subscribed))
    )
    consumer.start()
    if not subscribed.wait(30):
        raise TimeoutError("the sensor ingest did not subscribe within 30 s")
    total = sum(1 for _ in open(world_dir / "sensor_readings.jsonl"))
    with Progress(
        TextColumn("publishing readings"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("publish", total=total)
        published = publish_sensor_readings(settings, world_dir, malformed=3, progress=lambda n: bar.advance(task, n))
    consumer.join()
    return {**published, **result}


def embedded_broker_if_needed(settings: Settings):
    if settings.mqtt_url:
        return contextlib.nullcontext(settings.mqtt_url)
    from lab.brokers import EmbeddedBroker

    return EmbeddedBroker()


def run_demo(
    settings: Settings,
    console: Console,
    *,
    stores: int,
    skus: int,
    days: int,
    members: int,
    seed: int,
    incident_share: float = 0.04,
) -> dict:
    from lab.simulator import simulate_world, world_now

    world_dir = settings.data_dir / "world"
    timer = StepTimer(console)
    started = time.perf_counter()
    spec = {
        "stores": stores,
        "skus": skus,
        "days": days,
        "members": members,
        "seed": seed,
        "incident_share": incident_share,
    }
    timer.run("simulate world", lambda: simulate_world(world_dir, **spec) and spec)
    settings = (
        settings if settings.as_of else replace(settings, as_of=world_now(world_dir))
    )  # the world's "now", not today
    timer.run("migrate database", steps.migrate_database, settings)
    timer.run("load reference data", steps.load_reference, settings, world_dir)
    timer.run("ingest sales (GX)", steps.ingest_sales, settings, world_dir)
    with embedded_broker_if_needed(settings) as broker:
        mqtt_settings = replace(settings, mqtt_url=broker if isinstance(broker, str) else broker.url)
        timer.run("publish + ingest sensor readings (MQTT)", publish_and_ingest, mqtt_settings, world_dir, console)
    timer.run("forecast (model per series)", forecast_with_progress, settings, console, stores * skus)
    timer.run("detect alerts", steps.detect_alerts, settings)
    timer.run("members at risk", steps.refresh_member_risk, settings)
    report = timer.run("write report", steps.write_report, settings, world_dir)
    console.print(timer.table())
    console.print(
        f"Report: [bold]{escape(str(report['report_dir']))}/summary.md[/bold]  (CX list: members_to_contact.csv, "
        "plots/)"
    )
    console.print(
        f"Alerts vs ground truth: precision [bold]{report['precision']}[/bold], recall [bold]{report['recall']}[/bold] "
        f"({report['open_alerts']} open alerts, {report['alerts_with_members']} linked to members)"
    )
    logins = demo_users(settings)
    console.print(f"Demo finished in {time.perf_counter() - started:.0f} s")
    console.print(
        "Web views: [bold]make web[/bold] (or shelfwatch web), then open [bold]http://127.0.0.1:8000[/bold] and log "
        "in as"
    )
    for role, (username, password) in logins.items():
        console.print(escape(f"  {role:<14} {username} / {password}"))
    return {**report, "logins": logins}


def demo_users(settings: Settings) -> dict[str, tuple[str, str]]:
    """One login per role for the demo data (fresh random passwords on every run; the store manager
    manages the first store)."""
    import secrets

    from sqlalchemy import select

    from core.db import get_engine
    from shelfwatch.web.auth import add_user
    from sql import schema

    engine = get_engine(settings.db_url)
    with engine.connect() as conn:
        first_store = conn.execute(
            select(schema.stores.c.store_id).order_by(schema.stores.c.store_id).limit(1)
        ).scalar()
    logins = {}
    for role, username, store in (
        ("planner", "demo-planner", None),
        ("store_manager", "demo-manager", first_store),
        ("cx", "demo-cx", None),
        ("admin", "demo-admin", None),
    ):
        password = secrets.token_urlsafe(9)
        add_user(engine, username, password, role, store)
        logins[role] = (username, password)
    return logins
