"""Sensor readings at scale (migration 0007), on SQLite and the real PostgreSQL: latest_sensor_readings
kept by the database, detection reading it as it read the raw readings, dedup across day partitions,
partitions made ahead and dropped by retention, and the migration both ways."""

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import delete, func, select, text

from alerts.detect import alert_candidates, load_inputs, recent_readings
from alerts.risk import latest_readings
from core.settings import Settings
from iot_ingest.consumer import BULK_INSERT
from lab.bench.scale import raw_recent_readings
from shelfwatch.steps import apply_retention, ensure_reading_partitions
from sql import schema
from sql.migrate import migrate
from sql.partitions import DEFAULT_PARTITION, partition_name
from tests.iot_ingest.test_consumer import seed

T0 = datetime(2026, 11, 23, 10, tzinfo=UTC)


def row(seq, device_ts, units=5.0, sensor_id="S1-U", received_at=None, clock_skew=False, **over):
    """A reading as the consumer hands it to the database."""
    return {
        "sensor_id": sensor_id,
        "store_id": "S1",
        "sku": "A",
        "kind": "shelf_units",
        "value": units,
        "units": units,
        "seq": seq,
        "battery": 0.9,
        "device_ts": device_ts,
        "received_at": received_at or device_ts + timedelta(seconds=5),
        "clock_skew": clock_skew,
        **over,
    }


def store(engine, readings) -> int:
    """Store a batch through the consumer's write path (COPY on PostgreSQL, executemany on SQLite)."""
    with engine.begin() as conn:
        return BULK_INSERT[conn.dialect.name](conn, readings)


def latest(engine) -> dict:
    lr = schema.latest_sensor_readings
    with engine.connect() as conn:
        rows = conn.execute(select(lr).order_by(lr.c.sensor_id)).mappings().all()
    utc = lambda ts: None if ts is None else (ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts)  # noqa: E731
    return {
        r["sensor_id"]: {**r, **{c: utc(r[c]) for c in ("device_ts", "last_device_ts", "last_received_at")}}
        for r in rows
    }


def test_the_latest_row_follows_the_newest_reading_by_device_time(engine):
    seed(engine)
    store(engine, [row(1, T0, units=5.0)])
    assert latest(engine)["S1-U"]["units"] == 5.0
    late = row(2, T0 - timedelta(hours=1), units=0.0, received_at=T0 + timedelta(hours=2))
    store(engine, [late])  # a late, older reading: the stock stays, only the arrival time moves
    got = latest(engine)["S1-U"]
    assert (got["units"], got["device_ts"], got["last_received_at"]) == (5.0, T0, T0 + timedelta(hours=2))
    store(engine, [row(3, T0 + timedelta(hours=3), units=9.0, clock_skew=True)])  # a skewed clock: no stock level
    got = latest(engine)["S1-U"]
    assert (got["units"], got["device_ts"], got["last_device_ts"]) == (5.0, T0, T0 + timedelta(hours=3))
    # one batch with several readings of a sensor, out of order; and a second sensor on the same shelf
    store(
        engine,
        [
            row(4, T0 + timedelta(minutes=40), units=7.0),
            row(5, T0 + timedelta(minutes=50), units=6.0),
            row(6, T0 + timedelta(minutes=30), units=8.0),
            row(1, T0, units=3.0, sensor_id="S1-V"),
        ],
    )
    got = latest(engine)
    assert (got["S1-U"]["units"], got["S1-U"]["seq"], got["S1-U"]["device_ts"]) == (6.0, 5, T0 + timedelta(minutes=50))
    assert got["S1-V"]["units"] == 3.0
    assert store(engine, [row(5, T0 + timedelta(minutes=50), units=1.0)]) == 0  # a redelivery is no news
    store(engine, [row(9, T0 + timedelta(minutes=50), units=2.0)])  # same device time, later seq
    assert latest(engine)["S1-U"]["units"] == 2.0


