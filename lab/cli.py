"""The lab's commands, `simulate`, `demo` and the `bench` group, mounted on the product CLI through
the `shelfwatch.cli` entry point (pyproject.toml), so no product module imports the lab. Heavy imports
stay inside the commands."""

from __future__ import annotations

import os
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from core.domain import PHANTOM_STOCKOUT, PREDICTED_STOCKOUT, SHELF_EMPTY
from core.settings import Settings
from shelfwatch.cli.common import DbOption, console, reachable_url

bench_app = typer.Typer(
    no_args_is_help=True, help="Benchmarks: figures and ratios against a baseline measured in the same run."
)


def simulate(
    out: Path = typer.Option(Path("data/world"), help="Folder to write the world to."),
    stores: int = typer.Option(5, min=1),
    skus: int = typer.Option(60, min=1),
    days: int = typer.Option(730, min=30),
    members: int = typer.Option(2000, min=0),
    seed: int = typer.Option(42),
    incident_share: float = typer.Option(
        0.04, min=0.0, max=1.0, help="Share of store x SKU pairs per injected incident kind."
    ),
    chains: int = typer.Option(1, min=1, help="Chains the stores alternate between (transfers stay within a chain)."),
    member_behaviour: bool = typer.Option(
        False,
        help="Members take substitutes for an empty favourite and leave after repeated misses "
        "(member_truth.json says who left when).",
    ),
) -> None:
    """Simulate a retail world (deterministic by seed) with ground-truth incidents."""
    from lab.simulator import simulate_world

    with console.status("simulating"):
        simulate_world(
            out,
            stores=stores,
            skus=skus,
            days=days,
            members=members,
            seed=seed,
            incident_share=incident_share,
            chains=chains,
            member_behaviour=member_behaviour,
        )
    console.print(
        f"world written to [bold]{escape(str(out))}[/bold] (ground truth: {escape(str(out / 'ground_truth.json'))})"
    )


def demo(
    stores: int = typer.Option(5, min=1),
    skus: int = typer.Option(60, min=1),
    days: int = typer.Option(730, min=60),
    members: int = typer.Option(2000, min=0),
    seed: int = typer.Option(42),
    incident_share: float = typer.Option(
        0.04, min=0.0, max=1.0, help="Share of store x SKU pairs per injected incident kind."
    ),
) -> None:
    """Simulate a world and run every step on it; prints step timings and alert precision/recall."""
    from lab.demo import run_demo

    run_demo(
        Settings.from_env(),
        console,
        stores=stores,
        skus=skus,
        days=days,
        members=members,
        seed=seed,
        incident_share=incident_share,
    )


@bench_app.command("forecast")
def bench_forecast(
    real: Path = typer.Option(
        Path("../shared/data/online_retail_daily.csv"), help="Real daily sales (item, ds, y); skipped if absent."
    ),
    world: Path = typer.Option(
        Path("out/bench_world"), help="Simulated world folder; simulated (20 stores x 500 SKUs) if absent."
    ),
    windows: int = typer.Option(3, min=1, help="Rolling-origin windows of 28 days."),
    prophet_sample: int = typer.Option(
        300, min=10, help="Series of the simulated world on which the slow baselines (Prophet alone, AutoETS) run."
    ),
    workers: int = typer.Option(0, help="Processes; 0 = all cores."),
    skip_world: bool = typer.Option(False, help="Only the real file (a few minutes)."),
    price_value: bool = typer.Option(
        True, help="Also run Shelfwatch without the world's prices, to show what they are worth."
    ),
    world_stores: int = typer.Option(
        0, min=0, help="Only the world's first N stores (0 = all 20; fewer runs faster, the 300 s target is for all)."
    ),
) -> None:
    """Accuracy, calibration and speed of the forecaster vs Prophet alone, AutoETS, MA28, ADIDA, the
    simple combination and seasonal naive; on the simulated world also vs the perfect forecaster."""
    from lab.bench import forecast as bench

    log = lambda message: console.print(f"[dim]{escape(str(message))}[/dim]")  # noqa: E731
    checks = []
    if real.exists():
        scores, detail = bench.run_bench(bench.load_online_retail(real), windows=windows, workers=workers, log=log)
        show_forecast_scores(f"{real.name}: {windows} x 28-day rolling origins", scores, detail)
        checks += bench.target_lines(real.name, scores, margin=0.03)
    else:
        console.print(f"[yellow]{escape(str(real))} not found: real-data benchmark skipped[/yellow]")
    if not skip_world:
        if not (world / "sales" / "sales_daily.csv").exists():
            from lab.simulator import simulate_world

            with console.status(f"simulating 20 stores x 500 SKUs into {escape(str(world))}"):
                simulate_world(world, stores=20, skus=500, members=2000, seed=7)
        sales, promotions = bench.load_world_sales(world)
        prices = bench.load_world_prices(world)
        if world_stores:
            sales = sales[sales["store_id"].isin(sorted(sales["store_id"].unique())[:world_stores])]
        seconds, n_series, _ = bench.production_run(sales, promotions, workers=workers, prices=prices)
        console.print(
            f"production run: {n_series:,} series, 28 days with p10/p50/p90, in [bold]{seconds:.0f} s[/bold] "
            f"({n_series / seconds:,.0f} series/s; target <= 300 s)"
        )
        checks.append(
            (f"simulated world: all {n_series:,} series forecast in {seconds:.0f} s (target <= 300 s)", seconds <= 300)
        )
        expected = bench.load_expected_demand(world, 28 * windows)
        methods = (
            "shelfwatch",
            *(("shelfwatch_without_prices",) if prices is not None and price_value else ()),
            *bench.BASELINES,
        )
        scores, detail = bench.run_bench(
            sales,
            promotions=promotions,
            windows=windows,
            workers=workers,
            prophet_sample=prophet_sample,
            log=log,
            expected=expected,
            prices=prices,
            methods=methods,
        )
        show_forecast_scores(f"simulated world {world}: {windows} x 28-day rolling origins", scores, detail)
        checks += bench.target_lines("simulated world", scores, margin=0.0, detail=detail, capture=0.5)
    for line, ok in checks:
        console.print(("[green]met[/green]     " if ok else "[red]not met[/red] ") + escape(line))


