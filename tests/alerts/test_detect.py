"""Stock-out risk maths, favourites, and alert detection on both databases."""

import json
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sqlalchemy import func, select

from alerts.detect import detect_alerts
from alerts.members import contactable, favourite_members
from alerts.risk import (
    cumulative_exceedance,
    latest_readings,
    predicted_stockouts,
    zero_run_length,
    zero_run_probability,
)
from core.db import insert_ignore
from core.settings import Settings
from lab.world_db import load_world_bulk
from sql import schema
from tests.conftest import WORLD_AS_OF

NOW = pd.Timestamp("2026-11-23", tz="UTC")


def test_exceedance_matches_poisson_and_edges():
    assert cumulative_exceedance(5.0, 5.0, 0) == 1.0
    assert cumulative_exceedance(0.0, 0.0, 3) == 0.0
    # P(Poisson(5) >= 5) = 1 - P(X <= 4) = 0.5595
    assert cumulative_exceedance(5.0, 5.0, 5) == pytest.approx(0.5595, abs=1e-3)
    # overdispersion fattens the tail
    assert cumulative_exceedance(5.0, 20.0, 12) > cumulative_exceedance(5.0, 5.0, 12)


def forecast_days(mean, days=7):
    dates = pd.date_range("2026-11-23", periods=days)
    return pd.DataFrame({"store_id": "S1", "sku": "A", "date": dates, "mean": mean, "var": mean})


def position(on_shelf, next_at=None, units=np.nan, following_at=None, reading_ts=None):
    return pd.DataFrame(
        {
            "store_id": ["S1"],
            "sku": ["A"],
            "on_shelf": [float(on_shelf)],
            "reading_ts": [pd.Timestamp(reading_ts, tz="UTC") if reading_ts else pd.NaT],
            "next_delivery_at": [pd.Timestamp(next_at, tz="UTC") if next_at else pd.NaT],
            "next_delivery_units": [units],
            "following_delivery_at": [pd.Timestamp(following_at, tz="UTC") if following_at else pd.NaT],
        }
    )


def risk(pos, days, now=NOW, tz="UTC"):
    return predicted_stockouts(pos, days, now, {"S1": tz}).iloc[0]


def test_risk_counts_only_days_before_delivery():
    days = forecast_days(4.0)
    soon = risk(position(10, "2026-11-24 06:00"), days)  # 1 day: P(Poi(4)>=10)
    late = risk(position(10, "2026-11-27 06:00"), days)  # 4 days: P(Poi(16)>=10)
    assert soon["window_days"] == 1 and late["window_days"] == 4
    assert soon["probability"] == pytest.approx(0.0081, abs=1e-3)
    assert late["probability"] == pytest.approx(0.9567, abs=1e-3)
    # expected empty: cumulative mean reaches 10 half-way through day 3 (8 -> 12): 08:00 + 7 h
    assert late["expected_empty_at"] == pd.Timestamp("2026-11-25 15:00", tz="UTC")
    assert late["days_of_cover"] == pytest.approx(2.5)


def test_a_delivery_before_trading_adds_its_units_and_the_window_runs_to_the_following_one():
    # "now" is 00:00; the truck lands at 06:00 today with 6 units: 2 + 6 units must last until the
    # following truck 2 days later (8 units of demand): P(Poi(8) >= 8), not 0 because "the truck comes first"
    r = risk(position(2, "2026-11-23 06:00", 6.0, "2026-11-25 06:00"), forecast_days(4.0))
    assert r["window_days"] == 2
    assert r["probability"] == pytest.approx(1 - stats.poisson.cdf(7, 8.0), abs=1e-6)


def test_a_reading_taken_today_counts_only_the_rest_of_the_day():
    # read at 15:00 (7 of 14 trading hours left) with 2 units; 4/day expected: 2 units left today
    r = risk(
        position(2, "2026-11-24 06:00", reading_ts="2026-11-23 15:00"),
        forecast_days(4.0),
        now=pd.Timestamp("2026-11-23 15:00", tz="UTC"),
    )
    assert r["expected_demand"] == pytest.approx(2.0)
    assert r["expected_empty_at"] == pd.Timestamp("2026-11-23 22:00", tz="UTC")