def test_deleting_readings_works_the_latest_row_out_again(engine):
    seed(engine)
    store(
        engine, [row(i, T0 + timedelta(hours=i), units=float(i)) for i in range(1, 5)] + [row(1, T0, sensor_id="S1-V")]
    )
    sr = schema.sensor_readings
    with engine.begin() as conn:
        conn.execute(delete(sr).where(sr.c.seq == 1, sr.c.sensor_id == "S1-U"))  # an old one: nothing changes
    assert latest(engine)["S1-U"]["units"] == 4.0
    with engine.begin() as conn:
        conn.execute(delete(sr).where(sr.c.seq >= 3, sr.c.sensor_id == "S1-U"))  # the newest ones
    got = latest(engine)["S1-U"]
    assert (got["units"], got["device_ts"], got["last_received_at"]) == (
        2.0,
        T0 + timedelta(hours=2),
        T0 + timedelta(hours=2, seconds=5),
    )
    with engine.begin() as conn:
        conn.execute(delete(sr).where(sr.c.sensor_id == "S1-U"))
    assert set(latest(engine)) == {"S1-V"}


@pytest.mark.database("forecast")
def test_detection_sees_in_the_latest_table_what_it_saw_in_the_raw_readings(engine):  # noqa: F811
    """Same positions, same silent sensors, same candidates, on a simulated world plus randomly late,
    skewed, old and future readings."""
    with engine.connect() as conn:
        sensors = pd.read_sql(select(schema.sensors), conn)
        as_of = pd.Timestamp(conn.execute(select(func.max(schema.sales_daily.c.date))).scalar()).tz_localize(
            "UTC"
        ) + pd.Timedelta(days=1)
    rng = np.random.default_rng(3)
    extra = []
    for i, s in enumerate(sensors.sample(12, random_state=4).itertuples()):
        for j in range(3):
            device_ts = as_of + pd.Timedelta(seconds=int(rng.integers(-20 * 86400, 2 * 86400)))
            received_at = as_of + pd.Timedelta(seconds=int(rng.integers(-86400, 86400)))
            extra.append(
                row(
                    10**6 + 3 * i + j,
                    device_ts.to_pydatetime(),
                    units=float(rng.integers(0, 3)),
                    sensor_id=s.sensor_id,
                    store_id=s.store_id,
                    sku=s.sku,
                    kind=s.kind,
                    clock_skew=bool(rng.random() < 0.3),
                    received_at=received_at.to_pydatetime(),
                )
            )
    store(engine, extra)
    with engine.begin() as conn:  # and one sensor falls silent
        conn.execute(
            delete(schema.sensor_readings).where(schema.sensor_readings.c.sensor_id == sensors["sensor_id"].iloc[0])
        )
    since = as_of - pd.Timedelta(days=14)
    with engine.connect() as conn:
        raw, new = raw_recent_readings(conn, since), recent_readings(conn, since)
    raw["device_ts"] = pd.to_datetime(raw["device_ts"], utc=True)
    pd.testing.assert_frame_equal(
        latest_readings(raw).sort_values(["store_id", "sku"]).reset_index(drop=True),
        latest_readings(new).sort_values(["store_id", "sku"]).reset_index(drop=True),
        check_dtype=False,
    )
    pd.testing.assert_series_equal(
        raw.groupby("sensor_id")["device_ts"].max(), new.groupby("sensor_id")["device_ts"].max()
    )
    settings = Settings()
    candidates = [
        alert_candidates(load_inputs(engine, as_of, read_readings=reader), settings)
        for reader in (raw_recent_readings, recent_readings)
    ]
    assert len(candidates[0]) > 0
    pd.testing.assert_frame_equal(*candidates)


def test_a_duplicate_delivered_on_another_day_is_still_a_duplicate(engine):
    """The dedup key (sensor, device time, seq) holds the partition key (device day), so a redelivery
    days later meets the original in its partition; so does one no day partition covers."""
    seed(engine)
    today = datetime.now(UTC).replace(hour=0, minute=5, second=0, microsecond=0)
    first, unpartitioned = row(1, today), row(2, today - timedelta(days=400))
    assert store(engine, [first, unpartitioned]) == 2
    later = today + timedelta(days=3, hours=5)
    assert store(engine, [{**first, "received_at": later}, {**unpartitioned, "received_at": later}]) == 0
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(schema.sensor_readings)).scalar_one() == 2
        if engine.dialect.name == "postgresql":
            homes = conn.execute(text("SELECT seq, tableoid::regclass::text FROM sensor_readings ORDER BY seq")).all()
            assert homes == [(1, partition_name(today.date())), (2, DEFAULT_PARTITION)]


