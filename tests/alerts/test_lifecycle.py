"""Alert lifecycle on both databases: acknowledge, resolve, auto-resolve, escalate, expire, audit."""

import json
from datetime import UTC, datetime

import pandas as pd
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from alerts import lifecycle
from alerts.detect import detect_alerts, persist_alerts
from core.settings import Settings
from forecasting.engine import EngineSettings
from forecasting.runs import run_forecast
from shelfwatch.cli.app import app
from sql import schema
from tests.conftest import WORLD_AS_OF

AS_OF = pd.Timestamp("2026-11-23", tz="UTC")
NO_FAVOURITES = pd.DataFrame(columns=["store_id", "sku", "member_id", "score"])


def candidate(store="S001", sku="SKU00001", alert_type="predicted_stockout", probability=0.8, empty_in_hours=30):
    return {
        "store_id": store,
        "sku": sku,
        "alert_type": alert_type,
        "probability": probability,
        "expected_empty_at": AS_OF + pd.Timedelta(hours=empty_in_hours),
        "severity": 1.0,
        "revenue_at_risk_per_day": 3.0,
        "evidence": {"on_shelf": 4},
    }


@pytest.fixture
def world_engine(loaded_engine):
    """The small world loaded (the session's template, copied)."""
    return loaded_engine


def alert_rows(engine):
    with engine.connect() as conn:
        return pd.read_sql(select(schema.alerts).order_by(schema.alerts.c.alert_id), conn)


def test_ack_then_resolve_is_recorded_and_detection_keeps_the_acknowledgement(world_engine):
    settings = Settings(database_url=str(world_engine.url))
    first = persist_alerts(world_engine, pd.DataFrame([candidate()]), NO_FAVOURITES, AS_OF, settings)
    assert first["opened"] == 1
    alert_id = int(alert_rows(world_engine)["alert_id"].iloc[0])
    lifecycle.acknowledge(world_engine, alert_id, "manager-S001", at=datetime(2026, 11, 23, 0, 30, tzinfo=UTC))
    # the detector sees the same risk again: no new alert, the acknowledgement stands
    again = persist_alerts(
        world_engine, pd.DataFrame([candidate()]), NO_FAVOURITES, AS_OF + pd.Timedelta(hours=1), settings
    )
    assert again["opened"] == 0 and again["resolved"] == 0
    rows = alert_rows(world_engine)
    assert (
        len(rows) == 1
        and rows["status"].iloc[0] == "acknowledged"
        and rows["acknowledged_by"].iloc[0] == "manager-S001"
    )
    lifecycle.resolve(world_engine, alert_id, "manager-S001", note="refilled from the backroom")
    with pytest.raises(lifecycle.AlertStateError, match=f"alert {alert_id} is resolved: it cannot become acknowledged"):
        lifecycle.acknowledge(world_engine, alert_id, "someone")
    with pytest.raises(lifecycle.AlertStateError, match="alert 999999 does not exist"):
        lifecycle.resolve(world_engine, 999999, "someone")
    events = lifecycle.history(world_engine, alert_id)
    assert [(e["event"], e["actor"], e["from_status"], e["to_status"]) for e in events] == [
        ("opened", "detector", None, "open"),
        ("acknowledged", "manager-S001", "open", "acknowledged"),
        ("resolved", "manager-S001", "acknowledged", "resolved"),
    ]
    assert events[-1]["note"] == "refilled from the backroom"
    # resolved: a new detection of the same risk opens a new alert
    later = persist_alerts(
        world_engine, pd.DataFrame([candidate()]), NO_FAVOURITES, AS_OF + pd.Timedelta(hours=2), settings
    )
    assert later["opened"] == 1 and len(alert_rows(world_engine)) == 2


