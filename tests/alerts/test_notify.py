"""Notifications against a real local SMTP server (aiosmtpd) and a real HTTP server, on both
databases: nothing sent twice, retries with backoff, consent and the frequency cap respected, and no
contact details in logs."""

import json
import logging
import socket
import threading
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd
import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select
from typer.testing import CliRunner

from alerts import lifecycle
from alerts.detect import persist_alerts
from alerts.notify import NotifyError, members_for_alert, queue_notifications, send_pending
from core.db import local_time
from core.settings import Settings
from shelfwatch.cli.app import app
from sql import schema
from tests.alerts.test_detect import load_world_directly
from tests.alerts.test_lifecycle import AS_OF, candidate

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Inbox:
    """aiosmtpd handler keeping every message it receives."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content)))
        return "250 OK"


@pytest.fixture
def smtp():
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, f"smtp://127.0.0.1:{port}"
    controller.stop()


@pytest.fixture
def webhook():
    received, fail_first = [], {"n": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if fail_first["n"] > 0:
                fail_first["n"] -= 1
                self.send_response(503)
                self.end_headers()
                return
            received.append((self.headers["Idempotency-Key"], json.loads(body)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield received, fail_first, f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()


def open_alert_with_members(engine, world, members=("M1", "M2", "M3", "M4")):
    """One predicted stock-out at the first store with favourite members of chosen consent."""
    load_world_directly(engine, world)
    with engine.begin() as conn:
        store = conn.execute(select(schema.stores.c.store_id).order_by(schema.stores.c.store_id)).scalar()
        sku = conn.execute(select(schema.products.c.sku).order_by(schema.products.c.sku)).scalar()
        conn.execute(
            schema.members.insert(),
            [
                {
                    "member_id": "M1",
                    "home_store_id": store,
                    "marketing_consent": True,
                    "opted_out": False,
                    "contact_channel": "email",
                    "contact_address": "m1@example.org",
                },
                {
                    "member_id": "M2",
                    "home_store_id": store,
                    "marketing_consent": True,
                    "opted_out": True,
                    "contact_channel": "email",
                    "contact_address": "m2@example.org",
                },
                {
                    "member_id": "M3",
                    "home_store_id": store,
                    "marketing_consent": False,
                    "opted_out": False,
                    "contact_channel": "email",
                    "contact_address": "m3@example.org",
                },
                {
                    "member_id": "M4",
                    "home_store_id": store,
                    "marketing_consent": True,
                    "opted_out": False,
                    "contact_channel": "sms",
                    "contact_address": "+3100000004",
                },
            ],
        )
    favourites = pd.DataFrame(
        {"store_id": store, "sku": sku, "member_id": list(members), "score": [4.0, 3.0, 2.0, 1.0][: len(members)]}
    )
    persist_alerts(
        engine,
        pd.DataFrame([candidate(store=store, sku=sku)]),
        favourites,
        AS_OF,
        Settings(database_url=str(engine.url)),
    )
    with engine.connect() as conn:
        return conn.execute(select(schema.alerts.c.alert_id)).scalar(), store, sku


def outbox(engine):
    with engine.connect() as conn:
        return pd.read_sql(select(schema.outbox).order_by(schema.outbox.c.message_id), conn)


def test_store_email_and_webhook_are_sent_once_even_when_rerun(engine, small_world, smtp, webhook, caplog):  # noqa: F811
    inbox, smtp_url = smtp
    received, _, hook_url = webhook
    alert_id, store, sku = open_alert_with_members(engine, small_world)
    settings = Settings(database_url=str(engine.url), smtp_url=smtp_url, webhook_url=hook_url)
    assert queue_notifications(engine, settings, NOW) == {"store_email": 1, "store_webhook": 1, "back_in_stock": 0}
    assert queue_notifications(engine, settings, NOW) == {"store_email": 0, "store_webhook": 0, "back_in_stock": 0}
    with caplog.at_level(logging.INFO, logger="alerts.notify"):
        first = send_pending(engine, settings, NOW)
        again = send_pending(engine, settings, NOW + timedelta(minutes=5))
    assert first.sent == 2 and again.sent == 0
    assert len(inbox.messages) == 1 and len(received) == 1
    rcpt, mail = inbox.messages[0]
    with engine.connect() as conn:
        manager = conn.execute(select(schema.stores.c.manager_email).where(schema.stores.c.store_id == store)).scalar()
    assert (
        rcpt == [manager]
        and sku in mail["Subject"]
        and mail["Message-ID"] == f"<alert.{alert_id}.store_email.opened@shelfwatch>"
    )
    body = mail.get_payload()
    assert "Loyal members for whom this is a favourite: 4" in body and "@example.org" not in body  # counts, not people
    with engine.connect() as conn:  # times in the store's own zone, labelled; the reason in words
        zone = conn.execute(select(schema.stores.c.timezone).where(schema.stores.c.store_id == store)).scalar()
        empty_at = conn.execute(
            select(schema.alerts.c.expected_empty_at).where(schema.alerts.c.alert_id == alert_id)
        ).scalar()
    assert (
        f"Expected empty: {local_time(empty_at, zone) or 'now'};" in body and "Why: " in body and "At stake: " in body
    )
    key, payload = received[0]
    assert (
        key == f"alert:{alert_id}:store_webhook:opened" and payload["alert_id"] == alert_id and sku in payload["text"]
    )
    ours = "\n".join(
        r.getMessage()
        for r in caplog.records
        if r.name.split(".")[0] in ("alerts", "shelfwatch", "iot_ingest", "forecasting")
    )
    assert (
        ours and "example.org" not in ours and manager not in ours
    )  # (the test's SMTP server logs addresses; it is not ours)


def test_failed_webhook_is_retried_with_backoff_then_delivered(engine, small_world, smtp, webhook):  # noqa: F811
    _, smtp_url = smtp
    received, fail_first, hook_url = webhook
    fail_first["n"] = 1
    open_alert_with_members(engine, small_world)
    settings = Settings(database_url=str(engine.url), smtp_url=smtp_url, webhook_url=hook_url)
    queue_notifications(engine, settings, NOW)
    first = send_pending(engine, settings, NOW)
    assert first.sent == 1 and first.retried == 1 and received == []
    hook = outbox(engine).set_index("kind").loc["store_webhook"]
    assert hook["status"] == "pending" and hook["attempts"] == 1 and "503" in hook["last_error"]
    assert send_pending(engine, settings, NOW + timedelta(seconds=30)).sent == 0  # backoff: not due yet
    assert send_pending(engine, settings, NOW + timedelta(minutes=1)).sent == 1 and len(received) == 1


def test_unreachable_smtp_fails_after_max_attempts(engine, small_world):  # noqa: F811
    open_alert_with_members(engine, small_world)
    settings = Settings(database_url=str(engine.url), smtp_url=f"smtp://127.0.0.1:{free_port()}", notify_max_attempts=2)
    queue_notifications(engine, settings, NOW)
    send_pending(engine, settings, NOW)
    assert send_pending(engine, settings, NOW + timedelta(minutes=1)).failed == 1
    row = outbox(engine).iloc[0]
    assert row["status"] == "failed" and row["attempts"] == 2 and "ConnectionRefusedError" in row["last_error"]


def test_cx_export_respects_consent_and_cap_and_back_in_stock_follows(engine, small_world, smtp):  # noqa: F811
    inbox, smtp_url = smtp
    alert_id, store, sku = open_alert_with_members(engine, small_world)
    settings = Settings(database_url=str(engine.url), smtp_url=smtp_url)
    listed = members_for_alert(engine, alert_id, NOW, cap_days=7)
    assert listed["member_id"].tolist() == ["M1", "M4"]  # M2 opted out, M3 gave no consent
    assert listed.equals(members_for_alert(engine, alert_id, NOW, cap_days=7))  # re-export: same list
    # a second alert for the same members within the cap: nobody may be contacted again
    persist_alerts(
        engine,
        pd.DataFrame(
            [
                candidate(store=store, sku=sku),
                candidate(store=store, sku=sku, alert_type="shelf_empty", probability=1.0),
            ]
        ),
        pd.DataFrame({"store_id": store, "sku": sku, "member_id": ["M1", "M4"], "score": [1.0, 1.0]}),
        AS_OF,
        settings,
    )
    with engine.connect() as conn:
        second = conn.execute(
            select(schema.alerts.c.alert_id).where(schema.alerts.c.alert_type == "shelf_empty")
        ).scalar()
    assert members_for_alert(engine, second, NOW + timedelta(days=2), cap_days=7).empty
    assert members_for_alert(engine, second, NOW + timedelta(days=8), cap_days=7)["member_id"].tolist() == ["M1", "M4"]
    with pytest.raises(NotifyError, match="alert 424242 does not exist"):
        members_for_alert(engine, 424242, NOW, cap_days=7)

    # the shelf is refilled: M1 (e-mail) gets a back-in-stock notice once, M4 (sms) goes to CX
    lifecycle.resolve(engine, alert_id, "manager", at=NOW)
    queued = queue_notifications(engine, settings, NOW)
    assert queued["back_in_stock"] == 2
    stats = send_pending(engine, settings, NOW)
    assert stats.handed_to_cx == 1
    notices = [
        (rcpt, m["Subject"], m.get_payload()) for rcpt, m in inbox.messages if "back on the shelf" in m["Subject"]
    ]
    assert [rcpt for rcpt, _, _ in notices] == [["m1@example.org"]]
    with engine.connect() as conn:
        product = conn.execute(select(schema.products.c.name).where(schema.products.c.sku == sku)).scalar_one()
        store_name = conn.execute(select(schema.stores.c.name).where(schema.stores.c.store_id == store)).scalar_one()
    assert notices[0][1] == f"{product} is back on the shelf"
    assert (
        f"your {product} is back at {store_name}" in notices[0][2] and "try" not in notices[0][2]
    )  # the favourite itself: no substitutes
    assert queue_notifications(engine, settings, NOW)["back_in_stock"] == 0
    send_pending(engine, settings, NOW + timedelta(hours=1))
    assert len([1 for _, m in inbox.messages if "back on the shelf" in m["Subject"]]) == 1


def test_opting_out_after_the_list_cancels_the_notice(engine, small_world, smtp):  # noqa: F811
    inbox, smtp_url = smtp
    alert_id, _, _ = open_alert_with_members(engine, small_world, members=("M1",))
    settings = Settings(database_url=str(engine.url), smtp_url=smtp_url)
    members_for_alert(engine, alert_id, NOW, cap_days=7)
    with engine.begin() as conn:
        conn.execute(schema.members.update().where(schema.members.c.member_id == "M1").values(opted_out=True))
    lifecycle.resolve(engine, alert_id, "manager", at=NOW)
    queue_notifications(engine, settings, NOW)
    assert send_pending(engine, settings, NOW).cancelled == 1
    assert not [m for _, m in inbox.messages if "back on the shelf" in m["Subject"]]


def test_cli_members_export_and_notify_send(engine, small_world, smtp, tmp_path, monkeypatch):  # noqa: F811
    inbox, smtp_url = smtp
    alert_id, _, _ = open_alert_with_members(engine, small_world)
    monkeypatch.setenv("SHELFWATCH_SMTP_URL", smtp_url)
    db = ["--db", engine.url.render_as_string(hide_password=False)]
    runner = CliRunner()
    out = runner.invoke(app, ["members", "export", "--alert", str(alert_id), "--output", str(tmp_path / "cx.csv"), *db])
    assert out.exit_code == 0, out.output
    cx = pd.read_csv(tmp_path / "cx.csv")
    assert cx["member_id"].tolist() == ["M1", "M4"] and {"contact_channel", "contact_address"} <= set(cx.columns)
    assert runner.invoke(app, ["members", "export", "--alert", "999999", *db]).exit_code == 2
    queue_notifications(engine, Settings(database_url=str(engine.url), smtp_url=smtp_url), NOW)
    sent = runner.invoke(app, ["notify", "send", *db])
    assert sent.exit_code == 0, sent.output
    assert '"sent": 1' in sent.output and len(inbox.messages) == 1
    assert '"sent": 0' in runner.invoke(app, ["notify", "send", *db]).output
