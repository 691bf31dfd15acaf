"""What the web pages show, read from the database: small functions returning frames or dicts.
Member contact details are read only by the CX export; store-manager views get counts."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pandas as pd
from sqlalchemy import Engine, case, func, select

from core.domain import SENSOR_STALE, STOCKOUT_TYPES
from sql import schema

ACTIVE = ("open", "acknowledged")


def stores_and_products(engine: Engine) -> tuple[pd.DataFrame, pd.DataFrame]:
    with engine.connect() as conn:
        stores = pd.read_sql(
            select(schema.stores.c.store_id, schema.stores.c.name).order_by(schema.stores.c.store_id), conn
        )
        products = pd.read_sql(
            select(schema.products.c.sku, schema.products.c.name, schema.products.c.category).order_by(
                schema.products.c.sku
            ),
            conn,
        )
    return stores, products


def store_zones(engine: Engine) -> dict[str, str]:
    """Each store's time zone (IANA name): every time a person reads is shown in it."""
    with engine.connect() as conn:
        return dict(conn.execute(select(schema.stores.c.store_id, schema.stores.c.timezone)).all())


def data_as_of(engine: Engine) -> dict:
    """How fresh what a page shows is: the newest sensor reading stored (by arrival), the last sales
    file loaded, the newest forecast with the last sales day it saw, and the last alert detection.
    Index lookups and small tables only (a max over sales_daily would scan millions of rows per page)."""
    s = schema
    with engine.connect() as conn:
        newest = select(func.max(s.sensor_readings.c.reading_id)).scalar_subquery()
        run = conn.execute(
            select(s.forecast_runs.c.created_at, s.forecast_runs.c.last_history_date)
            .order_by(s.forecast_runs.c.created_at.desc())
            .limit(1)
        ).first()
        return {
            "sensor reading": conn.execute(
                select(s.sensor_readings.c.received_at).where(s.sensor_readings.c.reading_id == newest)
            ).scalar(),
            "sales file loaded": conn.execute(select(func.max(s.ingested_files.c.ingested_at))).scalar(),
            "forecast": run.created_at if run else None,
            "forecast's last sales day": run.last_history_date if run else None,
            "alerts": conn.execute(select(func.max(s.alerts.c.updated_at))).scalar(),
        }


def latest_run(conn) -> str | None:
    r = schema.forecast_runs
    return conn.execute(select(r.c.run_id).order_by(r.c.created_at.desc()).limit(1)).scalar()


def series_view(engine: Engine, store_id: str, sku: str, history_days: int = 120) -> dict:
    """History (units sold a day) with its stock-out days (and the hour the shelf went empty), the
    latest forecast run's forecast (mean and the p10/p50/p90 quantiles: p10-p90 is the 80 % interval),
    which run that is and when it was made, and the model chosen with its backtest error."""
    s, so, f, fm = schema.sales_daily, schema.stockout_days, schema.forecasts, schema.forecast_models
    with engine.connect() as conn:
        run = explorer_run(conn)
        run_id = run["run_id"] if run else None
        last = conn.execute(select(func.max(s.c.date)).where(s.c.store_id == store_id, s.c.sku == sku)).scalar()
        since = (pd.Timestamp(last) - pd.Timedelta(days=history_days)).date() if last else None
        history = (
            pd.read_sql(
                select(s.c.date, s.c.units)
                .where(s.c.store_id == store_id, s.c.sku == sku, s.c.date > since)
                .order_by(s.c.date),
                conn,
            )
            if last
            else pd.DataFrame(columns=["date", "units"])
        )
        stockouts = (
            pd.read_sql(
                select(so.c.date, so.c.empty_from_hour)
                .where(so.c.store_id == store_id, so.c.sku == sku, so.c.date > since)
                .order_by(so.c.date),
                conn,
            )
            if last
            else pd.DataFrame(columns=["date", "empty_from_hour"])
        )
        forecast = pd.read_sql(
            select(f.c.date, f.c.mean, f.c.p10, f.c.p50, f.c.p90)
            .where(f.c.run_id == run_id, f.c.store_id == store_id, f.c.sku == sku)
            .order_by(f.c.date),
            conn,
        )
        model = conn.execute(
            select(fm).where(fm.c.run_id == run_id, fm.c.store_id == store_id, fm.c.sku == sku)
        ).first()
    return {
        "history": history,
        "stockouts": stockouts,
        "forecast": forecast,
        "run_id": run_id,
        "run": run,
        "model": None if model is None else model._asdict(),
    }


