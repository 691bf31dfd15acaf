"""`shelfwatch bench scale`: the PostgreSQL scale pieces of migration 0007 against the design before
them, on identical worlds built in the same run.

Each world is built twice, in scratch PostgreSQL schemas, with the same data (readings bulk-loaded
with COPY, indexes built after): "before" stays at migration 0006 (one plain sensor_readings table,
detection reading the raw readings, forecasts written with batched INSERTs); "after" is then upgraded
to 0007 (device-day partitions, latest_sensor_readings kept by triggers, forecasts written with
COPY). On each it times:
- ingest: readings/s through `ReadingWriter.write`, the MQTT consumer's batch write (parse, COPY,
  dedup, commit), without the broker;
- detection: `alerts.detect.detect_alerts` over the world (best of two runs);
- forecast write: `forecasting.runs.store_result` of every series x horizon days.
Everything it creates is dropped at the end.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import orjson
import pandas as pd
from sqlalchemy import Connection, Index, UniqueConstraint, create_engine, func, select, text
from sqlalchemy.schema import AddConstraint, CreateIndex, DropConstraint, DropIndex

from alerts.detect import detect_alerts, recent_readings
from core.db import copy_rows, get_engine, insert_rows
from core.settings import Settings
from forecasting.engine import ForecastResult
from forecasting.runs import store_result
from iot_ingest.consumer import ReadingWriter
from iot_ingest.contract import topic_for
from sql import schema
from sql.migrate import migrate

PREFIX = "bench-scale/v1"
BEFORE, AFTER = "0006", "head"
SALES_DAYS = 28
CHUNK_ROWS = 1_000_000


@dataclass(frozen=True)
class WorldSize:
    """A world: stores x SKUs shelves, one sensor each, and `readings` rows spread over `days` days."""

    name: str
    stores: int
    skus: int
    readings: int
    days: int = 50
    horizon: int = 28

    @property
    def series(self) -> int:
        return self.stores * self.skus


@dataclass
class WorldResult:
    """One world's figures: (before, after) per measure, and what was really loaded and written."""

    size: WorldSize
    readings_loaded: dict[str, int] = field(default_factory=dict)
    forecast_rows: dict[str, int] = field(default_factory=dict)
    alerts_opened: dict[str, int] = field(default_factory=dict)  # the same on both designs, or detection changed
    migration_seconds: float = 0.0
    measures: dict[str, dict[str, float]] = field(default_factory=dict)  # measure -> design -> value


MEASURES = {  # name -> (unit, higher is better)
    "ingest": ("readings/s", True),
    "detection": ("s", False),
    "forecast write": ("s", False),
}


def parse_worlds(text_: str) -> list[WorldSize]:
    """ "today:20x500:2000000,10x:200x500:20000000" -> world sizes (name:STORESxSKUS:READINGS)."""
    sizes = []
    for item in text_.split(","):
        try:
            name, shelves, readings = item.strip().split(":")
            stores, skus = shelves.split("x")
            sizes.append(WorldSize(name, int(stores), int(skus), int(readings)))
        except ValueError:
            raise ValueError(f"world {item!r}: expected NAME:STORESxSKUS:READINGS, e.g. today:20x500:2000000") from None
    return sizes


def speedup(measure: str, before: float, after: float) -> float:
    """How many times better "after" is (a rate: after/before; a duration: before/after)."""
    higher_is_better = MEASURES[measure][1]
    return after / before if higher_is_better else before / after


# ------------------------------------------------------------------------------------ the world


def shelf_ids(size: WorldSize) -> tuple[np.ndarray, np.ndarray]:
    """(store_id, sku) of every shelf, store-major."""
    stores = np.array([f"S{i:04d}" for i in range(size.stores)])
    skus = np.array([f"K{i:05d}" for i in range(size.skus)])
    return np.repeat(stores, size.skus), np.tile(skus, size.stores)