def show_forecast_scores(title: str, scores: list, detail) -> None:
    """The methods' table (ratio to the best all-series baseline) and mean RMSSE per demand class."""
    import pandas as pd
    from rich.table import Table

    from lab.bench import forecast as bench

    best = bench.best_baseline(scores).mean_rmsse
    dash = lambda v, f: "-" if v != v else format(v, f)  # noqa: E731  (NaN -> "-")
    table = Table(
        "method",
        "series",
        "mean RMSSE",
        "ratio to best all-series baseline",
        "80 % coverage, days",
        "80 % coverage, 7-day sums",
        "s / window",
        "series/s",
        title=escape(title),
    )
    for s in scores:
        table.add_row(
            escape(s.method),
            f"{s.series:,}",
            f"{s.mean_rmsse:.4f}",
            f"{s.mean_rmsse / best:.3f}",
            dash(s.coverage80, ".3f"),
            dash(s.coverage80_7day, ".3f"),
            dash(s.seconds, ".1f"),
            dash(s.series_per_second, ",.0f"),
        )
    wide = Console(width=max(console.width, 150))
    wide.print(table)
    by = {s.method: s for s in scores}
    if all(m in by for m in bench.HINDSIGHT):
        wide.print(
            f"knowing each window's true level in hindsight: flat {by['hindsight_flat_level'].mean_rmsse:.4f}, with "
            f"Shelfwatch's shape {by['shelfwatch_at_hindsight_level'].mean_rmsse:.4f}; 0.97 x the best baseline is "
            f"{0.97 * best:.4f}"
        )
    captured = bench.room_captured(scores)
    if captured is not None:
        wide.print(
            f"share of the room between {escape(captured[0])} and the perfect forecaster captured: "
            f"[bold]{captured[1]:.0%}[/bold]"
        )
    leads = bench.lead_time_table(detail)
    before = bench.lead_time_table(detail, bench.DAYS_INDEPENDENT)
    if len(before):
        leads = pd.concat([leads, before.loc[["all"]].rename(index={"all": "all, days independent (before issue 17)"})])
    if len(leads):
        lead_table = Table(
            "Shelfwatch",
            *leads.columns,
            title="80 % interval coverage of demand summed over h days (every stretch of the "
            "horizon), per demand class; PIT histogram of those sums",
        )
        for name, row in leads.iterrows():
            lead_table.add_row(escape(str(name)), *[dash(v, ".3f") for v in row.to_numpy()])
        wide.print(lead_table)
    by_class = bench.class_table(detail)
    classes = Table(
        "demand class",
        *[escape(c) for c in by_class.columns],
        title="mean RMSSE per demand class (from the history before each window)",
    )
    for name, row in by_class.iterrows():
        classes.add_row(escape(str(name)), *[dash(v, ".4f") for v in row.to_numpy()])
    wide.print(classes)