def explorer_run(conn) -> dict | None:
    """The latest forecast run: its id, when it was made, the last day of history it used, its horizon."""
    r = schema.forecast_runs
    row = conn.execute(
        select(r.c.run_id, r.c.created_at, r.c.last_history_date, r.c.horizon_days, r.c.series)
        .order_by(r.c.created_at.desc())
        .limit(1)
    ).first()
    return None if row is None else row._asdict()


def explorer_forecast(engine: Engine, store_id: str, sku: str) -> tuple[dict | None, pd.DataFrame]:
    """The latest run and its forecast of one store x SKU (date, mean, p10, p50, p90): the CSV download."""
    f = schema.forecasts
    with engine.connect() as conn:
        run = explorer_run(conn)
        frame = pd.read_sql(
            select(f.c.date, f.c.mean, f.c.p10, f.c.p50, f.c.p90)
            .where(f.c.run_id == (run["run_id"] if run else None), f.c.store_id == store_id, f.c.sku == sku)
            .order_by(f.c.date),
            conn,
        )
    return run, frame


def explorer_stores(engine: Engine) -> list[dict]:
    """Every store (id, name) for the explorer's store picker."""
    st = schema.stores
    with engine.connect() as conn:
        return [r._asdict() for r in conn.execute(select(st.c.store_id, st.c.name).order_by(st.c.store_id))]


