"""`shelfwatch` command line: every pipeline step, the simulator and the demo.

Options override the environment (see `shelfwatch.config.Settings`); each command prints a short
summary and exits non-zero with a clear message on bad input.
"""

from __future__ import annotations

import json
import logging
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from shelfwatch.config import Settings

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Shelfwatch: keep shelves full.")
alerts_app = typer.Typer(no_args_is_help=True, help="Stock-out alerts.")
app.add_typer(alerts_app, name="alerts")
notify_app = typer.Typer(no_args_is_help=True, help="Notifications: the outbox of e-mails, webhooks and members' notices.")
app.add_typer(notify_app, name="notify")
members_app = typer.Typer(no_args_is_help=True, help="Loyalty members: contact lists for the CX team.")
app.add_typer(members_app, name="members")
users_app = typer.Typer(no_args_is_help=True, help="Users of the web views (planner, store_manager, cx, admin).")
app.add_typer(users_app, name="users")
bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks: figures and ratios against a baseline measured in the same run.")
app.add_typer(bench_app, name="bench")
stack_app = typer.Typer(no_args_is_help=True, help="The production topology of docker-compose.yml as local processes (no Docker): make stack / make stack-stop.")
app.add_typer(stack_app, name="stack")
console = Console()

DbOption = typer.Option(None, "--db", help="SQLAlchemy URL (default: SHELFWATCH_DATABASE_URL or the SQLite file).")


