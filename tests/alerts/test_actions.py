"""Recommended actions: refill, transfer from the nearest stores of the chain, emergency order, nothing."""

import json

import pandas as pd
import pytest
from scipy import stats
from sqlalchemy import select

from alerts.actions import (
    NOTHING,
    ORDER,
    REFILL,
    TRANSFER,
    action_evidence,
    action_text,
    demand_quantile,
    distance_km,
    donor_order,
    recommend_actions,
)
from alerts.detect import detect_alerts
from core.settings import Settings
from sql import schema
from tests.conftest import WORLD_AS_OF

DELIVERY = pd.Timestamp("2026-11-25 06:00", tz="UTC")
# Utrecht, Amersfoort (~20 km), Rotterdam (~48 km), and Berlin in another chain
STORES = pd.DataFrame(
    {
        "store_id": ["S1", "S2", "S3", "S4"],
        "chain": ["North", "North", "north ", "East"],
        "latitude": [52.0907, 52.1561, 51.9244, 52.52],
        "longitude": [5.1214, 5.3878, 4.4777, 13.405],
    }
)


def risk_row(store, sku="A", on_shelf=0.0, book=None, source="records", demand=10.0, var=10.0):
    return {
        "store_id": store,
        "sku": sku,
        "on_shelf": on_shelf,
        "source": source,
        "book_units": on_shelf if book is None else book,
        "expected_demand": demand,
        "demand_var": var,
        "next_delivery_at": DELIVERY,
    }


def plan(rows, target="S1", empty_now=False, level=0.95, stores=STORES, capacity=None):
    risks = pd.DataFrame(rows)
    targets = pd.DataFrame({"store_id": [target], "sku": ["A"], "shelf_empty_now": [empty_now]})
    return recommend_actions(targets, risks, stores, level, capacity).iloc[0]


def test_the_need_is_the_demand_quantile_at_the_service_level():
    assert demand_quantile(10.0, 10.0, 0.95) == stats.poisson.ppf(0.95, 10)  # 15
    assert demand_quantile(10.0, 40.0, 0.95) > demand_quantile(10.0, 10.0, 0.95)  # overdispersed: more to cover
    assert demand_quantile(10.0, 10.0, 0.99) > demand_quantile(10.0, 10.0, 0.95)
    assert demand_quantile(0.0, 0.0, 0.95) == 0


def test_backroom_stock_refills_the_shelf_first():
    a = plan([risk_row("S1", on_shelf=3, book=30, source="sensor")])
    assert a["action"] == REFILL and a["need_units"] == 15 and a["short_units"] == 12
    assert a["refill_units"] == 12 and a["transfer_units"] == 0 and a["order_units"] == 0
    # the shelf holds only 8: the refill stops there and the rest comes from elsewhere
    capped = plan([risk_row("S1", on_shelf=3, book=30, source="sensor")], capacity={"A": 8})
    assert capped["refill_units"] == 5 and capped["order_units"] == 7


def test_transfers_come_from_the_nearest_stores_of_the_chain_that_can_spare_them():
    rows = [
        risk_row("S1", on_shelf=1),
        risk_row("S2", on_shelf=20),
        risk_row("S3", on_shelf=40),
        risk_row("S4", on_shelf=500),
    ]
    a = plan(rows)
    # S2 keeps its own 95 % need (15) and gives 5; S3 (further) gives the other 9; S4 is another chain
    assert a["action"] == TRANSFER and a["short_units"] == 14
    assert a["transfers"] == [
        {"store_id": "S2", "units": 5, "km": pytest.approx(19.8, abs=1.0)},
        {"store_id": "S3", "units": 9, "km": pytest.approx(47.8, abs=1.0)},
    ]
    assert a["order_units"] == 0


def test_what_no_store_can_spare_is_ordered():
    a = plan([risk_row("S1", on_shelf=2), risk_row("S2", on_shelf=16), risk_row("S4", on_shelf=500)])
    assert a["transfer_units"] == 1 and a["order_units"] == 12 and a["action"] == TRANSFER
    alone = plan([risk_row("S1", on_shelf=2)])
    assert alone["action"] == ORDER and alone["order_units"] == 13


def test_nothing_to_do_when_the_delivery_lands_before_the_shelf_is_needed():
    a = plan([risk_row("S1", on_shelf=0, demand=0.0, var=0.0)])
    assert a["action"] == NOTHING and a["short_units"] == 0
    assert action_text(action_evidence(a.to_dict()), "tomorrow 06:00 CET").startswith(
        "Nothing to do: the shelf's 0 units last until the delivery tomorrow 06:00 CET"
    )


def test_a_shelf_known_empty_counts_zero_whatever_the_books_say():
    a = plan([risk_row("S1", on_shelf=12)], empty_now=True)  # phantom stock: the books' 12 are not there
    assert a["shelf_units"] == 0 and a["short_units"] == 15 and a["refill_units"] == 0 and a["order_units"] == 15


def test_stores_without_coordinates_or_chain():
    assert distance_km(52.0, 5.0, None, 5.0) != distance_km(52.0, 5.0, 52.0, 5.0)  # NaN
    order = donor_order(
        pd.DataFrame({"store_id": ["A", "B", "C"], "latitude": [52.0, None, 52.1], "longitude": [5.0, None, 5.0]})
    )
    assert [s for s, _ in order["A"]] == ["C", "B"]  # one unnamed chain; unknown distance last
    order = donor_order(pd.DataFrame({"store_id": ["A", "B"]}))  # no optional columns at all
    assert order["A"] == [("B", pytest.approx(float("nan"), nan_ok=True))]


def test_the_action_in_words_names_every_step_and_the_numbers():
    rows = [risk_row("S1", on_shelf=1, book=4, source="sensor"), risk_row("S2", on_shelf=20)]
    text = action_text(action_evidence(plan(rows).to_dict()), "Wed 25 Nov 07:00 CET")
    assert text == (
        "Refill 3 from the backroom, transfer 5 from S2 (19.6 km), emergency order of 6: 14 units short of the 15 "
        "needed until the delivery Wed 25 Nov 07:00 CET (95 % chance; 1 on the shelf)"
    )


@pytest.mark.database("forecast")
def test_detection_stores_an_action_on_every_stock_out_alert(engine, tmp_path):  # noqa: F811
    detect_alerts(engine, Settings(database_url=str(engine.url), output_dir=tmp_path, as_of=WORLD_AS_OF))
    with engine.connect() as conn:
        rows = conn.execute(
            select(schema.alerts.c.alert_type, schema.alerts.c.evidence).where(
                schema.alerts.c.alert_type != "sensor_stale"
            )
        ).all()
    assert rows
    kinds = set()
    for alert_type, evidence in rows:
        action = json.loads(evidence)["action"]
        kinds.add(action["kind"])
        assert action["kind"] in (REFILL, TRANSFER, ORDER, NOTHING) and action["service_level"] == 0.95
        covered = action["refill_units"] + sum(t["units"] for t in action["transfers"]) + action["order_units"]
        assert covered == action["short_units"]  # every unit short has a source
        if alert_type == "predicted_stockout" and action["kind"] != NOTHING:
            assert action["short_units"] >= 1
    assert kinds & {TRANSFER, ORDER}
