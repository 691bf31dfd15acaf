"""One line per shelf (alerts/shelves.py): grouping, plain-language reasons with store-local times
(Europe/Berlin: CET in November, CEST in July), and the severity said in words."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pandas as pd

from alerts.shelves import LINE_COLUMNS, SEVERITY_MADE_OF, shelf_lines, when

BERLIN = "Europe/Berlin"
NOW = datetime(2026, 11, 23, 18, 0, tzinfo=UTC)  # Monday 19:00 CET


def alert(
    alert_id,
    alert_type,
    store="S1",
    sku="A",
    status="open",
    probability=1.0,
    empty_at=None,
    severity=10.0,
    members=0,
    opened="2026-11-23T00:00:00+00:00",
    **evidence,
):
    return {
        "alert_id": alert_id,
        "store_id": store,
        "sku": sku,
        "product": f"Product {sku}",
        "unit_price": 2.5,
        "alert_type": alert_type,
        "status": status,
        "probability": probability,
        "expected_empty_at": pd.Timestamp(empty_at) if empty_at else None,
        "severity": severity,
        "evidence": evidence,
        "opened_at": pd.Timestamp(opened),
        "members": members,
        "acknowledged_by": "bob" if status == "acknowledged" else None,
        "escalated_at": None,
    }


EMPTY_EVIDENCE = dict(
    source="sensor",
    on_shelf=0.0,
    last_reading_units=0.0,
    last_reading_at="2026-11-23T16:00:00+00:00",
    book_units=0.0,
    backroom_units=0.0,
    next_delivery_at="2026-11-24T05:00:00+00:00",
    next_delivery_units=32.0,
    late_delivery_since=None,
)


def test_one_line_per_store_and_sku_with_every_alert_the_worst_status_and_the_largest_severity():
    frame = pd.DataFrame(
        [
            alert(1, "shelf_empty", severity=40.0, members=3, empty_at="2026-11-23T16:00Z", **EMPTY_EVIDENCE),
            alert(
                2,
                "predicted_stockout",
                status="acknowledged",
                severity=55.0,
                members=3,
                empty_at="2026-11-23T18:00Z",
                expected_demand_until_delivery=4.2,
                days_of_cover=0.0,
                **EMPTY_EVIDENCE,
            ),
            alert(
                3,
                "predicted_stockout",
                sku="B",
                probability=0.72,
                severity=12.0,
                empty_at="2026-11-25T17:00Z",
                source="sensor",
                on_shelf=5.0,
                expected_demand_until_delivery=9.0,
                next_delivery_at="2026-11-26T05:00:00+00:00",
            ),
            alert(
                4,
                "phantom_stockout",
                store="S2",
                severity=70.0,
                probability=0.99,
                source="records",
                on_shelf=12.0,
                book_units=12.0,
                zero_sales_days=4,
                usual_daily_units=3.1,
            ),
        ]
    )
    lines = shelf_lines(frame, BERLIN, now=NOW)
    assert list(lines.columns) == LINE_COLUMNS
    assert [(r.store_id, r.sku) for r in lines.itertuples()] == [
        ("S2", "A"),
        ("S1", "A"),
        ("S1", "B"),
    ]  # most severe first
    shelf = lines.iloc[1]
    assert shelf["alert_ids"] == [1, 2] and shelf["alert_types"] == ["shelf_empty", "predicted_stockout"]
    assert shelf["type_labels"] == ["shelf empty", "predicted stock-out"]
    assert (
        shelf["status"] == "open" and shelf["open_alerts"] == 1 and shelf["acknowledged_by"] == "bob"
    )  # one open alert: the shelf is open
    assert shelf["severity"] == 55.0 and shelf["members"] == 3 and shelf["priority"] == "Act now"
    assert shelf["expected_empty_at"] == pd.Timestamp("2026-11-23T16:00Z")
    assert (
        shelf["evidence"]["detectors"] == ["predicted_stockout", "shelf_empty"]
        and shelf["evidence"]["expected_demand_until_delivery"] == 4.2
    )
    # every alert acknowledged: the shelf is acknowledged
    acked = shelf_lines(frame.assign(status="acknowledged"), BERLIN, now=NOW)
    assert set(acked["status"]) == {"acknowledged"} and set(acked["open_alerts"]) == {0}
    # several stores at once (the report): each store's own zone
    both = shelf_lines(frame, {"S1": BERLIN, "S2": "Europe/London"}, now=NOW)
    assert both.iloc[1]["store_id"] == "S1" and "today 17:00 CET" in both.iloc[1]["reason"]
    assert (
        shelf_lines(frame.assign(store_id="S2"), {"S2": "Europe/London"}, now=NOW)
        .iloc[0]["reason"]
        .startswith("Sensor reads 0 units (last reading today 16:00 GMT)")
    )
    # closed alerts are not part of a line; nothing active: no lines, same columns
    assert shelf_lines(frame.assign(status="resolved"), BERLIN).columns.tolist() == LINE_COLUMNS
    assert shelf_lines(pd.DataFrame(), BERLIN).empty


def test_reasons_read_the_evidence_in_store_local_time():
    empty = shelf_lines(
        pd.DataFrame(
            [
                alert(1, "shelf_empty", empty_at="2026-11-23T16:00Z", **EMPTY_EVIDENCE),
                alert(
                    2,
                    "predicted_stockout",
                    empty_at="2026-11-23T18:00Z",
                    expected_demand_until_delivery=4.2,
                    **EMPTY_EVIDENCE,
                ),
            ]
        ),
        BERLIN,
        now=NOW,
    ).iloc[0]
    # 16:00 UTC is 17:00 CET the same day; the 05:00 UTC truck is 06:00 CET tomorrow
    assert (
        empty["reason"]
        == "Sensor reads 0 units (last reading today 17:00 CET); next delivery tomorrow 06:00 CET, 32 units"
    )

    predicted = shelf_lines(
        pd.DataFrame(
            [
                alert(
                    3,
                    "predicted_stockout",
                    probability=0.72,
                    empty_at="2026-11-25T17:00Z",
                    source="sensor",
                    on_shelf=5.0,
                    expected_demand_until_delivery=9.0,
                    next_delivery_at="2026-11-26T05:00:00+00:00",
                ),
            ]
        ),
        BERLIN,
        now=NOW,
    ).iloc[0]
    assert (
        predicted["reason"]
        == "Likely to run empty by Wed 25 Nov 18:00 CET (72 %; 5 units left); next delivery Thu 26 Nov 06:00 CET"
    )
    assert predicted["priority"] == "Soon"

    phantom = shelf_lines(
        pd.DataFrame(
            [
                alert(
                    4,
                    "phantom_stockout",
                    probability=0.99,
                    source="records",
                    on_shelf=12.0,
                    book_units=12.0,
                    zero_sales_days=4,
                    usual_daily_units=3.1,
                    late_delivery_since="2026-11-22T05:00:00+00:00",
                ),
            ]
        ),
        BERLIN,
        now=NOW,
    ).iloc[0]
    assert phantom["reason"] == (
        "No sales for 4 days although the books show 12 units (usually 3.1/day): check the shelf (phantom stock); "
        "the delivery due yesterday 06:00 CET has not arrived"
    )

    stale = shelf_lines(
        pd.DataFrame(
            [
                alert(
                    5, "sensor_stale", sensor_id="X7", silent_hours=30.0, last_reading_at="2026-11-22T12:00:00+00:00"
                ),
            ]
        ),
        BERLIN,
        now=NOW,
    ).iloc[0]
    assert (
        stale["reason"] == "Sensor X7 silent for 30 hours (last reading yesterday 13:00 CET): check it"
        and stale["priority"] == "Check sensor"
    )

    # without "now": the full store-local time, labelled (as the pages' |local filter shows it); summer time is CEST
    assert when("2026-07-01T16:00:00+00:00", BERLIN) == "2026-07-01 18:00 CEST"
    assert when("2026-07-01T16:00:00+00:00", BERLIN, now=datetime(2026, 7, 1, 20, 0, tzinfo=UTC)) == "today 18:00 CEST"
    assert (
        when("2026-07-01T23:30:00+00:00", BERLIN, now=datetime(2026, 7, 1, 20, 0, tzinfo=UTC)) == "tomorrow 01:30 CEST"
    )
    assert when(None, BERLIN) == "" and when("2026-07-01T16:00:00+00:00", "Not/AZone") == "2026-07-01 16:00 UTC"


def test_a_sensor_that_sees_stock_in_the_backroom_says_refill_from_there():
    line = shelf_lines(
        pd.DataFrame([alert(1, "shelf_empty", **{**EMPTY_EVIDENCE, "book_units": 20.0, "backroom_units": 20.0})]),
        BERLIN,
        now=NOW,
    ).iloc[0]
    assert line["reason"].startswith(
        "Sensor reads 0 units (last reading today 17:00 CET); the books show 20 more in the backroom: "
        "refill from there;"
    )


def test_severity_in_words_members_and_value_at_risk():
    empty = shelf_lines(
        pd.DataFrame(
            [
                alert(1, "shelf_empty", members=3, **EMPTY_EVIDENCE),
                alert(
                    2,
                    "predicted_stockout",
                    members=3,
                    empty_at="2026-11-23T18:00Z",
                    expected_demand_until_delivery=12.8,
                    **EMPTY_EVIDENCE,
                ),
            ]
        ).assign(shelf_members=4),
        BERLIN,
        now=NOW,
    ).iloc[0]
    # the shelf is empty: the whole demand until the truck is lost; 13 units x 2.50
    assert empty["members"] == 4  # distinct favourites over the shelf's alerts
    assert empty["units_short"] == 12.8 and empty["value_at_risk"] == 32.0
    assert (
        empty["impact"]
        == "4 favourite members affected; about 13 units (worth 32.00 at shelf price) short before the next delivery"
    )

    phantom = shelf_lines(
        pd.DataFrame(
            [
                alert(
                    4,
                    "phantom_stockout",
                    members=1,
                    source="records",
                    on_shelf=12.0,
                    book_units=12.0,
                    zero_sales_days=4,
                    usual_daily_units=3.1,
                ),
            ]
        ),
        BERLIN,
        now=NOW,
    ).iloc[0]
    assert (
        phantom["impact"] == "1 favourite member affected; about 3 units (worth 7.75 at shelf price) not sold each day"
    )

    # 5 units left against 4 expected: short only if sales beat the forecast; no money figure, so what the
    # rank is made of
    enough = shelf_lines(
        pd.DataFrame(
            [
                alert(
                    3,
                    "predicted_stockout",
                    probability=0.45,
                    empty_at="2026-11-25T17:00Z",
                    source="sensor",
                    on_shelf=5.0,
                    expected_demand_until_delivery=4.0,
                ),
            ]
        ),
        BERLIN,
        now=NOW,
    ).iloc[0]
    assert enough["value_at_risk"] is None and enough["reason"].startswith(
        "Possibly to run empty by Wed 25 Nov 18:00 CET (45 %; 5 units left)"
    )
    assert (
        enough["impact"]
        == "no favourite members affected; short before the next delivery only if sales beat the forecast; "
        f"{SEVERITY_MADE_OF}"
    )

    # a shelf_empty raised on arrival (no forecast in its evidence), members counted per alert (the report's
    # column), no price
    frame = (
        pd.DataFrame(
            [
                alert(
                    5,
                    "shelf_empty",
                    last_reading_units=0.0,
                    on_shelf=0.0,
                    last_reading_at="2026-11-23T17:30:00+00:00",
                    source="sensor",
                    sensor_id="X1",
                )
            ]
        )
        .drop(columns=["members", "unit_price"])
        .assign(members_affected=2)
    )
    frame["evidence"] = [json.dumps(e) for e in frame["evidence"]]  # as stored: JSON text
    arrival = shelf_lines(frame, BERLIN, now=NOW).iloc[0]
    assert arrival["reason"] == "Sensor reads 0 units (last reading today 18:30 CET)"
    assert arrival["impact"] == f"2 favourite members affected; {SEVERITY_MADE_OF}"
    assert "131" not in arrival["impact"] and arrival["value_at_risk"] is None


def test_a_prediction_that_is_due_within_a_day_is_today_and_one_already_past_is_now():
    frame = pd.DataFrame(
        [
            alert(
                1,
                "predicted_stockout",
                probability=0.8,
                empty_at="2026-11-24T10:00Z",
                source="records",
                on_shelf=3.0,
                expected_demand_until_delivery=6.0,
            )
        ]
    )
    line = shelf_lines(frame, BERLIN, now=NOW).iloc[0]
    assert line["priority"] == "Today" and line["units_short"] == 3.0 and line["value_at_risk"] == 7.5
    past = shelf_lines(frame.assign(expected_empty_at=pd.Timestamp("2026-11-23T10:00Z")), BERLIN, now=NOW).iloc[0]
    assert past["priority"] == "Act now" and past["units_short"] == 6.0  # empty by now: all of the demand is lost
    books_empty = shelf_lines(
        pd.DataFrame([alert(2, "predicted_stockout", source="records", on_shelf=0.0)]), BERLIN, now=NOW
    ).iloc[0]
    assert books_empty["reason"] == "Empty by the books (0 units on the shelf)"


def test_a_surge_the_readings_saw_is_said_in_the_reason():
    line = shelf_lines(
        pd.DataFrame(
            [
                alert(
                    1,
                    "predicted_stockout",
                    probability=0.9,
                    empty_at="2026-11-24T12:00Z",
                    source="sensor",
                    on_shelf=8.0,
                    readings_demand_ratio=2.5,
                    readings_units_gone=12.0,
                    forecast_units_then=3.0,
                ),
            ]
        ),
        BERLIN,
        now=NOW,
    ).iloc[0]
    assert "Selling faster than forecast: the sensor saw 12 units go where 3 were expected" in line["reason"]
    calm = shelf_lines(
        pd.DataFrame(
            [
                alert(
                    2,
                    "predicted_stockout",
                    probability=0.9,
                    source="sensor",
                    on_shelf=8.0,
                    readings_demand_ratio=1.0,
                    readings_units_gone=3.0,
                    forecast_units_then=3.0,
                )
            ]
        ),
        BERLIN,
        now=NOW,
    ).iloc[0]
    assert "faster than forecast" not in calm["reason"]
