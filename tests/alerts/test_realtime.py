"""shelf_empty raised by the ingest on arrival: over the real broker, on both databases."""

import threading
import time
import uuid

from sqlalchemy import select

from alerts.realtime import shelf_empty_on_stored
from iot_ingest.consumer import drain, open_session
from lab.publisher import publish_readings
from sql import schema
from tests.iot_ingest.test_consumer import reading, seed


def shelf_alerts(engine):
    a = schema.alerts
    with engine.connect() as conn:
        return conn.execute(
            select(a.c.alert_id, a.c.status, a.c.evidence, a.c.opened_at)
            .where(a.c.alert_type == "shelf_empty")
            .order_by(a.c.alert_id)
        ).all()


def events_and_outbox(engine):
    with engine.connect() as conn:
        events = conn.execute(
            select(schema.alert_events.c.event, schema.alert_events.c.note).order_by(schema.alert_events.c.event_id)
        ).all()
        outbox = conn.execute(select(schema.outbox.c.idempotency_key)).scalars().all()
    return events, outbox


def ingest(engine, mqtt_url, topic_prefix, client_id, settings, readings):
    publish_readings(mqtt_url, readings, topic_prefix)
    return drain(engine, mqtt_url, topic_prefix, client_id, until_idle=1.5, on_stored=shelf_empty_on_stored(settings))


def test_empty_reading_opens_once_and_a_stocked_one_resolves(engine, mqtt_url, topic_prefix, settings):
    seed(engine)
    client_id = f"rt-{uuid.uuid4().hex[:8]}"
    open_session(mqtt_url, topic_prefix, client_id)
    ingest(
        engine,
        mqtt_url,
        topic_prefix,
        client_id,
        settings,
        [
            reading(seq=1, value=6, ts="2026-11-23T08:00:00+00:00"),
            reading(seq=2, value=0, ts="2026-11-23T14:00:00+00:00"),
        ],
    )
    alerts = shelf_alerts(engine)
    assert [a.status for a in alerts] == ["open"]
    events, outbox = events_and_outbox(engine)
    assert [e.event for e in events] == ["opened"] and "S1-U" in events[0].note
    assert outbox == [
        f"alert:{alerts[0].alert_id}:store_email:opened"
    ]  # the store manager hears at the next `notify send`

    # the same empty reading again (a redelivery) and a late, older empty one change nothing
    ingest(
        engine,
        mqtt_url,
        topic_prefix,
        client_id,
        settings,
        [
            reading(seq=2, value=0, ts="2026-11-23T14:00:00+00:00"),
            reading(seq=3, value=0, ts="2026-11-23T13:00:00+00:00"),
        ],
    )
    assert [a.status for a in shelf_alerts(engine)] == ["open"]

    # restocked: resolved by the reading, with the reason
    ingest(
        engine, mqtt_url, topic_prefix, client_id, settings, [reading(seq=4, value=9, ts="2026-11-23T16:00:00+00:00")]
    )
    assert [a.status for a in shelf_alerts(engine)] == ["resolved"]
    events, _ = events_and_outbox(engine)
    assert events[-1].event == "resolved" and "stocked again" in events[-1].note

    # a late empty reading from before the restock must not reopen the shelf
    ingest(
        engine, mqtt_url, topic_prefix, client_id, settings, [reading(seq=5, value=0, ts="2026-11-23T15:00:00+00:00")]
    )
    assert [a.status for a in shelf_alerts(engine)] == ["resolved"]


def test_alert_exists_within_seconds_of_the_reading_reaching_a_running_service(
    engine, mqtt_url, topic_prefix, settings
):
    seed(engine)
    client_id = f"rt-{uuid.uuid4().hex[:8]}"
    open_session(mqtt_url, topic_prefix, client_id)
    stop = threading.Event()
    service = threading.Thread(
        target=lambda: drain(
            engine,
            mqtt_url,
            topic_prefix,
            client_id,
            until_idle=float("inf"),
            stop=stop,
            on_stored=shelf_empty_on_stored(settings),
        )
    )
    service.start()
    try:
        sent = time.monotonic()
        publish_readings(mqtt_url, [reading(seq=7, value=0, ts="2026-11-23T18:00:00+00:00")], topic_prefix)
        while not shelf_alerts(engine) and time.monotonic() - sent < 60:
            time.sleep(0.05)
        assert len(shelf_alerts(engine)) == 1  # raised by the service itself, no detection run involved
    finally:
        stop.set()
        service.join(timeout=30)