def test_partitions_are_made_ahead_and_retention_drops_whole_days(pg_url, tmp_path):
    engine = migrate(pg_url)
    seed(engine)
    settings = Settings(data_dir=tmp_path, database_url=pg_url, readings_retention_days=30)
    now = datetime.now(UTC)
    # a clock running 20 days ahead, before that day has a partition: kept in DEFAULT, then moved
    ahead = row(1, now + timedelta(days=20), received_at=now, clock_skew=True)
    store(engine, [ahead])
    made = ensure_reading_partitions(settings, now + timedelta(days=15), days_ahead=7)
    assert made["created"] == [partition_name((now + timedelta(days=d)).date()) for d in range(15, 23)]
    assert ensure_reading_partitions(settings, now + timedelta(days=15), days_ahead=7)["created"] == []  # idempotent
    with engine.connect() as conn:
        home = conn.execute(text("SELECT tableoid::regclass::text FROM sensor_readings")).scalar_one()
    assert home == partition_name(ahead["device_ts"].date())
    # 40 days on, 30 kept: today's partition goes whole; of DEFAULT, what arrived before the cutoff
    store(
        engine,
        [
            row(2, now, sensor_id="S1-OLD"),
            row(3, now - timedelta(days=400), sensor_id="S1-GONE", received_at=now),
            row(4, now + timedelta(days=39), received_at=now + timedelta(days=39)),
        ],
    )
    done = apply_retention(settings, now + timedelta(days=40))
    assert partition_name(now.date()) in done["reading_partitions_dropped"] and done["readings_deleted"] == 1
    assert partition_name((now + timedelta(days=20)).date()) not in done["reading_partitions_dropped"]
    with engine.connect() as conn:
        assert sorted(conn.execute(select(schema.sensor_readings.c.seq)).scalars()) == [1, 4]
    assert set(latest(engine)) == {"S1-U"}  # the sensors whose readings all went are forgotten
    assert apply_retention(settings, now + timedelta(days=40))["reading_partitions_dropped"] == []


def test_sqlite_has_no_partitions_to_make(tmp_path):
    settings = Settings(data_dir=tmp_path)
    migrate(settings.db_url)
    assert ensure_reading_partitions(settings) == {"dialect": "sqlite", "created": []}


def test_migration_0007_keeps_every_reading_and_goes_back(db_url):
    from alembic import command

    from sql.migrate import alembic_config

    engine = migrate(db_url, "0006")
    seed(engine)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    days = (-200, -3, 0, 2, 30)  # past retention, retained, today, ahead, beyond the partitions made
    with engine.begin() as conn:
        conn.execute(
            schema.sensor_readings.insert(),
            [row(i, today + timedelta(days=d, hours=1), units=float(i)) for i, d in enumerate(days)],
        )
    sr = schema.sensor_readings

    def readings():
        with engine.connect() as conn:
            return conn.execute(select(sr.c.reading_id, sr.c.seq, sr.c.device_ts).order_by(sr.c.reading_id)).all()

    before = readings()
    migrate(db_url)
    assert readings() == before
    got = latest(engine)["S1-U"]
    assert (got["units"], got["device_ts"]) == (4.0, today + timedelta(days=30, hours=1))
    store(engine, [row(99, today + timedelta(hours=5))])
    assert readings()[-1].reading_id > before[-1].reading_id  # the id sequence goes on after the copied rows
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            parts = set(conn.execute(text("SELECT tableoid::regclass::text FROM sensor_readings")).scalars())
        assert parts == {
            DEFAULT_PARTITION,
            partition_name((today - timedelta(days=3)).date()),
            partition_name(today.date()),
            partition_name((today + timedelta(days=2)).date()),
        }
    cfg = alembic_config(db_url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0006")
    after_downgrade = readings()
    assert after_downgrade[: len(before)] == before and len(after_downgrade) == len(before) + 1
    migrate(db_url)
    assert latest(engine)["S1-U"]["units"] == 4.0
