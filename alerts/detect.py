"""Alert detection: read the latest state, compute candidates (pure), persist idempotently.

One active (open or acknowledged) alert per store x SKU x type: a re-run updates it, never adds a
copy. An active alert the detectors no longer raise is resolved by the detector, with the reason.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, Select, func, select

from alerts.actions import action_evidence, recommend_actions
from alerts.lifecycle import (
    ACTIVE,
    DETECTOR,
    escalate_overdue,
    expire_stale_predictions,
    record_event,
    transition,
    utc_now,
)
from alerts.members import favourite_members
from alerts.notify import queue_notifications
from alerts.risk import (
    NOWCAST_HOURS,
    books_now,
    demand_moments,
    latest_readings,
    next_deliveries,
    nowcast_moments,
    observed_demand_ratio,
    predicted_stockouts,
    readings_from_latest,
    stock_positions,
    store_deliveries,
    zero_run_length,
    zero_run_probability,
)
from alerts.substitutes import COLUMNS as SUBSTITUTE_COLUMNS
from alerts.substitutes import shelves_in_stock, suggest_substitutes
from core.db import NoDataYet, insert_ignore
from core.domain import (
    ALERT_TYPES,
    PHANTOM_STOCKOUT,
    PREDICTED_STOCKOUT,
    SENSOR_STALE,
    SHELF_EMPTY,
    STOCK_RISKS,
    STOCKOUT_TYPES,
    ranked,
    silent_hours,
)
from core.settings import Settings
from sql import schema

ALERT_FIELDS = ["alert_type", "probability", "expected_empty_at", "severity", "evidence"]
log = logging.getLogger(__name__)
READINGS_WINDOW = pd.Timedelta(days=14)  # a sensor with no reading for this long counts as never read
ID_CHUNK = 500  # alert ids per IN (...) list when substitutes are replaced


@dataclass
class DetectionInputs:
    """Everything detection reads, as frames (UTC timestamps)."""

    as_of: pd.Timestamp
    stores: pd.DataFrame
    products: pd.DataFrame
    readings: pd.DataFrame
    sales: pd.DataFrame
    records: pd.DataFrame
    deliveries: pd.DataFrame
    forecast: pd.DataFrame
    lines: pd.DataFrame
    sensors: pd.DataFrame
    dispersion: pd.DataFrame  # store_id, sku, dispersion[, level_dispersion] of the forecast run (forecast_models)


def _utc(series: pd.Series) -> pd.Series:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    return pd.to_datetime(series, utc=True)


def lagging_stores(engine: Engine, as_of: pd.Timestamp, max_lag_days: int = 1) -> list[str]:
    """A warning per store whose sales end more than `max_lag_days` days before `as_of` (or that has
    none): its book stock misses the sales since, so its alerts are out of date. "Now" is never taken
    from the data, so one store's late or early rows move no other store's clock."""
    sd, st = schema.sales_daily, schema.stores
    with engine.connect() as conn:
        last = dict(conn.execute(select(sd.c.store_id, func.max(sd.c.date)).group_by(sd.c.store_id)).all())
        stores = conn.execute(select(st.c.store_id).order_by(st.c.store_id)).scalars().all()
    if not last:
        raise NoDataYet("no sales loaded: ingest sales before detecting alerts")
    day = as_of.tz_convert("UTC").date()
    warnings = []
    for store in sorted(set(stores) | set(last)):
        end = last.get(store)
        if end is None:
            warnings.append(f"store {store}: no sales loaded")
        elif (day - end).days > max_lag_days:
            warnings.append(
                f"store {store}: sales end {end}, {(day - end).days} days before as-of {as_of:%Y-%m-%d %H:%M} UTC"
            )
    return warnings


def recent_readings(conn: Connection, since: pd.Timestamp) -> pd.DataFrame:
    """Each sensor's newest reading since `since`, from latest_sensor_readings: one row per sensor,
    however many readings sensor_readings holds."""
    latest = schema.latest_sensor_readings
    return readings_from_latest(pd.read_sql(select(latest).where(latest.c.last_device_ts >= since), conn), since)


def reading_history(conn: Connection, as_of: pd.Timestamp, hours: float = NOWCAST_HOURS) -> pd.DataFrame:
    """Every trusted reading of the last `hours` up to `as_of`, for the selling rate the readings show
    (risk.observed_demand_ratio). Reached from latest_sensor_readings through the (store_id, sku,
    device_ts) index: a few rows per recently heard sensor, never a scan of the readings."""
    r, latest = schema.sensor_readings, schema.latest_sensor_readings
    since = as_of - pd.Timedelta(hours=hours)
    key = (
        (r.c.store_id == latest.c.store_id)
        & (r.c.sku == latest.c.sku)
        & (r.c.sensor_id == latest.c.sensor_id)
        & (r.c.kind == latest.c.kind)
    )
    stmt = (
        select(r.c.store_id, r.c.sku, r.c.sensor_id, r.c.kind, r.c.units, r.c.seq, r.c.device_ts, r.c.clock_skew)
        .join(latest, key)
        .where(
            latest.c.last_device_ts >= since, r.c.device_ts >= since, r.c.device_ts <= as_of, r.c.clock_skew.is_(False)
        )
    )
    history = pd.read_sql(stmt, conn)
    return history.assign(device_ts=_utc(history["device_ts"]), clock_skew=False)


# reads the sensor readings since a time: recent_readings, or the scale bench's raw-table query
ReadReadings = Callable[[Connection, pd.Timestamp], pd.DataFrame]


def load_inputs(
    engine: Engine, as_of: pd.Timestamp, history_days: int = 120, read_readings: ReadReadings = recent_readings
) -> DetectionInputs:
    """What detection reads; `read_readings(conn, since)` reads the sensor readings (the scale
    benchmark passes the raw-table query of the design before latest_sensor_readings)."""
    since = (as_of - pd.Timedelta(days=history_days)).date()
    s = schema
    with engine.connect() as conn:

        def read(stmt: Select[*tuple[Any, ...]]) -> pd.DataFrame:
            return pd.read_sql(stmt, conn)

        run_id = conn.execute(
            select(s.forecast_runs.c.run_id).order_by(s.forecast_runs.c.created_at.desc()).limit(1)
        ).scalar()
        frames = dict(
            stores=read(select(s.stores)),
            products=read(select(s.products)),
            readings=read_readings(conn, as_of - READINGS_WINDOW),
            sales=read(select(s.sales_daily).where(s.sales_daily.c.date >= since)),
            records=read(select(s.inventory_records)),
            deliveries=read(select(s.deliveries).where(s.deliveries.c.expected_at >= as_of - pd.Timedelta(days=14))),
            forecast=read(select(s.forecasts).where(s.forecasts.c.run_id == run_id)),
            lines=read(select(s.purchase_lines).where(s.purchase_lines.c.date >= since)),
            sensors=read(select(s.sensors.c.sensor_id, s.sensors.c.store_id, s.sensors.c.sku)),
            dispersion=read(
                select(
                    s.forecast_models.c.store_id,
                    s.forecast_models.c.sku,
                    s.forecast_models.c.dispersion,
                    s.forecast_models.c.level_dispersion,
                ).where(s.forecast_models.c.run_id == run_id)
            ),
        )
        # latest_sensor_readings holds one row per sensor: the last hours' readings (selling rate) are
        # read beside it; a reader of the raw readings (the scale bench's 0006 design) already has them
        history = reading_history(conn, as_of) if read_readings is recent_readings else frames["readings"].iloc[0:0]
    frames["readings"] = (
        pd.concat([frames["readings"], history], ignore_index=True) if len(history) else frames["readings"]
    )
    frames["readings"]["device_ts"] = _utc(frames["readings"]["device_ts"])
    for col in ("expected_at", "received_at"):
        frames["deliveries"][col] = _utc(frames["deliveries"][col])
    rec = frames["records"]
    rec["as_of"] = _utc(rec["as_of"])
    rec = rec[rec["as_of"] <= as_of].sort_values("as_of").groupby(["store_id", "sku"]).last().reset_index()
    frames["records"] = rec
    return DetectionInputs(as_of=as_of, **frames)


def stock_risks(inp: DetectionInputs, settings: Settings) -> pd.DataFrame:
    """Every store x SKU's position and what each stock detector makes of it, before any threshold.

    Columns: the stock position (on_shelf, source, reading, book units, deliveries), `p_stockout` and
    its window (predicted_stockout) with the readings' selling rate behind it (`observed_units`, `expected_units`,
    `demand_ratio`: NaN without two recent readings), `zero_sales_days`, `usual_daily_units` and `p_zero_run`
    (phantom_stockout; NaN where the records/sensor claim no stock or the run is shorter than 2 days),
    `shelf_empty`, and `daily_mean` (forecast, else the last 28 days' sales).
    """
    tz = dict(zip(inp.stores["store_id"], inp.stores["timezone"], strict=True))
    latest = (
        latest_readings(inp.readings)
        if len(inp.readings)
        else pd.DataFrame(columns=["store_id", "sku", "sensor_id", "units", "device_ts"])
    )
    positions = stock_positions(latest, inp.sales, books_now(inp.records, inp.deliveries, inp.as_of), tz)
    positions = positions.merge(next_deliveries(inp.deliveries, inp.as_of), on=["store_id", "sku"], how="left")
    positions = positions.merge(store_deliveries(inp.deliveries, inp.as_of), on="store_id", how="left")
    for own, store in (
        ("next_delivery_at", "store_next_delivery_at"),
        ("following_delivery_at", "store_following_delivery_at"),
    ):
        positions[own] = positions[own].fillna(positions[store])
    moments = demand_moments(inp.forecast.assign(date=pd.to_datetime(inp.forecast["date"])), inp.dispersion)
    ratios = observed_demand_ratio(inp.readings, inp.deliveries, moments, tz, inp.as_of)
    moments = nowcast_moments(moments, ratios)
    predicted = predicted_stockouts(positions, moments, inp.as_of, tz).rename(columns={"probability": "p_stockout"})
    positions = positions.merge(predicted, on=["store_id", "sku"], how="left").merge(
        ratios, on=["store_id", "sku"], how="left"
    )
    upcoming = moments[moments["date"] >= pd.Timestamp(inp.as_of.date())].sort_values("date")
    forecast_daily = (
        upcoming.groupby(["store_id", "sku"]).head(7).groupby(["store_id", "sku"])["mean"].mean().rename("daily_mean")
    )
    positions = positions.merge(forecast_daily, on=["store_id", "sku"], how="left")

    sales = inp.sales.assign(date=pd.to_datetime(inp.sales["date"])).sort_values("date", kind="stable")
    history = {k: g.to_numpy(float) for k, g in sales.groupby(["store_id", "sku"])["units"]}
    empty = settings.empty_shelf_units
    positions["shelf_empty"] = (positions["source"] == "sensor") & (positions["reading_units"] <= empty)
    # phantom stock is what only the books claim: a shelf a sensor watches is either seen empty
    # (shelf_empty) or seen stocked (then it is not empty, whatever the sales say)
    claims_stock = (positions["source"] == "records") & (positions["on_shelf"] > 0)
    phantom = []
    for i, key, claims in zip(
        positions.index, zip(positions["store_id"], positions["sku"], strict=True), claims_stock, strict=True
    ):
        units = history.get(key, np.zeros(0))
        run = zero_run_length(units)
        p_run, rate = zero_run_probability(units[: len(units) - run], run) if claims and run >= 2 else (np.nan, np.nan)
        recent = float(units[-28:].mean()) if len(units) else 0.0
        phantom.append((i, run, p_run, rate, recent))
    extra = pd.DataFrame(
        phantom, columns=["i", "zero_sales_days", "p_zero_run", "usual_daily_units", "recent_daily"]
    ).set_index("i")
    positions = positions.join(extra)
    positions["daily_mean"] = pd.to_numeric(positions["daily_mean"]).fillna(positions["recent_daily"])
    return positions.drop(columns=["recent_daily"])


# What a stock-risk alert type says of a shelf it is raised on (a row of stock_risks): its probability,
# when the shelf is expected to empty, and the evidence it adds to the shelf's. One per registered type
# that reads STOCK_RISKS (core.domain.ALERT_TYPES); sensor_stale has its own, stale_sensor_candidates.
Claim = tuple[float, Any, dict[str, Any]]


def shelf_empty_claim(pos: Any) -> Claim:
    return 1.0, pos.reading_ts, {}


def phantom_claim(pos: Any) -> Claim:
    return (
        1.0 - float(pos.p_zero_run),
        None,
        {
            "zero_sales_days": int(pos.zero_sales_days),
            "usual_daily_units": round(float(pos.usual_daily_units), 2),
            "p_zero_run": float(pos.p_zero_run),
        },
    )


def predicted_claim(pos: Any) -> Claim:
    return (
        float(pos.p_stockout),
        pos.expected_empty_at,
        {
            "expected_demand_until_delivery": round(float(pos.expected_demand), 2),
            # the readings' selling rate against the forecast (risk.observed_demand_ratio), when they show one
            "readings_demand_ratio": None if pd.isna(pos.demand_ratio) else round(float(pos.demand_ratio), 2),
            "readings_units_gone": None if pd.isna(pos.observed_units) else round(float(pos.observed_units), 1),
            "forecast_units_then": None if pd.isna(pos.expected_units) else round(float(pos.expected_units), 1),
            "days_of_cover": None if np.isinf(pos.days_of_cover) else round(float(pos.days_of_cover), 2),
        },
    )


DETECTORS: dict[str, Callable[[Any], Claim]] = {
    SHELF_EMPTY: shelf_empty_claim,
    PHANTOM_STOCKOUT: phantom_claim,
    PREDICTED_STOCKOUT: predicted_claim,
}


def alert_candidates(inp: DetectionInputs, settings: Settings, risks: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per store x SKU x alert type that needs attention, with probability and evidence.
    `risks` is `stock_risks(inp, settings)` when the caller has it already (detection reuses it for
    the substitutes' shelves)."""
    risks = stock_risks(inp, settings) if risks is None else risks
    price = dict(zip(inp.products["sku"], inp.products["unit_price"], strict=True))
    # each type's raise rule is its core.domain.ALERT_TYPES entry; the evidence it adds, its DETECTORS entry
    types = ranked(STOCK_RISKS)
    raised = {t.name: t.raises(risks, settings).to_numpy(bool) for t in types}
    opens = {t.name: t.opens(risks, settings).to_numpy(bool) for t in types if t.opens is not None}
    none = np.zeros(len(risks), bool)
    any_raised = np.logical_or.reduce([none, *raised.values()])
    empty_now = np.logical_or.reduce([none, *(raised[t.name] for t in types if t.empty_now)])
    targets = risks.loc[any_raised, ["store_id", "sku"]].assign(shelf_empty_now=empty_now[any_raised])
    capacity = (
        dict(zip(inp.products["sku"], inp.products["shelf_capacity"], strict=True))
        if "shelf_capacity" in inp.products
        else None
    )
    actions = recommend_actions(targets, risks, inp.stores, settings.service_level, capacity)
    action_of = {(a["store_id"], a["sku"]): action_evidence(a) for a in actions.to_dict("records")}
    rows = []
    for i in np.flatnonzero(any_raised):
        pos = risks.iloc[i]
        found = [t.name for t in types if raised[t.name][i]]
        evidence = {
            "on_shelf": round(float(pos.on_shelf), 2) if pd.notna(pos.on_shelf) else None,
            "source": pos.source,
            "last_reading_at": pos.reading_ts.isoformat() if pd.notna(pos.reading_ts) else None,
            "last_reading_units": None if pd.isna(pos.reading_units) else round(float(pos.reading_units), 2),
            "book_units": None if pd.isna(pos.book_units) else float(pos.book_units),
            # what the records hold beyond the shelf: the backroom (known when a sensor reads the shelf)
            "backroom_units": None
            if pd.isna(pos.book_units) or pos.source != "sensor"
            else round(max(float(pos.book_units) - float(pos.on_shelf), 0.0), 2),
            "next_delivery_units": None if pd.isna(pos.next_delivery_units) else float(pos.next_delivery_units),
            "next_delivery_at": pos.next_delivery_at.isoformat() if pd.notna(pos.next_delivery_at) else None,
            "late_delivery_since": pos.late_since.isoformat() if pd.notna(pos.late_since) else None,
            "detectors": sorted(found),
            # what to do about it (alerts.actions), from the same demand until the next delivery
            "action": action_of.get((pos.store_id, pos.sku)),
        }
        for alert_type in found:
            probability, empty_at, extra = DETECTORS[alert_type](pos)
            rows.append(
                {
                    "store_id": pos.store_id,
                    "sku": pos.sku,
                    "alert_type": alert_type,
                    "probability": round(probability, 4),
                    "expected_empty_at": empty_at if pd.notna(empty_at) else None,
                    "revenue_at_risk_per_day": round(float(pos.daily_mean) * float(price.get(pos.sku, 0.0)), 2),
                    "evidence": {**evidence, **extra},
                    # below the threshold but above the keep level, a prediction only keeps an open alert open
                    "opens": bool(opens[alert_type][i]) if alert_type in opens else True,
                }
            )
    rows += stale_sensor_candidates(inp, settings)
    return pd.DataFrame(rows)


def stale_sensor_candidates(inp: DetectionInputs, settings: Settings) -> list[dict[str, Any]]:
    """`sensor_stale` by the one stale-sensor rule (core.domain.is_stale) at "now": a data
    problem, routed to operations (webhook), not to the store manager's stock-out list."""
    last = (
        inp.readings.groupby("sensor_id")["device_ts"].max()
        if len(inp.readings)
        else pd.Series(dtype="datetime64[ns, UTC]")
    )
    sensors = inp.sensors.assign(last_reading_at=inp.sensors["sensor_id"].map(last))
    sensors["silent_hours"] = silent_hours(sensors["last_reading_at"], inp.as_of)
    rows = []
    stale = ALERT_TYPES[SENSOR_STALE].raises(sensors, settings)  # core.domain.is_stale
    for sensor in sensors[stale].itertuples(index=False):
        never = pd.isna(sensor.silent_hours)
        rows.append(
            {
                "store_id": sensor.store_id,
                "sku": sensor.sku,
                "alert_type": SENSOR_STALE,
                "probability": 1.0,
                "expected_empty_at": None,
                "revenue_at_risk_per_day": 0.0,
                "evidence": {
                    "sensor_id": sensor.sensor_id,
                    "last_reading_at": None if never else sensor.last_reading_at.isoformat(),
                    "silent_hours": None if never else round(sensor.silent_hours, 1),
                },
            }
        )
    return rows


def severity(candidates: pd.DataFrame, favourites: pd.DataFrame, as_of: pd.Timestamp) -> pd.Series:
    """Rank key: probability x urgency x (daily revenue at risk + per affected favourite member 2 plus
    their favourite score). Urgency = 24 / (24 + hours until the shelf is expected to empty).

    Money, time and loyal customers all count: a slow item that ten regulars buy can outrank a fast
    one nobody in particular depends on, and a shelf empty now outranks one empty in three days.
    """
    per_key = favourites.groupby(["store_id", "sku"]).agg(n=("member_id", "size"), value=("score", "sum"))
    keys = candidates.set_index(["store_id", "sku"]).index
    members = per_key.reindex(keys).fillna(0.0)
    empty_at = pd.to_datetime(candidates["expected_empty_at"], utc=True)
    hours = ((empty_at - as_of).dt.total_seconds() / 3600).clip(lower=0).fillna(0.0).to_numpy()
    urgency = 24.0 / (24.0 + hours)
    value = (
        candidates["revenue_at_risk_per_day"].to_numpy() + 2.0 * members["n"].to_numpy() + members["value"].to_numpy()
    )
    return pd.Series(candidates["probability"].to_numpy() * urgency * value, index=candidates.index).round(4)


def detect_alerts(
    engine: Engine,
    settings: Settings,
    as_of: pd.Timestamp | None = None,
    read_readings: ReadReadings = recent_readings,
) -> dict[str, Any]:
    """Detect at `as_of` (default `settings.clock()`: SHELFWATCH_AS_OF or the wall clock), link members
    and persist; running it again on the same data changes nothing. Stores whose sales lag as-of by
    more than a day are named in `warnings` (and logged)."""
    as_of = pd.Timestamp(as_of if as_of is not None else settings.clock())
    as_of = as_of.tz_localize("UTC") if as_of.tzinfo is None else as_of.tz_convert("UTC")
    warnings = lagging_stores(engine, as_of)
    for warning in warnings:
        log.warning("detection as of %s: %s", as_of.isoformat(), warning)
    inp = load_inputs(
        engine, as_of, history_days=max(120, settings.favourite_window_days + 1), read_readings=read_readings
    )
    risks = stock_risks(inp, settings)
    candidates = alert_candidates(inp, settings, risks)
    favourites = favourite_members(
        inp.lines,
        as_of,
        settings.favourite_window_days,
        settings.favourite_min_purchase_days,
        settings.favourite_max_days_since,
    )
    if len(candidates):
        candidates["severity"] = severity(candidates, favourites, as_of)
    result: dict[str, Any] = persist_alerts(engine, candidates, favourites, as_of, settings)
    result["substitutes"] = persist_substitutes(engine, inp, risks)
    result["queued"] = queue_notifications(engine, settings, utc_now())
    result["warnings"] = warnings
    return result


def _row_values(c: Mapping[str, Any]) -> dict[str, Any]:
    empty = c["expected_empty_at"]
    return {
        "alert_type": c["alert_type"],
        "probability": float(c["probability"]),
        "expected_empty_at": None if empty is None or pd.isna(empty) else pd.Timestamp(empty).to_pydatetime(),
        "severity": float(c["severity"]),
        "evidence": json.dumps(c["evidence"], sort_keys=True, default=str),
    }


def _same(existing: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    def norm(v: Any) -> Any:  # a stored value of any column; times compared in UTC
        if isinstance(v, pd.Timestamp) or hasattr(v, "isoformat"):
            return (
                pd.Timestamp(v).tz_localize("UTC")
                if pd.Timestamp(v).tzinfo is None
                else pd.Timestamp(v).tz_convert("UTC")
            )
        return v

    return all(norm(existing[f]) == norm(new[f]) for f in ALERT_FIELDS)


def persist_alerts(
    engine: Engine,
    candidates: pd.DataFrame,
    favourites: pd.DataFrame,
    as_of: pd.Timestamp,
    settings: Settings | None = None,
) -> dict[str, int]:
    """Open new alerts, update changed ones, resolve those no longer raised; escalate and expire."""
    a, am = schema.alerts, schema.alert_members
    now = as_of.to_pydatetime()
    opened = updated = resolved = linked = 0
    with engine.begin() as conn:
        active = {
            (r.store_id, r.sku, r.alert_type): r._asdict()
            for r in conn.execute(select(a).where(a.c.status.in_(ACTIVE)))
        }
        wanted = set()
        for c in candidates.to_dict("records"):
            key = (c["store_id"], c["sku"], c["alert_type"])
            if key not in active and not c.get("opens", True):
                continue
            wanted.add(key)
            values = _row_values(c)
            if key in active:
                alert_id = active[key]["alert_id"]
                if not _same(active[key], values):
                    conn.execute(a.update().where(a.c.alert_id == alert_id).values(**values, updated_at=now))
                    record_event(conn, alert_id, now, DETECTOR, "updated", active[key]["status"], active[key]["status"])
                    updated += 1
            else:
                alert_id = conn.execute(
                    a.insert()
                    .values(store_id=key[0], sku=key[1], status="open", opened_at=now, updated_at=now, **values)
                    .returning(a.c.alert_id)
                ).scalar_one()
                record_event(conn, alert_id, now, DETECTOR, "opened", None, "open")
                opened += 1
            fav = favourites[(favourites["store_id"] == key[0]) & (favourites["sku"] == key[1])]
            linked += insert_ignore(
                conn,
                am,
                [
                    {"alert_id": alert_id, "member_id": m, "score": float(sc)}
                    for m, sc in zip(fav["member_id"], fav["score"], strict=True)
                ],
            )
        for key, row in active.items():
            if key not in wanted:
                transition(conn, row["alert_id"], "resolved", DETECTOR, now, ALERT_TYPES[key[2]].closes_when)
                resolved += 1
        escalated = expired = []
        if settings is not None:
            escalated = escalate_overdue(conn, now, timedelta(minutes=settings.alert_escalation_minutes))
            expired = expire_stale_predictions(conn, now, timedelta(hours=settings.alert_expiry_hours))
        total_open = conn.execute(select(func.count()).select_from(a).where(a.c.status == "open")).scalar_one()
    return {
        "as_of": as_of.isoformat(),
        "opened": opened,
        "updated": updated,
        "resolved": resolved,
        "escalated": len(escalated),
        "expired": len(expired),
        "members_linked": linked,
        "open_alerts": total_open,
    }


def _substitute_rows(frame: pd.DataFrame) -> dict[int, list[tuple[str, int, str, float, str]]]:
    """An alert's substitutes as a comparable value: alert_id -> sorted (member, rank, sku, score, reason)."""
    return {
        int(alert_id): sorted(
            zip(
                g["member_id"],
                g["rank"].astype(int),
                g["sku"],
                g["score"].astype(float).round(4),
                g["reason"],
                strict=True,
            )
        )
        for alert_id, g in frame.groupby("alert_id")
    }


def changed_substitutes(old: pd.DataFrame, new: pd.DataFrame, alert_ids: Iterable[int]) -> list[int]:
    """The alerts among `alert_ids` whose substitutes differ between `old` and `new` (either may have
    none): only these are rewritten, so a re-run on the same data writes nothing."""
    before, after = _substitute_rows(old), _substitute_rows(new)
    return sorted(a for a in {int(i) for i in alert_ids} if before.get(a, []) != after.get(a, []))


def persist_substitutes(engine: Engine, inp: DetectionInputs, risks: pd.DataFrame) -> int:
    """Up to three substitutes (alerts.substitutes) per member linked to each active stock-out alert,
    from the shelves stocked now with no alert of their own; run after persist_alerts, so the alerts
    are this run's. An alert's rows are replaced (one transaction) only where they changed; a resolved
    alert keeps its last ones, which the CX effect report reads. Returns the rows written."""
    a, am, sub = schema.alerts, schema.alert_members, schema.alert_substitutes
    stockout = (a.c.status.in_(ACTIVE), a.c.alert_type.in_(STOCKOUT_TYPES))
    with engine.begin() as conn:
        alerted = pd.read_sql(select(a.c.store_id, a.c.sku).where(a.c.status.in_(ACTIVE)).distinct(), conn)
        affected = pd.read_sql(
            select(am.c.alert_id, am.c.member_id, a.c.store_id, a.c.sku)
            .join(a, a.c.alert_id == am.c.alert_id)
            .where(*stockout),
            conn,
        )
        if affected.empty:
            return 0
        old = pd.read_sql(select(sub).join(a, a.c.alert_id == sub.c.alert_id).where(*stockout), conn)
        new = suggest_substitutes(affected, inp.products, shelves_in_stock(risks, alerted), inp.lines)
        changed = changed_substitutes(old, new, affected["alert_id"].unique())
        rows = new[new["alert_id"].isin(changed)][SUBSTITUTE_COLUMNS]
        for start in range(0, len(changed), ID_CHUNK):
            conn.execute(sub.delete().where(sub.c.alert_id.in_(changed[start : start + ID_CHUNK])))
        records = [
            {
                "alert_id": int(r.alert_id),
                "member_id": r.member_id,
                "rank": int(r.rank),
                "sku": r.sku,
                "score": float(r.score),
                "reason": r.reason,
            }
            for r in rows.itertuples(index=False)
        ]
        if records:
            conn.execute(sub.insert(), records)
    return len(records)