@bench_app.command("forecast-variants")
def bench_forecast_variants(
    real: Path = typer.Option(
        Path("../shared/data/online_retail_daily.csv"), help="Real daily sales (item, ds, y); skipped if absent."
    ),
    world: Path = typer.Option(
        Path("out/bench_world"), help="Simulated world folder; simulated (20 stores x 500 SKUs) if absent."
    ),
    stores: int = typer.Option(4, min=1, help="Stores of the simulated world to use (the first n by id)."),
    windows: int = typer.Option(3, min=1, help="Outer rolling-origin windows of 28 days."),
    inner_windows: int = typer.Option(3, min=1, help="Backtest windows the engine decides on."),
    variants: str | None = typer.Option(
        None,
        help="Comma-separated: select, topK, topKw, fixed_simple, class_topK, shrink_topK, only:MODEL (default: all "
        "but only:).",
    ),
    workers: int = typer.Option(0, help="Processes; 0 = all cores."),
) -> None:
    """Every way of turning the backtested candidates into a forecast, on the same origins in one run."""
    from rich.table import Table

    from lab.bench import forecast as bench
    from lab.bench.variants import DEFAULT_VARIANTS, run_variants, summary

    log = lambda message: console.print(f"[dim]{escape(str(message))}[/dim]")  # noqa: E731
    chosen = tuple(v.strip() for v in variants.split(",") if v.strip()) if variants else DEFAULT_VARIANTS
    sets = []
    if real.exists():
        sets.append((real.name, bench.load_online_retail(real), None, None))
    if not (world / "sales" / "sales_daily.csv").exists():
        from lab.simulator import simulate_world

        with console.status(f"simulating 20 stores x 500 SKUs into {escape(str(world))}"):
            simulate_world(world, stores=20, skus=500, members=2000, seed=7)
    sales, promotions = bench.load_world_sales(world)
    keep = sorted(sales["store_id"].unique())[:stores]
    sets.append(
        (
            f"simulated world, {len(keep)} stores",
            sales[sales["store_id"].isin(keep)],
            promotions,
            bench.load_world_prices(world),
        )
    )
    for name, data, promos, prices in sets:
        t0 = time.perf_counter()
        table_rows = summary(
            run_variants(
                data,
                promos,
                variants=chosen,
                windows=windows,
                inner_windows=inner_windows,
                workers=workers,
                log=log,
                prices=prices,
            )
        )
        table = Table(
            "variant",
            "mean RMSSE",
            "ratio to select",
            "80 % coverage, days",
            "80 % coverage, 7-day sums",
            title=escape(
                f"{name}: {windows} outer x {inner_windows} inner 28-day windows, {time.perf_counter() - t0:.0f} s"
            ),
        )
        base = table_rows.loc[table_rows["variant"] == "select", "mean_rmsse"]
        for r in table_rows.itertuples():
            ratio = r.mean_rmsse / base.iloc[0] if len(base) else float("nan")
            table.add_row(
                escape(r.variant),
                f"{r.mean_rmsse:.4f}",
                f"{ratio:.3f}",
                f"{r.coverage80_daily:.3f}",
                f"{r.coverage80_7day:.3f}",
            )
        console.print(table)


