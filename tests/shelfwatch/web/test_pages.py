"""Web views: role rules, CSRF and sessions over HTTP (TestClient), then every page for every role in
real headless Chromium (Playwright driving Debian's /usr/bin/chromium), with screenshots."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from shelfwatch.web.app import create_app
from shelfwatch.web.auth import UserError, add_user, authenticate
from sql import schema
from tests.conftest import PASSWORD, REPO_ROOT, WEB_USERS

ROLES = WEB_USERS  # role -> (user name, store): the web stage's users (tests/conftest.py), all with PASSWORD
SCREENSHOTS = REPO_ROOT / "out" / "screenshots"


def client_for(settings, role=None) -> TestClient:
    client = TestClient(create_app(settings), base_url="https://testserver")  # secure cookies travel over https only
    if role:
        login(client, ROLES[role][0])
    return client


def csrf_of(client: TestClient, path: str = "/login") -> str:
    return re.search(r'name="csrf" value="([^"]+)"', client.get(path).text).group(1)


def login(client: TestClient, username: str, password: str = PASSWORD):
    return client.post(
        "/login", data={"username": username, "password": password, "csrf": csrf_of(client)}, follow_redirects=False
    )


def test_passwords_are_hashed_and_checked(web_db):
    engine, _ = web_db
    with engine.connect() as conn:
        stored = conn.execute(select(schema.users.c.password_hash).where(schema.users.c.username == "ann")).scalar()
    assert stored.startswith("$argon2") and PASSWORD not in stored
    assert authenticate(engine, "ann", PASSWORD).role == "planner"
    assert authenticate(engine, "ann", "wrong password") is None and authenticate(engine, "nobody", PASSWORD) is None
    with pytest.raises(UserError, match="a store manager needs --store"):
        add_user(engine, "eve", PASSWORD, "store_manager")
    with pytest.raises(UserError, match="unknown store S999"):
        add_user(engine, "eve", PASSWORD, "store_manager", "S999")


def test_login_sets_a_secure_httponly_session_and_each_role_lands_home(web_db):
    _, settings = web_db
    for role, (name, store) in ROLES.items():
        client = client_for(settings)
        response = login(client, name)
        assert response.status_code == 303
        assert (
            response.headers["location"]
            == {"planner": "/forecast", "store_manager": f"/stores/{store}/alerts", "cx": "/cx", "admin": "/health"}[
                role
            ]
        )
        cookie = response.headers["set-cookie"].lower()
        assert (
            "shelfwatch_session=" in cookie and "secure" in cookie and "httponly" in cookie and "samesite=lax" in cookie
        )
    assert login(client_for(settings), "ann", "wrong").text.count("Unknown user or wrong password") == 1
    assert client_for(settings).get("/forecast", follow_redirects=False).headers["location"] == "/login"


def test_role_rules(web_db):
    engine, settings = web_db
    with engine.connect() as conn:
        s2_alert = conn.execute(
            select(schema.alerts.c.alert_id).where(schema.alerts.c.store_id == "S002").limit(1)
        ).scalar()
    manager = client_for(settings, "store_manager")
    assert manager.get("/stores/S001/alerts").status_code == 200
    forbidden = manager.get("/stores/S002/alerts")
    assert forbidden.status_code == 403 and "bob manages S001, not S002" in forbidden.text
    assert manager.get("/forecast?store=S002").status_code == 403
    assert manager.get("/cx").status_code == 403 and manager.get("/health").status_code == 403
    assert s2_alert is not None, "the web world has an alert at S002: the cross-store checks below must run"
    csrf = csrf_of(manager, "/stores/S001/alerts")
    assert manager.post(f"/alerts/{s2_alert}/acknowledge", data={"csrf": csrf}).status_code == 403
    assert manager.get(f"/alerts/{s2_alert}/history").status_code == 403
    planner = client_for(settings, "planner")
    assert planner.get("/stores/S002/alerts").status_code == 200 and planner.get("/health").status_code == 200
    assert planner.get("/cx").status_code == 403  # no member data for planners
    cx = client_for(settings, "cx")
    assert cx.get("/cx").status_code == 200 and cx.get("/health").status_code == 403
    page = manager.get("/stores/S001/alerts").text
    assert "@" not in re.sub(r"<[^>]+>", "", page)  # no contact detail on a store manager's page


def test_state_changes_need_the_csrf_token(web_db):
    engine, settings = web_db
    with engine.connect() as conn:
        alert_id = conn.execute(
            select(schema.alerts.c.alert_id)
            .where(schema.alerts.c.store_id == "S001", schema.alerts.c.status == "open")
            .limit(1)
        ).scalar()
    manager = client_for(settings, "store_manager")
    assert manager.post(f"/alerts/{alert_id}/acknowledge", data={"csrf": "forged"}).status_code == 403
    assert manager.post(f"/alerts/{alert_id}/acknowledge", data={}).status_code == 403
    assert (
        client_for(settings).post("/login", data={"username": "ann", "password": PASSWORD, "csrf": "x"}).status_code
        == 403
    )
    ok = manager.post(
        f"/alerts/{alert_id}/acknowledge",
        data={"csrf": csrf_of(manager, "/stores/S001/alerts")},
        follow_redirects=False,
    )
    assert ok.status_code == 303
    with engine.connect() as conn:
        row = conn.execute(
            select(schema.alerts.c.status, schema.alerts.c.acknowledged_by).where(schema.alerts.c.alert_id == alert_id)
        ).first()
    assert tuple(row) == ("acknowledged", "bob")


# ------------------------------------------------------------------------------------ real Chromium


def browser_login(browser, base: str, role: str):
    page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page.goto(f"{base}/login")
    page.fill("#username", ROLES[role][0])
    page.fill("#password", PASSWORD)
    page.click("#login")
    page.wait_for_load_state("networkidle")
    return page


def shot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.mark.slow
def test_every_page_for_every_role_in_chromium(live_server, browser):
    engine, base = live_server
    # planner: forecast explorer with its chart and heat map, pipeline health; no CX page
    page = browser_login(browser, base, "planner")
    assert page.url.endswith("/forecast")
    page.select_option("#store", "S001")
    page.fill("#sku", "SKU00002")
    page.click("#show")
    page.wait_for_selector("#series .main-svg")
    assert page.locator("#heat .main-svg").count() >= 1 and page.inner_text("#model") != "no forecast yet"
    assert (
        page.locator("#forecast-table tbody tr").count() == 14 and page.locator("#csv").is_visible()
    )  # horizon 14: the numbers as a table
    assert page.locator("#heat-table a").count() >= 1  # the heat map's links, for the keyboard
    shot(page, "planner-forecast")
    page.goto(f"{base}/health")
    assert page.locator("#runs tr").count() == 6
    shot(page, "planner-health")
    page.goto(f"{base}/cx")
    assert "Not allowed" in page.content()

    # store manager: own inbox, one line per shelf; acknowledge the top shelf and see it move, resolve it
    # with a typed note; another store is 403
    page = browser_login(browser, base, "store_manager")
    assert page.url.endswith("/stores/S001/alerts")
    shot(page, "manager-inbox")
    first = page.locator("#active tr.shelf").first
    sku, alert_id = first.get_attribute("data-sku"), first.get_attribute("data-alerts").split()[0]
    with page.expect_navigation():
        first.locator("button.ack").click()
    line = page.locator(f'#active tr.shelf[data-sku="{sku}"]')
    assert line.locator("td.status").inner_text().startswith("acknowledged by bob")
    line.locator("summary").click()
    line.locator("textarea[name=note]").fill("refilled from the backroom")
    with page.expect_navigation():
        line.locator("button.resolve").click()
    assert page.locator(f'#closed tr[data-alert="{alert_id}"]').count() == 1  # moved to closed
    shot(page, "manager-after-resolve")
    page.goto(f"{base}/alerts/{alert_id}/history")
    assert [c.inner_text() for c in page.locator("#events tr td:nth-child(3)").all()][-2:] == [
        "acknowledged",
        "resolved",
    ]
    response = page.goto(f"{base}/stores/S002/alerts")
    assert response.status == 403
    shot(page, "manager-forbidden")

    # CX: members of an alert, then the CSV export downloads with contact details
    page = browser_login(browser, base, "cx")
    page.locator("#cx-alerts a.members").first.click()
    page.wait_for_load_state("networkidle")
    shot(page, "cx-members")
    with page.expect_download() as download:
        page.click("#export")
    path = download.value.path()
    header = Path(path).read_text().splitlines()[0]
    assert (
        header == "alert_id,store_id,sku,product,member_id,score,contact_channel,contact_address,"
        "substitute_1,substitute_2,substitute_3"
    )

    # admin: everything
    page = browser_login(browser, base, "admin")
    for path in ("/health", "/forecast", "/cx", "/admin/users", "/stores/S002/alerts"):
        assert page.goto(f"{base}{path}").status == 200
    shot(page, "admin-alerts-S002")
    page.click("#logout")
    page.wait_for_load_state("networkidle")
    assert page.url.endswith("/login")


def test_page_timing_benchmark_visits_every_page(web_db):
    from lab.bench.web import time_pages

    _, settings = web_db
    rows = time_pages(settings, requests=3)
    assert [r["page"] for r in rows][0].startswith("login page") and len(rows) == 7
    assert all(r["median_ms"] > 0 and r["p95_ms"] >= r["median_ms"] for r in rows)
