"""The `forecast` command: from a sales CSV to a forecast CSV, or a forecast run over the database."""

from __future__ import annotations

from pathlib import Path

import typer

from shelfwatch.cli.common import AsOfOption, DbOption, console, error, progress_bar, say, settings_for, show


def forecast(
    input: Path | None = typer.Option(
        None,
        "--input",
        exists=True,
        dir_okay=False,
        help="Sales CSV: store_id, sku, date, units[, stockout]; omit to use the database.",
    ),
    output: Path = typer.Option(Path("forecast.csv"), "--output", help="Forecast CSV to write (with --input)."),
    horizon: int = typer.Option(28, min=1, max=366, help="Days to forecast after each series' last date."),
    quantiles: str = typer.Option("0.1,0.5,0.9", help="Quantile levels, written as p10, p50, p90, ..."),
    promotions: Path | None = typer.Option(
        None,
        exists=True,
        dir_okay=False,
        help="Promotion calendar CSV: store_id (empty = all), sku, start_date, end_date.",
    ),
    prices: Path | None = typer.Option(
        None,
        exists=True,
        dir_okay=False,
        help="Shelf prices CSV: store_id (empty = all), sku, date (from which), price; planned changes included.",
    ),
    shard: str | None = typer.Option(
        None, help="i/n: forecast only the stores of shard i of n (stable hash of store_id)."
    ),
    models_out: Path | None = typer.Option(
        None, "--models-out", help="CSV of the model chosen per series, its backtest RMSSE and demand class."
    ),
    plots: Path | None = typer.Option(
        None, help="Folder for one PNG per series: history, forecast, 80 % interval, stock-out days."
    ),
    report: Path | None = typer.Option(None, help="Accuracy report CSV per store (and category, with --products)."),
    products: Path | None = typer.Option(
        None, exists=True, dir_okay=False, help="products.csv (sku, category) for the report."
    ),
    as_of: str | None = AsOfOption,
    db: str | None = DbOption,
) -> None:
    """Forecast daily demand per store x SKU: the mean of the candidates that backtest best per series."""
    from forecasting.inputs import (
        ForecastInputError,
        parse_quantiles,
        parse_shard,
        read_prices_csv,
        read_promotions_csv,
        read_sales_csv,
    )
    from forecasting.runs import engine_settings

    settings = settings_for(db, as_of=as_of)
    try:
        levels = parse_quantiles(quantiles)
        shard_spec = parse_shard(shard)
        engine_cfg = engine_settings(settings, horizon, levels)
        if input is None:
            from shelfwatch import steps

            with progress_bar("forecasting") as advance:
                show(
                    steps.forecast_demand(
                        settings, progress=advance, shard=shard_spec, horizon=horizon, quantiles=levels
                    )
                )  # history before as-of's day
            return
        sales = read_sales_csv(input)
        promo = read_promotions_csv(promotions) if promotions else None
        price_rows = read_prices_csv(prices) if prices else None
    except ForecastInputError as exc:
        error(exc)
        raise typer.Exit(2) from None
    from forecasting.engine import forecast as run_engine

    with progress_bar("forecasting", total=sales[["store_id", "sku"]].drop_duplicates().shape[0]) as advance:
        result = run_engine(sales, engine_cfg, promotions=promo, shard=shard_spec, progress=advance, prices=price_rows)
    result.forecast.assign(date=result.forecast["date"].dt.strftime("%Y-%m-%d")).to_csv(
        output, index=False, float_format="%.4f"
    )
    if models_out:
        result.models.to_csv(models_out, index=False)
    if plots or report:
        from forecasting import planner

        if plots:
            planner.plot_all(sales, result, plots)
        if report:
            categories = None if products is None else planner.read_categories(products)
            planner.accuracy_report(result.models, categories).to_csv(report, index=False)
    say(f"{len(result.models)} series forecast ({horizon} days) -> {output}")
    for row in result.rejected.itertuples():
        error(f"{input}: store {row.store_id} sku {row.sku}: {row.problem}")
    if len(result.rejected):
        console.print(f"[red]{len(result.rejected)} series not forecast[/red] (listed above); the others were written")
        raise typer.Exit(3)


def mount(app: typer.Typer) -> None:
    app.command("forecast")(forecast)
