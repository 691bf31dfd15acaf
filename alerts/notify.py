"""Notifications through an outbox: store-manager e-mail and webhook per alert, CX contact lists with
consent and a frequency cap, and back-in-stock notices when an alert resolves.

Queueing is idempotent (one outbox row per idempotency key). Sending claims a row (pending ->
sending) in its own transaction before delivering, so a re-run or a second worker never sends it
again; a failed delivery goes back to pending with exponential backoff, then to failed. Addresses are
read at send time and consent is re-checked then: an opted-out member is never notified, and no
contact detail is logged or copied into the outbox.
"""

from __future__ import annotations

import json
import logging
import os
import smtplib
import tempfile
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pandas as pd
from sqlalchemy import Connection, Engine, Row, func, insert, select

from alerts.lifecycle import ACTIVE
from alerts.members import contactable
from alerts.shelves import shelf_lines
from alerts.substitutes import substitute_slots
from core.db import insert_ignore, local_time
from core.domain import is_stockout
from core.settings import Settings
from sql import schema

log = logging.getLogger(__name__)
SUBSTITUTE_SLOTS = ["substitute_1", "substitute_2", "substitute_3"]  # "meanwhile try X": "Name (SKU)", best first
MEMBER_EXPORT_COLUMNS = [
    "alert_id",
    "store_id",
    "sku",
    "product",
    "member_id",
    "score",
    "contact_channel",
    "contact_address",
    *SUBSTITUTE_SLOTS,
]


class NotifyError(ValueError):
    """A notification request that cannot be met (e.g. an unknown alert)."""


# ------------------------------------------------------------------------------------------- queueing


# an outbox row, as schema.outbox takes it
OutboxRow = dict[str, str | int | datetime | None]


def message_row(key: str, kind: str, alert_id: int, now: datetime, member_id: str | None = None) -> OutboxRow:
    return {
        "idempotency_key": key,
        "kind": kind,
        "alert_id": alert_id,
        "member_id": member_id,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
    }


def queue_notifications(engine: Engine, settings: Settings, now: datetime) -> dict[str, int]:
    """Queue what the alerts' current state calls for; running it again queues nothing new."""
    a, c = schema.alerts, schema.member_contacts
    rows: dict[str, list[OutboxRow]] = {"store_email": [], "store_webhook": [], "back_in_stock": []}
    with engine.begin() as conn:
        for alert in conn.execute(
            select(a.c.alert_id, a.c.alert_type, a.c.escalated_at).where(a.c.status.in_(("open", "acknowledged")))
        ):
            events = ["opened"] + (["escalated"] if alert.escalated_at is not None else [])
            # sensor_stale is a data problem: operations' webhook only, not the store manager's inbox
            kinds = (["store_email"] if is_stockout(alert.alert_type) else []) + (
                ["store_webhook"] if settings.webhook_url else []
            )
            for kind in kinds:
                rows[kind] += [
                    message_row(f"alert:{alert.alert_id}:{kind}:{event}", kind, alert.alert_id, now) for event in events
                ]
        # members told about a stock-out hear when it is back (their conversation, not a new one)
        told = conn.execute(
            select(c.c.alert_id, c.c.member_id)
            .join(a, a.c.alert_id == c.c.alert_id)
            .where(c.c.kind == "stockout_notice", a.c.status == "resolved")
        ).all()
        rows["back_in_stock"] = [
            message_row(
                f"alert:{r.alert_id}:back_in_stock:{r.member_id}", "back_in_stock", r.alert_id, now, r.member_id
            )
            for r in told
        ]
        return {kind: insert_ignore(conn, schema.outbox, batch) for kind, batch in rows.items()}


# ------------------------------------------------------------------------------------------ CX export


def alert_audience(
    conn: Connection, alert_id: int, now: datetime, cap_days: int
) -> tuple[Row[int, str, str, str], pd.DataFrame, pd.DataFrame, set[str]]:
    """What the contact rules look at for one alert: the alert (store, SKU, product), its linked
    favourites (member_id, score), those members' rows, and the members the frequency cap holds back
    (put on another alert's list within `cap_days`, and not already on this alert's own)."""
    a, am, m, c, p = schema.alerts, schema.alert_members, schema.members, schema.member_contacts, schema.products
    alert = conn.execute(
        select(a.c.alert_id, a.c.store_id, a.c.sku, p.c.name.label("product"))
        .join(p, p.c.sku == a.c.sku)
        .where(a.c.alert_id == alert_id)
    ).first()
    if alert is None:
        raise NotifyError(f"alert {alert_id} does not exist")
    links = pd.read_sql(select(am.c.member_id, am.c.score).where(am.c.alert_id == alert_id), conn)
    members = pd.read_sql(select(m).where(m.c.member_id.in_(links["member_id"].tolist())), conn)
    recent = (
        conn.execute(
            select(c.c.member_id).where(
                c.c.kind == "stockout_notice", c.c.alert_id != alert_id, c.c.at > now - timedelta(days=cap_days)
            )
        )
        .scalars()
        .all()
    )
    already = set(
        conn.execute(select(c.c.member_id).where(c.c.alert_id == alert_id, c.c.kind == "stockout_notice"))
        .scalars()
        .all()
    )
    return alert, links, members, set(recent) - already