def test_detector_resolves_what_it_no_longer_sees_and_escalates_unacknowledged(world_engine):
    settings = Settings(database_url=str(world_engine.url), alert_escalation_minutes=60)
    both = pd.DataFrame(
        [candidate(sku="SKU00001", alert_type="shelf_empty", probability=1.0), candidate(sku="SKU00002")]
    )
    persist_alerts(world_engine, both, NO_FAVOURITES, AS_OF, settings)
    # 30 minutes later: nothing to escalate yet; 2 hours later: both open ones escalate, once
    assert (
        persist_alerts(world_engine, both, NO_FAVOURITES, AS_OF + pd.Timedelta(minutes=30), settings)["escalated"] == 0
    )
    assert persist_alerts(world_engine, both, NO_FAVOURITES, AS_OF + pd.Timedelta(hours=2), settings)["escalated"] == 2
    assert persist_alerts(world_engine, both, NO_FAVOURITES, AS_OF + pd.Timedelta(hours=3), settings)["escalated"] == 0
    # the shelf reads full again: the shelf_empty alert is resolved by the detector, with the reason
    result = persist_alerts(world_engine, both.iloc[[1]], NO_FAVOURITES, AS_OF + pd.Timedelta(hours=4), settings)
    assert result["resolved"] == 1
    rows = alert_rows(world_engine).set_index("sku")
    assert rows.loc["SKU00001", "status"] == "resolved" and rows.loc["SKU00001", "resolved_by"] == "detector"
    assert rows["escalated_at"].notna().all()
    last = lifecycle.history(world_engine, int(rows.loc["SKU00001", "alert_id"]))[-1]
    assert last["event"] == "resolved" and "stocked again" in last["note"]


def test_a_prediction_long_past_its_empty_time_expires(world_engine):
    settings = Settings(database_url=str(world_engine.url), alert_expiry_hours=24)
    stale = pd.DataFrame([candidate(empty_in_hours=-30)])
    result = persist_alerts(world_engine, stale, NO_FAVOURITES, AS_OF, settings)
    assert result["opened"] == 1 and result["expired"] == 1
    assert alert_rows(world_engine)["status"].tolist() == ["expired"]


def test_cli_lists_acknowledges_and_resolves(world_engine, small_world, tmp_path):  # noqa: F811
    run_forecast(world_engine, EngineSettings(horizon=14, workers=1))
    detect_alerts(world_engine, Settings(database_url=str(world_engine.url), output_dir=tmp_path, as_of=WORLD_AS_OF))
    runner, db = CliRunner(), ["--db", str(world_engine.url.render_as_string(hide_password=False))]
    listed = runner.invoke(app, ["alerts", "list", "--format", "json", *db])
    assert listed.exit_code == 0, listed.output
    alerts = json.loads(listed.output)
    assert alerts and all(a["status"] == "open" for a in alerts)
    assert [a["severity"] for a in alerts] == sorted((a["severity"] for a in alerts), reverse=True)
    assert "contact_address" not in listed.output and "@" not in listed.output  # no member contact data
    store = alerts[0]["store_id"]
    only_store = json.loads(runner.invoke(app, ["alerts", "list", "--store", store, "--format", "json", *db]).output)
    assert {a["store_id"] for a in only_store} == {store}
    first = alerts[0]["alert_id"]
    assert runner.invoke(app, ["alerts", "ack", str(first), "--by", "manager", *db]).exit_code == 0
    assert (
        runner.invoke(app, ["alerts", "resolve", str(first), "--by", "manager", "--note", "refilled", *db]).exit_code
        == 0
    )
    refused = runner.invoke(app, ["alerts", "ack", str(first), "--by", "manager", *db])
    assert refused.exit_code == 2 and "cannot become acknowledged" in refused.output
    resolved = json.loads(
        runner.invoke(app, ["alerts", "list", "--status", "resolved", "--format", "json", *db]).output
    )
    assert [a["alert_id"] for a in resolved] == [first] and resolved[0]["resolved_by"] == "manager"
    assert runner.invoke(app, ["alerts", "list", "--format", "xml", *db]).exit_code == 2


