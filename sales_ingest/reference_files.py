"""Reference data (stores, products, members, sensors, deliveries, inventory records) from a world folder.

These files come from the retailer's master-data systems (or the simulator) and are trusted more than
POS files: they are upserted as-is, so a re-load with corrections updates rows and a re-load of the
same files changes nothing.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine

from shelfwatch.core.db import upsert
from shelfwatch.sql import schema

# file name -> (table, columns parsed as timestamps, boolean columns)
REFERENCE_FILES = {
    "stores.csv": (schema.stores, [], []),
    "products.csv": (schema.products, [], []),
    "members.csv": (schema.members, [], ["marketing_consent", "opted_out"]),
    "sensors.csv": (schema.sensors, [], []),
    "deliveries.csv": (schema.deliveries, ["expected_at", "received_at"], []),
    "inventory_records.csv": (schema.inventory_records, ["as_of"], []),
    "promotions.csv": (schema.promotions, [], []),
    "stockout_days.csv": (schema.stockout_days, [], []),
}


def read_reference_file(path: Path, timestamp_cols: list[str], bool_cols: list[str]) -> list[dict]:
    """Rows of one reference CSV as dicts, with UTC datetimes, real booleans and None for blanks."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    rows = frame.to_dict("records")
    for row in rows:
        for col, value in row.items():
            if value == "":
                row[col] = None
            elif col in timestamp_cols:
                row[col] = pd.Timestamp(value).tz_convert("UTC").to_pydatetime()
            elif col in bool_cols:
                row[col] = value.lower() in {"1", "true", "yes"}
    return rows


def load_reference_data(engine: Engine, world_dir: Path) -> dict[str, int]:
    """Upsert every reference file present in `world_dir`, parents before children."""
    counts: dict[str, int] = {}
    with engine.begin() as conn:
        for name, (table, ts_cols, bool_cols) in REFERENCE_FILES.items():
            path = Path(world_dir) / name
            if not path.exists():
                continue
            rows = read_reference_file(path, ts_cols, bool_cols)
            numeric = {c.name for c in table.columns if c.type.python_type in (int, float)}
            dates = {c.name for c in table.columns if c.type.python_type is date}
            for row in rows:
                for col in numeric & row.keys():
                    if row[col] is not None:
                        row[col] = table.c[col].type.python_type(float(row[col]))
                for col in dates & row.keys():
                    if row[col] is not None:
                        row[col] = date.fromisoformat(row[col])
                if "store_id" in row and table.c.store_id.primary_key and row["store_id"] is None:
                    row["store_id"] = ""  # chain-wide (promotions)
            counts[name] = upsert(conn, table, rows)
    return counts