@bench_app.command("web")
def bench_web(
    folder: Path = typer.Option(
        Path("out/bench_web"), help="Folder of the benchmark's world and SQLite database (reused when present)."
    ),
    stores: int = typer.Option(50, min=1),
    skus: int = typer.Option(500, min=1),
    days: int = typer.Option(180, min=60, help="Days of history simulated."),
    requests: int = typer.Option(20, min=3, help="Timed requests per page."),
    db: str | None = DbOption,
) -> None:
    """Page-load times per page on a 50-store x 500-SKU world (target < 300 ms), vs the login page."""
    from dataclasses import replace

    from rich.table import Table

    from lab.bench.web import build_world_db, time_pages

    folder.mkdir(parents=True, exist_ok=True)
    settings = replace(
        Settings.from_env(), database_url=db or f"sqlite:///{(folder / 'shelfwatch.db').resolve()}", output_dir=folder
    )
    if not (folder / "ready").exists():
        build_world_db(
            settings, folder / "world", stores, skus, days, lambda m: console.print(f"[dim]{escape(str(m))}[/dim]")
        )
        (folder / "ready").write_text("built\n")
    rows = time_pages(settings, requests)
    base = rows[0]["median_ms"]
    table = Table(
        "page",
        "role",
        "median ms",
        "p95 ms",
        "x login page",
        "KB",
        title=f"page loads, {stores} stores x {skus} SKUs ({requests} requests each)",
    )
    for r in rows:
        table.add_row(
            escape(r["page"]),
            escape(r["role"]),
            f"{r['median_ms']:.1f}",
            f"{r['p95_ms']:.1f}",
            f"{r['median_ms'] / base:.1f}",
            f"{r['bytes'] / 1024:.0f}",
        )
    console.print(table)
    worst = max(rows, key=lambda r: r["p95_ms"])
    console.print(
        ("[green]met[/green]     " if worst["p95_ms"] < 300 else "[red]not met[/red] ")
        + escape(f"slowest page p95 {worst['p95_ms']:.0f} ms ({worst['page']}; target < 300 ms)")
    )


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

    from lab.bench import forecast as bench

    if not (world / "sales" / "sales_daily.csv").exists():
        from lab.simulator import simulate_world

        with console.status(f"simulating {stores} stores x {skus} SKUs into {escape(str(world))}"):
            simulate_world(world, stores=stores, skus=skus, members=500, seed=5)
    sales, promotions = bench.load_world_sales(world)
    rows = bench.shard_throughput(sales, promotions, [int(n) for n in shards.split(",")])
    table = Table(
        "shards at once",
        "series",
        "wall s",
        "series/s",
        "speed-up vs 1",
        "largest shard",
        "per-shard s",
        title=escape(f"forecast throughput, {world} ({os.cpu_count()} cores)"),
    )
    for r in rows:
        table.add_row(
            str(r["shards"]),
            f"{r['series']:,}",
            f"{r['seconds']:.1f}",
            f"{r['series_per_second']:.1f}",
            f"{r['speedup']:.2f}",
            f"{r['largest_shard']:,}",
            ", ".join(map(str, r["shard_seconds"])),
        )
    console.print(table)


@bench_app.command("dag-parse")
def bench_dag_parse(
    dags: Path = typer.Option(Path("dags"), help="The DAGs folder to parse."),
    repeats: int = typer.Option(5, min=1, help="Fresh interpreters per measure (the best counts)."),
) -> None:
    """Seconds for a fresh interpreter to run every DAG file vs a bare `import airflow.sdk` (Airflow's own
    import, which is not ours to speed up); target: our files add < 0.5 s on top of it."""
    from rich.table import Table

    from lab.bench.dag_parse import time_dag_parse

    rows = time_dag_parse(dags.resolve(), repeats)
    base = rows[0].best
    table = Table(
        "measure",
        "best s",
        "all runs s",
        "modules",
        "x airflow.sdk",
        title=f"DAG parse, fresh interpreter ({os.cpu_count()} cores)",
    )
    for r in rows:
        table.add_row(
            escape(r.name),
            f"{r.best:.2f}",
            ", ".join(f"{s:.2f}" for s in r.seconds),
            f"{r.modules:,}",
            f"{r.best / base:.2f}",
        )
    console.print(table)
    dag_files = rows[-1]
    added = dag_files.best - base
    console.print(
        ("[green]met[/green]     " if added < 0.5 else "[red]not met[/red] ")
        + escape(f"{dag_files.name}: {dag_files.best:.2f} s, of which our files add {added:.2f} s (target < 0.5 s)")
    )


