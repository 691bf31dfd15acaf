"""The web views under attack (issue 18): sessions that end on the server, login throttling with an
audit trail, user text escaped in charts, 404 for impossible ids, security headers, no-store on
member pages; over HTTP (TestClient) and in real headless Chromium."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from core.db import as_utc
from shelfwatch.web import auth
from shelfwatch.web.app import create_app
from sql import schema
from tests.shelfwatch.web.test_pages import PASSWORD, browser_login, client_for, csrf_of, login, shot

INBOX = "/stores/S001/alerts"


def test_a_copied_session_cookie_opens_nothing_after_logout(web_db):
    _, settings = web_db
    client = client_for(settings, "store_manager")
    assert client.get(INBOX).status_code == 200
    copied = dict(client.cookies)
    assert client.post("/logout", data={"csrf": csrf_of(client, INBOX)}, follow_redirects=False).status_code == 303
    replay = client_for(settings)
    replay.cookies.update(copied)
    answer = replay.get(INBOX, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/login"


def test_a_new_password_or_disabling_the_user_ends_their_sessions_at_once(web_db):
    engine, settings = web_db
    first, second = client_for(settings, "store_manager"), client_for(settings, "store_manager")
    assert first.get(INBOX).status_code == 200 and second.get(INBOX).status_code == 200
    auth.add_user(engine, "bob", "a new long password", "store_manager", "S001")
    assert first.get(INBOX, follow_redirects=False).status_code == 303
    assert second.get(INBOX, follow_redirects=False).status_code == 303
    third = client_for(settings)
    assert login(third, "bob", "a new long password").status_code == 303
    assert auth.disable_user(engine, "bob")
    assert third.get(INBOX, follow_redirects=False).status_code == 303
    assert login(client_for(settings), "bob", "a new long password").status_code == 401  # disabled: no way back in
    assert not auth.disable_user(engine, "nobody")


def test_login_is_throttled_per_user_and_every_attempt_is_audited(web_db):
    engine, settings = web_db
    client = client_for(settings)
    codes = [login(client, "ann", f"wrong guess {i}").status_code for i in range(auth.FREE_FAILURES)]
    assert codes == [401] * auth.FREE_FAILURES
    locked = login(client, "ann", PASSWORD)  # the right password, but too soon
    assert locked.status_code == 429 and "try again in" in locked.text
    elsewhere = TestClient(create_app(settings), base_url="https://testserver", client=("192.0.2.7", 50000))
    ghost = [login(elsewhere, "nobody-here", "x" * 12) for _ in range(auth.FREE_FAILURES + 1)]
    assert [g.status_code for g in ghost] == [401] * auth.FREE_FAILURES + [429]  # an unknown user is answered alike
    with engine.connect() as conn:
        rows = conn.execute(
            select(schema.login_attempts)
            .where(schema.login_attempts.c.username == "ann")
            .order_by(schema.login_attempts.c.attempt_id)
        ).all()
    assert [(r.succeeded, r.throttled) for r in rows] == [(False, False)] * auth.FREE_FAILURES + [(False, True)]
    assert all(r.client for r in rows)
    # the wait doubles with each failure and ends: an hour later the right password works again
    later = datetime.now(UTC) + timedelta(hours=1)
    assert auth.login_wait(engine, "ann", "testclient", now=later) == 0.0
    just_after = as_utc(rows[-1].attempted_at) + timedelta(
        milliseconds=100
    )  # not the wall clock: a loaded machine may take the 2 s
    assert 0 < auth.login_wait(engine, "ann", "testclient", now=just_after) <= 2


def test_throttle_counts_per_client_address_too(web_db):
    engine, _ = web_db
    for i in range(auth.FREE_FAILURES + 2):
        auth.record_attempt(engine, f"user{i}", "203.0.113.9", succeeded=False)
    assert auth.login_wait(engine, "someone-else", "203.0.113.9") > 0  # one address trying many names
    assert auth.login_wait(engine, "someone-else", "198.51.100.1") == 0


def test_user_text_in_a_chart_title_is_escaped_and_the_cloud_link_is_off(web_db):
    _, settings = web_db
    client = client_for(settings, "planner")
    evil = '<a href="https://evil.example/login">Session expired: click here</a>'
    page = client.get("/forecast", params={"store": evil, "sku": "SKU00001"})
    assert page.status_code in (200, 404)
    assert '<a href="https://evil.example' not in page.text
    page = client.get("/forecast", params={"store": "S001", "sku": "SKU00001"})
    config = re.search(r"f\.layout, (\{[^}]*\})\]", page.text).group(1)
    assert json.loads(config)["showSendToCloud"] is False and json.loads(config)["showLink"] is False


@pytest.mark.parametrize(
    "method,path",
    [
        ("get", "/cx?alert=999999"),
        ("get", "/cx?alert=99999999999999999999"),
        ("get", "/alerts/99999999999999999999/history"),
        ("get", "/alerts/0/history"),
        ("post", "/alerts/99999999999999999999/resolve"),
        ("post", "/cx/99999999999999999999/export"),
        ("post", "/cx/999999/export"),
    ],
)
def test_unknown_or_impossible_ids_are_404_not_500(web_db, method, path):
    _, settings = web_db
    client = client_for(settings, "admin")
    data = {"csrf": csrf_of(client, "/health")} if method == "post" else None
    answer = client.request(method.upper(), path, data=data, follow_redirects=False)
    assert answer.status_code == 404, (path, answer.status_code, answer.text[:300])


def test_security_headers_everywhere_and_no_store_on_member_pages(web_db):
    _, settings = web_db
    client = client_for(settings, "cx")
    for path in ("/login", "/cx", "/forecast"):
        headers = client.get(path).headers
        assert "frame-ancestors 'none'" in headers["content-security-policy"], path
        assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "same-origin"
    assert client.get("/cx").headers["cache-control"] == "no-store"
    slash = client.get("/cx/", headers={"host": "evil.example"}, follow_redirects=False)
    assert slash.status_code == 404 and "location" not in slash.headers  # no redirect built from the Host header


def test_resolve_notes_have_a_length_limit(web_db):
    engine, settings = web_db
    with engine.connect() as conn:
        alert_id = (
            conn.execute(select(schema.alerts.c.alert_id).where(schema.alerts.c.store_id == "S001")).scalars().first()
        )
    client = client_for(settings, "store_manager")
    answer = client.post(
        f"/alerts/{alert_id}/resolve", data={"csrf": csrf_of(client, INBOX), "note": "x" * 501}, follow_redirects=False
    )
    assert answer.status_code == 400 and "at most 500" in answer.text


@pytest.mark.slow
def test_logout_replay_and_link_injection_in_chromium(live_server, browser):
    _, base = live_server
    page = browser_login(browser, base, "store_manager")
    cookies = page.context.cookies()
    page.click("text=Log out")
    page.wait_for_load_state("networkidle")
    assert page.url.endswith("/login")
    replay = browser.new_context()
    replay.add_cookies(cookies)
    stolen = replay.new_page()
    stolen.goto(f"{base}{INBOX}")
    assert stolen.url.endswith("/login"), stolen.url
    shot(stolen, "security-logout-replay")
    replay.close()

    planner = browser_login(browser, base, "planner")
    evil = '<a id="phish" href="https://evil.example/login">Session expired: click here</a>'
    planner.goto(f"{base}/forecast?store={evil}&sku=SKU00001")
    planner.wait_for_load_state("networkidle")
    assert planner.locator("#phish").count() == 0
    shot(planner, "security-title-injection")