def test_store_local_dates_decide_the_window():
    # Amsterdam is UTC+1 in November: the 23:30 UTC truck is the 24th's 00:30 locally, so the 23rd counts
    r = risk(position(10, "2026-11-23 23:30"), forecast_days(4.0), tz="Europe/Amsterdam")
    assert r["window_days"] == 1


def test_empty_shelf_is_certain_and_now():
    r = risk(position(0), forecast_days(1.0))
    assert r["probability"] == 1.0 and r["expected_empty_at"] == NOW


def test_zero_run():
    assert zero_run_length(np.array([3, 0, 2, 0, 0, 0])) == 3
    assert zero_run_length(np.array([1, 2])) == 0
    p, rate = zero_run_probability(np.full(28, 3.0), 4)
    assert rate == 3.0 and p == pytest.approx(np.exp(-12), rel=1e-6)
    assert zero_run_probability(np.zeros(28), 5)[0] == 1.0  # never sells: a zero run says nothing


def test_latest_reading_by_device_time_not_arrival():
    readings = pd.DataFrame(
        {
            "store_id": ["S1", "S1"],
            "sku": ["A", "A"],
            "sensor_id": ["x", "x"],
            "kind": ["shelf_units"] * 2,
            "units": [0.0, 9.0],
            "seq": [2, 1],
            "device_ts": pd.to_datetime(["2026-11-22 18:00", "2026-11-22 12:00"], utc=True),
        }
    )
    assert latest_readings(readings.iloc[::-1])["units"].tolist() == [0.0]


def test_favourite_rule():
    lines = pd.DataFrame(
        {
            "store_id": "S1",
            "sku": ["A"] * 4 + ["B"] * 4 + ["C"] * 2,
            "member_id": ["m1"] * 4 + ["m2"] * 4 + ["m3"] * 2,
            # m1: 4 recent days; m2: 4 days but last one 60 days ago; m3: only 2 days
            "date": [
                "2026-11-20",
                "2026-11-13",
                "2026-11-06",
                "2026-10-30",
                "2026-09-23",
                "2026-09-16",
                "2026-09-09",
                "2026-09-02",
                "2026-11-20",
                "2026-11-10",
            ],
        }
    )
    fav = favourite_members(lines, NOW, window_days=90, min_days=3, max_days_since=45)
    assert fav["member_id"].tolist() == ["m1"]
    assert fav["purchase_days"].iloc[0] == 4 and fav["days_since_last"].iloc[0] == 3
    members = pd.DataFrame({"member_id": ["m1"], "marketing_consent": [True], "opted_out": [True]})
    assert contactable(fav, members).empty  # opted out wins over consent


def load_world_directly(engine, world_dir):
    """Reference data plus sales and readings without the GX/MQTT front doors (tested elsewhere)."""
    load_world_bulk(engine, world_dir)


@pytest.mark.database("forecast")
def test_detect_is_idempotent_and_links_members(engine, tmp_path):
    settings = Settings(database_url=str(engine.url), output_dir=tmp_path, as_of=WORLD_AS_OF)
    first = detect_alerts(engine, settings)
    assert first["opened"] > 0 and first["members_linked"] > 0 and first["substitutes"] > 0
    with engine.connect() as conn:
        alerts_before = conn.execute(select(schema.alerts).order_by(schema.alerts.c.alert_id)).all()
        links_before = conn.execute(select(func.count()).select_from(schema.alert_members)).scalar()
        substitutes_before = substitute_rows(conn)
    assert len(substitutes_before) == first["substitutes"]
    second = detect_alerts(engine, settings)
    assert (
        second["opened"]
        == second["updated"]
        == second["resolved"]
        == second["members_linked"]
        == second["substitutes"]
        == 0
    )
    with engine.connect() as conn:
        assert conn.execute(select(schema.alerts).order_by(schema.alerts.c.alert_id)).all() == alerts_before
        assert conn.execute(select(func.count()).select_from(schema.alert_members)).scalar() == links_before
        assert substitute_rows(conn) == substitutes_before
        per_key = conn.execute(
            select(schema.alerts.c.store_id, schema.alerts.c.sku, schema.alerts.c.alert_type, func.count())
            .where(schema.alerts.c.status == "open")
            .group_by(schema.alerts.c.store_id, schema.alerts.c.sku, schema.alerts.c.alert_type)
            .having(func.count() > 1)
        ).all()
    assert per_key == []  # one open alert per store x SKU x type