@bench_app.command("alerts")
def bench_alerts(
    worlds: str = typer.Option(
        "50x500:11,20x500:12,20x500:13", help="Simulated worlds, STORESxSKUS:SEED, comma-separated."
    ),
    days: int = typer.Option(14, min=2, help="Days replayed at the end of each world's history."),
    runs_per_day: int = typer.Option(
        4, min=1, help="Detection runs a day (evenly spaced from 00:00 UTC; sensors read every 6 h)."
    ),
    refit_every: int = typer.Option(7, min=1, help="Days between forecast refits during the replay."),
    thresholds: str = typer.Option(
        "0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8", help="predicted_stockout probability thresholds to tabulate."
    ),
    phantom_thresholds: str = typer.Option(
        "0.1,0.01,0.001,0.0001", help="phantom_stockout zero-run probability thresholds."
    ),
    latency_readings: int = typer.Option(
        40, min=0, help="Empty-shelf readings sent to the running ingest per database (0 = skip)."
    ),
    pg_url: str = typer.Option(
        "postgresql+psycopg://postgres@127.0.0.1:5432/test",
        help="PostgreSQL for the latency run (skipped if unreachable).",
    ),
    broker: str = typer.Option(
        "",
        help="Broker for the latency run; default SHELFWATCH_MQTT_URL, else Mosquitto on 127.0.0.1:1883 if it answers, "
        "else an embedded broker.",
    ),
    workers: int = typer.Option(0, help="Forecasting processes; 0 = all cores."),
) -> None:
    """Alert quality on simulated worlds replayed day by day (precision, recall, lead time per type and
    threshold, against a perfect forecaster), and seconds from an empty-shelf reading to its alert."""
    from dataclasses import replace

    import numpy as np
    from rich.table import Table

    from forecasting.runs import engine_settings
    from lab.bench import alerts as bench

    settings = Settings.from_env()
    specs = bench.parse_worlds(worlds)
    stockout_t = [float(t) for t in thresholds.split(",")]
    phantom_t = [float(t) for t in phantom_thresholds.split(",")]
    eng = replace(engine_settings(settings), workers=workers)
    log = lambda message: console.print(f"[dim]{escape(str(message))}[/dim]")  # noqa: E731
    result = bench.run_alert_bench(
        specs,
        days,
        runs_per_day,
        refit_every,
        stockout_t,
        phantom_t,
        eng,
        settings.alert_keep_ratio,
        settings.empty_shelf_units,
        log,
    )
    ours, perfect = result.pooled(1), result.pooled(2)
    names = ", ".join(f"{s.stores}x{s.skus} seed {s.seed}" for s in specs)
    fmt = lambda x, spec=".3f": "-" if x != x else format(x, spec)  # noqa: E731

    table = Table(
        "threshold",
        "alerts",
        "precision",
        "events",
        "recall",
        "median lead h",
        "perfect: precision",
        "perfect: recall",
        "perfect: lead h",
        title=f"predicted_stockout over {names}: {days} days x {runs_per_day} runs/day",
    )
    for o, p in zip(ours, perfect, strict=True):
        if o.alert_type == PREDICTED_STOCKOUT:
            table.add_row(
                fmt(o.threshold, "g"),
                f"{o.alerts:,}",
                fmt(o.precision),
                f"{o.events:,}",
                fmt(o.recall),
                fmt(o.median_hours, ".1f"),
                fmt(p.precision),
                fmt(p.recall),
                fmt(p.median_hours, ".1f"),
            )
    Console(width=max(console.width, 140)).print(table)
    table = Table(
        "threshold",
        "cause",
        "events",
        "recall",
        "median lead h",
        "perfect: recall",
        "perfect: lead h",
        title="predicted_stockout by the cause of the stock-out (the same alerts; recall and lead on that cause's "
        "events)",
    )
    for o, p in zip(ours, perfect, strict=True):
        if o.alert_type.startswith(PREDICTED_STOCKOUT + ":"):
            table.add_row(
                fmt(o.threshold, "g"),
                o.alert_type.partition(":")[2],
                f"{o.events:,}",
                fmt(o.recall),
                fmt(o.median_hours, ".1f"),
                fmt(p.recall),
                fmt(p.median_hours, ".1f"),
            )
    Console(width=max(console.width, 140)).print(table)
    table = Table(
        "threshold",
        "alerts",
        "precision",
        "phantom shelves",
        "recall",
        "median hours after emptying",
        title=PHANTOM_STOCKOUT,
    )
    for o in ours:
        if o.alert_type == PHANTOM_STOCKOUT:
            table.add_row(
                fmt(o.threshold, "g"),
                f"{o.alerts:,}",
                fmt(o.precision),
                f"{o.events:,}",
                fmt(o.recall),
                fmt(o.median_hours, ".1f"),
            )
    console.print(table)
    empty = next(o for o in ours if o.alert_type == SHELF_EMPTY)
    console.print(
        f"shelf_empty: {empty.alerts:,} readings said empty, precision {fmt(empty.precision)}; {fmt(empty.recall)} of "
        f"{empty.events:,} shelves that emptied were seen empty by a reading, a median "
        f"{fmt(empty.median_hours, '.1f')} h after (sensors read every 6 h)"
    )
    per_world = Table(
        "world",
        "forecast s",
        "detection s / run",
        "predicted precision",
        "recall",
        "lead h",
        "phantom precision",
        title="per world, at the configured thresholds",
    )
    for spec, scores, _, seconds in result.per_world:
        at = next(
            (
                s
                for s in scores
                if s.alert_type == PREDICTED_STOCKOUT and s.threshold == settings.alert_probability_threshold
            ),
            None,
        )
        ph = next(
            (
                s
                for s in scores
                if s.alert_type == PHANTOM_STOCKOUT and s.threshold == settings.phantom_probability_threshold
            ),
            None,
        )
        per_world.add_row(
            f"{spec.stores}x{spec.skus} seed {spec.seed}",
            f"{seconds['forecast']:.0f}",
            f"{seconds['detect'] / (days * runs_per_day):.2f}",
            fmt(at.precision) if at else "-",
            fmt(at.recall) if at else "-",
            fmt(at.median_hours, ".1f") if at else "-",
            fmt(ph.precision) if ph else "-",
        )
    console.print(per_world)

    checks = []
    at = next(
        (o for o in ours if o.alert_type == PREDICTED_STOCKOUT and o.threshold == settings.alert_probability_threshold),
        None,
    )
    if at:
        match = bench.perfect_at_precision([p for p in perfect if p.alert_type == PREDICTED_STOCKOUT], at.precision)
        checks.append(
            (
                f"predicted_stockout precision {at.precision:.3f} at threshold {at.threshold:g} (target >= 0.6)",
                at.precision >= 0.6,
            )
        )
        if match:
            checks += [
                (
                    f"predicted_stockout recall {at.recall:.3f} vs the perfect forecaster's {match.recall:.3f} at "
                    f"precision >= {at.precision:.3f} (its threshold {match.threshold:g}): ratio "
                    f"{at.recall / match.recall:.2f} (target >= 0.9)",
                    at.recall >= 0.9 * match.recall,
                ),
                (
                    f"predicted_stockout median lead {at.median_hours:.1f} h vs the perfect forecaster's "
                    f"{match.median_hours:.1f} h there: ratio {at.median_hours / match.median_hours:.2f} (target >= "
                    "0.8, and >= 24 h)",
                    at.median_hours >= max(0.8 * match.median_hours, 24.0),
                ),
            ]
    ph = next(
        (o for o in ours if o.alert_type == PHANTOM_STOCKOUT and o.threshold == settings.phantom_probability_threshold),
        None,
    )
    if ph:
        checks.append(
            (
                f"phantom_stockout precision {ph.precision:.3f} at threshold {ph.threshold:g} (target >= 0.5)",
                ph.precision >= 0.5,
            )
        )
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
            from lab.brokers import EmbeddedBroker

            embedded = EmbeddedBroker().__enter__()
            broker_url = embedded.url
        try:
            for name, url in urls:
                seconds = bench.shelf_empty_latency(url, broker_url, latency_readings)
                console.print(
                    f"shelf_empty on arrival ({name}, {escape(broker_url.split('@')[-1])}): {len(seconds)} readings, "
                    f"median {np.median(seconds) * 1000:.0f} ms, p95 {np.percentile(seconds, 95) * 1000:.0f} ms, max "
                    f"{seconds.max() * 1000:.0f} ms from publish to a committed alert"
                )
                checks.append(
                    (
                        f"shelf_empty raised within {seconds.max():.2f} s of the reading ({name}; target <= 60 s)",
                        bool(seconds.max() <= 60),
                    )
                )
        finally:
            if embedded is not None:
                embedded.__exit__(None, None, None)
    for line, ok in checks:
        console.print(("[green]met[/green]     " if ok else "[red]not met[/red] ") + escape(line))


