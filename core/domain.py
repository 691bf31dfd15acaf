"""The domain's facts, each defined once: the alert types, the stores' trading hours and when a sensor
counts as stale. Imports nothing of the product, so every floor can use them.

A new alert type is one entry in ALERT_TYPES (what it claims, its label, rank, raise rule and the
wording of its reason) and the detector that writes its evidence in alerts.detect (DETECTORS).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

if TYPE_CHECKING:  # pandas is imported where a frame is at hand: the CLI starts without it
    import pandas as pd

    from core.settings import Settings

    # which rows of a frame (the frame `AlertType.reads` names) raise an alert type: a boolean mask
    RaiseRule: TypeAlias = Callable[[pd.DataFrame, Settings], pd.Series]

# ------------------------------------------------------------------------------------- alert types

PREDICTED_STOCKOUT = "predicted_stockout"
SHELF_EMPTY = "shelf_empty"
PHANTOM_STOCKOUT = "phantom_stockout"
SENSOR_STALE = "sensor_stale"

# The frame a raise rule reads: alerts.detect.stock_risks (one row per store x SKU), or the sensors
# with their `silent_hours` (alerts.detect.stale_sensor_candidates).
STOCK_RISKS, SENSORS = "stock_risks", "sensors"


class ShelfEvidence(Protocol):
    """What the wording of a reason reads of one shelf: its active alert types, their combined evidence
    (alerts.shelves.combined_evidence) and the helpers that say numbers and times as the store reads
    them. alerts.shelves builds it."""

    types: Sequence[str]
    ev: Mapping[str, Any]
    probability: float
    expected_empty_at: Any

    def num(self, key: str) -> float | None:
        """The evidence's number under `key`; None when missing, not a number or NaN."""
        ...

    def units(self, x: float) -> str:
        """A count of units as people write it: 12, 3.1, 0."""
        ...

    def when(self, ts: Any) -> str:
        """A stored time, store-local and labelled with the zone; "" for none."""
        ...

    def likelihood(self, p: float) -> str:
        """A probability in words ("Likely")."""
        ...


Wording: TypeAlias = Callable[[ShelfEvidence], list[str]]


@dataclass(frozen=True)
class AlertType:
    """What an alert type claims, who hears of it, how it is raised and how a person reads it."""

    name: str
    stockout: bool  # a claim about the shelf: the store manager acts, members are linked and told
    closes_when: str  # why detection resolves it, recorded in its history
    label: str  # the words a person reads (web lists, shelf lines)
    rank: int  # 0 first: the more concrete claim wins where a shelf's alerts disagree, and is listed first
    reads: str  # the frame `raises` reads: STOCK_RISKS or SENSORS
    raises: RaiseRule  # which rows raise it, or keep an open one open (see `opens`)
    reason: Wording  # its sentences in a shelf's reason (alerts.shelves.reason), [] when it has nothing to add
    opens: RaiseRule | None = None  # which rows may open a new one; None: every row that raises it
    empty_now: bool = False  # raised, the shelf is empty now (not later): refill at once


def _shelf_empty_raises(risks: pd.DataFrame, settings: Settings) -> pd.Series:
    return risks["shelf_empty"].astype(bool)


def _phantom_raises(risks: pd.DataFrame, settings: Settings) -> pd.Series:
    return risks["p_zero_run"] < settings.phantom_probability_threshold


def _predicted_keeps(risks: pd.DataFrame, settings: Settings) -> pd.Series:
    # hysteresis: an open prediction stays open down to the keep level
    return risks["p_stockout"] >= settings.alert_probability_threshold * settings.alert_keep_ratio


def _predicted_opens(risks: pd.DataFrame, settings: Settings) -> pd.Series:
    return risks["p_stockout"] >= settings.alert_probability_threshold


def _sensor_stale_raises(sensors: pd.DataFrame, settings: Settings) -> pd.Series:
    return is_stale(sensors["silent_hours"], settings.sensor_stale_hours)


def _shelf_empty_reason(s: ShelfEvidence) -> list[str]:
    units, on_shelf = s.num("last_reading_units"), s.num("on_shelf")
    read = s.when(s.ev.get("last_reading_at"))
    text = f"Sensor reads {s.units(units if units is not None else on_shelf or 0)} units" + (
        f" (last reading {read})" if read else ""
    )
    backroom = s.num("backroom_units")
    if backroom:
        text += f"; the books show {s.units(backroom)} more in the backroom: refill from there"
    return [text]


