"""Forecast runs against the database: read sales, forecast every series, store the run.

The run id is derived from the last history date and the horizon, so re-running on the same data
replaces the same run instead of adding a copy.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd
from sqlalchemy import Engine, delete, select

from forecasting.prophet_model import forecast_frame
from sql import schema


def read_sales(engine: Engine) -> pd.DataFrame:
    with engine.connect() as conn:
        frame = pd.read_sql(select(schema.sales_daily), conn)
    return frame.assign(date=pd.to_datetime(frame["date"]))


def run_id_for(last_date: pd.Timestamp, horizon: int) -> str:
    return f"{pd.Timestamp(last_date):%Y-%m-%d}-h{horizon}"


def run_forecast(engine: Engine, horizon: int = 28, workers: int = 0, progress=None) -> dict:
    """Forecast all store x SKU series in the database and store them as one run."""
    sales = read_sales(engine)
    if sales.empty:
        raise RuntimeError("no sales loaded: ingest sales before forecasting")
    forecast = forecast_frame(sales, horizon=horizon, workers=workers, progress=progress)
    last = sales["date"].max()
    run_id = run_id_for(last, horizon)
    rows = forecast.assign(run_id=run_id, date=forecast["date"].dt.date).to_dict("records")
    with engine.begin() as conn:
        conn.execute(delete(schema.forecasts).where(schema.forecasts.c.run_id == run_id))
        conn.execute(delete(schema.forecast_runs).where(schema.forecast_runs.c.run_id == run_id))
        conn.execute(
            schema.forecast_runs.insert().values(
                run_id=run_id,
                created_at=datetime.now(timezone.utc),
                last_history_date=last.date(),
                horizon_days=horizon,
                series=int(forecast[["store_id", "sku"]].drop_duplicates().shape[0]),
            )
        )
        for start in range(0, len(rows), 10000):
            conn.execute(schema.forecasts.insert(), rows[start : start + 10000])
    return {"run_id": run_id, "series": int(forecast[["store_id", "sku"]].drop_duplicates().shape[0]), "rows": len(rows)}
