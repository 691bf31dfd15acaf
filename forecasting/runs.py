"""Forecast runs against the database: read sales, stock-out days, promotions and prices, forecast every
series, store the forecasts and the model chosen per series.

The run id is derived from the last history date and the horizon, so re-running on the same data
replaces the same run instead of adding a copy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy import Connection, Engine, delete, func, select

from core.db import BulkWriter, NoDataYet, bulk_writer, dialect_insert
from forecasting.combine import parse_strategy
from forecasting.engine import EngineSettings, ForecastResult, forecast, select_shard
from sql import schema

if TYPE_CHECKING:
    from core.settings import Settings

CLOSING_HOUR = 22  # a shelf that empties at closing time lost no sales
FORECAST_COLUMNS = [c.name for c in schema.forecasts.columns]


def engine_settings(
    settings: Settings, horizon: int | None = None, quantiles: Sequence[float] = (0.1, 0.5, 0.9)
) -> EngineSettings:
    """The forecaster's settings from Shelfwatch's (environment-backed) settings; a combination it
    does not know is refused here, naming SHELFWATCH_FORECAST_COMBINATION, before any work is done."""
    try:
        parse_strategy(settings.forecast_combination)
    except ValueError as exc:
        raise ValueError(f"SHELFWATCH_FORECAST_COMBINATION: {exc}") from None
    return EngineSettings(
        horizon=horizon or settings.forecast_horizon_days,
        quantiles=tuple(quantiles),
        windows=settings.forecast_backtest_windows,
        prophet_min_units_per_day=settings.forecast_prophet_min_units,
        prophet_min_history_days=settings.forecast_prophet_min_history_days,
        holiday_country=settings.forecast_holiday_country or None,
        combination=settings.forecast_combination,
        global_model=settings.forecast_global_model,
        workers=settings.forecast_workers,
    )


def read_sales(engine: Engine) -> pd.DataFrame:
    """Daily sales with the `stockout` flag of days the shelf was known to be empty."""
    with engine.connect() as conn:
        sales = pd.read_sql(
            select(
                schema.sales_daily.c.store_id,
                schema.sales_daily.c.sku,
                schema.sales_daily.c.date,
                schema.sales_daily.c.units,
            ),
            conn,
        )
        so = schema.stockout_days
        emptied_before_closing = so.c.empty_from_hour.is_(None) | (so.c.empty_from_hour < CLOSING_HOUR)
        out = pd.read_sql(select(so.c.store_id, so.c.sku, so.c.date).where(emptied_before_closing), conn)
    sales = sales.assign(date=pd.to_datetime(sales["date"]))
    out = out.assign(date=pd.to_datetime(out["date"]), stockout=1)
    return sales.merge(out, on=["store_id", "sku", "date"], how="left").fillna({"stockout": 0})


def read_promotions(engine: Engine) -> pd.DataFrame:
    with engine.connect() as conn:
        promotions = pd.read_sql(select(schema.promotions), conn)
    return promotions.assign(
        start_date=pd.to_datetime(promotions["start_date"]), end_date=pd.to_datetime(promotions["end_date"])
    )


def read_prices(engine: Engine) -> pd.DataFrame:
    """Shelf prices (store_id, empty for every store; sku; date from which; price), past and planned."""
    with engine.connect() as conn:
        prices = pd.read_sql(select(schema.prices), conn)
    return prices.assign(date=pd.to_datetime(prices["date"]))


def run_id_for(last_date: pd.Timestamp, horizon: int) -> str:
    return f"{pd.Timestamp(last_date):%Y-%m-%d}-h{horizon}"


def store_result(
    engine: Engine,
    result: ForecastResult,
    run_id: str,
    last: pd.Timestamp,
    horizon: int,
    stores: list[str] | None = None,
    write_rows: BulkWriter | None = None,
) -> None:
    """Replace the run's rows (of `stores`, when forecasting one shard) with `result`.

    Rows are written with COPY on PostgreSQL and batched INSERTs on SQLite (`write_rows(conn, table,
    frame)` overrides it). Shards of one run may finish at once: each claims the run's row first, so
    they write in turn and each counts the series of every shard stored before it.
    """
    fc = result.forecast.assign(run_id=run_id, date=result.forecast["date"].dt.date)
    models = result.models.assign(run_id=run_id).astype(object)
    models = models.where(models.notna(), None)
    with engine.begin() as conn:
        write = write_rows or bulk_writer(conn)
        if stores is None:
            conn.execute(delete(schema.forecast_runs).where(schema.forecast_runs.c.run_id == run_id))
        claim_run(conn, run_id, last, horizon)
        for table in (schema.forecasts, schema.forecast_models):
            where = table.c.run_id == run_id
            conn.execute(delete(table).where(where if stores is None else where & table.c.store_id.in_(stores)))
        write(conn, schema.forecasts, fc[FORECAST_COLUMNS])
        write(conn, schema.forecast_models, models[[c.name for c in schema.forecast_models.columns]])
        # the run's series: every shard stored so far
        series = (
            select(func.count())
            .select_from(schema.forecast_models)
            .where(schema.forecast_models.c.run_id == run_id)
            .scalar_subquery()
        )
        conn.execute(schema.forecast_runs.update().where(schema.forecast_runs.c.run_id == run_id).values(series=series))


def claim_run(conn: Connection, run_id: str, last: pd.Timestamp, horizon: int) -> None:
    """Insert the run's row unless it exists (one atomic statement), then lock it until commit: a
    second shard waits here, and then sees the first one's rows."""
    runs = schema.forecast_runs
    conn.execute(
        dialect_insert(conn)(runs)
        .values(
            run_id=run_id,
            created_at=datetime.now(UTC),
            last_history_date=last.date(),
            horizon_days=horizon,
            series=0,
        )
        .on_conflict_do_nothing(index_elements=[runs.c.run_id])
    )
    conn.execute(select(runs.c.run_id).where(runs.c.run_id == run_id).with_for_update())


def run_forecast(
    engine: Engine,
    settings: EngineSettings,
    shard: tuple[int, int] | None = None,
    progress: Callable[[int], object] | None = None,
    stores: list[str] | None = None,
    until: date | str | None = None,
) -> dict[str, Any]:
    """Forecast all store x SKU series in the database (or one shard of stores, or the listed stores)
    as one run; `until` forecasts from the history up to that date (a planner's re-run of the past)."""
    sales = read_sales(engine)
    if until is not None:
        sales = sales[sales["date"] <= pd.Timestamp(until)]
    if stores:
        unknown = sorted(set(stores) - set(sales["store_id"]))
        if unknown:
            raise ValueError(f"no sales for store(s) {', '.join(unknown)}")
        sales = sales[sales["store_id"].isin(stores)]
    if sales.empty:
        raise NoDataYet("no sales loaded: ingest sales before forecasting")
    last = sales["date"].max()
    run_id = run_id_for(last, settings.horizon)
    if shard is not None and select_shard(sales, shard).empty:  # more shards than stores: nothing to do here
        return {"run_id": run_id, "series": 0, "rows": 0, "rejected": 0, "models": {}}
    result = forecast(
        sales, settings, promotions=read_promotions(engine), shard=shard, progress=progress, prices=read_prices(engine)
    )
    stores = sorted(select_shard(sales, shard)["store_id"].unique().tolist()) if shard is not None or stores else None
    store_result(engine, result, run_id, last, settings.horizon, stores)
    return {
        "run_id": run_id,
        "series": len(result.models),
        "rows": len(result.forecast),
        "rejected": len(result.rejected),
        "models": result.models["model"].value_counts().to_dict() if len(result.models) else {},
    }