def substitute_rows(conn) -> list[tuple]:
    sub = schema.alert_substitutes
    return conn.execute(select(sub).order_by(sub.c.alert_id, sub.c.member_id, sub.c.rank)).all()


@pytest.mark.database("forecast")
def test_detection_suggests_in_stock_substitutes_and_replaces_only_what_changed(engine, tmp_path):
    """Every active stock-out alert's linked members get up to three substitutes of the same category
    at the same store, none with an active alert of its own; a changed alert's rows are replaced,
    the others are left alone, and a resolved alert keeps its rows."""
    from alerts import lifecycle

    settings = Settings(database_url=str(engine.url), output_dir=tmp_path, as_of=WORLD_AS_OF)
    detect_alerts(engine, settings)
    a, am, sub, p = schema.alerts, schema.alert_members, schema.alert_substitutes, schema.products
    with engine.connect() as conn:
        subs = pd.read_sql(
            select(sub, a.c.store_id, a.c.sku.label("fav_sku"), a.c.status, a.c.alert_type).join(
                a, a.c.alert_id == sub.c.alert_id
            ),
            conn,
        )
        links = {tuple(r) for r in conn.execute(select(am.c.alert_id, am.c.member_id))}
        category = dict(conn.execute(select(p.c.sku, p.c.category)).all())
        alerted = {
            tuple(r)
            for r in conn.execute(select(a.c.store_id, a.c.sku).where(a.c.status.in_(("open", "acknowledged"))))
        }
    assert (
        len(subs) > 0
        and set(subs["status"]) == {"open"}
        and set(subs["alert_type"]) <= {"shelf_empty", "predicted_stockout", "phantom_stockout"}
    )
    assert all((r.alert_id, r.member_id) in links for r in subs.itertuples())  # only members linked to the alert
    assert all(category[r.sku] == category[r.fav_sku] and r.sku != r.fav_sku for r in subs.itertuples())
    assert not any(
        (r.store_id, r.sku) in alerted for r in subs.itertuples()
    )  # never a product with an alert of its own
    assert (
        subs.groupby(["alert_id", "member_id"])["rank"].max().le(3).all()
        and subs["reason"].str.startswith("same category").all()
    )

    # one alert's rows go stale: the next run rewrites that alert's rows only
    stale = int(subs["alert_id"].iloc[0])
    with engine.begin() as conn:
        conn.execute(sub.update().where(sub.c.alert_id == stale).values(score=0.0))
        others = [r for r in substitute_rows(conn) if r.alert_id != stale]
    again = detect_alerts(engine, settings)
    assert again["substitutes"] == int((subs["alert_id"] == stale).sum())
    with engine.connect() as conn:
        assert [r for r in substitute_rows(conn) if r.alert_id != stale] == others
        assert min(r.score for r in substitute_rows(conn) if r.alert_id == stale) > 0

    # a resolved alert keeps its substitutes (history the effect report reads)
    lifecycle.resolve(engine, stale, "manager", note="refilled")
    detect_alerts(engine, settings)
    with engine.connect() as conn:
        kept = conn.execute(select(func.count()).select_from(sub).where(sub.c.alert_id == stale)).scalar()
    assert kept == int((subs["alert_id"] == stale).sum())