@bench_app.command("actions")
def bench_actions(
    world: str = typer.Option(
        "10x300:21", help="The simulated world, STORESxSKUS:SEED (members who substitute and leave; two chains)."
    ),
    members: int = typer.Option(12000, min=100, help="Loyalty members in the world."),
    history_days: int = typer.Option(400, min=200, help="Days of history simulated."),
    replay_days: int = typer.Option(
        14, min=1, help="Days replayed (one detection run a day, 00:00 UTC) for the actions."
    ),
    refit_every: int = typer.Option(7, min=1, help="Days between forecast refits during the replay."),
    workers: int = typer.Option(0, help="Forecasting processes; 0 = all cores."),
) -> None:
    """Recommended actions (stock-outs they would have prevented, units moved vs needed, donors left
    short), the members-at-risk list (precision at 50/100 vs a count baseline and random order, days
    before leaving) and substitutes (the world's acceptance vs a random same-category product)."""
    from dataclasses import replace

    import numpy as np
    from rich.table import Table

    from forecasting.runs import engine_settings
    from lab.bench import actions as bench
    from lab.bench.alerts import parse_worlds

    settings = Settings.from_env()
    parsed = parse_worlds(world)[0]
    spec = bench.bench_spec(parsed.stores, parsed.skus, history_days, members, parsed.seed)
    eng = replace(engine_settings(settings), workers=workers)
    log = lambda message: console.print(f"[dim]{escape(str(message))}[/dim]")  # noqa: E731
    t0 = time.perf_counter()
    result = bench.run_actions_bench(
        spec, replay_days, refit_every, settings.service_level, settings.alert_probability_threshold, eng, log
    )
    fmt = lambda x, spec=".3f": "-" if x != x else format(x, spec)  # noqa: E731
    title = (
        f"Actions on {spec.stores}x{spec.skus} seed {spec.seed}: alerts opened over {replay_days} days, played against "
        "the world's demand"
    )
    table = Table(
        "plan",
        "alerts",
        "refill / transfer / order / nothing",
        "ran empty",
        "prevented",
        "share prevented",
        "units moved / needed",
        "units to shelves that did not run empty",
        "transfers",
        "donors left short",
        title=title,
    )
    for s in result["scores"]:
        kinds = " / ".join(str(s.by_kind.get(k, 0)) for k in result["kinds"])
        table.add_row(
            escape(s.name),
            f"{s.alerts:,}",
            kinds,
            f"{s.stockouts:,}",
            f"{s.prevented:,}",
            fmt(s.prevented_share),
            f"{s.units_moved_there:,.0f} / {s.units_needed:,.0f} "
            f"({fmt(s.units_moved_there / s.units_needed if s.units_needed else float('nan'), '.2f')})",
            f"{s.units_to_fine_shelves:,.0f}",
            f"{s.transfers:,}",
            f"{s.donors_left_short:,}",
        )
    Console(width=max(console.width, 160)).print(table)
    table = Table(
        "as of",
        "active members",
        "leave in 30 d",
        "base rate",
        "ours @50",
        "count @50",
        "ours @100",
        "count @100",
        "random draw @100",
        "found @100",
        "median days before leaving",
        "before last visit",
        title=f"Members at risk ({result['defections']:,} left over the history)",
    )
    for r in result["at_risk"]:
        table.add_row(
            r["as_of"],
            f"{r['active_members']:,}",
            f"{r['leave_within_30d']:,}",
            fmt(r["base_rate"]),
            fmt(r["ours@50"]),
            fmt(r["count@50"]),
            fmt(r["ours@100"]),
            fmt(r["count@100"]),
            fmt(r["random_draw@100"]),
            str(r["found@100"]),
            fmt(r["median_days_before_leaving"], ".0f"),
            fmt(r["median_days_before_last_visit"], ".0f"),
        )
    Console(width=max(console.width, 160)).print(table)
    sub = result["substitutes"]
    console.print(
        f"Substitutes: {sub['members_with_a_substitute']:,} of {sub['affected_members']:,} favourite members of the "
        f"last day's alerts got one ({sub['members_with_a_same_category_product_in_stock']:,} had a same-category "
        f"product in stock); acceptance in the world: first {fmt(sub['top1_acceptance'])}, any of three "
        f"{fmt(sub['top3_acceptance'])}, a random in-stock product of the same category "
        f"{fmt(sub['random_same_category_acceptance'])} (suggested in {sub['suggest_seconds']:.2f} s)"
    )
    ours, base = result["scores"]
    ar = result["at_risk"]
    mean = lambda key: float(np.mean([r[key] for r in ar]))  # noqa: E731
    checks = [
        (
            f"actions prevent {fmt(ours.prevented_share)} of the stock-outs alerted vs {fmt(base.prevented_share)} "
            f"covering the expected demand only (ratio {ours.prevented_share / base.prevented_share:.2f})"
            if base.prevented_share
            else "actions: no stock-out alerted",
            bool(ours.prevented_share >= base.prevented_share),
        ),
        (
            f"at-risk precision @50 {mean('ours@50'):.3f} vs count {mean('count@50'):.3f} vs random "
            f"{mean('base_rate'):.3f} (mean of {len(ar)} points)",
            mean("ours@50") > max(mean("count@50"), mean("base_rate")),
        ),
        (
            f"at-risk precision @100 {mean('ours@100'):.3f} vs count {mean('count@100'):.3f} vs random "
            f"{mean('base_rate'):.3f}",
            mean("ours@100") > max(mean("count@100"), mean("base_rate")),
        ),
        (
            f"substitute acceptance {fmt(sub['top1_acceptance'])} vs random same-category "
            f"{fmt(sub['random_same_category_acceptance'])}",
            bool(sub["top1_acceptance"] > sub["random_same_category_acceptance"]),
        ),
    ]
    for line, ok in checks:
        console.print(("[green]better[/green]     " if ok else "[red]not better[/red] ") + escape(line))
    console.print(f"[dim]{time.perf_counter() - t0:.0f} s in all ({os.cpu_count()} cores)[/dim]")


