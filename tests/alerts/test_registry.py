"""One registry for alert types: each type's label, rank, reason wording and raise rule are its
core.domain.ALERT_TYPES entry, and detection, the shelf lines and the benches read them from there."""

from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

import core.domain
from alerts import detect
from alerts.shelves import shelf_lines
from core.domain import (
    ALERT_TYPES,
    PHANTOM_STOCKOUT,
    PREDICTED_STOCKOUT,
    SENSOR_STALE,
    SENSORS,
    SHELF_EMPTY,
    STOCK_RISKS,
    AlertType,
)
from core.settings import Settings

NOW = pd.Timestamp("2026-11-23 09:00", tz="UTC")
FAKE = "fake_gap"


class Shelf:
    """The least a reason wording reads (core.domain.ShelfEvidence)."""

    def __init__(self, types, ev, probability=0.8, expected_empty_at=None):
        self.types, self.ev, self.probability, self.expected_empty_at = types, ev, probability, expected_empty_at

    def num(self, key):
        v = self.ev.get(key)
        return None if v is None else float(v)

    def units(self, x):
        return f"{float(x):g}"

    def when(self, ts):
        return "" if ts is None else str(ts)

    def likelihood(self, p):
        return "Likely"


def risk_frame():
    return pd.DataFrame(
        {
            "shelf_empty": [True, False, False, False],
            "p_zero_run": [np.nan, 0.001, np.nan, 0.5],
            "p_stockout": [np.nan, np.nan, 0.9, 0.4],
        }
    )


def test_every_type_has_a_label_a_rank_a_reason_and_a_raise_rule():
    assert set(ALERT_TYPES) == {SHELF_EMPTY, PHANTOM_STOCKOUT, PREDICTED_STOCKOUT, SENSOR_STALE}
    ranks = [t.rank for t in ALERT_TYPES.values()]
    assert len(set(ranks)) == len(ranks), "two types share a rank"
    assert [t.name for t in core.domain.ranked()] == [SHELF_EMPTY, PHANTOM_STOCKOUT, PREDICTED_STOCKOUT, SENSOR_STALE]
    risks, settings = risk_frame(), Settings()
    sensors = pd.DataFrame({"silent_hours": [np.nan, 1.0, 1000.0]})
    for name, t in ALERT_TYPES.items():
        assert t.name == name
        assert isinstance(t.label, str) and t.label.strip() and t.label != name
        assert isinstance(t.rank, int)
        assert t.closes_when
        sentences = t.reason(Shelf([name], {"on_shelf": 3, "silent_hours": 30, "zero_sales_days": 4}))
        assert sentences and all(isinstance(x, str) and x for x in sentences), name
        assert t.reads in (STOCK_RISKS, SENSORS)
        frame = risks if t.reads == STOCK_RISKS else sensors
        for rule in (t.raises, t.opens):
            if rule is not None:
                mask = rule(frame, settings)
                assert mask.dtype == bool and len(mask) == len(frame), name
        # a stock-risk type is written by its detector; sensor_stale by stale_sensor_candidates
        assert (name in detect.DETECTORS) == (t.reads == STOCK_RISKS), name
    assert set(detect.DETECTORS) <= set(ALERT_TYPES)


def test_the_raise_rules_are_todays_rules():
    risks, settings = risk_frame(), Settings(phantom_probability_threshold=0.01, alert_probability_threshold=0.8)
    raised = {t.name: list(t.raises(risks, settings)) for t in core.domain.ranked(STOCK_RISKS)}
    assert raised == {
        SHELF_EMPTY: [True, False, False, False],
        PHANTOM_STOCKOUT: [False, True, False, False],
        PREDICTED_STOCKOUT: [False, False, True, True],  # the keep level: 0.8 x alert_keep_ratio
    }
    assert list(ALERT_TYPES[PREDICTED_STOCKOUT].opens(risks, settings)) == [False, False, True, False]
    sensors = pd.DataFrame({"silent_hours": [np.nan, 1.0, 1000.0]})
    assert list(ALERT_TYPES[SENSOR_STALE].raises(sensors, settings)) == [True, False, True]


def alerts_frame(types):
    return pd.DataFrame(
        {
            "alert_id": range(1, len(types) + 1),
            "store_id": "S1",
            "sku": "A",
            "alert_type": types,
            "status": "open",
            "probability": 0.9,
            "expected_empty_at": None,
            "severity": 1.0,
            "evidence": [{"on_shelf": 0.0, "source": "sensor", "last_reading_units": 0.0}] * len(types),
            "opened_at": pd.Timestamp("2026-11-23 08:00", tz="UTC"),
        }
    )


