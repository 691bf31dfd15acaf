"""A simulated world straight into the database, past the GX and MQTT front doors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine

from core.db import insert_ignore
from sales_ingest.reference_files import load_reference_data
from sql import schema


def load_world_bulk(engine: Engine, world_dir: Path) -> dict:
    """Reference data plus a simulated world's sales, purchase lines and readings, inserted directly —
    for tests and benchmarks that are about what comes after the GX and MQTT front doors (which have
    their own tests and benchmarks). Idempotent, like every load."""
    world_dir = Path(world_dir)
    load_reference_data(engine, world_dir)
    sales = pd.read_csv(world_dir / "sales/sales_daily.csv")
    lines = pd.read_csv(world_dir / "sales/purchase_lines.csv")
    weights = pd.read_csv(world_dir / "products.csv").set_index("sku")["unit_weight_g"]
    now = datetime.now(UTC)
    readings = []
    with open(world_dir / "sensor_readings.jsonl") as fh:
        for line in fh:
            r = json.loads(line)
            r["units"] = r["value"] / weights[r["sku"]] if r["kind"] == "shelf_weight_g" else r["value"]
            r["device_ts"] = pd.Timestamp(r.pop("ts")).tz_convert("UTC").to_pydatetime()
            r["received_at"] = now
            readings.append(r)
    with engine.begin() as conn:
        n_sales = insert_ignore(
            conn, schema.sales_daily, sales.assign(date=pd.to_datetime(sales["date"]).dt.date).to_dict("records")
        )
        n_lines = insert_ignore(
            conn, schema.purchase_lines, lines.assign(date=pd.to_datetime(lines["date"]).dt.date).to_dict("records")
        )
        n_readings = insert_ignore(conn, schema.sensor_readings, readings)
    return {"sales": n_sales, "purchase_lines": n_lines, "readings": n_readings}