def reference_frames(size: WorldSize, as_of: pd.Timestamp, seed: int = 7) -> dict[str, pd.DataFrame]:
    """Stores, products, sensors, sales, stock records and deliveries of a world whose shelves are
    well stocked, so detection raises (almost) nothing and its time is reading and computing."""
    rng = np.random.default_rng(seed)
    store_of, sku_of = shelf_ids(size)
    stores = pd.DataFrame(
        {"store_id": np.unique(store_of), "name": "bench", "timezone": "UTC", "manager_email": "m@example.com"}
    )
    products = pd.DataFrame(
        {
            "sku": np.unique(sku_of),
            "name": "bench",
            "category": "c",
            "unit_price": 2.5,
            "unit_weight_g": 100.0,
            "shelf_capacity": 60,
        }
    )
    sensors = pd.DataFrame(
        {
            "sensor_id": sensor_ids(store_of, sku_of),
            "store_id": store_of,
            "sku": sku_of,
            "kind": "shelf_units",
            "tare_g": 0.0,
        }
    )
    days = pd.date_range(as_of.tz_localize(None) - pd.Timedelta(days=SALES_DAYS), periods=SALES_DAYS).date
    sales = pd.DataFrame(
        {
            "store_id": np.repeat(store_of, SALES_DAYS),
            "sku": np.repeat(sku_of, SALES_DAYS),
            "date": np.tile(days, size.series),
            "units": rng.poisson(3.0, size.series * SALES_DAYS).astype(float) + 1.0,
        }
    )
    records = pd.DataFrame({"store_id": store_of, "sku": sku_of, "as_of": as_of.to_pydatetime(), "book_units": 80.0})
    # one truck per store tomorrow morning: detection counts every shelf's risk up to it
    deliveries = pd.DataFrame(
        {
            "delivery_id": [f"D-{s}" for s in stores["store_id"]],
            "store_id": stores["store_id"],
            "sku": sku_of[0],
            "expected_at": (as_of + pd.Timedelta(hours=30)).to_pydatetime(),
            "expected_units": 40.0,
            "received_at": None,
            "received_units": None,
        }
    )
    return {
        "stores": stores,
        "products": products,
        "sensors": sensors,
        "sales_daily": sales,
        "inventory_records": records,
        "deliveries": deliveries,
    }


def sensor_ids(store_of: np.ndarray, sku_of: np.ndarray) -> np.ndarray:
    return np.char.add(np.char.add(store_of.astype(str), "-"), sku_of.astype(str))