@contextmanager
def progress_bar(label: str, total: int | None = None):
    """A Rich progress bar on stderr; yields `advance(n)`."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


def settings_for(db: str | None = None, broker: str | None = None) -> Settings:
    return Settings.from_env(database_url=db, mqtt_url=broker)


def show(summary: dict) -> None:
    console.print_json(json.dumps(summary, default=str))


@app.callback()
def main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log at INFO level.")) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@app.command()
def simulate(
    out: Path = typer.Option(Path("data/world"), help="Folder to write the world to."),
    stores: int = typer.Option(5, min=1),
    skus: int = typer.Option(60, min=1),
    days: int = typer.Option(730, min=30),
    members: int = typer.Option(2000, min=0),
    seed: int = typer.Option(42),
    incident_share: float = typer.Option(0.04, min=0.0, max=1.0, help="Share of store x SKU pairs per injected incident kind."),
) -> None:
    """Simulate a retail world (deterministic by seed) with ground-truth incidents."""
    from shelfwatch.simulator import simulate_world

    with console.status("simulating"):
        simulate_world(out, stores=stores, skus=skus, days=days, members=members, seed=seed, incident_share=incident_share)
    console.print(f"world written to [bold]{out}[/bold] (ground truth: {out / 'ground_truth.json'})")


@app.command()
def migrate(db: Optional[str] = DbOption) -> None:
    """Create or upgrade the database schema (Alembic)."""
    from shelfwatch import pipeline

    show(pipeline.migrate_database(settings_for(db)))


@app.command("load-reference")
def load_reference(world: Path = typer.Argument(..., exists=True, file_okay=False), db: Optional[str] = DbOption) -> None:
    """Load stores, products, members, sensors, deliveries and inventory records from a folder."""
    from shelfwatch import pipeline

    settings = settings_for(db)
    pipeline.migrate_database(settings)
    show(pipeline.load_reference(settings, world))


@app.command("ingest-sales")
def ingest_sales(paths: list[Path] = typer.Argument(..., exists=True), db: Optional[str] = DbOption) -> None:
    """Validate POS files (CSV/Parquet) with Great Expectations; load good rows, quarantine bad ones."""
    from shelfwatch.db import get_engine, migrate as migrate_db
    from shelfwatch.sales_ingest import SalesFileError, ingest_sales_paths

    settings = settings_for(db)
    migrate_db(settings.db_url)
    try:
        summaries = ingest_sales_paths(get_engine(settings.db_url), paths)
    except SalesFileError as exc:
        console.print(f"[red]rejected:[/red] {exc}")
        raise typer.Exit(2) from exc
    for s in summaries:
        console.print(str(s))


@app.command("ingest-iot")
def ingest_iot(
    broker: Optional[str] = typer.Option(None, help="mqtt://user:pass@host:port or mqtts://... (default SHELFWATCH_MQTT_URL)."),
    db: Optional[str] = DbOption,
    client_id: Optional[str] = typer.Option(None, help="Fixed client id of the persistent session (default SHELFWATCH_MQTT_CLIENT_ID)."),
    group: Optional[str] = typer.Option(None, help="Shared-subscription group ($share/GROUP/...): N consumers split the load."),
    until_idle: float = typer.Option(0.0, help="Stop after this many seconds without a message; 0 = run until stopped (SIGTERM)."),
    max_messages: Optional[int] = typer.Option(None, help="Stop after this many messages."),
    ca_file: Optional[Path] = typer.Option(None, help="CA bundle for mqtts://."),
    cert_file: Optional[Path] = typer.Option(None, help="Client certificate for mqtts://."),
    key_file: Optional[Path] = typer.Option(None, help="Client key for mqtts://."),
    stats: bool = typer.Option(False, "--stats", help="Print the consumers' health counters and exit."),
) -> None:
    """Consume shelf-sensor readings into the database: a service, or a bounded drain for tasks."""
    import signal
    import threading
    from dataclasses import asdict

    from iot_ingest.consumer import drain
    from shelfwatch.db import migrate as migrate_db

    settings = settings_for(db, broker)
    engine = migrate_db(settings.db_url)
    if stats:
        show_ingest_stats(engine)
        return
    if not settings.mqtt_url:
        console.print("[red]no broker:[/red] pass --broker or set SHELFWATCH_MQTT_URL")
        raise typer.Exit(2)
    url = with_tls_files(settings.mqtt_url, ca_file, cert_file, key_file)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())  # flush, acknowledge, disconnect
    result = drain(
        engine, url, settings.mqtt_topic_prefix, client_id or settings.mqtt_client_id,
        until_idle=until_idle if until_idle > 0 else float("inf"), max_messages=max_messages, stop=stop, group=group,
        alert_settings=settings,
    )
    show(asdict(result))


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
    table = Table("client", "received", "stored", "duplicates", "quarantined", "batches", "reconnects", "db errors", "avg commit ms", "readings/s", "updated")
    for r in frame.itertuples():
        avg_ms = 1000 * r.commit_seconds_total / r.batches if r.batches else 0.0
        table.add_row(r.client_id, str(r.received), str(r.stored), str(r.duplicates), str(r.quarantined), str(r.batches),
                      str(r.reconnects), str(r.db_errors), f"{avg_ms:.1f}", f"{r.readings_per_second:.0f}", str(r.updated_at)[:19])
    console.print(table)


@app.command("stale-sensors")
def stale_sensors_cmd(
    db: Optional[str] = DbOption,
    max_age_hours: float = typer.Option(12.0, help="A sensor with no reading for this long is stale."),
) -> None:
    """Sensors that have gone quiet (a data problem, routed apart from stock-out alerts)."""
    import pandas as pd

    from iot_ingest.health import stale_sensors
    from shelfwatch.db import get_engine

    frame = stale_sensors(get_engine(settings_for(db).db_url), pd.Timedelta(hours=max_age_hours))
    console.print(frame.to_string(index=False) if len(frame) else "no stale sensors")


@app.command()
def forecast(
    input: Optional[Path] = typer.Option(None, "--input", exists=True, dir_okay=False, help="Sales CSV: store_id, sku, date, units[, stockout]; omit to use the database."),
    output: Path = typer.Option(Path("forecast.csv"), "--output", help="Forecast CSV to write (with --input)."),
    horizon: int = typer.Option(28, min=1, max=366, help="Days to forecast after each series' last date."),
    quantiles: str = typer.Option("0.1,0.5,0.9", help="Quantile levels, written as p10, p50, p90, ..."),
    promotions: Optional[Path] = typer.Option(None, exists=True, dir_okay=False, help="Promotion calendar CSV: store_id (empty = all), sku, start_date, end_date."),
    shard: Optional[str] = typer.Option(None, help="i/n: forecast only the stores of shard i of n (stable hash of store_id)."),
    models_out: Optional[Path] = typer.Option(None, "--models-out", help="CSV of the model chosen per series, its backtest RMSSE and demand class."),
    plots: Optional[Path] = typer.Option(None, help="Folder for one PNG per series: history, forecast, 80 % interval, stock-out days."),
    report: Optional[Path] = typer.Option(None, help="Accuracy report CSV per store (and category, with --products)."),
    products: Optional[Path] = typer.Option(None, exists=True, dir_okay=False, help="products.csv (sku, category) for the report."),
    db: Optional[str] = DbOption,
) -> None:
    """Forecast daily demand per store x SKU with the model that backtests best per series."""
    from forecasting.inputs import ForecastInputError, parse_quantiles, parse_shard, read_promotions_csv, read_sales_csv
    from forecasting.runs import engine_settings

    settings = settings_for(db)
    try:
        levels = parse_quantiles(quantiles)
        shard_spec = parse_shard(shard)
        engine_cfg = engine_settings(settings, horizon, levels)
        if input is None:
            from forecasting.runs import run_forecast
            from shelfwatch.db import get_engine

            with progress_bar("forecasting") as advance:
                show(run_forecast(get_engine(settings.db_url), engine_cfg, shard=shard_spec, progress=advance))
            return
        sales = read_sales_csv(input)
        promo = read_promotions_csv(promotions) if promotions else None
    except ForecastInputError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    from forecasting.engine import forecast as run_engine

    with progress_bar("forecasting", total=sales[["store_id", "sku"]].drop_duplicates().shape[0]) as advance:
        result = run_engine(sales, engine_cfg, promotions=promo, shard=shard_spec, progress=advance)
    result.forecast.assign(date=result.forecast["date"].dt.strftime("%Y-%m-%d")).to_csv(output, index=False, float_format="%.4f")
    if models_out:
        result.models.to_csv(models_out, index=False)
    if plots or report:
        from forecasting import planner

        if plots:
            planner.plot_all(sales, result, plots)
        if report:
            categories = None if products is None else planner.read_categories(products)
            planner.accuracy_report(result.models, categories).to_csv(report, index=False)
    console.print(f"{len(result.models)} series forecast ({horizon} days) -> {output}")
    for row in result.rejected.itertuples():
        console.print(f"[red]error:[/red] {input}: store {row.store_id} sku {row.sku}: {row.problem}")
    if len(result.rejected):
        console.print(f"[red]{len(result.rejected)} series not forecast[/red] (listed above); the others were written")
        raise typer.Exit(3)


@alerts_app.command("detect")
def alerts_detect(db: Optional[str] = DbOption) -> None:
    """Detect stock-out risks, empty shelves and phantom stock-outs; link favourite members."""
    from shelfwatch import pipeline

    show(pipeline.detect_alerts(settings_for(db)))


@alerts_app.command("list")
def alerts_list(
    db: Optional[str] = DbOption,
    store: Optional[str] = typer.Option(None, help="Only this store's alerts."),
    status: str = typer.Option("active", help="active (open + acknowledged), open, acknowledged, resolved, expired or all."),
    format: str = typer.Option("table", "--format", help="table or json."),
) -> None:
    """Alerts, most severe first, with member counts (never member contact data)."""
    from shelfwatch.db import get_engine
    from shelfwatch.report import list_alerts

    if format not in ("table", "json"):
        console.print(f"[red]error:[/red] --format {format!r}: expected table or json")
        raise typer.Exit(2)
    try:
        frame = list_alerts(get_engine(settings_for(db).db_url), status=status, store=store)
    except ValueError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    if format == "json":
        cols = ["alert_id", "store_id", "sku", "product", "alert_type", "status", "probability", "expected_empty_at", "severity",
                "members_affected", "opened_at", "acknowledged_at", "acknowledged_by", "escalated_at", "resolved_at", "resolved_by"]
        records = json.loads(frame[cols].to_json(orient="records", date_format="iso"))
        for record, evidence in zip(records, frame["evidence"], strict=True):
            record["evidence"] = json.loads(evidence)
        typer.echo(json.dumps(records, indent=1))
        return
    import pandas as pd
    from rich.table import Table

    table = Table("id", "store", "sku", "product", "type", "status", "P(empty)", "expected empty (UTC)", "members", "escalated")
    for r in frame.itertuples():
        when = r.expected_empty_at.strftime("%Y-%m-%d %H:%M") if pd.notna(r.expected_empty_at) else "-"
        table.add_row(str(r.alert_id), r.store_id, r.sku, r.product, r.alert_type, r.status, f"{r.probability:.2f}", when,
                      str(r.members_affected), "yes" if pd.notna(r.escalated_at) else "")
    console.print(table)


@alerts_app.command("ack")
def alerts_ack(alert_id: int, by: str = typer.Option(..., "--by", help="Who acknowledges (recorded in the alert's history)."), db: Optional[str] = DbOption) -> None:
    """Acknowledge an open alert: someone is on it (stops escalation)."""
    alert_transition("acknowledge", alert_id, by, db)


@alerts_app.command("resolve")
def alerts_resolve(alert_id: int, by: str = typer.Option(..., "--by", help="Who resolves (recorded in the alert's history)."),
                   note: Optional[str] = typer.Option(None, help="What was done."), db: Optional[str] = DbOption) -> None:
    """Resolve an open or acknowledged alert (e.g. the shelf was refilled)."""
    alert_transition("resolve", alert_id, by, db, note)


def alert_transition(action: str, alert_id: int, by: str, db: str | None, note: str | None = None) -> None:
    from alerts import lifecycle
    from shelfwatch.db import get_engine

    engine = get_engine(settings_for(db).db_url)
    try:
        result = lifecycle.acknowledge(engine, alert_id, by) if action == "acknowledge" else lifecycle.resolve(engine, alert_id, by, note=note)
    except lifecycle.AlertStateError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    show(result)


@notify_app.command("send")
def notify_send(db: Optional[str] = DbOption, limit: int = typer.Option(1000, min=1, help="Most messages to deliver in this run.")) -> None:
    """Deliver due outbox messages (SMTP, webhook); safe to re-run: nothing is sent twice."""
    from dataclasses import asdict

    from alerts.lifecycle import utc_now
    from alerts.notify import outbox_counts, send_pending
    from shelfwatch.db import get_engine

    settings = settings_for(db)
    engine = get_engine(settings.db_url)
    show({**asdict(send_pending(engine, settings, utc_now(), limit)), "outbox": outbox_counts(engine)})


@members_app.command("export")
def members_export(
    alert: int = typer.Option(..., "--alert", help="Alert id."),
    output: Optional[Path] = typer.Option(None, help="CSV to write (default: standard output)."),
    db: Optional[str] = DbOption,
) -> None:
    """Members CX may contact about an alert (consent, not opted out, frequency cap), as CSV."""
    from alerts.lifecycle import utc_now
    from alerts.notify import NotifyError, members_for_alert
    from shelfwatch.db import get_engine

    settings = settings_for(db)
    try:
        frame = members_for_alert(get_engine(settings.db_url), alert, utc_now(), settings.member_contact_cap_days)
    except NotifyError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    if output is None:
        typer.echo(frame.to_csv(index=False), nl=False)
    else:
        frame.to_csv(output, index=False)
        Console(stderr=True).print(f"{len(frame)} members for alert {alert} -> {output}")


@app.command()
def report(world: Optional[Path] = typer.Option(None, help="World folder with ground_truth.json to score against."), db: Optional[str] = DbOption) -> None:
    """Write the report folder (summary, CX contact list, plots)."""
    from shelfwatch import pipeline

    show(pipeline.write_report(settings_for(db), world))


@app.command()
def demo(
    stores: int = typer.Option(5, min=1),
    skus: int = typer.Option(60, min=1),
    days: int = typer.Option(730, min=60),
    members: int = typer.Option(2000, min=0),
    seed: int = typer.Option(42),
    incident_share: float = typer.Option(0.04, min=0.0, max=1.0, help="Share of store x SKU pairs per injected incident kind."),
) -> None:
    """Simulate a world and run every step on it; prints step timings and alert precision/recall."""
    from shelfwatch.demo import run_demo

    run_demo(Settings.from_env(), console, stores=stores, skus=skus, days=days, members=members, seed=seed, incident_share=incident_share)


@bench_app.command("forecast")
def bench_forecast(
    real: Path = typer.Option(Path("../shared/data/online_retail_daily.csv"), help="Real daily sales (item, ds, y); skipped if absent."),
    world: Path = typer.Option(Path("out/bench_world"), help="Simulated world folder; simulated (20 stores x 500 SKUs) if absent."),
    windows: int = typer.Option(3, min=1, help="Rolling-origin windows of 28 days."),
    prophet_sample: int = typer.Option(300, min=10, help="Series of the simulated world on which Prophet alone runs (it needs ~0.3 s each)."),
    workers: int = typer.Option(0, help="Processes; 0 = all cores."),
    skip_world: bool = typer.Option(False, help="Only the real file (about a minute)."),
) -> None:
    """Accuracy, calibration and speed of the forecaster vs Prophet alone, MA28 and seasonal naive."""
    from rich.table import Table

    from forecasting import bench

    def show_scores(title: str, scores: list) -> None:
        table = Table("method", "series", "mean RMSSE", "ratio to best all-series baseline", "80 % coverage", "s / window", "series/s", title=title)
        ours = next(s for s in scores if s.method == "shelfwatch")
        best = min(s.mean_rmsse for s in scores if s.method in bench.BASELINES and s.series == ours.series)  # same series
        for s in scores:
            table.add_row(s.method, f"{s.series:,}", f"{s.mean_rmsse:.4f}", f"{s.mean_rmsse / best:.3f}",
                          "-" if s.coverage80 != s.coverage80 else f"{s.coverage80:.3f}",
                          "-" if s.seconds != s.seconds else f"{s.seconds:.1f}", "-" if s.seconds != s.seconds else f"{s.series_per_second:,.0f}")
        Console(width=max(console.width, 130)).print(table)

    log = lambda message: console.print(f"[dim]{message}[/dim]")  # noqa: E731
    checks = []
    if real.exists():
        scores, _ = bench.run_bench(bench.load_online_retail(real), windows=windows, workers=workers, log=log)
        show_scores(f"{real.name}: {windows} x 28-day rolling origins", scores)
        checks += bench.target_lines(real.name, scores, margin=0.0)
    else:
        console.print(f"[yellow]{real} not found: real-data benchmark skipped[/yellow]")
    if not skip_world:
        if not (world / "sales" / "sales_daily.csv").exists():
            from shelfwatch.simulator import simulate_world

            with console.status(f"simulating 20 stores x 500 SKUs into {world}"):
                simulate_world(world, stores=20, skus=500, members=2000, seed=7)
        sales, promotions = bench.load_world_sales(world)
        seconds, n_series, _ = bench.production_run(sales, promotions, workers=workers)
        console.print(f"production run: {n_series:,} series, 28 days with p10/p50/p90, in [bold]{seconds:.0f} s[/bold] "
                      f"({n_series / seconds:,.0f} series/s; target <= 300 s)")
        checks.append((f"simulated world: all {n_series:,} series forecast in {seconds:.0f} s (target <= 300 s)", seconds <= 300))
        expected = bench.load_expected_demand(world, 28 * windows)
        scores, _ = bench.run_bench(sales, promotions=promotions, windows=windows, workers=workers, prophet_sample=prophet_sample, log=log, expected=expected)
        show_scores(f"simulated world {world}: {windows} x 28-day rolling origins", scores)
        checks += bench.target_lines("simulated world", scores, margin=0.05)
    for line, ok in checks:
        console.print(("[green]met[/green]     " if ok else "[red]not met[/red] ") + line)


@users_app.command("add")
def users_add(
    username: str = typer.Argument(..., help="Login name."),
    role: str = typer.Option(..., help="planner | store_manager | cx | admin"),
    store: Optional[str] = typer.Option(None, help="The store a store_manager manages."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from standard input (else: prompt)."),
    db: Optional[str] = DbOption,
) -> None:
    """Create a user (or reset their password and role); the password is stored as an argon2 hash."""
    import sys

    from shelfwatch.db import migrate as migrate_db
    from shelfwatch.web.auth import UserError, add_user

    password = sys.stdin.readline().rstrip("\n") if password_stdin else typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user = add_user(migrate_db(settings_for(db).db_url), username, password, role, store)
    except UserError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    console.print(f"user {user.username}: {user.role}{' of ' + user.store_id if user.store_id else ''}")


@app.command("web")
def web(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, help="Port."),
    db: Optional[str] = DbOption,
) -> None:
    """Serve the web views (forecast explorer, alert inbox, CX, pipeline health)."""
    import uvicorn

    from shelfwatch.db import migrate as migrate_db
    from shelfwatch.web.app import create_app

    settings = settings_for(db)
    migrate_db(settings.db_url)
    console.print(f"Shelfwatch web on http://{host}:{port}  (users: shelfwatch users add NAME --role ...)")
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")


@bench_app.command("web")
def bench_web(
    folder: Path = typer.Option(Path("out/bench_web"), help="Folder of the benchmark's world and SQLite database (reused when present)."),
    stores: int = typer.Option(50, min=1), skus: int = typer.Option(500, min=1),
    days: int = typer.Option(180, min=60, help="Days of history simulated."),
    requests: int = typer.Option(20, min=3, help="Timed requests per page."),
    db: Optional[str] = DbOption,
) -> None:
    """Page-load times per page on a 50-store x 500-SKU world (target < 300 ms), vs the login page."""
    from dataclasses import replace

    from rich.table import Table

    from shelfwatch.web.bench import build_world_db, time_pages

    folder.mkdir(parents=True, exist_ok=True)
    settings = replace(Settings.from_env(), database_url=db or f"sqlite:///{(folder / 'shelfwatch.db').resolve()}", output_dir=folder)
    if not (folder / "ready").exists():
        build_world_db(settings, folder / "world", stores, skus, days, lambda m: console.print(f"[dim]{m}[/dim]"))
        (folder / "ready").write_text("built\n")
    rows = time_pages(settings, requests)
    base = rows[0]["median_ms"]
    table = Table("page", "role", "median ms", "p95 ms", "x login page", "KB", title=f"page loads, {stores} stores x {skus} SKUs ({requests} requests each)")
    for r in rows:
        table.add_row(r["page"], r["role"], f"{r['median_ms']:.1f}", f"{r['p95_ms']:.1f}", f"{r['median_ms'] / base:.1f}", f"{r['bytes'] / 1024:.0f}")
    console.print(table)
    worst = max(rows, key=lambda r: r["p95_ms"])
    console.print(("[green]met[/green]     " if worst["p95_ms"] < 300 else "[red]not met[/red] ")
                  + f"slowest page p95 {worst['p95_ms']:.0f} ms ({worst['page']}; target < 300 ms)")


@bench_app.command("shards")
def bench_shards(
    world: Path = typer.Option(Path("out/bench_shards_world"), help="Simulated world folder; simulated if absent."),
    stores: int = typer.Option(8, min=1, help="Stores of the simulated world (if it is simulated)."),
    skus: int = typer.Option(250, min=1, help="SKUs of the simulated world (if it is simulated)."),
    shards: str = typer.Option("1,2,4", help="Shard counts to run, comma-separated."),
) -> None:
    """Forecasting throughput with 1, 2, 4 store shards running at once (as single-slot Celery workers
    would), on this machine; ratios against one shard, measured in the same run."""
    from rich.table import Table

    from forecasting import bench

    if not (world / "sales" / "sales_daily.csv").exists():
        from shelfwatch.simulator import simulate_world

        with console.status(f"simulating {stores} stores x {skus} SKUs into {world}"):
            simulate_world(world, stores=stores, skus=skus, members=500, seed=5)
    sales, promotions = bench.load_world_sales(world)
    rows = bench.shard_throughput(sales, promotions, [int(n) for n in shards.split(",")])
    table = Table("shards at once", "series", "wall s", "series/s", "speed-up vs 1", "largest shard", "per-shard s",
                  title=f"forecast throughput, {world} ({os.cpu_count()} cores)")
    for r in rows:
        table.add_row(str(r["shards"]), f"{r['series']:,}", f"{r['seconds']:.1f}", f"{r['series_per_second']:.1f}", f"{r['speedup']:.2f}",
                      f"{r['largest_shard']:,}", ", ".join(map(str, r["shard_seconds"])))
    console.print(table)


@bench_app.command("alerts")
def bench_alerts(
    worlds: str = typer.Option("50x500:11,20x500:12,20x500:13", help="Simulated worlds, STORESxSKUS:SEED, comma-separated."),
    days: int = typer.Option(14, min=2, help="Days replayed at the end of each world's history."),
    runs_per_day: int = typer.Option(4, min=1, help="Detection runs a day (evenly spaced from 00:00 UTC; sensors read every 6 h)."),
    refit_every: int = typer.Option(7, min=1, help="Days between forecast refits during the replay."),
    thresholds: str = typer.Option("0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8", help="predicted_stockout probability thresholds to tabulate."),
    phantom_thresholds: str = typer.Option("0.1,0.01,0.001,0.0001", help="phantom_stockout zero-run probability thresholds."),
    latency_readings: int = typer.Option(40, min=0, help="Empty-shelf readings sent to the running ingest per database (0 = skip)."),
    pg_url: str = typer.Option("postgresql+psycopg://postgres@127.0.0.1:5432/test", help="PostgreSQL for the latency run (skipped if unreachable)."),
    broker: str = typer.Option("", help="Broker for the latency run; default SHELFWATCH_MQTT_URL, else Mosquitto on 127.0.0.1:1883 if it answers, else an embedded broker."),
    workers: int = typer.Option(0, help="Forecasting processes; 0 = all cores."),
) -> None:
    """Alert quality on simulated worlds replayed day by day (precision, recall, lead time per type and
    threshold, against a perfect forecaster), and seconds from an empty-shelf reading to its alert."""
    from dataclasses import replace

    import numpy as np
    from rich.table import Table

    from alerts import bench
    from forecasting.runs import engine_settings

    settings = Settings.from_env()
    specs = bench.parse_worlds(worlds)
    stockout_t = [float(t) for t in thresholds.split(",")]
    phantom_t = [float(t) for t in phantom_thresholds.split(",")]
    eng = replace(engine_settings(settings), workers=workers)
    log = lambda message: console.print(f"[dim]{message}[/dim]")  # noqa: E731
    result = bench.run_alert_bench(specs, days, runs_per_day, refit_every, stockout_t, phantom_t, eng, settings.alert_keep_ratio,
                                   settings.empty_shelf_units, log)
    ours, perfect = result.pooled(1), result.pooled(2)
    names = ", ".join(f"{s.stores}x{s.skus} seed {s.seed}" for s in specs)
    fmt = lambda x, spec=".3f": "-" if x != x else format(x, spec)  # noqa: E731

    table = Table("threshold", "alerts", "precision", "events", "recall", "median lead h", "perfect: precision", "perfect: recall", "perfect: lead h",
                  title=f"predicted_stockout over {names}: {days} days x {runs_per_day} runs/day")
    for o, p in zip(ours, perfect, strict=True):
        if o.alert_type == "predicted_stockout":
            table.add_row(fmt(o.threshold, "g"), f"{o.alerts:,}", fmt(o.precision), f"{o.events:,}", fmt(o.recall), fmt(o.median_hours, ".1f"),
                          fmt(p.precision), fmt(p.recall), fmt(p.median_hours, ".1f"))
    Console(width=max(console.width, 140)).print(table)
    table = Table("threshold", "alerts", "precision", "phantom shelves", "recall", "median hours after emptying", title="phantom_stockout")
    for o in ours:
        if o.alert_type == "phantom_stockout":
            table.add_row(fmt(o.threshold, "g"), f"{o.alerts:,}", fmt(o.precision), f"{o.events:,}", fmt(o.recall), fmt(o.median_hours, ".1f"))
    console.print(table)
    empty = next(o for o in ours if o.alert_type == "shelf_empty")
    console.print(f"shelf_empty: {empty.alerts:,} readings said empty, precision {fmt(empty.precision)}; {fmt(empty.recall)} of {empty.events:,} "
                  f"shelves that emptied were seen empty by a reading, a median {fmt(empty.median_hours, '.1f')} h after (sensors read every 6 h)")
    per_world = Table("world", "forecast s", "detection s / run", "predicted precision", "recall", "lead h", "phantom precision", title="per world, at the configured thresholds")
    for spec, scores, _, seconds in result.per_world:
        at = next((s for s in scores if s.alert_type == "predicted_stockout" and s.threshold == settings.alert_probability_threshold), None)
        ph = next((s for s in scores if s.alert_type == "phantom_stockout" and s.threshold == settings.phantom_probability_threshold), None)
        per_world.add_row(f"{spec.stores}x{spec.skus} seed {spec.seed}", f"{seconds['forecast']:.0f}", f"{seconds['detect'] / (days * runs_per_day):.2f}",
                          fmt(at.precision) if at else "-", fmt(at.recall) if at else "-", fmt(at.median_hours, ".1f") if at else "-", fmt(ph.precision) if ph else "-")
    console.print(per_world)

    checks = []
    at = next((o for o in ours if o.alert_type == "predicted_stockout" and o.threshold == settings.alert_probability_threshold), None)
    if at:
        checks += [(f"predicted_stockout recall {at.recall:.3f} at threshold {at.threshold:g} (target >= 0.9)", at.recall >= 0.9),
                   (f"predicted_stockout median lead {at.median_hours:.1f} h (target >= 24 h)", at.median_hours >= 24),
                   (f"predicted_stockout precision {at.precision:.3f} (target >= 0.6)", at.precision >= 0.6)]
        best = max((p for p in perfect if p.alert_type == "predicted_stockout" and p.recall >= 0.9), key=lambda p: p.precision, default=None)
        if best:
            console.print(f"a perfect forecaster reaches recall >= 0.9 only at threshold {best.threshold:g}, with precision {best.precision:.3f}")
    ph = next((o for o in ours if o.alert_type == "phantom_stockout" and o.threshold == settings.phantom_probability_threshold), None)
    if ph:
        checks.append((f"phantom_stockout precision {ph.precision:.3f} at threshold {ph.threshold:g} (target >= 0.3)", ph.precision >= 0.3))
    if latency_readings:
        urls = [("SQLite", f"sqlite:///{(settings.output_dir / 'bench_latency.db').resolve()}")]
        settings.output_dir.mkdir(parents=True, exist_ok=True)
        if reachable_url(pg_url):
            urls.append(("PostgreSQL", pg_url))
        import socket

        broker_url, embedded = broker or settings.mqtt_url, None
        if not broker_url:
            try:
                socket.create_connection(("127.0.0.1", 1883), timeout=1).close()
                broker_url = "mqtt://127.0.0.1:1883"
            except OSError:
                pass
        if not broker_url:
            from iot_ingest.broker import EmbeddedBroker

            embedded = EmbeddedBroker().__enter__()
            broker_url = embedded.url
        try:
            for name, url in urls:
                seconds = bench.shelf_empty_latency(url, broker_url, latency_readings)
                console.print(f"shelf_empty on arrival ({name}, {broker_url.split('@')[-1]}): {len(seconds)} readings, median {np.median(seconds) * 1000:.0f} ms, "
                              f"p95 {np.percentile(seconds, 95) * 1000:.0f} ms, max {seconds.max() * 1000:.0f} ms from publish to a committed alert")
                checks.append((f"shelf_empty raised within {seconds.max():.2f} s of the reading ({name}; target <= 60 s)", bool(seconds.max() <= 60)))
        finally:
            if embedded is not None:
                embedded.__exit__(None, None, None)
    for line, ok in checks:
        console.print(("[green]met[/green]     " if ok else "[red]not met[/red] ") + line)


def reachable_url(url: str) -> bool:
    """Whether a database URL's server answers (the benchmark skips what is not there)."""
    from sqlalchemy import create_engine, text

    try:
        with create_engine(url).connect() as conn:
            conn.execute(text("select 1"))
        return True
    except Exception:
        return False