@pytest.mark.database("forecast")
def test_sensor_empty_shelf_raises_shelf_empty(engine, tmp_path):
    with engine.begin() as conn:
        sensor = conn.execute(select(schema.sensors).limit(1)).first()
        insert_ignore(
            conn,
            schema.sensor_readings,
            [
                {
                    "sensor_id": sensor.sensor_id,
                    "store_id": sensor.store_id,
                    "sku": sensor.sku,
                    "kind": "shelf_units",
                    "value": 0.0,
                    "units": 0.0,
                    "seq": 10**6,
                    "battery": 0.9,
                    "device_ts": datetime(2026, 11, 22, 23, 30, tzinfo=UTC),
                    "received_at": datetime.now(UTC),
                }
            ],
        )
    detect_alerts(engine, Settings(database_url=str(engine.url), output_dir=tmp_path, as_of=WORLD_AS_OF))
    with engine.connect() as conn:
        row = conn.execute(
            select(schema.alerts).where(
                schema.alerts.c.store_id == sensor.store_id,
                schema.alerts.c.sku == sensor.sku,
                schema.alerts.c.alert_type == "shelf_empty",
            )
        ).one()
    assert row.probability == 1.0 and row.status == "open"
    evidence = json.loads(row.evidence)
    assert evidence["last_reading_units"] == 0.0 and "shelf_empty" in evidence["detectors"]


def test_demand_variance_comes_from_the_forecasters_dispersion_when_known():
    from alerts.risk import demand_moments

    fc = pd.DataFrame(
        {
            "store_id": ["S1", "S2"],
            "sku": ["A", "A"],
            "date": pd.to_datetime(["2026-11-23"] * 2),
            "mean": [4.0, 4.0],
            "p10": [2.0, 2.0],
            "p90": [6.0, 6.0],
        }
    )
    dispersion = pd.DataFrame({"store_id": ["S1"], "sku": ["A"], "dispersion": [0.25]})
    var = demand_moments(fc, dispersion)["var"].tolist()
    assert var[0] == pytest.approx(4 + 0.25 * 16)  # negative binomial: mean + dispersion x mean²
    assert var[1] == pytest.approx(
        max(((6 - 2) / (2 * 1.2815515655446004)) ** 2, 4.0)
    )  # no model row: from the interval


def test_books_count_deliveries_received_after_the_last_count():
    from alerts.risk import books_now

    records = pd.DataFrame(
        {
            "store_id": ["S1", "S1"],
            "sku": ["A", "B"],
            "book_units": [2.0, 5.0],
            "as_of": pd.Timestamp("2026-11-23 00:00", tz="UTC"),
        }
    )
    deliveries = pd.DataFrame(
        {
            "store_id": ["S1", "S1", "S1"],
            "sku": ["A", "A", "B"],
            "expected_units": [6.0, 9.0, 4.0],
            "received_units": [6.0, np.nan, 3.0],
            "expected_at": pd.to_datetime(["2026-11-23 06:00", "2026-11-24 06:00", "2026-11-22 06:00"], utc=True),
            # A's morning truck came after the count; its next one has not come yet; B's came before the count
            "received_at": pd.to_datetime(["2026-11-23 06:10", None, "2026-11-22 06:05"], utc=True),
        }
    )
    now = books_now(records, deliveries, pd.Timestamp("2026-11-23 09:00", tz="UTC"))
    assert now.set_index("sku")["book_units"].to_dict() == {"A": 8.0, "B": 5.0}
    before = books_now(records, deliveries, pd.Timestamp("2026-11-23 06:00", tz="UTC"))
    assert before.set_index("sku")["book_units"].to_dict() == {"A": 2.0, "B": 5.0}


