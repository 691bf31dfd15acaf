"""The store manager's inbox (issue 18): one line per shelf, acknowledge / resolve a whole shelf with a
typed note, sort / filter / pages as GET parameters (bad ones: 400 with a message, never 500); over
HTTP on SQLite and PostgreSQL, then in real Chromium at desktop and phone sizes, keyboard only."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from sql import schema
from tests.shelfwatch.web.test_pages import PASSWORD, ROLES, browser_login, client_for, csrf_of, shot

INBOX = "/stores/S001/alerts"
AS_OF = datetime(2026, 11, 23, tzinfo=UTC)  # WORLD_AS_OF: the settings' clock, which ages are measured from


def add_alert(
    engine,
    sku: str,
    alert_type: str,
    store: str = "S001",
    status: str = "open",
    severity: float = 1.0,
    opened_at: datetime = AS_OF,
    empty_at: datetime | None = None,
    resolved_at: datetime | None = None,
    **evidence,
) -> int:
    """An alert as detection writes it (the web tests' worlds have too few for pages and filters)."""
    a = schema.alerts
    with engine.begin() as conn:
        alert_id = conn.execute(
            a.insert()
            .values(
                store_id=store,
                sku=sku,
                alert_type=alert_type,
                status=status,
                probability=0.8,
                expected_empty_at=empty_at,
                severity=severity,
                evidence=json.dumps({"source": "records", "on_shelf": 4.0, **evidence}),
                opened_at=opened_at,
                updated_at=opened_at,
                acknowledged_by="bob" if status == "acknowledged" else None,
                resolved_at=resolved_at,
                resolved_by="bob" if resolved_at else None,
            )
            .returning(a.c.alert_id)
        ).scalar_one()
        conn.execute(
            schema.alert_events.insert().values(
                alert_id=alert_id, at=opened_at, actor="detector", event="opened", to_status="open"
            )
        )
    return alert_id


def shelves(html: str) -> list[tuple[str, list[int]]]:
    """(SKU, alert ids) of each line of the to-do list, in page order."""
    return [
        (sku, [int(i) for i in ids.split()])
        for sku, ids in re.findall(r'<tr class="shelf" data-sku="([^"]+)" data-alerts="([^"]*)"', html)
    ]


def statuses(engine, ids) -> dict[int, tuple]:
    a = schema.alerts
    with engine.connect() as conn:
        return {
            r.alert_id: (r.status, r.acknowledged_by, r.resolved_by)
            for r in conn.execute(
                select(a.c.alert_id, a.c.status, a.c.acknowledged_by, a.c.resolved_by).where(a.c.alert_id.in_(ids))
            )
        }


def active_on(engine, store: str, sku: str) -> list[int]:
    a = schema.alerts
    with engine.connect() as conn:
        return (
            conn.execute(
                select(a.c.alert_id)
                .where(a.c.store_id == store, a.c.sku == sku, a.c.status.in_(("open", "acknowledged")))
                .order_by(a.c.alert_id)
            )
            .scalars()
            .all()
        )


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", re.sub(r"<style>.*?</style>", "", html, flags=re.S)))


def test_the_inbox_shows_one_line_per_shelf_with_its_reason_and_stakes_in_words(web_db):
    engine, settings = web_db
    [empty_id] = active_on(engine, "S001", "SKU00013")  # the world's S001 alert: a sensor reads the shelf empty
    predicted = add_alert(
        engine,
        "SKU00013",
        "predicted_stockout",
        severity=500.0,
        empty_at=AS_OF,
        source="sensor",
        on_shelf=0.0,
        expected_demand_until_delivery=8.0,
    )
    phantom = add_alert(
        engine,
        "SKU00002",
        "phantom_stockout",
        severity=131.4,
        zero_sales_days=4,
        usual_daily_units=3.1,
        book_units=12.0,
        on_shelf=12.0,
    )
    manager = client_for(settings, "store_manager")
    page = manager.get(INBOX)
    assert page.status_code == 200
    assert shelves(page.text) == [
        ("SKU00013", [empty_id, predicted]),
        ("SKU00002", [phantom]),
    ]  # most severe first, one line each
    text = text_of(page.text)
    assert "To do: 2 shelves" in text
    assert re.search(
        r"Sensor reads 0 units \(last reading yesterday \d\d:00 GMT\); next delivery today 06:00 GMT, \d+ units", text
    )  # S001: London
    assert (
        "No sales for 4 days although the books show 12 units (usually 3.1/day): check the shelf (phantom stock)"
        in text
    )
    assert re.search(
        r"\d+ favourite members affected; about 8 units \(worth [\d.,]+ at shelf price\) short before the next "
        r"delivery",
        text,
    )
    # what to do (alerts.actions), from the world's own detection: the steps and the numbers behind them
    assert re.search(
        r"What to do .*(Emergency order|Transfer from another store|Refill from the backroom) "
        r"(Refill \d+ from the backroom|Transfer \d+ from S\d+|Emergency order of \d+)[^.]*: "
        r"\d+ units short of the \d+ needed "
        r"until the delivery (today|tomorrow|\w{3} \d\d \w{3}) \d\d:\d\d GMT \(95 % chance; 0 on the shelf\)",
        text,
    ), text
    assert "131.4" not in text and "500.0" not in text  # the rank key is never shown as a bare number
    assert "@" not in text and "@" not in re.sub(
        r"<[^>]+>", "", page.text
    )  # counts only: no member contact details on a manager's page
    # the per-alert history still works, with store-local times and a link back to the inbox
    history = manager.get(f"/alerts/{phantom}/history")
    assert history.status_code == 200 and f'href="{INBOX}"' in history.text and "2026-11-23 00:00 GMT" in history.text
    assert client_for(settings, "admin").get("/stores/S999/alerts").status_code == 404


def test_a_shelf_is_acknowledged_and_resolved_at_once_with_a_typed_note(web_db):
    engine, settings = web_db
    predicted = add_alert(engine, "SKU00013", "predicted_stockout", severity=5.0)
    ids = active_on(engine, "S001", "SKU00013")
    assert predicted in ids and len(ids) == 2
    manager = client_for(settings, "store_manager")
    csrf = csrf_of(manager, INBOX)
    shelf = "/stores/S001/shelves/SKU00013"

    assert manager.post(f"{shelf}/acknowledge", data={"csrf": "forged"}).status_code == 403
    acknowledged = manager.post(
        f"{shelf}/acknowledge",
        data={"csrf": csrf, "back": "sort=product&per_page=10&evil=https://x"},
        follow_redirects=False,
    )
    assert acknowledged.status_code == 303
    assert (
        acknowledged.headers["location"]
        == "/stores/S001/alerts?sort=product&per_page=10&done=acknowledged&shelf=SKU00013&n=2"
    )
    assert set(statuses(engine, ids).values()) == {("acknowledged", "bob", None)}
    assert "Acknowledged 2 alerts on SKU00013." in manager.get(acknowledged.headers["location"]).text
    again = manager.post(f"{shelf}/acknowledge", data={"csrf": csrf}, follow_redirects=False)
    assert again.status_code == 409 and "already acknowledged" in again.text

    # resolving needs a typed note of at most 500 characters, and a known reason if one is chosen
    for data, status, message in [
        ({}, 400, "needs a note"),
        ({"note": "   "}, 400, "needs a note"),
        ({"note": "x" * 501}, 400, "at most 500"),
        ({"note": "ok", "reason": "because"}, 400, "unknown reason"),
    ]:
        answer = manager.post(f"{shelf}/resolve", data={"csrf": csrf, **data}, follow_redirects=False)
        assert (answer.status_code, message in answer.text) == (status, True), data
    assert set(statuses(engine, ids).values()) == {("acknowledged", "bob", None)}  # nothing moved

    # who may act, and on what
    planner = client_for(settings, "planner")
    assert planner.post(f"{shelf}/resolve", data={"csrf": csrf_of(planner, INBOX), "note": "x"}).status_code == 403
    assert manager.post("/stores/S002/shelves/SKU00013/resolve", data={"csrf": csrf, "note": "x"}).status_code == 403
    assert manager.post("/stores/S001/shelves/NOPE/resolve", data={"csrf": csrf, "note": "x"}).status_code == 404
    assert manager.post("/stores/S999/shelves/SKU00013/resolve", data={"csrf": csrf, "note": "x"}).status_code == 404
    assert manager.post(f"{shelf}/delete", data={"csrf": csrf, "note": "x"}).status_code == 404
    assert (
        manager.post("/stores/S001/shelves/SKU00001/acknowledge", data={"csrf": csrf}).status_code == 409
    )  # a shelf with no alerts

    resolved = manager.post(
        f"{shelf}/resolve",
        data={"csrf": csrf, "reason": "refilled", "note": "Put 24 units out from the backroom"},
        follow_redirects=False,
    )
    assert resolved.status_code == 303 and "done=resolved" in resolved.headers["location"]
    assert set(statuses(engine, ids).values()) == {("resolved", "bob", "bob")}
    e = schema.alert_events
    with engine.connect() as conn:
        notes = conn.execute(select(e.c.note).where(e.c.alert_id.in_(ids), e.c.event == "resolved")).scalars().all()
    assert notes == ["refilled: Put 24 units out from the backroom"] * 2
    page = manager.get(INBOX).text
    assert shelves(page) == [] and "Nothing to do" in page
    assert (
        all(f'data-alert="{i}"' in page for i in ids) and "refilled: Put 24 units out from the backroom" in page
    )  # in the closed list
    assert manager.post(f"{shelf}/resolve", data={"csrf": csrf, "note": "again"}).status_code == 409
    # the per-alert actions still work
    single = add_alert(engine, "SKU00005", "predicted_stockout")
    assert manager.post(f"/alerts/{single}/acknowledge", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    assert manager.post(f"/alerts/{single}/resolve", data={"csrf": csrf, "note": "x" * 501}).status_code == 400


def test_sort_filter_and_pages_are_query_parameters(web_db):
    engine, settings = web_db
    a = schema.alerts
    with engine.begin() as conn:  # start from an empty inbox (closed long ago): only this test's shelves
        conn.execute(
            a.update()
            .where(a.c.store_id == "S001", a.c.status.in_(("open", "acknowledged")))
            .values(status="resolved", resolved_at=datetime.now(UTC) - timedelta(days=30))
        )
    # 12 shelves: severity 12..1 for SKU00001..SKU00012; empty times the other way round; ages and statuses mixed
    for n in range(1, 13):
        sku = f"SKU{n:05d}"
        add_alert(
            engine,
            sku,
            "predicted_stockout",
            severity=float(13 - n),
            empty_at=AS_OF + timedelta(hours=100 - n),
            opened_at=AS_OF - timedelta(hours=2 if n <= 4 else 72 if n <= 8 else 24 * 10),
            status="acknowledged" if n == 3 else "open",
        )
    add_alert(engine, "SKU00007", "phantom_stockout", severity=0.5, zero_sales_days=3, usual_daily_units=2.0)
    add_alert(
        engine, "SKU00014", "sensor_stale", severity=0.1, sensor_id="X14", silent_hours=30.0
    )  # no expected empty time: last by it
    client = client_for(settings, "store_manager")

    def skus(query: str = "", status: int = 200) -> list[str]:
        answer = client.get(f"{INBOX}?{query}")
        assert answer.status_code == status, (query, answer.status_code, answer.text[:300])
        return [sku for sku, _ in shelves(answer.text)]

    every = [f"SKU{n:05d}" for n in range(1, 13)] + ["SKU00014"]
    assert skus("per_page=100") == every  # most severe first
    assert skus("per_page=100&sort=empty") == [f"SKU{n:05d}" for n in range(12, 0, -1)] + ["SKU00014"]
    with engine.connect() as conn:
        names = dict(conn.execute(select(schema.products.c.sku, schema.products.c.name)).all())
    assert skus("per_page=100&sort=product") == sorted(every, key=lambda s: (names[s], s))
    assert skus("type=phantom_stockout") == ["SKU00007"] and skus("type=sensor_stale") == ["SKU00014"]
    assert skus("status=acknowledged") == ["SKU00003"] and "SKU00003" not in skus("status=open&per_page=100")
    assert skus("age=24h") == [
        "SKU00001",
        "SKU00002",
        "SKU00003",
        "SKU00004",
        "SKU00014",
    ]  # opened at as-of counts as new
    assert skus("age=7d&per_page=50") == [f"SKU{n:05d}" for n in range(1, 9)] + ["SKU00014"]
    assert skus("age=older") == [f"SKU{n:05d}" for n in range(9, 13)]
    assert skus("type=predicted_stockout&status=open&age=7d&sort=empty") == [
        f"SKU{n:05d}" for n in (8, 7, 6, 5, 4, 2, 1)
    ]

    first = client.get(f"{INBOX}?per_page=10").text
    assert (
        "Page 1 of 2" in first
        and 'id="next" rel="next" href="?per_page=10&amp;page=2"' in first
        and 'id="prev"' not in first
    )
    assert skus("per_page=10") == every[:10] and skus("per_page=10&page=2") == every[10:]
    assert skus("per_page=10&page=99") == every[10:]  # past the end: the last page
    second = client.get(f"{INBOX}?per_page=10&page=2&type=predicted_stockout").text
    assert (
        "Page 2 of 2" in second and 'href="?type=predicted_stockout&amp;per_page=10"' in second
    )  # the filter kept, page 1 left out
    assert "(filtered)" in second

    # the closed list has pages too
    now = datetime.now(UTC)
    for n in range(12):
        add_alert(engine, "SKU00015", "shelf_empty", status="resolved", resolved_at=now - timedelta(minutes=n))
    closed = client.get(f"{INBOX}?per_page=10").text
    assert (
        'id="closed-count">12<' in closed
        and 'id="closed-page-of">Page 1 of 2<' in closed
        and 'id="closed-next"' in closed
    )
    closed_two = client.get(f"{INBOX}?per_page=10&closed_page=2").text
    assert len(re.findall(r'<tr data-alert="', closed_two)) == 2 and 'id="closed-prev"' in closed_two


BAD = [
    "sort=bogus",
    "type=nothing",
    "status=closed",
    "age=1y",
    "page=0",
    "page=-1",
    "page=abc",
    "page=99999999999999999999",
    "per_page=7",
    "per_page=1000000",
    "closed_page=x",
    "type=%3Cscript%3Ealert(1)%3C/script%3E",
    "sort=",
    "page=1.5",
    "page=%C2%B2",
    "per_page=%D9%A1%D9%A0",
]  # a superscript two and Arabic-Indic "10": digits to str.isdigit, not to int()


def test_bad_parameters_are_a_400_with_a_message_never_a_500(web_db):
    _, settings = web_db
    client = client_for(settings, "store_manager")
    for query in BAD:
        answer = client.get(f"{INBOX}?{query}")
        assert answer.status_code == 400, (query, answer.status_code)
        assert 'id="param-errors"' in answer.text and "were not understood" in answer.text, query
        assert "<script>alert" not in answer.text  # what was typed is shown escaped
        assert len(shelves(answer.text)) == 1, query  # the inbox is still there, with that parameter's default
    assert client.get(f"{INBOX}?unknown=1&page=1&sort=severity").status_code == 200  # unknown keys are ignored
    assert (
        client.get(f"{INBOX}?done=resolved&shelf=%3Cb%3Ecall+us%3C/b%3E&n=1").text.count("call us") == 0
    )  # no flash of a link's choosing


# ------------------------------------------------------------------------------------ real Chromium


def tab_to(page, selector: str, limit: int = 80) -> None:
    """Press Tab until the element matching `selector` has the focus (keyboard only, as a person would)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => document.activeElement && document.activeElement.matches(s)", selector):
            return
    raise AssertionError(f"{selector} never got the focus in {limit} tabs")


@pytest.mark.slow
def test_inbox_on_desktop_and_phone_by_keyboard_in_chromium(live_server, browser):
    engine, base = live_server
    add_alert(engine, "SKU00013", "predicted_stockout", severity=2.0, empty_at=AS_OF)
    add_alert(
        engine,
        "SKU00002",
        "phantom_stockout",
        severity=1.0,
        zero_sales_days=4,
        usual_daily_units=3.1,
        book_units=12.0,
        on_shelf=12.0,
    )
    add_alert(
        engine,
        "SKU00004",
        "predicted_stockout",
        severity=0.5,
        empty_at=AS_OF + timedelta(days=2),
        expected_demand_until_delivery=9.0,
        next_delivery_at=(AS_OF + timedelta(days=3)).isoformat(),
    )

    desktop = browser_login(browser, base, "store_manager")
    assert desktop.url.endswith(INBOX)
    assert (
        desktop.locator("#active thead").bounding_box()["height"] > 20
        and desktop.locator("#active tr.shelf").count() == 3
    )
    assert desktop.evaluate("getComputedStyle(document.querySelector('#active tr.shelf')).display") == "table-row"
    shot(desktop, "manager-inbox-desktop")

    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True).new_page()
    phone.goto(f"{base}/login")
    phone.fill("#username", ROLES["store_manager"][0])
    phone.fill("#password", PASSWORD)
    with phone.expect_navigation():
        phone.locator("#login").tap()
    assert phone.url.endswith(INBOX)
    cards = phone.locator("#active tr.shelf")
    assert cards.count() == 3
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
    # cards, not a table: rows laid out as blocks, the column headings only for screen readers
    assert phone.evaluate("getComputedStyle(document.querySelector('#active tr.shelf')).display") == "block"
    assert phone.locator("#active thead").bounding_box()["height"] <= 1
    boxes = [cards.nth(i).bounding_box() for i in range(3)]
    assert (
        all(b["width"] <= 390 for b in boxes) and boxes[0]["y"] + boxes[0]["height"] <= boxes[1]["y"]
    )  # stacked, one under the other
    for button in phone.locator("#active button.ack, #active summary").all():
        box = button.bounding_box()
        assert box["height"] >= 44 and box["width"] >= 44  # a thumb's tap target
    first = cards.first
    assert first.get_attribute("data-sku") == "SKU00013" and "Sensor reads 0 units" in first.inner_text()
    shot(phone, "manager-inbox-phone")

    # keyboard only (desktop): Tab to the first shelf's Acknowledge, Enter; then open Resolve, type a note, Enter
    page = desktop
    ids = page.locator("#active tr.shelf").first.get_attribute("data-alerts").split()
    tab_to(page, "#active tr.shelf:first-of-type button.ack")
    outline = page.evaluate(
        "() => { const s = getComputedStyle(document.activeElement); return [s.outlineStyle, s.outlineWidth]; }"
    )
    assert outline == ["solid", "3px"]  # a visible focus outline
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert "Acknowledged 2 alerts on SKU00013." in page.inner_text("#flash")
    line = page.locator('#active tr.shelf[data-sku="SKU00013"]')
    assert (
        line.locator("td.status").inner_text().startswith("acknowledged by bob")
        and line.locator("button.ack").count() == 0
    )
    tab_to(page, '#active tr.shelf[data-sku="SKU00013"] summary')
    page.keyboard.press("Enter")  # opens the resolve form
    tab_to(page, '#active tr.shelf[data-sku="SKU00013"] select[name="reason"]')
    page.keyboard.press("ArrowDown")  # "refilled"
    page.keyboard.press("Tab")
    page.keyboard.type("Refilled 24 units from the backroom")
    shot(page, "manager-inbox-resolve-form")
    tab_to(page, '#active tr.shelf[data-sku="SKU00013"] button.resolve')
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.locator('#active tr.shelf[data-sku="SKU00013"]').count() == 0
    for alert_id in ids:
        closed = page.locator(f'#closed tr[data-alert="{alert_id}"]')
        assert closed.count() == 1 and "refilled: Refilled 24 units from the backroom" in closed.inner_text()
    shot(page, "manager-inbox-after-resolve")

    # the phone resolves the next shelf by thumb (tap), its history reads store-local and leads back
    phone.goto(f"{base}{INBOX}")
    card = phone.locator("#active tr.shelf").first
    sku = card.get_attribute("data-sku")
    card.locator("summary").tap()
    card.locator("textarea").fill("Counted: 12 on the shelf behind the price tag")
    with phone.expect_navigation():
        card.locator("button.resolve").tap()
    assert phone.locator(
        f'#active tr.shelf[data-sku="{sku}"]'
    ).count() == 0 and "Resolved 1 alert on" in phone.inner_text("#flash")
    with phone.expect_navigation():
        phone.locator("#closed a").first.tap()
    assert "/history" in phone.url and re.search(r"\d\d:\d\d GMT", phone.inner_text("#events"))
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390
    shot(phone, "manager-history-phone")
    with phone.expect_navigation():
        phone.locator("#back-to-inbox").tap()
    assert phone.url.endswith(INBOX)