@bench_app.command("ingest")
def bench_ingest(
    messages: int = typer.Option(200_000, help="Backlog of single-reading messages per run."),
    gateway_messages: int = typer.Option(4_000, help="Backlog of 50-reading gateway messages (reported apart)."),
    pg_url: str = typer.Option(
        "postgresql+psycopg://postgres@127.0.0.1:5432/test", help="PostgreSQL to create scratch schemas in."
    ),
    shared_processes: int = typer.Option(2, help="Consumer processes in the shared-subscription run (1 = skip)."),
) -> None:
    """MQTT ingest throughput into PostgreSQL and SQLite vs mosquitto_sub, on a private Mosquitto."""
    from rich.table import Table

    from lab.bench.ingest import run_ingest_bench

    results = run_ingest_bench(messages, gateway_messages, pg_url, shared_processes, console)
    baseline = results[0].rate
    table = Table(
        "run",
        "readings",
        "messages",
        "seconds",
        "readings/s",
        "ratio to mosquitto_sub (msg/s)",
        title="Ingest benchmark",
    )
    for r in results:
        table.add_row(
            escape(r.name),
            f"{r.readings:,}",
            f"{r.messages:,}",
            f"{r.seconds:.1f}",
            f"{r.rate:,.0f}",
            f"{(r.messages / r.seconds) / baseline:.2f}",
        )
    console.print(table)


