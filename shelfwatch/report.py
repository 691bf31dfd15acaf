"""The demo/report folder: what each user needs, as files.

- `summary.md`: store managers' view — open alerts ranked by severity, with probability, expected
  empty time and how many favourite members are affected (counts only, no personal data);
- `members_to_contact.csv`: CX view — per alert, the members who may be contacted (consent given,
  not opted out), with their channel; `summary.md` adds the members at risk (ids, reasons and
  whether they may be contacted, never contact details) and whether notices worked;
- `plots/*.png`: planners' view — history, forecast and 80 % interval for the top-risk SKUs;
- `evaluation.json`: alerts scored against a simulated world's ground truth (when there is one).

Also the read-side queries people look at from the CLI: alerts (`list_alerts`) and what the gates
quarantined (`quarantine_rows`, `quarantine_entry`).
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine, Select, func, select

from alerts.effect_report import cx_effect
from alerts.member_risk import at_risk_list
from alerts.members import contactable
from alerts.notify import write_csv_atomic
from alerts.shelves import shelf_lines
from core.db import as_utc, local_time
from core.domain import QUARANTINE_CHANNELS, STOCKOUT_TYPES
from core.settings import Settings
from sql import schema

STATUS_FILTERS = {
    "active": ("open", "acknowledged"),
    "open": ("open",),
    "acknowledged": ("acknowledged",),
    "resolved": ("resolved",),
    "expired": ("expired",),
    "all": ("open", "acknowledged", "resolved", "expired"),
}


def list_alerts(engine: Engine, status: str = "active", store: str | None = None) -> pd.DataFrame:
    """Alerts with product names, affected-member counts and the store's time zone (`timezone`: what
    a person reads is in it), most severe first."""
    if status not in STATUS_FILTERS:
        raise ValueError(f"unknown status {status!r}: expected one of {', '.join(STATUS_FILTERS)}")
    a, am, p, st = schema.alerts, schema.alert_members, schema.products, schema.stores
    counts = select(am.c.alert_id, func.count().label("members_affected")).group_by(am.c.alert_id).subquery()
    stmt = (
        select(
            a,
            p.c.name.label("product"),
            p.c.category,
            p.c.unit_price,
            func.coalesce(counts.c.members_affected, 0).label("members_affected"),
            st.c.timezone,
        )
        .join(p, p.c.sku == a.c.sku)
        .outerjoin(st, st.c.store_id == a.c.store_id)
        .outerjoin(counts, counts.c.alert_id == a.c.alert_id)
        .where(a.c.status.in_(STATUS_FILTERS[status]))
        .order_by(a.c.severity.desc(), a.c.alert_id)
    )
    if store:
        stmt = stmt.where(a.c.store_id == store)
    with engine.connect() as conn:
        frame = pd.read_sql(stmt, conn)
    for col in ("expected_empty_at", "opened_at", "acknowledged_at", "escalated_at", "resolved_at", "updated_at"):
        frame[col] = pd.to_datetime(frame[col], utc=True)
    return frame


def open_alerts(engine: Engine) -> pd.DataFrame:
    """Open alerts with product names and affected-member counts, most severe first."""
    return list_alerts(engine, status="open")


def quarantine_filter(stmt: Select, channel: str | None, since: datetime | None) -> Select:
    q = schema.quarantine
    if channel is not None:
        if channel not in QUARANTINE_CHANNELS:
            raise ValueError(
                f"unknown quarantine channel {channel!r}: expected one of {', '.join(QUARANTINE_CHANNELS)}"
            )
        stmt = stmt.where(q.c.channel == channel)
    if since is not None:
        since = as_utc(since)
        stmt = stmt.where(q.c.quarantined_at >= since)
    return stmt


def quarantine_rows(
    engine: Engine, channel: str | None = None, since: datetime | None = None, limit: int | None = 100
) -> pd.DataFrame:
    """What the gates held back, newest first: quarantine_id, quarantined_at (UTC), channel, source,
    reason (raw_content stays in `quarantine_entry`). `channel` is one of QUARANTINE_CHANNELS; `since`
    (naive = UTC) keeps entries quarantined at or after it; `limit=None` returns all."""
    q = schema.quarantine
    stmt = quarantine_filter(
        select(q.c.quarantine_id, q.c.quarantined_at, q.c.channel, q.c.source, q.c.reason), channel, since
    )
    stmt = stmt.order_by(q.c.quarantined_at.desc(), q.c.quarantine_id.desc())
    if limit is not None:
        stmt = stmt.limit(limit)
    with engine.connect() as conn:
        frame = pd.read_sql(stmt, conn)
    frame["quarantined_at"] = pd.to_datetime(frame["quarantined_at"], utc=True)
    return frame


def quarantine_count(engine: Engine, channel: str | None = None, since: datetime | None = None) -> int:
    """How many quarantine entries match (the same filters as `quarantine_rows`, without its limit)."""
    q = schema.quarantine
    with engine.connect() as conn:
        return conn.execute(quarantine_filter(select(func.count()).select_from(q), channel, since)).scalar_one()


def quarantine_entry(engine: Engine, quarantine_id: int) -> dict | None:
    """Every field of one quarantine entry (quarantined_at as an aware UTC datetime), or None."""
    q = schema.quarantine
    with engine.connect() as conn:
        row = conn.execute(select(q).where(q.c.quarantine_id == quarantine_id)).first()
    if row is None:
        return None
    entry = row._asdict()
    at = entry["quarantined_at"]
    entry["quarantined_at"] = as_utc(at)
    return entry


def members_to_contact(engine: Engine) -> pd.DataFrame:
    """Members linked to open alerts who may be contacted, best-scored first."""
    a, am, m = schema.alerts, schema.alert_members, schema.members
    with engine.connect() as conn:
        links = pd.read_sql(
            select(am.c.alert_id, am.c.member_id, am.c.score, a.c.store_id, a.c.sku, a.c.alert_type)
            .join(a, a.c.alert_id == am.c.alert_id)
            .where(a.c.status == "open"),
            conn,
        )
        members = pd.read_sql(select(m), conn)
    out = contactable(links, members)
    cols = ["alert_id", "store_id", "sku", "alert_type", "member_id", "score", "contact_channel", "contact_address"]
    return out[cols].sort_values(["alert_id", "score"], ascending=[True, False]).reset_index(drop=True)


def evaluate_against_truth(alerts: pd.DataFrame, truth: list[dict]) -> dict:
    """Precision and recall of open alerts against the simulated incidents (per store x SKU)."""
    truth_keys = {(t["store_id"], t["sku"]) for t in truth}
    alerts = alerts[alerts["alert_type"].isin(STOCKOUT_TYPES)]  # data problems are not stock-out claims
    alert_keys = set(zip(alerts["store_id"], alerts["sku"], strict=True))
    hits = truth_keys & alert_keys
    by_kind = {}
    for kind in sorted({t["kind"] for t in truth}):
        keys = {(t["store_id"], t["sku"]) for t in truth if t["kind"] == kind}
        by_kind[kind] = {
            "incidents": len(keys),
            "detected": len(keys & alert_keys),
            "recall": round(len(keys & alert_keys) / len(keys), 3),
        }
    by_type = {}
    for alert_type, group in alerts.groupby("alert_type"):
        keys = set(zip(group["store_id"], group["sku"], strict=True))
        by_type[alert_type] = {
            "alerts": len(keys),
            "true": len(keys & truth_keys),
            "precision": round(len(keys & truth_keys) / len(keys), 3),
        }
    return {
        "incidents": len(truth_keys),
        "alerts": len(alert_keys),
        "true_alerts": len(hits),
        "precision": round(len(hits) / len(alert_keys), 3) if alert_keys else 0.0,
        "recall": round(len(hits) / len(truth_keys), 3) if truth_keys else 1.0,
        "recall_by_incident_kind": by_kind,
        "precision_by_alert_type": by_type,
    }


def plot_forecasts(engine: Engine, top: pd.DataFrame, out_dir: Path, history_days: int = 90) -> list[Path]:
    """One PNG per alert: recent sales, forecast mean and its 10-90 % band, stock-out days shaded."""
    from forecasting.planner import plot_series
    from forecasting.runs import read_sales

    f, r = schema.forecasts, schema.forecast_runs
    sales = read_sales(engine)
    paths = []
    with engine.connect() as conn:
        run_id = conn.execute(select(r.c.run_id).order_by(r.c.created_at.desc()).limit(1)).scalar()
        for row in top.itertuples():
            hist = (
                sales[(sales["store_id"] == row.store_id) & (sales["sku"] == row.sku)]
                .sort_values("date")
                .tail(history_days)
            )
            fc = pd.read_sql(
                select(f)
                .where(f.c.run_id == run_id, f.c.store_id == row.store_id, f.c.sku == row.sku)
                .order_by(f.c.date),
                conn,
            )
            fc["date"] = pd.to_datetime(fc["date"])
            marker = row.expected_empty_at.tz_convert(None) if pd.notna(row.expected_empty_at) else None
            title = f"{row.store_id} · {row.sku} {row.product} — {row.alert_type}, P={row.probability:.2f}"
            paths.append(plot_series(hist, fc, title, out_dir / f"{row.store_id}_{row.sku}.png", marker))
    return paths


def summary_markdown(
    alerts: pd.DataFrame,
    contacts: pd.DataFrame,
    evaluation: dict | None,
    top_n: int = 20,
    at_risk: pd.DataFrame | None = None,
    effect: str | None = None,
) -> str:
    """The report: one line per shelf (its alerts' evidence folded by alerts.shelves, times in the
    store's zone), then what CX may send, the members at risk (`at_risk`: member_risk.at_risk_list's
    top rows) and whether notices worked (`effect`: the effect report's sentence), then the check
    against a simulated world's truth."""
    lines = ["# Shelfwatch report", "", f"Open alerts: **{len(alerts)}** "]
    lines.append(", ".join(f"{t}: {n}" for t, n in alerts["alert_type"].value_counts().sort_index().items()) or "none")
    zones = dict(zip(alerts["store_id"], alerts["timezone"].fillna("UTC"), strict=True)) if "timezone" in alerts else {}
    shelves = shelf_lines(alerts, zones)
    lines += ["", f"## Top {min(top_n, len(shelves))} of {len(shelves)} shelves (store managers)", ""]
    lines.append(
        "| # | store | sku | product | what is wrong | act | expected empty (store time) "
        "| why | what to do | at stake | contactable |"
    )
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|")
    contact_counts = contacts.groupby("alert_id").size()
    cell = lambda text: str(text).replace("|", "/").replace("\n", " ")  # noqa: E731  (a product name must not break the table)
    for i, r in enumerate(shelves.head(top_n).itertuples(), 1):
        when = local_time(r.expected_empty_at, zones.get(r.store_id)) or "now / unknown"
        contactable = sum(int(contact_counts.get(a, 0)) for a in r.alert_ids)
        lines.append(
            f"| {i} | {r.store_id} | {r.sku} | {cell(r.product)} | {', '.join(r.type_labels)} | {r.priority} | {when} "
            f"| {cell(r.reason)} | {cell(r.action)} | {cell(r.impact)} | {contactable} |"
        )
    lines += [
        "",
        "## CX",
        "",
        f"{len(contacts)} member notifications may be sent ({contacts['member_id'].nunique()} members): see "
        "`members_to_contact.csv`.",
    ]
    if effect:
        lines += ["", f"Did notices work? {effect}"]
    if at_risk is not None:
        lines += ["", f"## Members at risk (top {min(top_n, len(at_risk))})", ""]
        if at_risk.empty:
            lines.append("No member at risk (or the list was never made: `shelfwatch members at-risk --refresh`).")
        else:
            lines += ["| # | member | why | contactable |", "|---|---|---|---|"]
            lines += [
                f"| {r.rank} | {cell(r.member_id)} | {cell(r.reason)} | {'yes' if r.contactable else 'no'} |"
                for r in at_risk.head(top_n).itertuples()
            ]
    if evaluation:
        lines += [
            "",
            "## Against the simulated ground truth",
            "",
            f"precision {evaluation['precision']}, recall {evaluation['recall']} "
            f"({evaluation['true_alerts']} of {evaluation['alerts']} alerts true; {evaluation['incidents']} incidents)",
            "",
            "```",
            json.dumps(evaluation, indent=1),
            "```",
        ]
    return "\n".join(lines) + "\n"


def write_report(engine: Engine, settings: Settings, world_dir: Path | None = None, top_plots: int = 6) -> dict:
    out = Path(settings.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    alerts = open_alerts(engine)
    contacts = members_to_contact(engine)
    write_csv_atomic(contacts, out / "members_to_contact.csv")  # CX never picks up half a list
    evaluation = None
    if world_dir is not None:
        truth = json.loads((Path(world_dir) / "ground_truth.json").read_text())["incidents"]
        evaluation = evaluate_against_truth(alerts, truth)
        (out / "evaluation.json").write_text(json.dumps(evaluation, indent=1))
    plots = plot_forecasts(engine, alerts.head(top_plots), out / "plots")
    at_risk, _ = at_risk_list(engine, limit=20)
    effect = cx_effect(engine, settings.clock())
    (out / "summary.md").write_text(
        summary_markdown(alerts, contacts, evaluation, at_risk=at_risk, effect=effect["sentence"])
    )
    alerts.drop(columns=["evidence"]).to_csv(out / "alerts.csv", index=False)
    return {
        "report_dir": str(out),
        "open_alerts": len(alerts),
        "alerts_with_members": int((alerts["members_affected"] > 0).sum()),
        "contacts": len(contacts),
        "plots": len(plots),
        "precision": evaluation["precision"] if evaluation else None,
        "recall": evaluation["recall"] if evaluation else None,
        "members_at_risk_listed": len(at_risk),
        "notice_effect": effect["effect"],
    }