def _phantom_reason(s: ShelfEvidence) -> list[str]:
    days, usual = s.num("zero_sales_days"), s.num("usual_daily_units")
    book = s.num("book_units")
    claimed = book if book is not None else s.num("on_shelf")
    text = f"No sales for {s.units(days or 0)} days although the books show {s.units(claimed or 0)} units"
    if usual:
        text += f" (usually {s.units(usual)}/day)"
    return [text + ": check the shelf (phantom stock)"]


def _predicted_reason(s: ShelfEvidence) -> list[str]:
    if SHELF_EMPTY in s.types:  # the sensor already says it is empty
        return []
    sentences = []
    on_shelf, probability = s.num("on_shelf"), s.probability
    if on_shelf is not None and on_shelf <= 0:
        by = "the sensor" if s.ev.get("source") == "sensor" else "the books"
        sentences.append(f"Empty by {by} (0 units on the shelf)")
    else:
        by = s.when(s.expected_empty_at)
        text = f"{s.likelihood(probability)} to run empty" + (f" by {by}" if by else " before the next delivery")
        text += f" ({100 * probability:.0f} %" + (f"; {s.units(on_shelf)} units left)" if on_shelf is not None else ")")
        sentences.append(text)
    ratio, gone, then = s.num("readings_demand_ratio"), s.num("readings_units_gone"), s.num("forecast_units_then")
    if ratio is not None and ratio > 1 and gone is not None and then is not None:  # the readings overrode the forecast
        sentences.append(
            f"Selling faster than forecast: the sensor saw {s.units(gone)} units go where {s.units(then)} were expected"
        )
    return sentences


def _sensor_stale_reason(s: ShelfEvidence) -> list[str]:
    hours, sensor = s.num("silent_hours"), s.ev.get("sensor_id") or "of this shelf"
    if hours is None:
        return [f"Sensor {sensor} has never reported: check it"]
    last = s.when(s.ev.get("stale_last_reading_at", s.ev.get("last_reading_at")))
    return [
        f"Sensor {sensor} silent for {s.units(hours)} hours"
        + (f" (last reading {last})" if last else "")
        + ": check it"
    ]


# the most concrete claim first (rank): a sensor seeing it empty beats sales that stopped beats a forecast
ALERT_TYPES: dict[str, AlertType] = {
    t.name: t
    for t in (
        AlertType(
            SHELF_EMPTY,
            stockout=True,
            closes_when="a sensor shows the shelf stocked again",
            label="shelf empty",
            rank=0,
            reads=STOCK_RISKS,
            raises=_shelf_empty_raises,
            reason=_shelf_empty_reason,
            empty_now=True,
        ),
        AlertType(
            PHANTOM_STOCKOUT,
            stockout=True,
            closes_when="sales resumed or the records no longer claim stock",
            label="phantom stock",
            rank=1,
            reads=STOCK_RISKS,
            raises=_phantom_raises,
            reason=_phantom_reason,
            empty_now=True,
        ),
        AlertType(
            PREDICTED_STOCKOUT,
            stockout=True,
            closes_when="no longer likely to empty before the next delivery",
            label="predicted stock-out",
            rank=2,
            reads=STOCK_RISKS,
            raises=_predicted_keeps,
            opens=_predicted_opens,
            reason=_predicted_reason,
        ),
        # a data problem, not an empty shelf: routed to operations (webhook), never to members
        AlertType(
            SENSOR_STALE,
            stockout=False,
            closes_when="the sensor reports again",
            label="sensor silent",
            rank=3,
            reads=SENSORS,
            raises=_sensor_stale_raises,
            reason=_sensor_stale_reason,
        ),
    )
}
STOCKOUT_TYPES: tuple[str, ...] = tuple(name for name, t in ALERT_TYPES.items() if t.stockout)
EMPTY_NOW_TYPES: tuple[str, ...] = tuple(name for name, t in ALERT_TYPES.items() if t.empty_now)


def is_stockout(alert_type: str) -> bool:
    """Whether an alert claims a shelf is (or will be) empty; sensor_stale claims nothing of the kind."""
    return ALERT_TYPES[alert_type].stockout


def ranked(reads: str | None = None) -> list[AlertType]:
    """The registered alert types, most concrete claim first; only those whose rule reads `reads`."""
    return sorted((t for t in ALERT_TYPES.values() if reads is None or t.reads == reads), key=lambda t: t.rank)


def rank_of(alert_type: str) -> int:
    """An alert type's rank (0 first); a type not registered ranks after every registered one."""
    known = ALERT_TYPES.get(alert_type)
    return known.rank if known else 1 + max((t.rank for t in ALERT_TYPES.values()), default=-1)


def label_of(alert_type: str) -> str:
    """The words a person reads for an alert type; an unregistered one is its name with spaces."""
    known = ALERT_TYPES.get(alert_type)
    return known.label if known else alert_type.replace("_", " ")


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
