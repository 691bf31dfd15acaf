"""The domain's facts, each defined once: the alert types, the stores' trading hours and when a sensor
counts as stale. Imports nothing of the product, so every floor can use them.

A new alert type is one entry in ALERT_TYPES (and the detector that raises it in alerts).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas is imported where a frame is at hand: the CLI starts without it
    import pandas as pd

# ------------------------------------------------------------------------------------- alert types

PREDICTED_STOCKOUT = "predicted_stockout"
SHELF_EMPTY = "shelf_empty"
PHANTOM_STOCKOUT = "phantom_stockout"
SENSOR_STALE = "sensor_stale"


@dataclass(frozen=True)
class AlertType:
    """What an alert type claims and who hears of it."""

    name: str
    stockout: bool  # a claim about the shelf: the store manager acts, members are linked and told
    closes_when: str  # why detection resolves it, recorded in its history


ALERT_TYPES: dict[str, AlertType] = {
    t.name: t
    for t in (
        AlertType(SHELF_EMPTY, True, "a sensor shows the shelf stocked again"),
        AlertType(PHANTOM_STOCKOUT, True, "sales resumed or the records no longer claim stock"),
        AlertType(PREDICTED_STOCKOUT, True, "no longer likely to empty before the next delivery"),
        # a data problem, not an empty shelf: routed to operations (webhook), never to members
        AlertType(SENSOR_STALE, False, "the sensor reports again"),
    )
}
STOCKOUT_TYPES: tuple[str, ...] = tuple(name for name, t in ALERT_TYPES.items() if t.stockout)


def is_stockout(alert_type: str) -> bool:
    """Whether an alert claims a shelf is (or will be) empty; sensor_stale claims nothing of the kind."""
    return ALERT_TYPES[alert_type].stockout


# ------------------------------------------------------------------------------ quarantine channels

# The way a quarantined row came in (quarantine.channel): a new source adds its channel here.
SALES_FILE, MQTT, REFERENCE_FILE = "sales_file", "mqtt", "reference_file"
QUARANTINE_CHANNELS: tuple[str, ...] = (SALES_FILE, MQTT, REFERENCE_FILE)


# ----------------------------------------------------------------------------------- trading hours

# Store-local hours as fractions of a day: doors open, doors close, the delivery is shelved.
OPEN_HOUR, CLOSE_HOUR, DELIVERY_HOUR = 8.0, 22.0, 6.0


# -------------------------------------------------------------------------------------- stale sensor


def silent_hours(last_reading_at: pd.Series, as_of: pd.Timestamp) -> pd.Series:
    """Hours from each sensor's newest trusted reading (device time: when the shelf was seen) to
    `as_of`; NaN for a sensor never heard from."""
    import pandas as pd

    return (as_of - pd.to_datetime(last_reading_at, utc=True)).dt.total_seconds() / 3600


def is_stale(silent: pd.Series, stale_after_hours: float) -> pd.Series:
    """The one stale-sensor rule (SHELFWATCH_SENSOR_STALE_HOURS): never heard from, or silent for at
    least `stale_after_hours`."""
    return silent.isna() | (silent >= stale_after_hours)