@bench_app.command("ingest")
def bench_ingest(
    messages: int = typer.Option(200_000, help="Backlog of single-reading messages per run."),
    gateway_messages: int = typer.Option(4_000, help="Backlog of 50-reading gateway messages (reported apart)."),
    pg_url: str = typer.Option("postgresql+psycopg://postgres@127.0.0.1:5432/test", help="PostgreSQL to create scratch schemas in."),
    shared_processes: int = typer.Option(2, help="Consumer processes in the shared-subscription run (1 = skip)."),
) -> None:
    """MQTT ingest throughput into PostgreSQL and SQLite vs mosquitto_sub, on a private Mosquitto."""
    from rich.table import Table

    from iot_ingest.bench import run_ingest_bench

    results = run_ingest_bench(messages, gateway_messages, pg_url, shared_processes, console)
    baseline = results[0].rate
    table = Table("run", "readings", "messages", "seconds", "readings/s", "ratio to mosquitto_sub (msg/s)", title="Ingest benchmark")
    for r in results:
        table.add_row(r.name, f"{r.readings:,}", f"{r.messages:,}", f"{r.seconds:.1f}", f"{r.rate:,.0f}", f"{(r.messages / r.seconds) / baseline:.2f}")
    console.print(table)


@bench_app.command("scale")
def bench_scale(
    worlds: str = typer.Option("today:20x500:2000000,10x:200x500:20000000",
                               help="Worlds, NAME:STORESxSKUS:READINGS, comma-separated (one sensor per store x SKU; series = stores x SKUs)."),
    pg_url: str = typer.Option("postgresql+psycopg://postgres@127.0.0.1:5432/test", help="PostgreSQL to create scratch schemas in."),
    ingest_readings: int = typer.Option(100_000, min=1, help="Single-reading messages written through the consumer's batch write per design."),
    batch_size: int = typer.Option(2000, min=1, help="Messages per batch write (the consumer's default)."),
) -> None:
    """PostgreSQL at scale: ingest, detection and forecast writes with migration 0007 (day partitions,
    latest_sensor_readings, COPY) against 0006's design, on identical worlds built in the same run."""
    from rich.table import Table

    from shelfwatch.bench_scale import AFTER, BEFORE, MEASURES, parse_worlds, run_scale_bench, speedup

    results = run_scale_bench(parse_worlds(worlds), pg_url, ingest_readings, batch_size, log=lambda m: console.print(f"[dim]{m}[/dim]"))
    table = Table("world", "series", "readings rows", "forecast rows", "measure", "before (0006)", "after (0007)", "speed-up",
                  title=f"PostgreSQL scale: 0007 vs 0006, same run ({os.cpu_count()} cores)")
    for r in results:
        for measure, (unit, _) in MEASURES.items():
            before, after = r.measures[measure][BEFORE], r.measures[measure][AFTER]
            table.add_row(r.size.name, f"{r.size.series:,}", f"{r.readings_loaded[AFTER]:,}", f"{r.forecast_rows[AFTER]:,}", f"{measure} ({unit})",
                          f"{before:,.2f}", f"{after:,.2f}", f"{speedup(measure, before, after):.2f}x")
    Console(width=max(console.width, 140)).print(table)
    for r in results:
        console.print(f"{r.size.name}: migration 0006 -> 0007 of {r.readings_loaded[BEFORE]:,} readings took {r.migration_seconds:.1f} s")