def _like_pattern(text: str) -> str:
    """`text` anywhere, its LIKE wildcards taken literally (escape character: backslash)."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def explorer_find_products(engine: Engine, text: str, limit: int = 20) -> list[dict]:
    """Products matching what was typed in the SKU box, by SKU order, at most `limit` + 1 (so a caller
    can tell there are more): the product whose SKU it is (case-insensitive; "SKU00002 Some name", as
    the suggestions fill it in, counts as SKU00002), else the one product of exactly that name, else
    every product with it in its name or SKU (case-insensitive). In SQL (an index lookup first, then a
    LIKE with a limit): no list of all products is read."""
    p = schema.products
    text = text.strip()[:200]
    cols = (p.c.sku, p.c.name, p.c.category)
    if not text:
        return []
    first = text.split()[0]
    with engine.connect() as conn:
        exact = conn.execute(select(*cols).where(p.c.sku.in_({first, first.upper()})).limit(1)).first()
        if exact is not None:
            return [exact._asdict()]
        named = conn.execute(select(*cols).where(func.lower(p.c.name) == text.lower()).limit(2)).all()
        if len(named) == 1:  # "Dairy item 1" is that product, not also "Dairy item 12"
            return [named[0]._asdict()]
        pattern = _like_pattern(text)
        rows = conn.execute(
            select(*cols)
            .where(p.c.name.ilike(pattern, escape="\\") | p.c.sku.ilike(pattern, escape="\\"))
            .order_by(p.c.sku)
            .limit(limit + 1)
        ).all()
    return [r._asdict() for r in rows]


def explorer_first_product(engine: Engine) -> dict | None:
    """The product shown when no SKU was asked for: the first by SKU."""
    p = schema.products
    with engine.connect() as conn:
        row = conn.execute(select(p.c.sku, p.c.name, p.c.category).order_by(p.c.sku).limit(1)).first()
    return None if row is None else row._asdict()


def risk_heatmap(engine: Engine, store_id: str | None = None) -> pd.DataFrame:
    """Stores x categories of the active (open or acknowledged) stock-out alerts: `risk`, the shelves
    expected to go empty (the sum of the alerts' probabilities), and `alerts`, how many; one row per
    store and category that has any, ordered by store and category; one store's only if `store_id`."""
    a, p = schema.alerts, schema.products
    query = (
        select(a.c.store_id, p.c.category, func.sum(a.c.probability).label("risk"), func.count().label("alerts"))
        .join(p, p.c.sku == a.c.sku)
        .where(a.c.status.in_(ACTIVE), a.c.alert_type.in_(STOCKOUT_TYPES))
        .group_by(a.c.store_id, p.c.category)
        .order_by(a.c.store_id, p.c.category)
    )
    if store_id is not None:
        query = query.where(a.c.store_id == store_id)
    with engine.connect() as conn:
        frame = pd.read_sql(query, conn)
    return frame.astype({"risk": float, "alerts": int})


def store_alerts(engine: Engine, store_id: str, include_closed_days: int = 7) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The store's active alerts, most severe first, with evidence and a count of affected members;
    and what was resolved or expired in the last days."""
    a, am, p = schema.alerts, schema.alert_members, schema.products
    members = select(am.c.alert_id, func.count().label("members")).group_by(am.c.alert_id).subquery()
    cols = [
        a.c.alert_id,
        a.c.sku,
        p.c.name.label("product"),
        a.c.alert_type,
        a.c.status,
        a.c.probability,
        a.c.expected_empty_at,
        a.c.severity,
        a.c.evidence,
        a.c.opened_at,
        a.c.acknowledged_by,
        a.c.resolved_at,
        a.c.resolved_by,
        a.c.escalated_at,
        func.coalesce(members.c.members, 0).label("members"),
    ]
    base = (
        select(*cols)
        .join(p, p.c.sku == a.c.sku)
        .outerjoin(members, members.c.alert_id == a.c.alert_id)
        .where(a.c.store_id == store_id)
    )
    since = datetime.now(UTC) - timedelta(days=include_closed_days)
    with engine.connect() as conn:
        active = pd.read_sql(base.where(a.c.status.in_(ACTIVE)).order_by(a.c.severity.desc(), a.c.alert_id), conn)
        closed = pd.read_sql(
            base.where(a.c.status.in_(("resolved", "expired")), a.c.resolved_at >= since)
            .order_by(a.c.resolved_at.desc())
            .limit(50),
            conn,
        )
    for frame in (active, closed):
        frame["evidence"] = [json.loads(e) for e in frame["evidence"]]
    return active, closed


SHELF_SORTS = ("severity", "empty", "product")  # most severe first; expected empty soonest first; product name A-Z


def _is_active(status_column):
    """`status IN ('open', 'acknowledged')` with the values written out, not bound: SQLite uses the
    partial index uq_alerts_active_store_sku_type (store_id, sku, alert_type WHERE that very term)
    only when the query's term is the same text, so a store's active alerts are an index range, not
    a scan of every alert ever raised (50 x 500 shelves: 18 ms -> under 1 ms a query)."""
    from sqlalchemy import literal_column  # here, so the module's shared import line stays as it is

    return status_column.in_([literal_column(f"'{status}'") for status in ACTIVE])


def inbox_shelves(
    engine: Engine,
    store_id: str,
    now: datetime,
    sort: str = "severity",
    alert_type: str | None = None,
    status: str | None = None,
    age: str | None = None,
    per_page: int = 25,
    page: int = 1,
) -> tuple[pd.DataFrame, int, int]:
    """One page of a store's shelves (store x SKU) with active alerts, how many shelves match, and the
    page shown (a page past the end is the last page: lines close while a manager works).

    Shelves are filtered, sorted and paged in SQL (one grouped query over the store's active alerts),
    so only the page's alerts are read: one row per active alert of the page's shelves, in the page's
    shelf order, with product, unit price, evidence (parsed), `members` (favourites linked to the
    alert) and `shelf_members` (distinct favourites over the shelf's alerts), for
    alerts.shelves.shelf_lines. Filters: `alert_type` (the shelf has one of that type),
    `status` ("open": any alert not yet acknowledged; "acknowledged": all acknowledged), `age` (the
    shelf's first alert opened "24h" / "7d" before `now`, or "older" than 7 days)."""
    a, am, p = schema.alerts, schema.alert_members, schema.products
    opened = func.min(a.c.opened_at)
    shelves = (
        select(a.c.sku, func.max(a.c.severity).label("severity"), func.min(a.c.expected_empty_at).label("empty_at"))
        .where(a.c.store_id == store_id, _is_active(a.c.status))
        .group_by(a.c.sku)
    )
    if alert_type:
        shelves = shelves.having(func.sum(case((a.c.alert_type == alert_type, 1), else_=0)) > 0)
    n_open = func.sum(case((a.c.status == "open", 1), else_=0))
    if status == "open":
        shelves = shelves.having(n_open > 0)
    elif status == "acknowledged":
        shelves = shelves.having(n_open == 0)
    if age == "24h":
        shelves = shelves.having(opened >= now - timedelta(hours=24))
    elif age == "7d":
        shelves = shelves.having(opened >= now - timedelta(days=7))
    elif age == "older":
        shelves = shelves.having(opened < now - timedelta(days=7))
    shelves = shelves.subquery()
    order = {
        "severity": [shelves.c.severity.desc(), shelves.c.sku],
        "empty": [shelves.c.empty_at.asc().nulls_last(), shelves.c.severity.desc(), shelves.c.sku],
        "product": [p.c.name, shelves.c.sku],
    }[sort]
    cols = [
        a.c.alert_id,
        a.c.store_id,
        a.c.sku,
        p.c.name.label("product"),
        p.c.unit_price,
        a.c.alert_type,
        a.c.status,
        a.c.probability,
        a.c.expected_empty_at,
        a.c.severity,
        a.c.evidence,
        a.c.opened_at,
        a.c.acknowledged_by,
        a.c.escalated_at,
    ]
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(shelves)).scalar_one()
        page = min(page, max(1, -(-total // per_page)))
        skus = (
            conn.execute(
                select(shelves.c.sku)
                .join(p, p.c.sku == shelves.c.sku)
                .order_by(*order)
                .limit(per_page)
                .offset((page - 1) * per_page)
            )
            .scalars()
            .all()
        )
        alerts = pd.read_sql(
            select(*cols)
            .join(p, p.c.sku == a.c.sku)
            .where(a.c.store_id == store_id, a.c.sku.in_(skus), _is_active(a.c.status))
            .order_by(a.c.alert_id),
            conn,
        )
        ids = [int(i) for i in alerts["alert_id"]]
        # the page's member links (ids only, by the primary key): counted per alert and, distinct, per shelf
        links = conn.execute(select(am.c.alert_id, am.c.member_id).where(am.c.alert_id.in_(ids))).all()
    sku_of = dict(zip(ids, alerts["sku"], strict=True))
    per_alert: dict[int, int] = {}
    per_shelf: dict[str, set] = {}
    for alert_id, member_id in links:
        per_alert[alert_id] = per_alert.get(alert_id, 0) + 1
        per_shelf.setdefault(sku_of[alert_id], set()).add(member_id)
    alerts["members"] = [per_alert.get(i, 0) for i in ids]
    alerts["shelf_members"] = [len(per_shelf.get(s, ())) for s in alerts["sku"]]
    alerts["evidence"] = [json.loads(e) for e in alerts["evidence"]]
    position = {s: i for i, s in enumerate(skus)}
    alerts = alerts.assign(_shelf=alerts["sku"].map(position)).sort_values(["_shelf", "alert_id"], kind="stable")
    return alerts.drop(columns="_shelf").reset_index(drop=True), total, page


def closed_alerts(
    engine: Engine, store_id: str, since: datetime, per_page: int = 25, page: int = 1
) -> tuple[pd.DataFrame, int, int]:
    """One page of the store's alerts resolved or expired since `since`, newest first, with the note
    of the closing event; how many there are; and the page shown (past the end: the last)."""
    a, p, e = schema.alerts, schema.products, schema.alert_events
    where = (a.c.store_id == store_id, a.c.status.in_(("resolved", "expired")), a.c.resolved_at >= since)
    # the page and the count in one pass over the alerts (count() over (): the rows before LIMIT)
    stmt = (
        select(
            a.c.alert_id,
            a.c.sku,
            p.c.name.label("product"),
            a.c.alert_type,
            a.c.status,
            a.c.resolved_at,
            a.c.resolved_by,
            func.count().over().label("total"),
        )
        .join(p, p.c.sku == a.c.sku)
        .where(*where)
        .order_by(a.c.resolved_at.desc(), a.c.alert_id.desc())
        .limit(per_page)
    )
    with engine.connect() as conn:
        closed = pd.read_sql(stmt.offset((page - 1) * per_page), conn)
        if closed.empty and page > 1:  # past the end: the last page
            total = conn.execute(select(func.count()).select_from(a).where(*where)).scalar_one()
            page = max(1, -(-total // per_page))
            closed = pd.read_sql(stmt.offset((page - 1) * per_page), conn)
        total = int(closed["total"].iloc[0]) if len(closed) else 0
        closed = closed.drop(columns="total")
        ids = [int(i) for i in closed["alert_id"]]
        notes = dict(
            conn.execute(
                select(e.c.alert_id, e.c.note)
                .where(e.c.alert_id.in_(ids), e.c.to_status.in_(("resolved", "expired")))
                .order_by(e.c.event_id)
            ).all()
        )
    closed["note"] = [notes.get(i) for i in ids]
    return closed, total, page


def shelf_known(engine: Engine, store_id: str, sku: str) -> bool:
    """Whether the store and the product both exist (a shelf action on anything else is a 404)."""
    with engine.connect() as conn:
        store = conn.execute(select(schema.stores.c.store_id).where(schema.stores.c.store_id == store_id)).scalar()
        product = conn.execute(select(schema.products.c.sku).where(schema.products.c.sku == sku)).scalar()
    return store is not None and product is not None


def alert_info(engine: Engine, alert_id: int) -> dict | None:
    """An alert's store, SKU, product name, type and status (the history page's heading), or None."""
    a, p = schema.alerts, schema.products
    with engine.connect() as conn:
        row = conn.execute(
            select(a.c.store_id, a.c.sku, p.c.name.label("product"), a.c.alert_type, a.c.status)
            .join(p, p.c.sku == a.c.sku)
            .where(a.c.alert_id == alert_id)
        ).first()
    return None if row is None else row._asdict()


def alert_store(engine: Engine, alert_id: int) -> str | None:
    with engine.connect() as conn:
        return conn.execute(select(schema.alerts.c.store_id).where(schema.alerts.c.alert_id == alert_id)).scalar()


# the CX alert list's filters and orders (validated GET parameters: a key of these, or a 400)
CX_STATUSES = {
    "": ACTIVE + ("resolved",),
    "active": ACTIVE,
    "open": ("open",),
    "acknowledged": ("acknowledged",),
    "resolved": ("resolved",),
}
CX_SORTS = {
    "severity": "active first, most severe first",
    "favourites": "most favourites linked first",
    "newest": "newest first",
    "store": "by store, most severe first",
}


def cx_alerts(
    engine: Engine,
    store: str | None = None,
    status: str = "",
    sort: str = "severity",
    page: int = 1,
    per_page: int = 50,
) -> tuple[pd.DataFrame, int, int]:
    """One page of the stock-out alerts (active, or resolved: back-in-stock notices) that have favourite
    members linked, with the notices queued and sent; and the total count and the page number (a page
    past the last is the last). `store`/`status`/`sort` are checked by the caller against the stores,
    CX_STATUSES and CX_SORTS."""
    a, am, o, p = schema.alerts, schema.alert_members, schema.outbox, schema.products
    linked = select(am.c.alert_id, func.count().label("favourites")).group_by(am.c.alert_id).subquery()
    where = [a.c.alert_type.in_(STOCKOUT_TYPES), a.c.status.in_(CX_STATUSES[status])] + (
        [a.c.store_id == store] if store else []
    )
    resolved_last = case((a.c.status == "resolved", 1), else_=0)
    order = {
        "severity": (resolved_last, a.c.severity.desc()),
        "favourites": (linked.c.favourites.desc(), a.c.severity.desc()),
        "newest": (a.c.opened_at.desc(),),
        "store": (a.c.store_id, resolved_last, a.c.severity.desc()),
    }[sort]
    with engine.connect() as conn:
        total = conn.execute(
            select(func.count()).select_from(a).join(linked, linked.c.alert_id == a.c.alert_id).where(*where)
        ).scalar_one()
        page = max(1, min(page, -(-total // per_page)))
        alerts = pd.read_sql(
            select(
                a.c.alert_id,
                a.c.store_id,
                a.c.sku,
                p.c.name.label("product"),
                a.c.alert_type,
                a.c.status,
                a.c.severity,
                a.c.opened_at,
                linked.c.favourites,
            )
            .join(p, p.c.sku == a.c.sku)
            .join(linked, linked.c.alert_id == a.c.alert_id)
            .where(*where)
            .order_by(*order, a.c.alert_id)
            .limit(per_page)
            .offset((page - 1) * per_page),
            conn,
        )
        notices = pd.read_sql(
            select(o.c.alert_id, o.c.status, func.count().label("n"))
            .where(o.c.kind == "back_in_stock", o.c.alert_id.in_(alerts["alert_id"].tolist()))
            .group_by(o.c.alert_id, o.c.status),
            conn,
        )
    counts = notices.pivot_table(index="alert_id", columns="status", values="n", aggfunc="sum", fill_value=0)
    for status_ in ("pending", "sent", "handed_to_cx", "cancelled", "failed"):
        alerts[f"notices_{status_}"] = (
            alerts["alert_id"].map(counts[status_] if status_ in counts else {}).fillna(0).astype(int)
        )
    return alerts, total, page


def cx_export_history(engine: Engine, alert_id: int | None = None, limit: int = 20) -> tuple[list[dict], int]:
    """The newest exports of contact lists (all, or one alert's): who, when, which alert, how many
    members; and how many there are in all."""
    e, a, p = schema.cx_exports, schema.alerts, schema.products
    where = [e.c.alert_id == alert_id] if alert_id is not None else []
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(e).where(*where)).scalar_one()
        rows = conn.execute(
            select(
                e.c.export_id,
                e.c.alert_id,
                a.c.store_id,
                a.c.sku,
                p.c.name.label("product"),
                e.c.exported_by,
                e.c.exported_at,
                e.c.member_count,
            )
            .join(a, a.c.alert_id == e.c.alert_id)
            .join(p, p.c.sku == a.c.sku)
            .where(*where)
            .order_by(e.c.exported_at.desc(), e.c.export_id.desc())
            .limit(limit)
        ).all()
    return [r._asdict() for r in rows], total


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
        consumers = pd.read_sql(
            select(
                s.ingest_stats.c.client_id,
                s.ingest_stats.c.stored,
                s.ingest_stats.c.readings_per_second,
                s.ingest_stats.c.reconnects,
                s.ingest_stats.c.db_errors,
                s.ingest_stats.c.updated_at,
            ),
            conn,
        )
        # the newest 1,000 stored (the primary key's order: no scan of the readings)
        recent = pd.read_sql(
            select(s.sensor_readings.c.device_ts, s.sensor_readings.c.received_at)
            .order_by(s.sensor_readings.c.reading_id.desc())
            .limit(1000),
            conn,
        )
        # stale sensors as the detector last saw them (its sensor_stale alerts, by device time)
        a = s.alerts
        stale_alerts = conn.execute(
            select(a.c.store_id, a.c.sku, a.c.evidence, a.c.opened_at)
            .where(a.c.alert_type == SENSOR_STALE, a.c.status.in_(ACTIVE))
            .order_by(a.c.store_id, a.c.sku)
        ).all()
        q = s.quarantine
        quarantine = pd.read_sql(
            select(q.c.source, func.count().label("rows"), func.max(q.c.quarantined_at).label("last"))
            .group_by(q.c.source)
            .order_by(func.count().desc())
            .limit(20),
            conn,
        )
        samples = pd.read_sql(
            select(q.c.source, q.c.reason, q.c.raw_content).order_by(q.c.quarantine_id.desc()).limit(10), conn
        )
    lag = (
        pd.to_datetime(recent["received_at"], utc=True) - pd.to_datetime(recent["device_ts"], utc=True)
    ).dt.total_seconds()
    evidence = [json.loads(r.evidence) for r in stale_alerts]
    stale = pd.DataFrame(
        [
            {
                "sensor_id": e.get("sensor_id"),
                "store_id": r.store_id,
                "sku": r.sku,
                "silent_hours": e.get("silent_hours"),
                "since": r.opened_at,
            }
            for r, e in zip(stale_alerts, evidence, strict=True)
        ],
        columns=["sensor_id", "store_id", "sku", "silent_hours", "since"],
    )
    return {
        "runs": runs,
        "consumers": consumers,
        "lag_median_s": None if lag.empty else float(lag.median()),
        "lag_p95_s": None if lag.empty else float(lag.quantile(0.95)),
        "stale": stale,
        "quarantine": quarantine,
        "samples": samples.assign(raw_content=samples["raw_content"].str.slice(0, 200)),
    }


def most_urgent_store(engine: Engine) -> str | None:
    a = schema.alerts
    with engine.connect() as conn:
        store = conn.execute(
            select(a.c.store_id).where(a.c.status.in_(ACTIVE)).order_by(a.c.severity.desc()).limit(1)
        ).scalar()
        return (
            store or conn.execute(select(schema.stores.c.store_id).order_by(schema.stores.c.store_id).limit(1)).scalar()
        )


def airflow_runs(airflow_db_url: str, per_dag: int = 3) -> pd.DataFrame:
    """The last runs of each DAG, read from Airflow's metadata database (its `dag_run` table)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(airflow_db_url)
    try:
        with engine.connect() as conn:
            runs = pd.read_sql(
                text(
                    "SELECT dag_id, run_id, run_type, state, start_date, end_date FROM dag_run ORDER BY dag_id, "
                    "start_date DESC"
                ),
                conn,
            )
    finally:
        engine.dispose()
    runs["seconds"] = (
        (pd.to_datetime(runs["end_date"], utc=True) - pd.to_datetime(runs["start_date"], utc=True))
        .dt.total_seconds()
        .round(1)
    )
    return runs.groupby("dag_id", sort=True).head(per_dag).reset_index(drop=True)