def test_phantom_is_what_only_the_books_claim():
    """A shelf a sensor reads as stocked is not a phantom stock-out, however long it has not sold."""
    from alerts.detect import DetectionInputs, stock_risks

    days = pd.date_range("2026-10-20", "2026-11-22")
    units = np.r_[np.full(len(days) - 5, 6.0), np.zeros(5)]  # 6 a day, then nothing for 5 days
    sales = pd.concat(
        [pd.DataFrame({"store_id": "S1", "sku": sku, "date": days, "units": units}) for sku in ("A", "B")]
    )
    inp = DetectionInputs(
        as_of=NOW,
        stores=pd.DataFrame({"store_id": ["S1"], "timezone": ["UTC"]}),
        products=pd.DataFrame({"sku": ["A", "B"], "unit_price": [1.0, 1.0]}),
        readings=pd.DataFrame(
            {
                "store_id": ["S1"],
                "sku": ["B"],
                "sensor_id": ["s"],
                "kind": ["shelf_units"],
                "units": [8.0],
                "seq": [1],
                "device_ts": [NOW - pd.Timedelta(hours=2)],
            }
        ),
        sales=sales,
        records=pd.DataFrame(
            {"store_id": ["S1", "S1"], "sku": ["A", "B"], "book_units": [12.0, 12.0], "as_of": [NOW, NOW]}
        ),
        deliveries=pd.DataFrame(
            columns=["store_id", "sku", "expected_at", "expected_units", "received_at", "received_units"]
        ).astype({"expected_at": "datetime64[ns, UTC]", "received_at": "datetime64[ns, UTC]"}),
        forecast=pd.DataFrame(columns=["store_id", "sku", "date", "mean", "p10", "p90"]),
        lines=pd.DataFrame(),
        sensors=pd.DataFrame(),
        dispersion=pd.DataFrame(columns=["store_id", "sku", "dispersion"]),
    )
    risks = stock_risks(inp, Settings()).set_index("sku")
    assert risks.loc["A", "p_zero_run"] == pytest.approx(np.exp(-30.0), rel=1e-6)  # Poisson(6) zero 5 days running
    assert np.isnan(risks.loc["B", "p_zero_run"])


@pytest.mark.database("forecast")
def test_now_is_as_of_never_the_data_and_lagging_stores_are_named(engine, tmp_path):
    """One store's late or early rows move no clock: a partial day dated as-of for one store and a
    week of missing sales for the other leave as-of where it was, and the lagging store is named."""
    from datetime import date

    from core.db import insert_ignore

    sd = schema.sales_daily
    with engine.begin() as conn:
        stores = sorted(conn.execute(select(schema.stores.c.store_id)).scalars())
        sku = conn.execute(select(sd.c.sku).limit(1)).scalar()
        conn.execute(sd.delete().where(sd.c.store_id == stores[1], sd.c.date > date(2026, 11, 15)))  # last week lost
        insert_ignore(
            conn, sd, [{"store_id": stores[0], "sku": sku, "date": date(2026, 11, 23), "units": 1.0}]
        )  # a partial day
    result = detect_alerts(engine, Settings(database_url=str(engine.url), output_dir=tmp_path, as_of=WORLD_AS_OF))
    assert result["as_of"] == "2026-11-23T00:00:00+00:00"
    assert result["warnings"] == [f"store {stores[1]}: sales end 2026-11-15, 8 days before as-of 2026-11-23 00:00 UTC"]

    wall = detect_alerts(
        engine, Settings(database_url=str(engine.url), output_dir=tmp_path)
    )  # no as-of: the wall clock
    assert abs(pd.Timestamp(wall["as_of"]) - pd.Timestamp.now(tz="UTC")) < pd.Timedelta(minutes=5)
    assert len(wall["warnings"]) == 2  # both stores' data end days before today