if __name__ == "__main__":
    app()


StackDirOption = typer.Option(None, "--dir", help="The stack's folder: logs, pids, Airflow home, data (default SHELFWATCH_STACK_DIR or .stack).")


def stack_settings_for(folder: Path | None):
    from shelfwatch.stack import StackSettings

    return StackSettings.from_env(dir=folder)


def running_stack_for(folder: Path | None):
    """The settings a running stack was started with (saved by `stack up`)."""
    from shelfwatch.stack import load_state

    cfg = stack_settings_for(folder)
    state = load_state(cfg.dir)
    if state is None:
        console.print(f"no stack was started from {cfg.home}: `make stack` first", markup=False, style="red")
        raise typer.Exit(1)
    return state


@stack_app.command("up")
def stack_up(folder: Optional[Path] = StackDirOption,
             wait: float = typer.Option(240.0, help="Seconds to wait for every compose health check to pass.")) -> None:
    """Init the databases, start every compose service as a supervised process, wait until healthy.

    Reads the machine's PostgreSQL (SHELFWATCH_DATABASE_URL, SHELFWATCH_STACK_AIRFLOW_DB_URL), Redis
    (SHELFWATCH_STACK_REDIS_URL) and Mosquitto (SHELFWATCH_MQTT_URL); see README "Run without Docker".
    """
    from shelfwatch.stack import StackError, up

    try:
        up(stack_settings_for(folder), Settings.from_env(), log=lambda line: console.print(line, markup=False), wait_seconds=wait)
    except StackError as exc:
        console.print(f"stack: {exc}", markup=False, style="red")
        raise typer.Exit(1)