def alert_substitutes_now(conn: Connection, alert_id: int, store_id: str) -> pd.DataFrame:
    """The alert's members' substitutes as export columns (member_id, substitute_1..3), read now:
    a substitute whose SKU has an active alert of its own at the store is left out and the next moves up."""
    s, a, p = schema.alert_substitutes, schema.alerts, schema.products
    rows = pd.read_sql(
        select(s.c.member_id, s.c.rank, s.c.sku, p.c.name).join(p, p.c.sku == s.c.sku).where(s.c.alert_id == alert_id),
        conn,
    )
    blocked = conn.execute(select(a.c.sku).where(a.c.store_id == store_id, a.c.status.in_(ACTIVE))).scalars().all()
    return substitute_slots(rows, blocked, len(SUBSTITUTE_SLOTS))


def members_for_alert(engine: Engine, alert_id: int, now: datetime, cap_days: int, record: bool = True) -> pd.DataFrame:
    """The members CX may contact about one alert: favourites of the alert's SKU at its store, with
    marketing consent, not opted out, and not put on another alert's list within `cap_days`; each
    with up to three substitutes to offer meanwhile (`alert_substitutes_now`, "" where none).
    `record=True` records the contacts (`record_member_contacts`) once the list is made, so a
    re-export of the same alert gives the same list; `record=False` only looks (the CX page's preview,
    and `export_members_csv`, which records only after the file is in place)."""
    with engine.connect() as conn:
        alert, links, members, held = alert_audience(conn, alert_id, now, cap_days)
        substitutes = alert_substitutes_now(conn, alert_id, alert.store_id)
    allowed = contactable(links, members)
    allowed = allowed[~allowed["member_id"].isin(held)].merge(substitutes, on="member_id", how="left")
    allowed[SUBSTITUTE_SLOTS] = allowed[SUBSTITUTE_SLOTS].fillna("")
    out = allowed.assign(alert_id=alert_id, store_id=alert.store_id, sku=alert.sku, product=alert.product)
    out = out[MEMBER_EXPORT_COLUMNS].sort_values(["score", "member_id"], ascending=[False, True]).reset_index(drop=True)
    if record:
        record_member_contacts(engine, alert_id, out["member_id"], now)
    return out


def contact_funnel(engine: Engine, alert_id: int, now: datetime, cap_days: int) -> dict[str, int | str]:
    """Why linked favourites are not all on the contact list: of `linked`, `no_consent` lack marketing
    consent (or their consent is unknown), `opted_out` gave it but opted out, `recently_contacted`
    are held back by the frequency cap, and `may_contact` remain, the length of `members_for_alert`.
    Each member counts once, under the first rule they fail, and the rules are those of
    `contactable` and `members_for_alert` themselves: consent is `contactable` with opt-outs set
    aside, opt-out the rest of it. Counts and the alert's store, SKU and product: no member ids or
    contact details."""
    with engine.connect() as conn:
        alert, links, members, held = alert_audience(conn, alert_id, now, cap_days)
    linked = set(links["member_id"])
    consented = set(contactable(links, members.assign(opted_out=False))["member_id"])
    allowed = set(contactable(links, members)["member_id"])
    return {
        "linked": len(linked),
        "no_consent": len(linked - consented),
        "opted_out": len(consented - allowed),
        "recently_contacted": len(allowed & held),
        "may_contact": len(allowed - held),
        "cap_days": cap_days,
        "alert_id": alert_id,
        "store_id": alert.store_id,
        "sku": alert.sku,
        "product": alert.product,
    }


def record_cx_export(engine: Engine, alert_id: int, exported_by: str, member_count: int, now: datetime) -> None:
    """One export of an alert's contact list in the history (cx_exports): who, when and how many
    members; never who they are or how to reach them."""
    with engine.begin() as conn:
        conn.execute(
            insert(schema.cx_exports).values(
                alert_id=alert_id, exported_by=exported_by[:64], exported_at=now, member_count=member_count
            )
        )


def record_member_contacts(engine: Engine, alert_id: int, member_ids: Iterable[str], now: datetime) -> int:
    """Record that these members were put on the CX list for `alert_id` (they count toward the
    frequency cap from `now`). Idempotent: a member already recorded for the alert keeps its first
    time. Returns how many contacts were new."""
    rows = [{"member_id": mid, "alert_id": alert_id, "kind": "stockout_notice", "at": now} for mid in member_ids]
    with engine.begin() as conn:
        return insert_ignore(conn, schema.member_contacts, rows)