@pytest.mark.database("loaded")
def test_cli_as_of_overrides_and_a_bad_one_is_refused(engine, tmp_path):
    from typer.testing import CliRunner

    from shelfwatch.cli.app import app

    runner = CliRunner()
    ok = runner.invoke(
        app,
        [
            "alerts",
            "detect",
            "--db",
            str(engine.url.render_as_string(hide_password=False)),
            "--as-of",
            "2026-11-23T01:00+01:00",
        ],
    )
    assert ok.exit_code == 0, ok.output
    assert '"as_of": "2026-11-23T00:00:00+00:00"' in ok.output
    bad = runner.invoke(
        app,
        ["alerts", "detect", "--db", str(engine.url.render_as_string(hide_password=False)), "--as-of", "23-11-2026"],
    )
    assert (
        bad.exit_code == 2
        and "is not an ISO time" in bad.output
        and bad.exception is None
        or isinstance(bad.exception, SystemExit)
    )


def test_readings_show_a_surge_the_forecast_cannot():
    """Two shelves forecast to sell 7 a day (0.5 an hour of trading). A's readings lose 12 units in
    the 6 trading hours between 12:00 and 18:00 (4x the forecast); B's lose 3, as forecast. A's
    forecast is scaled up by the readings' evidence, shrunk by the forecast's weight; B's is not; a
    refill between readings, a Berlin-time trading day and a shelf with no pair are handled."""
    from alerts.risk import NOWCAST_PRIOR_UNITS, nowcast_moments, observed_demand_ratio

    berlin = {"S1": "Europe/Berlin"}
    at = lambda hour: pd.Timestamp(f"2026-11-23 {hour:02d}:00", tz="Europe/Berlin").tz_convert("UTC")  # noqa: E731
    readings = pd.DataFrame(
        {
            "store_id": "S1",
            "sku": ["A", "A", "B", "B", "C"],
            "sensor_id": ["a", "a", "b", "b", "c"],
            "kind": "shelf_units",
            "units": [20.0, 8.0, 20.0, 17.0, 5.0],
            "seq": 0,
            "device_ts": [at(12), at(18), at(12), at(18), at(18)],
        }
    )
    moments = pd.DataFrame(
        {"store_id": "S1", "sku": ["A", "B", "C"], "date": pd.Timestamp("2026-11-23"), "mean": 7.0, "var": 9.0}
    )
    no_deliveries = pd.DataFrame(
        {
            "store_id": pd.Series(dtype=str),
            "sku": pd.Series(dtype=str),
            "received_at": pd.Series(dtype="datetime64[ns, UTC]"),
        }
    )
    ratios = observed_demand_ratio(readings, no_deliveries, moments, berlin, at(19)).set_index("sku")
    assert list(ratios.index) == ["A", "B"]  # C has a single reading: no evidence
    assert ratios.loc["A", "expected_units"] == pytest.approx(3.0) and ratios.loc["A", "observed_units"] == 12.0
    assert ratios.loc["A", "demand_ratio"] == pytest.approx((12 + NOWCAST_PRIOR_UNITS) / (3 + NOWCAST_PRIOR_UNITS))
    assert ratios.loc["B", "demand_ratio"] == pytest.approx(1.0)
    scaled = nowcast_moments(moments, ratios.reset_index()).set_index("sku")
    assert (
        scaled.loc["A", "mean"] == pytest.approx(7.0 * ratios.loc["A", "demand_ratio"])
        and scaled.loc["B", "mean"] == 7.0
    )
    assert scaled.loc["C", "mean"] == 7.0
    # a delivery received between A's readings: that pair says nothing about demand
    received = pd.DataFrame({"store_id": ["S1"], "sku": ["A"], "received_at": [at(14)]})
    assert "A" not in set(observed_demand_ratio(readings, received, moments, berlin, at(19))["sku"])
    # readings older than the window, or from after "now", are not used
    assert observed_demand_ratio(readings, no_deliveries, moments, berlin, at(18) + pd.Timedelta(hours=40)).empty
    assert "A" not in set(observed_demand_ratio(readings, no_deliveries, moments, berlin, at(17))["sku"])