@bench_app.command("scale")
def bench_scale(
    worlds: str = typer.Option(
        "today:20x500:2000000,10x:200x500:20000000",
        help="Worlds, NAME:STORESxSKUS:READINGS, comma-separated (one sensor per store x SKU; series = stores x SKUs).",
    ),
    pg_url: str = typer.Option(
        "postgresql+psycopg://postgres@127.0.0.1:5432/test", help="PostgreSQL to create scratch schemas in."
    ),
    ingest_readings: int = typer.Option(
        100_000, min=1, help="Single-reading messages written through the consumer's batch write per design."
    ),
    batch_size: int = typer.Option(2000, min=1, help="Messages per batch write (the consumer's default)."),
) -> None:
    """PostgreSQL at scale: ingest, detection and forecast writes with migration 0007 (day partitions,
    latest_sensor_readings, COPY) against 0006's design, on identical worlds built in the same run."""
    from rich.table import Table

    from lab.bench.scale import AFTER, BEFORE, MEASURES, parse_worlds, run_scale_bench, speedup

    results = run_scale_bench(
        parse_worlds(worlds),
        pg_url,
        ingest_readings,
        batch_size,
        log=lambda m: console.print(f"[dim]{escape(str(m))}[/dim]"),
    )
    table = Table(
        "world",
        "series",
        "readings rows",
        "forecast rows",
        "measure",
        "before (0006)",
        "after (0007)",
        "speed-up",
        title=f"PostgreSQL scale: 0007 vs 0006, same run ({os.cpu_count()} cores)",
    )
    for r in results:
        for measure, (unit, _) in MEASURES.items():
            before, after = r.measures[measure][BEFORE], r.measures[measure][AFTER]
            table.add_row(
                escape(r.size.name),
                f"{r.size.series:,}",
                f"{r.readings_loaded[AFTER]:,}",
                f"{r.forecast_rows[AFTER]:,}",
                f"{measure} ({unit})",
                f"{before:,.2f}",
                f"{after:,.2f}",
                f"{speedup(measure, before, after):.2f}x",
            )
    Console(width=max(console.width, 140)).print(table)
    for r in results:
        console.print(
            f"{escape(r.size.name)}: migration 0006 -> 0007 of {r.readings_loaded[BEFORE]:,} readings took "
            f"{r.migration_seconds:.1f} s"
        )


def mount(app: typer.Typer) -> None:
    """Register `simulate`, `demo` and the `bench` group on the product CLI."""
    app.command("simulate")(simulate)
    app.command("demo")(demo)
    app.add_typer(bench_app, name="bench")
