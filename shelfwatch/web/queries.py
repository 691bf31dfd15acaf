"""What the web pages show, read from the database: small functions returning frames or dicts.
Member contact details are read only by the CX export; store-manager views get counts."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pandas as pd
from sqlalchemy import Engine, func, select

from shelfwatch.core.domain import SENSOR_STALE, STOCKOUT_TYPES
from shelfwatch.sql import schema

ACTIVE = ("open", "acknowledged")


def stores_and_products(engine: Engine) -> tuple[pd.DataFrame, pd.DataFrame]:
    with engine.connect() as conn:
        stores = pd.read_sql(select(schema.stores.c.store_id, schema.stores.c.name).order_by(schema.stores.c.store_id), conn)
        products = pd.read_sql(select(schema.products.c.sku, schema.products.c.name, schema.products.c.category).order_by(schema.products.c.sku), conn)
    return stores, products


def store_zones(engine: Engine) -> dict[str, str]:
    """Each store's time zone (IANA name): every time a person reads is shown in it."""
    with engine.connect() as conn:
        return dict(conn.execute(select(schema.stores.c.store_id, schema.stores.c.timezone)).all())


def data_as_of(engine: Engine) -> dict:
    """How fresh what a page shows is: the newest sensor reading stored (by arrival), the last sales
    day loaded, and when the newest forecast and the last alert detection ran. Index lookups only."""
    s = schema
    with engine.connect() as conn:
        newest = select(func.max(s.sensor_readings.c.reading_id)).scalar_subquery()
        return {
            "sensor reading": conn.execute(select(s.sensor_readings.c.received_at).where(s.sensor_readings.c.reading_id == newest)).scalar(),
            "sales day": conn.execute(select(func.max(s.sales_daily.c.date))).scalar(),
            "forecast": conn.execute(select(func.max(s.forecast_runs.c.created_at))).scalar(),
            "alerts": conn.execute(select(func.max(s.alerts.c.updated_at))).scalar(),
        }


def latest_run(conn) -> str | None:
    r = schema.forecast_runs
    return conn.execute(select(r.c.run_id).order_by(r.c.created_at.desc()).limit(1)).scalar()


def series_view(engine: Engine, store_id: str, sku: str, history_days: int = 120) -> dict:
    """History, stock-out days, forecast with its 80 % interval, and the model chosen with its error."""
    s, so, f, fm = schema.sales_daily, schema.stockout_days, schema.forecasts, schema.forecast_models
    with engine.connect() as conn:
        run_id = latest_run(conn)
        last = conn.execute(select(func.max(s.c.date)).where(s.c.store_id == store_id, s.c.sku == sku)).scalar()
        since = (pd.Timestamp(last) - pd.Timedelta(days=history_days)).date() if last else None
        history = pd.read_sql(select(s.c.date, s.c.units).where(s.c.store_id == store_id, s.c.sku == sku, s.c.date > since).order_by(s.c.date), conn) if last else pd.DataFrame(columns=["date", "units"])
        stockouts = pd.read_sql(select(so.c.date).where(so.c.store_id == store_id, so.c.sku == sku, so.c.date > since), conn) if last else pd.DataFrame(columns=["date"])
        forecast = pd.read_sql(select(f.c.date, f.c.mean, f.c.p10, f.c.p90).where(f.c.run_id == run_id, f.c.store_id == store_id, f.c.sku == sku).order_by(f.c.date), conn)
        model = conn.execute(select(fm).where(fm.c.run_id == run_id, fm.c.store_id == store_id, fm.c.sku == sku)).first()
    return {"history": history, "stockouts": stockouts, "forecast": forecast, "run_id": run_id,
            "model": None if model is None else model._asdict()}


