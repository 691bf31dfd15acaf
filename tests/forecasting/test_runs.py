"""Forecasting from the database: stock-out days and promotions used, models stored, re-runs and
shards replace rather than add — on SQLite and the real PostgreSQL."""

import pandas as pd
import pytest
from sqlalchemy import func, select

from forecasting.engine import EngineSettings
from forecasting.runs import run_forecast
from lab.simulator import simulate_world
from sales_ingest.reference_files import load_reference_data
from sql import schema
from tests.alerts.test_detect import load_world_directly

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
    assert (
        loaded["promotions.csv"] > 0 and loaded["stockout_days.csv"] > 0 and loaded["prices.csv"] >= 8
    )  # a list price per SKU at least
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
        before = pd.read_sql(
            select(schema.forecasts).order_by(
                schema.forecasts.c.store_id, schema.forecasts.c.sku, schema.forecasts.c.date
            ),
            conn,
        )
    again = run_forecast(engine, SETTINGS)
    assert again["run_id"] == summary["run_id"]
    with engine.connect() as conn:
        after = pd.read_sql(
            select(schema.forecasts).order_by(
                schema.forecasts.c.store_id, schema.forecasts.c.sku, schema.forecasts.c.date
            ),
            conn,
        )
    pd.testing.assert_frame_equal(before, after)
    assert count(engine, schema.forecast_runs) == 1


def test_shards_fill_the_same_run_as_one_pass(engine, world):
    load_world_directly(engine, world)
    load_reference_data(engine, world)
    whole = run_forecast(engine, SETTINGS)
    with engine.connect() as conn:
        one_pass = pd.read_sql(
            select(schema.forecasts).order_by(
                schema.forecasts.c.store_id, schema.forecasts.c.sku, schema.forecasts.c.date
            ),
            conn,
        )
    for i in range(2):
        run_forecast(engine, SETTINGS, shard=(i, 2))
    with engine.connect() as conn:
        sharded = pd.read_sql(
            select(schema.forecasts).order_by(
                schema.forecasts.c.store_id, schema.forecasts.c.sku, schema.forecasts.c.date
            ),
            conn,
        )
        series = conn.execute(
            select(schema.forecast_runs.c.series).where(schema.forecast_runs.c.run_id == whole["run_id"])
        ).scalar()
    pd.testing.assert_frame_equal(one_pass, sharded)
    assert series == 24 and count(engine, schema.forecast_models) == 24


def test_shard_throughput_covers_every_series_whatever_the_shard_count():
    import numpy as np
    import pandas as pd

    from lab.bench.forecast import shard_throughput

    days = pd.date_range("2026-06-01", periods=90)
    rng = np.random.default_rng(3)
    sales = pd.concat(
        [
            pd.DataFrame({"store_id": s, "sku": k, "date": days, "units": rng.poisson(3, len(days)).astype(float)})
            for s in ("S1", "S2", "S3")
            for k in ("A", "B")
        ]
    )
    rows = shard_throughput(sales, None, (1, 2), horizon=7)
    assert [r["shards"] for r in rows] == [1, 2] and all(r["series"] == 6 for r in rows)
    assert rows[0]["speedup"] == 1.0 and rows[1]["largest_shard"] <= 6


def shard_results(stores: int = 2, skus: int = 3):
    """One synthetic forecast per store: what shards of one run hand to store_result."""
    from lab.bench.scale import WorldSize, synthetic_forecast

    whole = synthetic_forecast(WorldSize("t", stores, skus, 0, horizon=28), pd.Timestamp("2026-12-01"))
    return {
        s: type(whole)(whole.forecast[whole.forecast["store_id"] == s], whole.models[whole.models["store_id"] == s])
        for s in whole.models["store_id"].unique()
    }


def test_shards_finishing_at_once_on_a_new_run_both_store_and_count_every_series(engine):
    """Two shards reach the run's insert together (lined up at it, where the race was): both commit."""
    import threading

    from sqlalchemy import event

    from forecasting.runs import store_result

    results, errors = shard_results(), []
    meet = threading.Barrier(len(shard_results()), timeout=5)

    def line_up_at_the_run_insert(conn, cursor, statement, params, context, executemany):
        if statement.lstrip().upper().startswith("INSERT INTO FORECAST_RUNS"):
            meet.wait()

    def store(store_id):
        try:
            store_result(engine, results[store_id], "2026-11-30-h28", pd.Timestamp("2026-11-30"), 28, stores=[store_id])
        except Exception as exc:  # noqa: BLE001 - the test reports what a shard raised
            errors.append(exc)

    event.listen(engine, "before_cursor_execute", line_up_at_the_run_insert)
    try:
        shards = [threading.Thread(target=store, args=(s,)) for s in results]
        for t in shards:
            t.start()
        for t in shards:
            t.join(timeout=60)
    finally:
        event.remove(engine, "before_cursor_execute", line_up_at_the_run_insert)
    assert errors == []
    with engine.connect() as conn:
        series = conn.execute(select(schema.forecast_runs.c.series)).scalars().all()
    assert series == [6] and count(engine, schema.forecasts) == 6 * 28


def test_copy_writes_exactly_the_rows_inserts_write(engine):
    """PostgreSQL writes forecasts with COPY, SQLite with INSERTs: the rows read back are the same,
    and equal to what was handed in (floats to the last bit, NULLs as NULLs)."""
    from core.db import insert_rows
    from forecasting.runs import store_result

    result = shard_results(stores=3)
    result = type(result["S0000"])(
        pd.concat(r.forecast for r in result.values()), pd.concat(r.models for r in result.values())
    )
    result.models.loc[result.models.index[:2], ["backtest_rmsse", "adi"]] = None  # series without a backtest
    last = pd.Timestamp("2026-11-30")
    store_result(engine, result, "default", last, 28)
    store_result(engine, result, "inserts", last, 28, write_rows=insert_rows)

    def written(table, run_id):
        with engine.connect() as conn:
            rows = pd.read_sql(select(table).where(table.c.run_id == run_id), conn).drop(columns="run_id")
        return rows.sort_values(["store_id", "sku"] + (["date"] if "date" in rows else [])).reset_index(drop=True)

    for table in (schema.forecasts, schema.forecast_models):
        pd.testing.assert_frame_equal(written(table, "default"), written(table, "inserts"))
    handed_in = (
        result.forecast.assign(date=result.forecast["date"].dt.date)
        .sort_values(["store_id", "sku", "date"])
        .reset_index(drop=True)
    )
    got = written(schema.forecasts, "default").assign(date=lambda f: pd.to_datetime(f["date"]).dt.date)
    pd.testing.assert_frame_equal(got[handed_in.columns], handed_in)
    assert written(schema.forecast_models, "default")["backtest_rmsse"].isna().sum() == 2


def test_engine_defaults_are_the_documented_settings_and_a_bad_combination_is_refused_by_name():
    from dataclasses import replace

    from core.settings import Settings
    from forecasting.engine import EngineSettings
    from forecasting.runs import engine_settings

    assert engine_settings(Settings()) == EngineSettings()
    with pytest.raises(ValueError, match="SHELFWATCH_FORECAST_COMBINATION.*best_of_3"):
        engine_settings(replace(Settings(), forecast_combination="best_of_3"))