def write_csv_atomic(frame: pd.DataFrame, path: Path) -> Path:
    """Write `frame` as CSV to `path` all at once: a temporary file in the same folder, renamed into
    place, so a reader never sees half a file and a failure leaves no file behind. The folder must
    exist (FileNotFoundError otherwise)."""
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise FileNotFoundError(f"folder {folder} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            frame.to_csv(fh, index=False)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def export_members_csv(
    engine: Engine, alert_id: int, now: datetime, cap_days: int, path: Path, exported_by: str = "cli"
) -> pd.DataFrame:
    """`members_for_alert` written to the CSV `path`, then recorded (the contacts, and the export in
    the history as `exported_by`): contacts count toward the cap only once CX has the file. A missing
    folder or a failed write raises NotifyError and records nothing; if recording fails, the file is
    removed again, so file and record never disagree."""
    frame = members_for_alert(engine, alert_id, now, cap_days, record=False)
    try:
        write_csv_atomic(frame, path)
    except OSError as exc:
        raise NotifyError(
            f"could not write {path}: {exc.strerror or exc}; nothing exported, no contact recorded"
        ) from None
    try:
        record_member_contacts(engine, alert_id, frame["member_id"], now)
        record_cx_export(engine, alert_id, exported_by, len(frame), now)
    except BaseException:
        Path(path).unlink(missing_ok=True)
        raise
    return frame


# -------------------------------------------------------------------------------------------- sending


@dataclass
class Delivery:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    cancelled: int = 0
    handed_to_cx: int = 0


def claim(engine: Engine, message_id: int, now: datetime) -> bool:
    """pending -> sending, atomically: only one sender wins a message."""
    o = schema.outbox
    with engine.begin() as conn:
        result = conn.execute(
            o.update()
            .where(o.c.message_id == message_id, o.c.status == "pending")
            .values(status="sending", next_attempt_at=now)
        )
    return result.rowcount == 1


def alert_context(conn: Connection, alert_id: int) -> dict[str, Any]:
    """The alert's row with its product, price, store and manager, and how many members it links."""
    a, p, s, am = schema.alerts, schema.products, schema.stores, schema.alert_members
    found = conn.execute(
        select(
            a,
            p.c.name.label("product"),
            p.c.unit_price,
            s.c.manager_email,
            s.c.name.label("store_name"),
            s.c.timezone,
        )
        .join(p, p.c.sku == a.c.sku)
        .join(s, s.c.store_id == a.c.store_id)
        .where(a.c.alert_id == alert_id)
    ).first()
    if found is None:
        raise NotifyError(f"alert {alert_id} does not exist")
    row = found._asdict()
    row["members_affected"] = conn.execute(
        select(func.count()).select_from(am).where(am.c.alert_id == alert_id)
    ).scalar_one()
    return row


def alert_text(ctx: Mapping[str, Any], escalated: bool) -> tuple[str, str]:
    """Subject and body for the store manager: why in plain words (alerts.shelves), times in the
    store's own zone, labelled, and a member count; never member details."""
    evidence = json.loads(ctx["evidence"])
    line = shelf_lines(pd.DataFrame([{**ctx, "status": "open", "evidence": evidence}]), ctx.get("timezone")).iloc[0]
    when = local_time(ctx["expected_empty_at"], ctx.get("timezone")) or "now"
    prefix = "ESCALATED: " if escalated else ""
    subject = f"[Shelfwatch] {prefix}{ctx['alert_type']} at {ctx['store_id']}: {ctx['product']} ({ctx['sku']})"
    lines = [
        f"{ctx['product']} ({ctx['sku']}) at {ctx['store_name']} ({ctx['store_id']}):"
        f" {ctx['alert_type'].replace('_', ' ')}.",
        f"Why: {line['reason']}.",
        f"Expected empty: {when}; probability {ctx['probability']:.0%}.",
        f"What to do: {line['action']}." if line["action"] else "",
        f"At stake: {line['impact']}.",
        f"Loyal members for whom this is a favourite: {ctx['members_affected']}.",
        f"Evidence (times in UTC): {json.dumps(evidence, sort_keys=True)}",
        f"Acknowledge: shelfwatch alerts ack {ctx['alert_id']} --by YOUR-NAME",
    ]
    return subject, "\n".join(x for x in lines if x)


def send_email(settings: Settings, to: str, subject: str, body: str, key: str) -> None:
    url = urlparse(settings.smtp_url)
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = settings.mail_from, to, subject
    msg["Message-ID"] = f"<{key.replace(':', '.')}@shelfwatch>"  # receivers can drop duplicates too
    msg.set_content(body)
    with smtplib.SMTP(url.hostname or "127.0.0.1", url.port or 25, timeout=10) as smtp:
        if url.username:
            smtp.login(url.username, url.password or "")
        smtp.send_message(msg)