def test_people_read_alert_times_in_the_store_s_zone_labelled(world_engine, small_world, tmp_path):  # noqa: F811
    """The CLI table and the report's markdown show expected-empty times in each store's own zone with
    the zone named; JSON keeps UTC for machines and names the store's zone beside it."""
    from core.db import local_time
    from shelfwatch.report import list_alerts, summary_markdown

    run_forecast(world_engine, EngineSettings(horizon=14, workers=1))
    detect_alerts(world_engine, Settings(database_url=str(world_engine.url), output_dir=tmp_path, as_of=WORLD_AS_OF))
    with world_engine.begin() as conn:
        conn.execute(schema.stores.update().values(timezone="Europe/Berlin"))
    alerts = list_alerts(world_engine)
    timed = alerts[alerts["expected_empty_at"].notna()].iloc[0]
    berlin = local_time(timed.expected_empty_at, "Europe/Berlin")
    assert berlin.endswith((" CET", " CEST")) and berlin[11:16] != timed.expected_empty_at.strftime("%H:%M")
    report = summary_markdown(
        alerts.loc[[timed.name]],
        pd.DataFrame({"alert_id": pd.Series(dtype=int), "member_id": pd.Series(dtype=int)}),
        None,
    )
    assert "expected empty (store time)" in report and berlin in report
    db = ["--db", str(world_engine.url.render_as_string(hide_password=False))]
    table = CliRunner().invoke(app, ["alerts", "list", *db], env={"COLUMNS": "250"})
    assert (
        table.exit_code == 0 and "(store time)" in table.output and (" CET" in table.output or " CEST" in table.output)
    )
    listed = json.loads(CliRunner().invoke(app, ["alerts", "list", "--format", "json", *db]).output)
    assert {a["timezone"] for a in listed} == {"Europe/Berlin"}
    # what to do about each stock-out alert, with the numbers, in the table, the JSON, the report and the e-mail
    stockouts = [a for a in listed if a["alert_type"] != "sensor_stale"]
    assert stockouts and all(
        a["evidence"]["action"]["kind"] in ("refill", "transfer", "emergency_order", "nothing") for a in stockouts
    )
    acting = next(a for a in stockouts if a["evidence"]["action"]["kind"] != "nothing")
    assert (
        f"{acting['evidence']['action']['short_units']} units short of the" in acting["action"]
        and "95 % chance" in acting["action"]
    )
    assert "what to do" in table.output and "units short of the" in table.output
    shelf = alerts[alerts["alert_id"] == acting["alert_id"]]
    report = summary_markdown(
        shelf, pd.DataFrame({"alert_id": pd.Series(dtype=int), "member_id": pd.Series(dtype=int)}), None
    )
    assert "| what to do |" in report and acting["action"] in report
    from alerts.notify import alert_context, alert_text

    with world_engine.connect() as conn:
        _, body = alert_text(alert_context(conn, acting["alert_id"]), escalated=False)
    assert f"What to do: {acting['action']}." in body


def test_local_time_labels_the_zone_and_takes_every_stored_form():
    from core.db import local_time

    assert local_time(pd.Timestamp("2026-11-30 16:00", tz="UTC"), "Europe/Berlin") == "2026-11-30 17:00 CET"
    assert local_time("2026-07-01T16:00:00+00:00", "Europe/Berlin") == "2026-07-01 18:00 CEST"  # evidence JSON
    assert local_time(datetime(2026, 7, 1, 16), "America/New_York") == "2026-07-01 12:00 EDT"  # SQLite: naive = UTC
    assert local_time(datetime(2026, 7, 1, 16), "Not/AZone") == "2026-07-01 16:00 UTC"  # unknown zone: UTC, said so
    assert local_time(None, "UTC") == local_time(pd.NaT, "UTC") == local_time(float("nan"), "UTC") == ""