@pytest.mark.database("forecast")
def test_detection_reads_the_last_hours_of_readings_and_a_surge_raises_the_risk(engine, tmp_path):
    """On both databases: reading_history returns a sensor's trusted readings of the last hours only,
    and readings that show a shelf selling far faster than forecast raise its stock-out probability."""
    from datetime import timedelta

    from alerts.detect import load_inputs, reading_history, stock_risks

    as_of = pd.Timestamp(WORLD_AS_OF)
    with engine.begin() as conn:
        sensor = conn.execute(select(schema.sensors).order_by(schema.sensors.c.sensor_id).limit(1)).first()
        conn.execute(schema.sensor_readings.delete().where(schema.sensor_readings.c.sensor_id == sensor.sensor_id))
        insert_ignore(
            conn,
            schema.sensor_readings,
            [
                {
                    "sensor_id": sensor.sensor_id,
                    "store_id": sensor.store_id,
                    "sku": sensor.sku,
                    "kind": "shelf_units",
                    "value": 80.0,
                    "units": 80.0,
                    "seq": 1,
                    "battery": 0.9,
                    "device_ts": (as_of - timedelta(hours=9)).to_pydatetime(),
                    "received_at": datetime.now(UTC),
                }
            ],
        )
    before = (
        stock_risks(load_inputs(engine, as_of), Settings())
        .set_index(["store_id", "sku"])
        .loc[(sensor.store_id, sensor.sku)]
    )
    with engine.begin() as conn:
        rows = [
            {
                "sensor_id": sensor.sensor_id,
                "store_id": sensor.store_id,
                "sku": sensor.sku,
                "kind": "shelf_units",
                "value": units,
                "units": units,
                "seq": 10**6 + i,
                "battery": 0.9,
                "device_ts": (as_of - timedelta(hours=hours)).to_pydatetime(),
                "received_at": datetime.now(UTC),
            }
            for i, (hours, units) in enumerate([(40, 90.0), (3, 50.0)])
        ]  # 30 units gone in the 6 hours after the 80 above
        insert_ignore(conn, schema.sensor_readings, rows)
        history = reading_history(conn, as_of)
    mine = history[history["sensor_id"] == sensor.sensor_id].sort_values("device_ts")
    assert mine["units"].tolist() == [80.0, 50.0]  # 40 hours ago is outside the window
    assert str(mine["device_ts"].dt.tz) == "UTC"
    after = (
        stock_risks(load_inputs(engine, as_of), Settings())
        .set_index(["store_id", "sku"])
        .loc[(sensor.store_id, sensor.sku)]
    )
    assert after["expected_demand"] > before["expected_demand"]


def test_readings_from_before_the_forecast_s_first_day_use_the_usual_day():
    """Yesterday evening's readings against a forecast that starts today: expected from the series'
    usual day, never from nothing (which would read any sale as a surge)."""
    from alerts.risk import observed_demand_ratio

    at = lambda day, hour: pd.Timestamp(f"2026-11-{day} {hour:02d}:00", tz="UTC")  # noqa: E731
    readings = pd.DataFrame(
        {
            "store_id": "S1",
            "sku": "A",
            "sensor_id": "a",
            "kind": "shelf_units",
            "units": [20.0, 17.0],
            "seq": 0,
            "device_ts": [at(22, 12), at(22, 18)],
        }
    )
    moments = pd.DataFrame(
        {
            "store_id": "S1",
            "sku": "A",
            "date": pd.date_range("2026-11-23", periods=3),
            "mean": [7.0, 7.0, 7.0],
            "var": 9.0,
        }
    )
    none = pd.DataFrame(
        {
            "store_id": pd.Series(dtype=str),
            "sku": pd.Series(dtype=str),
            "received_at": pd.Series(dtype="datetime64[ns, UTC]"),
        }
    )
    ratio = observed_demand_ratio(readings, none, moments, {"S1": "UTC"}, at(23, 1)).iloc[0]
    assert ratio["expected_units"] == pytest.approx(3.0) and ratio["demand_ratio"] == pytest.approx(1.0)