def risk_heatmap(engine: Engine) -> pd.DataFrame:
    """Stores x categories: expected shelves going empty — the sum of the open stock-out alerts' probabilities."""
    a, p = schema.alerts, schema.products
    with engine.connect() as conn:
        frame = pd.read_sql(select(a.c.store_id, p.c.category, func.sum(a.c.probability).label("risk"))
                            .join(p, p.c.sku == a.c.sku).where(a.c.status.in_(ACTIVE), a.c.alert_type.in_(STOCKOUT_TYPES))
                            .group_by(a.c.store_id, p.c.category), conn)
    return frame.pivot_table(index="store_id", columns="category", values="risk", fill_value=0.0)


def store_alerts(engine: Engine, store_id: str, include_closed_days: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The store's active alerts, most severe first, with evidence and a count of affected members;
    and what was resolved or expired in the last days."""
    a, am, p = schema.alerts, schema.alert_members, schema.products
    members = select(am.c.alert_id, func.count().label("members")).group_by(am.c.alert_id).subquery()
    cols = [a.c.alert_id, a.c.sku, p.c.name.label("product"), a.c.alert_type, a.c.status, a.c.probability, a.c.expected_empty_at,
            a.c.severity, a.c.evidence, a.c.opened_at, a.c.acknowledged_by, a.c.resolved_at, a.c.resolved_by, a.c.escalated_at,
            func.coalesce(members.c.members, 0).label("members")]
    base = select(*cols).join(p, p.c.sku == a.c.sku).outerjoin(members, members.c.alert_id == a.c.alert_id).where(a.c.store_id == store_id)
    since = datetime.now(timezone.utc) - timedelta(days=include_closed_days)
    with engine.connect() as conn:
        active = pd.read_sql(base.where(a.c.status.in_(ACTIVE)).order_by(a.c.severity.desc(), a.c.alert_id), conn)
        closed = pd.read_sql(base.where(a.c.status.in_(("resolved", "expired")), a.c.resolved_at >= since).order_by(a.c.resolved_at.desc()).limit(50), conn)
    for frame in (active, closed):
        frame["evidence"] = [json.loads(e) for e in frame["evidence"]]
    return active, closed


def alert_store(engine: Engine, alert_id: int) -> str | None:
    with engine.connect() as conn:
        return conn.execute(select(schema.alerts.c.store_id).where(schema.alerts.c.alert_id == alert_id)).scalar()


def cx_alerts(engine: Engine) -> pd.DataFrame:
    """Active stock-out alerts that have favourite members linked, with the notices queued and sent."""
    a, am, o, p = schema.alerts, schema.alert_members, schema.outbox, schema.products
    linked = select(am.c.alert_id, func.count().label("favourites")).group_by(am.c.alert_id).subquery()
    with engine.connect() as conn:
        alerts = pd.read_sql(select(a.c.alert_id, a.c.store_id, a.c.sku, p.c.name.label("product"), a.c.alert_type, a.c.status, a.c.severity,
                                    linked.c.favourites).join(p, p.c.sku == a.c.sku).join(linked, linked.c.alert_id == a.c.alert_id)
                             .where(a.c.alert_type.in_(STOCKOUT_TYPES), a.c.status.in_(ACTIVE + ("resolved",)))
                             .order_by(a.c.status, a.c.severity.desc()).limit(200), conn)
        notices = pd.read_sql(select(o.c.alert_id, o.c.status, func.count().label("n")).where(o.c.kind == "back_in_stock")
                              .group_by(o.c.alert_id, o.c.status), conn)
    counts = notices.pivot_table(index="alert_id", columns="status", values="n", aggfunc="sum", fill_value=0)
    for status in ("pending", "sent", "handed_to_cx", "cancelled", "failed"):
        alerts[f"notices_{status}"] = alerts["alert_id"].map(counts[status] if status in counts else {}).fillna(0).astype(int)
    return alerts


def pipeline_health(engine: Engine) -> dict:
    """Last runs of each step, ingest rate and lag, stale sensors, quarantine counts with samples."""
    s = schema
    with engine.connect() as conn:
        runs = {
            "sales load": conn.execute(select(func.max(s.ingested_files.c.ingested_at))).scalar(),
            "forecast": conn.execute(select(func.max(s.forecast_runs.c.created_at))).scalar(),
            "alert detection": conn.execute(select(func.max(s.alerts.c.updated_at))).scalar(),
            "notifications": conn.execute(select(func.max(s.outbox.c.sent_at))).scalar(),
            "sensor ingest": conn.execute(select(func.max(s.ingest_stats.c.updated_at))).scalar(),
        }
        consumers = pd.read_sql(select(s.ingest_stats.c.client_id, s.ingest_stats.c.stored, s.ingest_stats.c.readings_per_second,
                                       s.ingest_stats.c.reconnects, s.ingest_stats.c.db_errors, s.ingest_stats.c.updated_at), conn)
        # the newest 1,000 stored (the primary key's order: no scan of the readings)
        recent = pd.read_sql(select(s.sensor_readings.c.device_ts, s.sensor_readings.c.received_at)
                             .order_by(s.sensor_readings.c.reading_id.desc()).limit(1000), conn)
        # stale sensors as the detector last saw them (its sensor_stale alerts, by device time)
        a = s.alerts
        stale_alerts = conn.execute(select(a.c.store_id, a.c.sku, a.c.evidence, a.c.opened_at)
                                    .where(a.c.alert_type == SENSOR_STALE, a.c.status.in_(ACTIVE)).order_by(a.c.store_id, a.c.sku)).all()
        q = s.quarantine
        quarantine = pd.read_sql(select(q.c.source, func.count().label("rows"), func.max(q.c.quarantined_at).label("last")).group_by(q.c.source)
                                 .order_by(func.count().desc()).limit(20), conn)
        samples = pd.read_sql(select(q.c.source, q.c.reason, q.c.raw_content).order_by(q.c.quarantine_id.desc()).limit(10), conn)
    lag = (pd.to_datetime(recent["received_at"], utc=True) - pd.to_datetime(recent["device_ts"], utc=True)).dt.total_seconds()
    evidence = [json.loads(r.evidence) for r in stale_alerts]
    stale = pd.DataFrame([{"sensor_id": e.get("sensor_id"), "store_id": r.store_id, "sku": r.sku, "silent_hours": e.get("silent_hours"),
                           "since": r.opened_at} for r, e in zip(stale_alerts, evidence, strict=True)],
                         columns=["sensor_id", "store_id", "sku", "silent_hours", "since"])
    return {"runs": runs, "consumers": consumers, "lag_median_s": None if lag.empty else float(lag.median()),
            "lag_p95_s": None if lag.empty else float(lag.quantile(0.95)), "stale": stale, "quarantine": quarantine,
            "samples": samples.assign(raw_content=samples["raw_content"].str.slice(0, 200))}


def most_urgent_store(engine: Engine) -> str | None:
    a = schema.alerts
    with engine.connect() as conn:
        store = conn.execute(select(a.c.store_id).where(a.c.status.in_(ACTIVE)).order_by(a.c.severity.desc()).limit(1)).scalar()
        return store or conn.execute(select(schema.stores.c.store_id).order_by(schema.stores.c.store_id).limit(1)).scalar()


def airflow_runs(airflow_db_url: str, per_dag: int = 3) -> pd.DataFrame:
    """The last runs of each DAG, read from Airflow's metadata database (its `dag_run` table)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(airflow_db_url)
    try:
        with engine.connect() as conn:
            runs = pd.read_sql(text("SELECT dag_id, run_id, run_type, state, start_date, end_date FROM dag_run ORDER BY dag_id, start_date DESC"), conn)
    finally:
        engine.dispose()
    runs["seconds"] = (pd.to_datetime(runs["end_date"], utc=True) - pd.to_datetime(runs["start_date"], utc=True)).dt.total_seconds().round(1)
    return runs.groupby("dag_id", sort=True).head(per_dag).reset_index(drop=True)