def fake_registry(**changes):
    """A copy of the registry with a fake type ranked first, and `changes` to existing entries."""
    registry = {name: replace(t, **changes.get(name, {})) for name, t in ALERT_TYPES.items()}
    registry[FAKE] = AlertType(
        FAKE,
        stockout=True,
        closes_when="the gap is gone",
        label="gap on the shelf",
        rank=-1,
        reads=STOCK_RISKS,
        raises=lambda risks, settings: pd.Series(True, index=risks.index),
        reason=lambda s: ["A fake gap says so"],
    )
    return registry


def test_shelf_lines_read_the_registry(monkeypatch):
    now = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    before = shelf_lines(alerts_frame([SHELF_EMPTY, FAKE]), "UTC", now).iloc[0]
    assert before["alert_types"] == [SHELF_EMPTY, FAKE]  # an unknown type goes last, named by its name
    assert before["type_labels"] == ["shelf empty", "fake gap"]
    assert "A fake gap" not in before["reason"]

    monkeypatch.setattr(core.domain, "ALERT_TYPES", fake_registry(**{SHELF_EMPTY: {"label": "nothing on the shelf"}}))
    line = shelf_lines(alerts_frame([SHELF_EMPTY, FAKE]), "UTC", now).iloc[0]
    assert line["alert_types"] == [FAKE, SHELF_EMPTY]  # ranked first
    assert line["type_labels"] == ["gap on the shelf", "nothing on the shelf"]
    assert line["reason"].startswith("A fake gap says so. Sensor reads 0 units")
    assert line["priority"] == "Act now"  # shelf_empty says the shelf is empty now

    monkeypatch.setattr(core.domain, "ALERT_TYPES", fake_registry(**{SHELF_EMPTY: {"empty_now": False}}))
    assert shelf_lines(alerts_frame([SHELF_EMPTY]), "UTC", now).iloc[0]["priority"] == "Check sensor"


def phantom_inputs():
    days = pd.date_range("2026-10-20", "2026-11-22")
    units = np.r_[np.full(len(days) - 5, 6.0), np.zeros(5)]  # 6 a day, then nothing for 5 days
    return detect.DetectionInputs(
        as_of=NOW,
        stores=pd.DataFrame({"store_id": ["S1"], "timezone": ["UTC"]}),
        products=pd.DataFrame({"sku": ["A"], "unit_price": [1.0]}),
        readings=pd.DataFrame(columns=["store_id", "sku", "sensor_id", "kind", "units", "seq", "device_ts"]).astype(
            {"device_ts": "datetime64[ns, UTC]", "units": float}
        ),
        sales=pd.DataFrame({"store_id": "S1", "sku": "A", "date": days, "units": units}),
        records=pd.DataFrame({"store_id": ["S1"], "sku": ["A"], "book_units": [12.0], "as_of": [NOW]}),
        deliveries=pd.DataFrame(
            columns=["store_id", "sku", "expected_at", "expected_units", "received_at", "received_units"]
        ).astype({"expected_at": "datetime64[ns, UTC]", "received_at": "datetime64[ns, UTC]"}),
        forecast=pd.DataFrame(columns=["store_id", "sku", "date", "mean", "p10", "p90"]),
        lines=pd.DataFrame(),
        sensors=pd.DataFrame(columns=["sensor_id", "store_id", "sku"]),
        dispersion=pd.DataFrame(columns=["store_id", "sku", "dispersion"]),
    )


def test_detection_reads_the_registry(monkeypatch):
    inp, settings = phantom_inputs(), Settings()
    assert list(detect.alert_candidates(inp, settings)["alert_type"]) == [PHANTOM_STOCKOUT]

    never = {"raises": lambda risks, settings: pd.Series(False, index=risks.index)}
    monkeypatch.setattr(core.domain, "ALERT_TYPES", fake_registry(**{PHANTOM_STOCKOUT: never}))
    monkeypatch.setitem(detect.DETECTORS, FAKE, lambda pos: (0.5, None, {"fake": True}))
    found = detect.alert_candidates(inp, settings)
    assert list(found["alert_type"]) == [FAKE]
    assert found["evidence"][0]["fake"] is True and found["evidence"][0]["detectors"] == [FAKE]


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.8])
def test_the_benches_raise_by_the_registry(monkeypatch, threshold):
    from lab.bench.actions import opens_alert

    risks = risk_frame()
    settings = replace(Settings(), alert_probability_threshold=threshold)
    # the rule the actions bench wrote out before the registry
    written = (
        (risks["p_stockout"] >= threshold)
        | risks["shelf_empty"]
        | (risks["p_zero_run"] < settings.phantom_probability_threshold)
    )
    assert list(opens_alert(risks, settings)) == list(written)
    assert list(opens_alert(risks, settings, empty_now=True)) == [True, True, False, False]

    monkeypatch.setattr(core.domain, "ALERT_TYPES", fake_registry())
    assert list(opens_alert(risks, settings)) == [True] * len(risks)
