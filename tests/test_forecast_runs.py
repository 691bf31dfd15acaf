"""Forecasting from the database: stock-out days and promotions used, models stored, re-runs and
shards replace rather than add — on SQLite and the real PostgreSQL."""

import pandas as pd
import pytest
from sqlalchemy import func, select

from forecasting.engine import EngineSettings
from forecasting.runs import run_forecast
from shelfwatch.reference import load_reference_data
from shelfwatch.simulator import simulate_world
from sql import schema
from tests.test_alerts import load_world_directly

SETTINGS = EngineSettings(horizon=14, workers=1, prophet_min_units_per_day=1e9)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return simulate_world(tmp_path_factory.mktemp("w"), stores=3, skus=8, days=150, members=100, seed=5)


def count(engine, table, **where):
    query = select(func.count()).select_from(table)
    for col, value in where.items():
        query = query.where(table.c[col] == value)
    with engine.connect() as conn:
        return conn.execute(query).scalar()


def test_run_uses_stockouts_and_promotions_and_stores_models(engine, world):
    load_world_directly(engine, world)
    loaded = load_reference_data(engine, world)
    assert loaded["promotions.csv"] > 0 and loaded["stockout_days.csv"] > 0
    summary = run_forecast(engine, SETTINGS)
    assert summary["series"] == 24 and summary["rows"] == 24 * 14 and summary["rejected"] == 0
    with engine.connect() as conn:
        models = pd.read_sql(select(schema.forecast_models), conn)
    assert len(models) == 24 and models["backtest_rmsse"].notna().all() and (models["backtest_windows"] == 3).all()
    assert models["censored_days"].sum() > 0  # stock-out days reached the forecaster
    promoted = set(pd.read_csv(world / "promotions.csv", keep_default_na=False)["sku"])
    assert (models.loc[models["sku"].isin(promoted), "promotion_lift"] != 1.0).any()
    assert (models.loc[~models["sku"].isin(promoted), "promotion_lift"] == 1.0).all()

    # the same data again: same run id, rows replaced, nothing added
    with engine.connect() as conn:
        before = pd.read_sql(select(schema.forecasts).order_by(schema.forecasts.c.store_id, schema.forecasts.c.sku, schema.forecasts.c.date), conn)
    again = run_forecast(engine, SETTINGS)
    assert again["run_id"] == summary["run_id"]
    with engine.connect() as conn:
        after = pd.read_sql(select(schema.forecasts).order_by(schema.forecasts.c.store_id, schema.forecasts.c.sku, schema.forecasts.c.date), conn)
    pd.testing.assert_frame_equal(before, after)
    assert count(engine, schema.forecast_runs) == 1


def test_shards_fill_the_same_run_as_one_pass(engine, world):
    load_world_directly(engine, world)
    load_reference_data(engine, world)
    whole = run_forecast(engine, SETTINGS)
    with engine.connect() as conn:
        one_pass = pd.read_sql(select(schema.forecasts).order_by(schema.forecasts.c.store_id, schema.forecasts.c.sku, schema.forecasts.c.date), conn)
    for i in range(2):
        run_forecast(engine, SETTINGS, shard=(i, 2))
    with engine.connect() as conn:
        sharded = pd.read_sql(select(schema.forecasts).order_by(schema.forecasts.c.store_id, schema.forecasts.c.sku, schema.forecasts.c.date), conn)
        series = conn.execute(select(schema.forecast_runs.c.series).where(schema.forecast_runs.c.run_id == whole["run_id"])).scalar()
    pd.testing.assert_frame_equal(one_pass, sharded)
    assert series == 24 and count(engine, schema.forecast_models) == 24


def test_shard_throughput_covers_every_series_whatever_the_shard_count():
    import numpy as np
    import pandas as pd

    from forecasting.bench import shard_throughput

    days = pd.date_range("2026-06-01", periods=90)
    rng = np.random.default_rng(3)
    sales = pd.concat([pd.DataFrame({"store_id": s, "sku": k, "date": days, "units": rng.poisson(3, len(days)).astype(float)})
                       for s in ("S1", "S2", "S3") for k in ("A", "B")])
    rows = shard_throughput(sales, None, (1, 2), horizon=7)
    assert [r["shards"] for r in rows] == [1, 2] and all(r["series"] == 6 for r in rows)
    assert rows[0]["speedup"] == 1.0 and rows[1]["largest_shard"] <= 6