def test_severity_ranks_urgent_and_loved_items_first():
    from alerts.detect import severity

    base = candidate(probability=0.8, empty_in_hours=0)
    frame = pd.DataFrame(
        [base, {**base, "sku": "LATER", "expected_empty_at": AS_OF + pd.Timedelta(hours=72)}, {**base, "sku": "LOVED"}]
    )
    favourites = pd.DataFrame(
        {"store_id": "S001", "sku": ["LOVED"] * 3, "member_id": ["a", "b", "c"], "score": [2.0, 1.0, 1.0]}
    )
    sev = severity(frame, favourites, AS_OF)
    assert sev[2] > sev[0] > sev[1]
    assert sev[0] == pytest.approx(0.8 * 3.0) and sev[1] == pytest.approx(0.8 * 3.0 / 4)  # empty in 72 h: a quarter
    assert sev[2] == pytest.approx(0.8 * (3.0 + 2 * 3 + 4.0))


def test_a_silent_sensor_raises_sensor_stale_routed_to_operations_only(world_engine, tmp_path):
    from alerts.notify import queue_notifications

    run_forecast(world_engine, EngineSettings(horizon=14, workers=1))
    with world_engine.begin() as conn:
        sensor = conn.execute(select(schema.sensors).order_by(schema.sensors.c.sensor_id).limit(1)).first()
        conn.execute(schema.sensor_readings.delete().where(schema.sensor_readings.c.sensor_id == sensor.sensor_id))
    settings = Settings(
        database_url=str(world_engine.url),
        output_dir=tmp_path,
        webhook_url="http://127.0.0.1:9/hook",
        as_of=WORLD_AS_OF,
    )
    detect_alerts(world_engine, settings)
    rows = alert_rows(world_engine)
    stale = rows[rows["alert_type"] == "sensor_stale"]
    assert len(stale) == 1 and json.loads(stale["evidence"].iloc[0])["sensor_id"] == sensor.sensor_id
    stale_id = int(stale["alert_id"].iloc[0])
    with world_engine.connect() as conn:
        kinds = conn.execute(select(schema.outbox.c.kind).where(schema.outbox.c.alert_id == stale_id)).scalars().all()
    assert kinds == ["store_webhook"]  # operations hear of it; the store manager's inbox does not
    queue_notifications(world_engine, settings, datetime.now(UTC))
    # the sensor reports again: the detector resolves the alert
    with world_engine.begin() as conn:
        conn.execute(
            schema.sensor_readings.insert().values(
                sensor_id=sensor.sensor_id,
                store_id=sensor.store_id,
                sku=sensor.sku,
                kind=sensor.kind,
                value=5.0,
                units=5.0,
                seq=1,
                battery=0.9,
                device_ts=datetime(2026, 11, 22, 23, 0, tzinfo=UTC),
                received_at=datetime.now(UTC),
            )
        )
    detect_alerts(world_engine, settings)
    assert alert_rows(world_engine).set_index("alert_id").loc[stale_id, "status"] == "resolved"


def test_a_prediction_below_the_threshold_keeps_an_open_alert_but_opens_none(world_engine):
    settings = Settings(database_url=str(world_engine.url))  # threshold 0.5, keep ratio 0.5
    keep_only = pd.DataFrame([{**candidate(probability=0.3), "opens": False}])
    assert persist_alerts(world_engine, keep_only, NO_FAVOURITES, AS_OF, settings)["opened"] == 0
    assert alert_rows(world_engine).empty
    persist_alerts(
        world_engine, pd.DataFrame([{**candidate(probability=0.6), "opens": True}]), NO_FAVOURITES, AS_OF, settings
    )
    # the next run's 0.3 is under the threshold but above the keep level: still open (no flapping)
    kept = persist_alerts(world_engine, keep_only, NO_FAVOURITES, AS_OF + pd.Timedelta(hours=1), settings)
    assert kept["resolved"] == 0 and alert_rows(world_engine)["status"].tolist() == ["open"]
    gone = persist_alerts(
        world_engine, pd.DataFrame(columns=keep_only.columns), NO_FAVOURITES, AS_OF + pd.Timedelta(hours=2), settings
    )
    assert gone["resolved"] == 1