def reading_chunks(size: WorldSize, now: datetime, chunk_rows: int = CHUNK_ROWS) -> Iterator[pd.DataFrame]:
    """`size.readings` sensor_readings rows in arrival order (every sensor reads once per slot), the
    last slot just before `now`, in frames of about `chunk_rows`."""
    store_of, sku_of = shelf_ids(size)
    sensors = sensor_ids(store_of, sku_of)
    slots = -(-size.readings // size.series)
    step = size.days * 86400 / slots
    slots_per_chunk = max(1, chunk_rows // size.series)
    first = now - timedelta(days=size.days)
    remaining = size.readings
    for start in range(0, slots, slots_per_chunk):
        slot = np.arange(start, min(slots, start + slots_per_chunk))
        rows = min(remaining, len(slot) * size.series)
        remaining -= rows
        seq = np.repeat(slot, size.series)[:rows]
        device_ts = pd.Timestamp(first) + pd.to_timedelta(
            seq * step + np.tile(np.arange(size.series) % 60, len(slot))[:rows], unit="s"
        )
        units = 20.0 + (seq * 7 + np.tile(np.arange(size.series), len(slot))[:rows]) % 21
        yield pd.DataFrame(
            {
                "sensor_id": np.tile(sensors, len(slot))[:rows],
                "store_id": np.tile(store_of, len(slot))[:rows],
                "sku": np.tile(sku_of, len(slot))[:rows],
                "kind": "shelf_units",
                "value": units,
                "units": units,
                "seq": seq,
                "battery": 0.9,
                "device_ts": device_ts,
                "received_at": device_ts + pd.Timedelta(seconds=2),
                "clock_skew": False,
            }
        )


def synthetic_forecast(size: WorldSize, first_day: pd.Timestamp, seed: int = 11) -> ForecastResult:
    """A forecast of every shelf for `size.horizon` days from `first_day`, as the engine returns it."""
    rng = np.random.default_rng(seed)
    store_of, sku_of = shelf_ids(size)
    mean = np.repeat(rng.gamma(3.0, 1.0, size.series), size.horizon)
    forecast = pd.DataFrame(
        {
            "store_id": np.repeat(store_of, size.horizon),
            "sku": np.repeat(sku_of, size.horizon),
            "date": np.tile(pd.date_range(first_day, periods=size.horizon), size.series),
            "mean": mean,
            "p10": mean * 0.4,
            "p50": mean * 0.95,
            "p90": mean * 1.7,
            "model": "AutoETS",
        }
    )
    models = pd.DataFrame(
        {
            "store_id": store_of,
            "sku": sku_of,
            "model": "AutoETS",
            "backtest_rmsse": rng.uniform(0.5, 1.2, size.series),
            "backtest_windows": 3,
            "dispersion": rng.uniform(0.01, 0.3, size.series),
            "level_dispersion": 0.0,
            "promotion_lift": 1.0,
            "censored_days": 0,
            "demand_class": "smooth",
            "adi": 1.0,
            "cv2": rng.uniform(0.05, 0.4, size.series),
            "history_days": SALES_DAYS,
            "mean_units": mean[:: size.horizon],
        }
    )
    return ForecastResult(forecast=forecast, models=models)


def ingest_messages(size: WorldSize, now: datetime, count: int) -> list[tuple[str, bytes]]:
    """`count` single-reading messages, as shelf sensors publish them, newer than the loaded readings."""
    store_of, sku_of = shelf_ids(size)
    sensors = sensor_ids(store_of, sku_of)
    messages = []
    for i in range(count):
        s = i % size.series
        reading = {
            "sensor_id": sensors[s],
            "store_id": store_of[s],
            "sku": sku_of[s],
            "kind": "shelf_units",
            "value": float(20 + i % 17),
            "ts": (now + timedelta(milliseconds=i)).isoformat(),
            "seq": 10**6 + i,
            "battery": 0.8,
        }
        messages.append((topic_for(PREFIX, store_of[s], sensors[s]), orjson.dumps(reading)))
    return messages


# ------------------------------------------------------------------------------ the databases


@contextmanager
def scratch_schema(pg_url: str, label: str) -> Iterator[str]:
    """A PostgreSQL schema of its own for one world and design, dropped afterwards."""
    name = f"bench_scale_{label}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{name}"'))
    url = f"{pg_url}?options=-csearch_path%3D{name}"
    try:
        yield url
    finally:
        get_engine(url).dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{name}" CASCADE'))
        admin.dispose()


def load_world(url: str, size: WorldSize, now: datetime, as_of: pd.Timestamp, log) -> int:
    """A database at migration 0006 holding the world; returns the readings loaded (counted)."""
    engine = migrate(url, BEFORE)
    with engine.begin() as conn:
        for table, frame in reference_frames(size, as_of).items():
            copy_rows(conn, schema.metadata.tables[table], frame)
    bulk_load_readings(engine, reading_chunks(size, now))
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
        loaded = conn.execute(select(func.count()).select_from(schema.sensor_readings)).scalar_one()
    log(f"  loaded {loaded:,} readings")
    return loaded


def bulk_load_readings(engine, chunks: Iterator[pd.DataFrame]) -> None:
    """COPY readings as bulk loads are done: the secondary indexes dropped first and built after (one
    sort each instead of millions of random index inserts)."""
    table = schema.sensor_readings
    secondary = [*table.indexes, *(c for c in table.constraints if isinstance(c, UniqueConstraint))]
    with engine.begin() as conn:
        for item in secondary:
            conn.execute(DropIndex(item) if isinstance(item, Index) else DropConstraint(item))
    for chunk in chunks:
        with engine.begin() as conn:
            copy_rows(conn, table, chunk)
    with engine.begin() as conn:
        conn.execute(text("SET LOCAL maintenance_work_mem = '1GB'"))
        for item in secondary:
            conn.execute(CreateIndex(item) if isinstance(item, Index) else AddConstraint(item))


def raw_recent_readings(conn: Connection, since: pd.Timestamp) -> pd.DataFrame:
    """Detection's readings as 0006 read them: every raw reading of the last 14 days."""
    return pd.read_sql(select(schema.sensor_readings).where(schema.sensor_readings.c.device_ts >= since), conn)


def timed(action) -> tuple[float, object]:
    """(seconds, result) of `action()`."""
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def measure_design(
    url: str, size: WorldSize, design: str, now: datetime, as_of: pd.Timestamp, ingest_readings: int, batch_size: int
) -> dict:
    """Forecast write, detection and ingest on one built world, the way `design` does them."""
    engine = get_engine(url)
    before = design == BEFORE
    result = synthetic_forecast(size, as_of.tz_localize(None))
    run_id = f"bench-{design}"
    write, _ = timed(
        lambda: store_result(
            engine,
            result,
            run_id,
            as_of - pd.Timedelta(days=1),
            size.horizon,
            write_rows=insert_rows if before else None,
        )
    )
    settings = Settings(database_url=url)
    reader = raw_recent_readings if before else recent_readings
    detections = [timed(lambda: detect_alerts(engine, settings, as_of, read_readings=reader)) for _ in range(2)]
    writer = ReadingWriter(engine, PREFIX)
    messages = ingest_messages(size, now, ingest_readings)
    batches = [
        timed(lambda b=messages[i : i + batch_size]: writer.write(b)) for i in range(0, len(messages), batch_size)
    ]
    with engine.connect() as conn:
        rows = conn.execute(
            select(func.count()).select_from(schema.forecasts).where(schema.forecasts.c.run_id == run_id)
        ).scalar_one()
    return {
        "forecast write": write,
        "detection": min(seconds for seconds, _ in detections),
        "ingest": sum(stored for _, (stored, _, _) in batches) / sum(seconds for seconds, _ in batches),
        "forecast_rows": rows,
        "alerts_opened": detections[0][1]["opened"],
    }


def bench_world(size: WorldSize, pg_url: str, ingest_readings: int, batch_size: int, log) -> WorldResult:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    as_of = pd.Timestamp(now.date(), tz="UTC")  # detection's "now": midnight after the last day of sales
    result = WorldResult(size)
    for design in (BEFORE, AFTER):
        log(
            f"{size.name} ({size.series:,} series, {size.readings:,} readings), design "
            f"{'0006' if design == BEFORE else '0007'}"
        )
        with scratch_schema(pg_url, f"{size.name}_{'before' if design == BEFORE else 'after'}".lower()) as url:
            result.readings_loaded[design] = load_world(url, size, now, as_of, log)
            if design == AFTER:
                result.migration_seconds, _ = timed(lambda: migrate(url, AFTER))
                log(f"  migration 0006 -> 0007: {result.migration_seconds:.1f} s")
            else:
                # today's code reads columns and writes a table added after 0006 (0012, 0016), which is not what
                # is compared
                with get_engine(url).begin() as conn:
                    conn.execute(
                        text("ALTER TABLE forecast_models ADD COLUMN level_dispersion float NOT NULL DEFAULT 0")
                    )
                    conn.execute(
                        text(
                            "ALTER TABLE stores ADD COLUMN chain varchar(64), ADD COLUMN latitude float, "
                            "ADD COLUMN longitude float"
                        )
                    )
                    conn.execute(text("ALTER TABLE products ADD COLUMN vegetarian boolean"))
                    schema.alert_substitutes.create(conn, checkfirst=True)
            figures = measure_design(url, size, design, now, as_of, ingest_readings, batch_size)
        result.forecast_rows[design] = figures.pop("forecast_rows")
        result.alerts_opened[design] = figures.pop("alerts_opened")
        for measure, value in figures.items():
            result.measures.setdefault(measure, {})[design] = value
        log(
            "  "
            + ", ".join(f"{m} {v:,.2f}" for m, v in figures.items())
            + f"; detection opened {result.alerts_opened[design]} alerts"
        )
    return result


def run_scale_bench(
    sizes: list[WorldSize],
    pg_url: str,
    ingest_readings: int = 100_000,
    batch_size: int = 2000,
    log=lambda message: None,
) -> list[WorldResult]:
    return [bench_world(size, pg_url, ingest_readings, batch_size, log) for size in sizes]
