"""Alert lifecycle: open -> acknowledged -> resolved, or expired; escalation; an audit trail.

Every change goes through `transition` (or `record_event` for changes that keep the status), so the
`alert_events` table says who did what when. Store managers act with `shelfwatch alerts ack/resolve`;
the detector is the actor "detector" when it opens, updates, auto-resolves, expires or escalates.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, select

from core.domain import PREDICTED_STOCKOUT
from sql import schema

DETECTOR = "detector"
ACTIVE = ("open", "acknowledged")
ALLOWED = {
    ("open", "acknowledged"),
    ("open", "resolved"),
    ("acknowledged", "resolved"),
    ("open", "expired"),
    ("acknowledged", "expired"),
}
EVENT_OF_STATUS = {"acknowledged": "acknowledged", "resolved": "resolved", "expired": "expired"}


class AlertStateError(ValueError):
    """An alert cannot go where it was asked to (unknown id, or a transition the lifecycle forbids)."""


def utc_now() -> datetime:
    return datetime.now(UTC)


def record_event(
    conn: Connection,
    alert_id: int,
    at: datetime,
    actor: str,
    event: str,
    from_status: str | None,
    to_status: str,
    note: str | None = None,
) -> None:
    conn.execute(
        schema.alert_events.insert().values(
            alert_id=alert_id, at=at, actor=actor, event=event, from_status=from_status, to_status=to_status, note=note
        )
    )


def transition(
    conn: Connection, alert_id: int, to_status: str, actor: str, at: datetime, note: str | None = None
) -> dict[str, int | str]:
    """Move one alert to `to_status`, stamping who and when, and record the event."""
    a = schema.alerts
    row = conn.execute(select(a.c.alert_id, a.c.status).where(a.c.alert_id == alert_id)).first()
    if row is None:
        raise AlertStateError(f"alert {alert_id} does not exist")
    if (row.status, to_status) not in ALLOWED:
        raise AlertStateError(f"alert {alert_id} is {row.status}: it cannot become {to_status}")
    values: dict[str, str | datetime] = {"status": to_status, "updated_at": at}
    if to_status == "acknowledged":
        values.update(acknowledged_at=at, acknowledged_by=actor)
    if to_status in ("resolved", "expired"):
        values.update(resolved_at=at, resolved_by=actor)
    conn.execute(a.update().where(a.c.alert_id == alert_id).values(**values))
    record_event(conn, alert_id, at, actor, EVENT_OF_STATUS[to_status], row.status, to_status, note)
    return {"alert_id": alert_id, "from": row.status, "to": to_status, "by": actor, "at": at.isoformat()}


def acknowledge(engine: Engine, alert_id: int, actor: str, at: datetime | None = None) -> dict[str, int | str]:
    with engine.begin() as conn:
        return transition(conn, alert_id, "acknowledged", actor, at or utc_now())


def resolve(
    engine: Engine, alert_id: int, actor: str, at: datetime | None = None, note: str | None = None
) -> dict[str, int | str]:
    with engine.begin() as conn:
        return transition(conn, alert_id, "resolved", actor, at or utc_now(), note)


def escalate_overdue(conn: Connection, now: datetime, after: timedelta) -> list[int]:
    """Open alerts nobody acknowledged within `after`: stamped and recorded once."""
    a = schema.alerts
    due = (
        conn.execute(
            select(a.c.alert_id).where(a.c.status == "open", a.c.escalated_at.is_(None), a.c.opened_at <= now - after)
        )
        .scalars()
        .all()
    )
    for alert_id in due:
        conn.execute(a.update().where(a.c.alert_id == alert_id).values(escalated_at=now))
        record_event(conn, alert_id, now, DETECTOR, "escalated", "open", "open", f"not acknowledged within {after}")
    return list(due)


def expire_stale_predictions(conn: Connection, now: datetime, after: timedelta) -> list[int]:
    """Predicted stock-outs whose expected empty time is long past and that nothing else confirmed."""
    a = schema.alerts
    due = (
        conn.execute(
            select(a.c.alert_id).where(
                a.c.status.in_(ACTIVE),
                a.c.alert_type == PREDICTED_STOCKOUT,
                a.c.expected_empty_at.is_not(None),
                a.c.expected_empty_at <= now - after,
            )
        )
        .scalars()
        .all()
    )
    for alert_id in due:
        transition(
            conn,
            alert_id,
            "expired",
            DETECTOR,
            now,
            f"expected to empty more than {after} ago; no sensor or sales evidence since",
        )
    return list(due)


def history(engine: Engine, alert_id: int) -> list[dict[str, Any]]:
    """An alert's events, oldest first, as the alert_events rows' columns."""
    e = schema.alert_events
    with engine.connect() as conn:
        rows = conn.execute(select(e).where(e.c.alert_id == alert_id).order_by(e.c.event_id)).all()
    return [r._asdict() for r in rows]