@stack_app.command("down")
def stack_down(folder: Optional[Path] = StackDirOption) -> None:
    """Stop the stack by supervisord's pid: every process stops as a group, gracefully."""
    from shelfwatch.stack import StackError, down

    try:
        down(stack_settings_for(folder), log=lambda line: console.print(line, markup=False))
    except StackError as exc:
        console.print(f"stack: {exc}", markup=False, style="red")
        raise typer.Exit(1)


@stack_app.command("status")
def stack_status(folder: Optional[Path] = StackDirOption) -> None:
    """Each process's state (supervisorctl) and each compose health check's result."""
    from shelfwatch.stack import run_health_checks, supervisorctl, supervisord_pid

    cfg, settings = running_stack_for(folder)
    if supervisord_pid(cfg) is None:
        console.print(f"no stack running from {cfg.home}", markup=False)
        raise typer.Exit(1)
    console.print(supervisorctl(cfg, "status").stdout, markup=False)
    results = run_health_checks(cfg, settings)
    for program, (ok, tail) in sorted(results.items()):
        console.print(f"{'healthy  ' if ok else 'UNHEALTHY'} {program}  {tail}", markup=False)
    if not all(ok for ok, _ in results.values()):
        raise typer.Exit(1)


@stack_app.command("exec", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def stack_exec(ctx: typer.Context, folder: Optional[Path] = StackDirOption) -> None:
    """Run a command in the stack's environment, e.g. `shelfwatch stack exec -- airflow dags trigger
    sales_ingest` (as `docker compose exec airflow-scheduler ...`)."""
    import subprocess

    from shelfwatch.stack import ROOT, exec_environment

    if not ctx.args:
        console.print("stack exec: name a command, e.g. -- airflow dags list", markup=False, style="red")
        raise typer.Exit(2)
    cfg, settings = running_stack_for(folder)
    raise typer.Exit(subprocess.run(ctx.args, env=exec_environment(cfg, settings), cwd=ROOT).returncode)