def send_webhook(settings: Settings, payload: Mapping[str, Any], key: str) -> None:
    request = urllib.request.Request(
        settings.webhook_url,
        data=json.dumps(payload).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Idempotency-Key": key},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        if response.status >= 300:
            raise RuntimeError(f"webhook answered HTTP {response.status}")


def deliver(engine: Engine, settings: Settings, message: Row[*tuple[Any, ...]]) -> str:
    """Deliver one claimed message (its outbox row); returns its final status (sent, cancelled or handed_to_cx)."""
    with engine.connect() as conn:
        ctx = alert_context(conn, message.alert_id)
        member = None
        if message.member_id:
            member = conn.execute(select(schema.members).where(schema.members.c.member_id == message.member_id)).first()
    escalated = message.idempotency_key.endswith(":escalated")
    if message.kind == "store_email":
        subject, body = alert_text(ctx, escalated)
        send_email(settings, ctx["manager_email"], subject, body, message.idempotency_key)
    elif message.kind == "store_webhook":
        subject, body = alert_text(ctx, escalated)
        send_webhook(
            settings,
            {
                "text": f"*{subject}*\n{body}",
                "alert_id": ctx["alert_id"],
                "store_id": ctx["store_id"],
                "sku": ctx["sku"],
                "alert_type": ctx["alert_type"],
                "escalated": escalated,
            },
            message.idempotency_key,
        )
    elif message.kind == "back_in_stock":
        if member is None or not member.marketing_consent or member.opted_out:
            return "cancelled"  # consent withdrawn since the list was made: never notify
        if member.contact_channel != "email":
            return "handed_to_cx"  # sms/app notices go out through CX's tools (see `members export`)
        # the follow-up of the stock-out notice (whose "meanwhile try X" is in the CX export): the
        # favourite itself is back, so nothing about substitutes here
        send_email(
            settings,
            member.contact_address,
            f"{ctx['product']} is back on the shelf",
            f"Good news: your {ctx['product']} is back at {ctx['store_name']}.",
            message.idempotency_key,
        )
    else:
        raise ValueError(f"unknown message kind {message.kind!r}")
    return "sent"


def send_pending(engine: Engine, settings: Settings, now: datetime, limit: int = 1000) -> Delivery:
    """Deliver due messages; failures back off 1, 2, 4, ... minutes, then fail. Logs ids, never addresses."""
    o = schema.outbox
    stats = Delivery()
    with engine.connect() as conn:
        due = conn.execute(
            select(o).where(o.c.status == "pending", o.c.next_attempt_at <= now).order_by(o.c.message_id).limit(limit)
        ).all()
    for message in due:
        if not claim(engine, message.message_id, now):
            continue
        try:
            status = deliver(engine, settings, message)
        except Exception as exc:  # noqa: BLE001 - any delivery failure is retried, with its reason kept
            attempts = message.attempts + 1
            final = attempts >= settings.notify_max_attempts
            values = {
                "status": "failed" if final else "pending",
                "attempts": attempts,
                "last_error": f"{type(exc).__name__}: {exc}"[:500],
                "next_attempt_at": now + timedelta(minutes=2 ** (attempts - 1)),
            }
            with engine.begin() as conn:
                conn.execute(o.update().where(o.c.message_id == message.message_id).values(**values))
            log.warning(
                "message %s (%s, alert %s) failed attempt %s: %s",
                message.message_id,
                message.kind,
                message.alert_id,
                attempts,
                type(exc).__name__,
            )
            stats.failed += final
            stats.retried += not final
            continue
        with engine.begin() as conn:
            conn.execute(
                o.update()
                .where(o.c.message_id == message.message_id)
                .values(status=status, attempts=message.attempts + 1, sent_at=now)
            )
            if status == "sent" and message.kind == "back_in_stock":
                insert_ignore(
                    conn,
                    schema.member_contacts,
                    [
                        {
                            "member_id": message.member_id,
                            "alert_id": message.alert_id,
                            "kind": "back_in_stock",
                            "at": now,
                        }
                    ],
                )
        setattr(stats, status, getattr(stats, status) + 1)
        log.info("message %s (%s, alert %s) %s", message.message_id, message.kind, message.alert_id, status)
    return stats


def outbox_counts(engine: Engine) -> dict[str, int]:
    o = schema.outbox
    with engine.connect() as conn:
        rows = conn.execute(select(o.c.kind, o.c.status, func.count()).group_by(o.c.kind, o.c.status)).all()
    return {f"{kind}/{status}": n for kind, status, n in rows}
