"""CX and admin pages (issue 18): the members of a chosen alert first, the contact funnel from the
member rules, the alert list paged past 200 with checked filters, the export history (cx_exports,
migration 0014), the admins' users page, and the health page in human units; (issue 19) each
member's substitutes, the members at risk paged, and whether notices worked; over HTTP (TestClient)
on both databases, and in real headless Chromium with screenshots."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, func, insert, inspect, select

from alerts.effect_report import cx_effect
from alerts.member_risk import at_risk_list
from alerts.notify import MEMBER_EXPORT_COLUMNS, contact_funnel, members_for_alert
from core.db import local_time
from shelfwatch.web.routers.operations import human_duration, status_of
from sql import schema
from sql.migrate import alembic_config, migrate
from tests.shelfwatch.web.test_pages import PASSWORD, ROLES, browser_login, client_for, csrf_of, login, shot

CAP_DAYS = 7  # Settings.member_contact_cap_days' default, which web_db keeps


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def stockout_alert(engine, status: str = "open") -> tuple[int, str]:
    a = schema.alerts
    with engine.connect() as conn:
        row = conn.execute(
            select(a.c.alert_id, a.c.store_id)
            .where(a.c.status == status, a.c.alert_type != "sensor_stale")
            .order_by(a.c.alert_id)
        ).first()
    assert row is not None, "the small world has an active stock-out alert"
    return row.alert_id, row.store_id


def constructed_audience(engine) -> tuple[int, str]:
    """One alert's favourites replaced by eight members, one per case the rules tell apart:
    A, B may be contacted; C no consent; D no consent and opted out (counts once, as no consent);
    E opted out; F put on another alert's list 2 days ago (held by the 7-day cap); G 10 days ago
    (past the cap: may be contacted); H already on this alert's own list (may be contacted)."""
    alert_id, store = stockout_alert(engine)
    now = datetime.now(UTC)
    people = {
        "A": (True, False),
        "B": (True, False),
        "C": (False, False),
        "D": (False, True),
        "E": (True, True),
        "F": (True, False),
        "G": (True, False),
        "H": (True, False),
    }
    with engine.begin() as conn:
        other = conn.execute(
            select(schema.alerts.c.alert_id).where(schema.alerts.c.alert_id != alert_id).limit(1)
        ).scalar()
        conn.execute(delete(schema.alert_members).where(schema.alert_members.c.alert_id == alert_id))
        conn.execute(delete(schema.member_contacts).where(schema.member_contacts.c.alert_id == alert_id))
        for i, (key, (consent, opted_out)) in enumerate(people.items()):
            conn.execute(
                insert(schema.members).values(
                    member_id=f"T-{key}",
                    home_store_id=store,
                    marketing_consent=consent,
                    opted_out=opted_out,
                    contact_channel="email",
                    contact_address=f"t-{key.lower()}@members.example",
                )
            )
            conn.execute(insert(schema.alert_members).values(alert_id=alert_id, member_id=f"T-{key}", score=10.0 - i))
        conn.execute(
            insert(schema.member_contacts).values(
                member_id="T-F", alert_id=other, kind="stockout_notice", at=now - timedelta(days=2)
            )
        )
        conn.execute(
            insert(schema.member_contacts).values(
                member_id="T-G", alert_id=other, kind="stockout_notice", at=now - timedelta(days=10)
            )
        )
        conn.execute(
            insert(schema.member_contacts).values(
                member_id="T-H", alert_id=alert_id, kind="stockout_notice", at=now - timedelta(days=1)
            )
        )
    return alert_id, store


# ---------------------------------------------------------------------------------------------- CX


def test_funnel_counts_follow_the_member_rules_and_members_come_first(web_db):
    engine, settings = web_db
    alert_id, _ = constructed_audience(engine)
    now = datetime.now(UTC)
    funnel = contact_funnel(engine, alert_id, now, CAP_DAYS)
    listed = members_for_alert(engine, alert_id, now, CAP_DAYS, record=False)
    assert {k: funnel[k] for k in ("linked", "no_consent", "opted_out", "recently_contacted", "may_contact")} == {
        "linked": 8,
        "no_consent": 2,
        "opted_out": 1,
        "recently_contacted": 1,
        "may_contact": 4,
    }
    assert sorted(listed["member_id"]) == ["T-A", "T-B", "T-G", "T-H"] and funnel["may_contact"] == len(listed)

    cx = client_for(settings, "cx")
    page = cx.get(f"/cx?alert={alert_id}")
    assert page.status_code == 200
    words = text_of(page.text)
    assert (
        f"8 favourites linked → 4 may be contacted : 2 no consent or consent unclear , 1 opted out , "
        f"1 contacted in the last {CAP_DAYS} days"
    ) in words
    # the chosen alert's members are the first section, before the long alert list
    assert (
        page.text.index('id="members-section"')
        < page.text.index('id="alerts-section"')
        < page.text.index('id="exports-section"')
    )
    assert page.text.index('id="members"') < page.text.index('id="cx-alerts"')
    assert "@members.example" not in page.text  # addresses only in the export file
    assert cx.get(f"/cx?alert={alert_id}").headers["cache-control"] == "no-store"


def test_export_is_recorded_with_who_when_how_many_and_shown(web_db):
    engine, settings = web_db
    alert_id, store = constructed_audience(engine)
    cx = client_for(settings, "cx")
    before = datetime.now(UTC)
    answer = cx.post(f"/cx/{alert_id}/export", data={"csrf": csrf_of(cx, "/cx")})
    after = datetime.now(UTC)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert sorted(r["member_id"] for r in rows) == ["T-A", "T-B", "T-G", "T-H"] and rows[0]["contact_address"].endswith(
        "@members.example"
    )

    e = schema.cx_exports
    with engine.connect() as conn:
        history = conn.execute(select(e)).all()
        contacts = conn.execute(
            select(func.count())
            .select_from(schema.member_contacts)
            .where(schema.member_contacts.c.alert_id == alert_id)
        ).scalar()
    assert len(history) == 1
    row = history[0]
    at = row.exported_at if row.exported_at.tzinfo else row.exported_at.replace(tzinfo=UTC)
    assert (row.alert_id, row.exported_by, row.member_count) == (alert_id, "cyd", 4) and before - timedelta(
        seconds=1
    ) <= at <= after
    assert contacts == 4  # the contacts count toward the cap as before
    assert set(c["name"] for c in inspect(engine).get_columns("cx_exports")) == {
        "export_id",
        "alert_id",
        "exported_by",
        "exported_at",
        "member_count",
    }

    # an admin exports too; the page lists both, newest first, in the alert's store's zone, labelled
    admin = client_for(settings, "admin")
    assert admin.post(f"/cx/{alert_id}/export", data={"csrf": csrf_of(admin, "/cx")}).status_code == 200
    page = cx.get("/cx")
    table = page.text[page.text.index('id="exports"') :]
    cells = [text_of(r) for r in re.findall(r'<tr data-export="\d+">(.*?)</tr>', table, re.S)]
    zone = dict(engine.connect().execute(select(schema.stores.c.store_id, schema.stores.c.timezone)).all())[store]
    assert len(cells) == 2 and " dee " in cells[0] and " cyd " in cells[1]
    assert (
        local_time(row.exported_at, zone) in cells[1] and f" {alert_id} " in cells[1] and cells[1].strip().endswith("4")
    )
    chosen = text_of(cx.get(f"/cx?alert={alert_id}").text)
    assert "Exported before:" in chosen and "by dee (4 members)" in chosen and "by cyd (4 members)" in chosen
    # the export is CX's: a planner's POST is refused and records nothing
    planner = client_for(settings, "planner")
    assert planner.post(f"/cx/{alert_id}/export", data={"csrf": csrf_of(planner, "/forecast")}).status_code == 403
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(e)).scalar() == 2
    # `shelfwatch members export` goes into the same history, as "cli:<login name>"
    from typer.testing import CliRunner

    from shelfwatch.cli.app import app

    result = CliRunner().invoke(
        app, ["members", "export", "--alert", str(alert_id), "--db", engine.url.render_as_string(hide_password=False)]
    )
    assert result.exit_code == 0, result.output
    with engine.connect() as conn:
        by, count = conn.execute(
            select(e.c.exported_by, e.c.member_count).order_by(e.c.export_id.desc()).limit(1)
        ).one()
    assert by.startswith("cli") and count == 4
    assert "cli" in text_of(cx.get("/cx").text)


def add_resolved_alerts(engine, n: int) -> list[int]:
    """n resolved shelf_empty alerts (no uniqueness on closed ones), each with a favourite linked."""
    now = datetime.now(UTC)
    with engine.begin() as conn:
        store, sku = conn.execute(select(schema.alerts.c.store_id, schema.alerts.c.sku).limit(1)).first()
        member = conn.execute(select(schema.members.c.member_id).limit(1)).scalar()
        ids = []
        for i in range(n):
            ids.append(
                conn.execute(
                    insert(schema.alerts).values(
                        store_id=store,
                        sku=sku,
                        alert_type="shelf_empty",
                        status="resolved",
                        probability=1.0,
                        severity=float(i % 7),
                        evidence="{}",
                        opened_at=now - timedelta(minutes=i),
                        updated_at=now,
                        resolved_at=now,
                    )
                ).inserted_primary_key[0]
            )
        conn.execute(insert(schema.alert_members), [{"alert_id": i, "member_id": member, "score": 1.0} for i in ids])
    return ids


def test_the_alert_list_pages_past_200_and_checks_its_parameters(web_db):
    engine, settings = web_db
    added = add_resolved_alerts(engine, 230)
    cx = client_for(settings, "cx")
    first = cx.get("/cx")
    total = int(re.search(r'id="alerts-total">(\d+)<', first.text).group(1))
    assert total >= 230
    pages = -(-total // 50)
    assert f"Page 1 of {pages} · {total} alerts" in text_of(first.text)
    seen = []
    for n in range(1, pages + 1):
        html = cx.get(f"/cx?page={n}").text
        seen += [int(x) for x in re.findall(r'<tr data-alert="(\d+)"', html)]
    assert len(seen) == total == len(set(seen)) and set(added) <= set(seen)  # every alert once, none cut off
    last = cx.get(f"/cx?page={pages}").text
    assert len(re.findall(r'<tr data-alert="', last)) == total - 50 * (pages - 1) and 'class="next"' not in last
    assert re.findall(r'<tr data-alert="', cx.get("/cx?page=99999").text) == re.findall(
        r'<tr data-alert="', last
    )  # past the end: the last page

    resolved = cx.get("/cx?status=resolved&sort=newest")
    assert resolved.status_code == 200 and "resolved" in resolved.text
    newest = [int(x) for x in re.findall(r'<tr data-alert="(\d+)"', resolved.text)]
    assert newest[:3] == added[:3]  # opened most recently first
    assert 'href="/cx?status=resolved&amp;sort=newest&amp;page=2"' in resolved.text  # paging keeps the filters
    with engine.connect() as conn:
        store = conn.execute(select(schema.alerts.c.store_id).where(schema.alerts.c.alert_id == added[0])).scalar()
    only = cx.get(f"/cx?store={store}&status=resolved")
    assert set(re.findall(r"<tr data-alert=\"\d+\"><td>\d+</td><td>([^<]+)</td>", only.text)) == {store}

    for bad in (
        "page=abc",
        "page=0",
        "page=-3",
        "page=99999999999999999999",
        "status=closed",
        "sort=drop%20table",
        "store=%3Cscript%3Ex",
        "store=S999",
    ):
        answer = cx.get(f"/cx?{bad}")
        assert answer.status_code == 400, (bad, answer.status_code)
        assert 'id="cx-alerts"' in answer.text and "<script>x" not in answer.text and 'id="errors"' in answer.text
    assert cx.get("/cx?status=&sort=&page=&store=").status_code == 200  # empty: the defaults
    assert cx.get("/cx?alert=abc").status_code == 422  # not an id at all: FastAPI's answer, not a 500


def test_alert_members_show_their_substitutes_without_alerted_ones(web_db):
    engine, settings = web_db
    alert_id, store = constructed_audience(engine)
    a, p = schema.alerts, schema.products
    with engine.begin() as conn:
        alerted = set(
            conn.execute(
                select(a.c.sku).where(a.c.store_id == store, a.c.status.in_(("open", "acknowledged")))
            ).scalars()
        )
        names = dict(conn.execute(select(p.c.sku, p.c.name)).all())
        free = sorted(set(names) - alerted)[:2]
        blocked = sorted(alerted)[0]
        conn.execute(
            insert(schema.alert_substitutes),
            [
                {
                    "alert_id": alert_id,
                    "member_id": "T-A",
                    "rank": r,
                    "sku": sku,
                    "score": 0.5,
                    "reason": "same category",
                }
                for r, sku in ((1, free[0]), (2, blocked), (3, free[1]))
            ],
        )
    page = client_for(settings, "cx").get(f"/cx?alert={alert_id}")
    row = re.search(r'<tr data-member="T-A">(.*?)</tr>', page.text, re.S).group(1)
    subs = re.findall(r"<li>(.*?)</li>", re.search(r'<td class="subs">(.*?)</td>', row, re.S).group(1))
    assert [s.replace("&#39;", "'") for s in subs] == [
        f"{names[free[0]]} ({free[0]})",
        f"{names[free[1]]} ({free[1]})",
    ]  # the alerted one left out
    assert "none suggested" in re.search(r'<tr data-member="T-B">(.*?)</tr>', page.text, re.S).group(1)
    assert "suggested substitutes" in page.text and "@members.example" not in page.text


def test_members_at_risk_are_ranked_and_paged_without_contact_details(web_db):
    engine, settings = web_db
    full, total = at_risk_list(engine, limit=None)
    assert total > 50  # the small world has more than a page of them
    cx = client_for(settings, "cx")
    first = cx.get("/cx")
    assert first.status_code == 200 and int(re.search(r'id="risk-total">(\d+)<', first.text).group(1)) == total
    section = first.text[first.text.index('id="risk-section"') : first.text.index('id="effect-section"')]
    rows = re.findall(
        r'<tr data-risk="([^"]+)"><td>(\d+)</td><td>[^<]+</td><td>([^<]+)</td><td>([^<]+)</td>'
        r'\s*<td class="contactable">(yes|no)</td>',
        section,
    )
    assert [int(r[1]) for r in rows] == list(range(1, 51))
    expected = full.set_index("member_id")
    for member, _, reason, home, contactable in rows:
        assert (
            reason.replace("&#39;", "'") == expected.loc[member, "reason"]
            and home == expected.loc[member, "home_store_id"]
        )
        assert contactable == ("yes" if expected.loc[member, "contactable"] else "no")
    assert f"Page 1 of {-(-total // 50)} · {total} members" in text_of(section)
    with engine.connect() as conn:
        addresses = conn.execute(select(schema.members.c.contact_address)).scalars().all()
    assert not any(address in first.text for address in addresses)  # no contact details, on any part of the page

    second = cx.get("/cx?risk_page=2&sort=newest")
    ranks = [int(x) for x in re.findall(r'<tr data-risk="[^"]+"><td>(\d+)</td>', second.text)]
    assert (
        ranks[0] == 51 and 'href="/cx?sort=newest&amp;risk_page=1#risk-section"' in second.text
    )  # paging keeps the alert list's order
    assert re.search(
        r'href="/cx\?sort=newest&amp;risk_page=2&amp;alert=\d+"', second.text
    )  # ...and an alert's link keeps this page
    last = -(-total // 50)
    assert re.findall(r'<tr data-risk="', cx.get("/cx?risk_page=999").text) == re.findall(
        r'<tr data-risk="', cx.get(f"/cx?risk_page={last}").text
    )
    bad = cx.get("/cx?risk_page=abc")
    assert (
        bad.status_code == 400
        and "at-risk page &#39;abc&#39; is not a page number" in bad.text
        and 'id="at-risk"' in bad.text
    )
    assert (
        client_for(settings, "planner").get("/cx").status_code == 403
        and client_for(settings, "store_manager").get("/cx").status_code == 403
    )


def told_members(engine) -> None:
    """Two resolved alerts at S001 a month before as-of, each with two members CX listed (consent) and
    two it could not contact (no consent); some of them buy the product in the fortnight after."""
    from datetime import date

    a, m = schema.alerts, schema.members
    with engine.begin() as conn:
        skus = conn.execute(select(schema.products.c.sku).order_by(schema.products.c.sku).limit(2)).scalars().all()
        yes = (
            conn.execute(
                select(m.c.member_id)
                .where(m.c.marketing_consent.is_(True), m.c.opted_out.is_(False))
                .order_by(m.c.member_id)
                .limit(2)
            )
            .scalars()
            .all()
        )
        no = (
            conn.execute(select(m.c.member_id).where(m.c.marketing_consent.is_(False)).order_by(m.c.member_id).limit(2))
            .scalars()
            .all()
        )
        opened = datetime(2026, 10, 20, 9, tzinfo=UTC)
        for i, sku in enumerate(skus):
            alert_id = conn.execute(
                insert(a)
                .values(
                    store_id="S001",
                    sku=sku,
                    alert_type="shelf_empty",
                    status="resolved",
                    probability=1.0,
                    severity=1.0,
                    evidence="{}",
                    opened_at=opened,
                    updated_at=opened,
                    resolved_at=opened + timedelta(days=2),
                )
                .returning(a.c.alert_id)
            ).scalar_one()
            conn.execute(
                insert(schema.alert_members), [{"alert_id": alert_id, "member_id": x, "score": 1.0} for x in yes + no]
            )
            conn.execute(
                insert(schema.member_contacts),
                [
                    {"member_id": x, "alert_id": alert_id, "kind": "stockout_notice", "at": opened + timedelta(days=1)}
                    for x in yes
                ],
            )
            conn.execute(
                insert(schema.purchase_lines),
                [
                    {
                        "store_id": "S001",
                        "receipt_id": f"TOLD-{i}-{x}",
                        "line_no": 1,
                        "sku": sku,
                        "date": date(2026, 10, 25),
                        "member_id": x,
                        "units": 1.0,
                    }
                    for x in yes + no[:i]
                ],
            )


def test_did_notices_work_says_so_in_words(web_db):
    engine, settings = web_db
    cx = client_for(settings, "cx")
    before = text_of(cx.get("/cx").text)
    assert "Did notices work?" in before and "Not enough data yet to tell whether notices work" in before
    told_members(engine)
    page = cx.get("/cx").text
    effect = cx_effect(engine, settings.clock(), 14, n_boot=1000)
    assert effect["effect"] is not None and effect["treated_n"] == 4 and effect["control_n"] == 4
    sentence = text_of(re.search(r'<p id="effect-sentence">(.*?)</p>', page, re.S).group(1)).strip()
    assert sentence == effect["sentence"] and sentence.startswith(
        "Notified members bought the product or a substitute within 14 days "
    )
    assert "% of comparable members we could not contact: " in sentence and "(95 % interval " in sentence
    rows = {g: text_of(r) for g, r in re.findall(r'<tr data-group="(\w+)">(.*?)</tr>', page, re.S)}
    assert rows["notified"].split()[-4:] == [
        "4",
        str(effect["treated_bought"]),
        f"{effect['treated_rate'] * 100:.0f}",
        "%",
    ]
    assert rows["control"].split()[-4:] == [
        "4",
        str(effect["control_bought"]),
        f"{effect['control_rate'] * 100:.0f}",
        "%",
    ]


# -------------------------------------------------------------------------------------------- admin


def users_csrf(client) -> str:
    return csrf_of(client, "/admin/users")


def test_users_page_is_for_admins_and_every_post_is_checked(web_db):
    engine, settings = web_db
    anonymous = client_for(settings)
    assert anonymous.get("/admin/users", follow_redirects=False).headers["location"] == "/login"
    for role in ("planner", "store_manager", "cx"):
        client = client_for(settings, role)
        answer = client.get("/admin/users")
        assert answer.status_code == 403 and "managing users is for admins" in answer.text
        token = csrf_of(client, "/forecast")  # a valid token of their own session: still not an admin
        for path, data in (
            ("/admin/users", {"username": "mallory", "role": "admin", "password": "x" * 12}),
            ("/admin/users/disable", {"username": "dee"}),
            ("/admin/users/role", {"username": role, "role": "admin"}),
        ):
            assert client.post(path, data={"csrf": token, **data}).status_code == 403, (role, path)
        assert "Users</a>" not in client.get("/forecast").text  # no nav link
    admin = client_for(settings, "admin")
    page = admin.get("/admin/users")
    assert (
        page.status_code == 200
        and 'href="/admin/users" id="nav-users">Users</a>' in page.text
        and page.headers["cache-control"] == "no-store"
    )
    for name in ("ann", "bob", "cyd", "dee"):
        assert f'data-user="{name}"' in page.text
    assert "$argon2" not in page.text
    # CSRF: missing or forged tokens are refused and change nothing
    for token in ("", "forged"):
        assert (
            admin.post(
                "/admin/users", data={"csrf": token, "username": "mallory", "role": "admin", "password": "x" * 12}
            ).status_code
            == 403
        )
        assert admin.post("/admin/users/disable", data={"csrf": token, "username": "bob"}).status_code == 403
    with engine.connect() as conn:
        assert conn.execute(select(schema.users.c.username).where(schema.users.c.username == "mallory")).first() is None
        assert conn.execute(select(schema.users.c.disabled_at).where(schema.users.c.username == "bob")).scalar() is None
    assert client_for(settings, "store_manager").get("/stores/S001/alerts").status_code == 200


def test_admin_adds_changes_resets_and_disables_users(web_db):
    engine, settings = web_db
    admin = client_for(settings, "admin")
    token = users_csrf(admin)
    added = admin.post(
        "/admin/users",
        data={
            "csrf": token,
            "username": "eve",
            "role": "store_manager",
            "store": "S002",
            "password": "eve's long password",
        },
        follow_redirects=False,
    )
    assert added.status_code == 303 and added.headers["location"] == "/admin/users"
    page = admin.get("/admin/users").text
    assert "user eve added: store manager of S002" in page
    row = re.search(r'<tr data-user="eve".*?</tr>', page, re.S).group(0)
    assert "store manager" in text_of(row) and "S002" in row and "not known" in row  # never signed in yet
    eve = client_for(settings)
    assert login(eve, "eve", "eve's long password").headers["location"] == "/stores/S002/alerts"
    assert "not known" not in re.search(r'<tr data-user="eve".*?</tr>', admin.get("/admin/users").text, re.S).group(
        0
    )  # last sign-in now known

    # validation errors: the page again, 400, with the reason; never a 500
    for data, reason in (
        ({"username": "eve", "role": "cx", "password": "x" * 12}, "exists already"),
        ({"username": "fay", "role": "cx", "password": "short"}, "at least 8 characters"),
        ({"username": "fay", "role": "store_manager", "password": "x" * 12}, "a store manager needs"),
        ({"username": "fay", "role": "cx", "store": "S001", "password": "x" * 12}, "only a store manager has one"),
        ({"username": "fay", "role": "store_manager", "store": "S999", "password": "x" * 12}, "unknown store S999"),
        ({"username": "fay", "role": "overlord", "password": "x" * 12}, "unknown role"),
        ({"username": "<b>fay</b>", "role": "cx", "password": "x" * 12}, "a username is"),
        ({"username": "f" * 65, "role": "cx", "password": "x" * 12}, "a username is"),
        ({"username": "", "role": "", "password": ""}, "a username is"),
    ):
        answer = admin.post("/admin/users", data={"csrf": token, **data})
        assert answer.status_code == 400 and reason in answer.text and 'id="user-error"' in answer.text, (
            data,
            answer.status_code,
        )
        assert "<b>fay</b>" not in answer.text
    with engine.connect() as conn:
        assert (
            conn.execute(
                select(func.count()).select_from(schema.users).where(schema.users.c.username.like("f%"))
            ).scalar()
            == 0
        )

    # a new role applies to an open session from its next page
    ann = client_for(settings, "planner")
    assert ann.get("/cx").status_code == 403
    assert (
        admin.post(
            "/admin/users/role", data={"csrf": token, "username": "ann", "role": "cx"}, follow_redirects=False
        ).status_code
        == 303
    )
    assert ann.get("/cx").status_code == 200
    answer = admin.post("/admin/users/role", data={"csrf": token, "username": "ann", "role": "store_manager"})
    assert answer.status_code == 400 and "a store manager needs" in answer.text
    assert (
        admin.post(
            "/admin/users/role",
            data={"csrf": token, "username": "ann", "role": "store_manager", "store": "S001"},
            follow_redirects=False,
        ).status_code
        == 303
    )
    assert ann.get("/stores/S001/alerts").status_code == 200 and ann.get("/stores/S002/alerts").status_code == 403
    answer = admin.post("/admin/users/role", data={"csrf": token, "username": "nobody", "role": "cx"})
    assert answer.status_code == 400 and "unknown user nobody" in answer.text

    # a new password ends the user's sessions at once; the old one no longer works
    bob = client_for(settings, "store_manager")
    assert bob.get("/stores/S001/alerts").status_code == 200
    assert (
        admin.post("/admin/users/password", data={"csrf": token, "username": "bob", "password": "short"}).status_code
        == 400
    )
    assert bob.get("/stores/S001/alerts").status_code == 200  # a refused reset changes nothing
    assert (
        admin.post(
            "/admin/users/password",
            data={"csrf": token, "username": "bob", "password": "bob's new password"},
            follow_redirects=False,
        ).status_code
        == 303
    )
    assert bob.get("/stores/S001/alerts", follow_redirects=False).headers["location"] == "/login"
    assert login(client_for(settings), "bob", PASSWORD).status_code == 401
    bob = client_for(settings)
    assert login(bob, "bob", "bob's new password").status_code == 303

    # disabling ends the session it had at once; they cannot sign in until enabled again
    assert bob.get("/stores/S001/alerts").status_code == 200
    assert (
        admin.post("/admin/users/disable", data={"csrf": token, "username": "bob"}, follow_redirects=False).status_code
        == 303
    )
    assert bob.get("/stores/S001/alerts", follow_redirects=False).headers["location"] == "/login"
    assert login(client_for(settings), "bob", "bob's new password").status_code == 401
    page = admin.get("/admin/users").text
    assert "user bob: disabled; their sessions have ended" in page
    assert "disabled" in text_of(re.search(r'<tr data-user="bob".*?</tr>', page, re.S).group(0))
    assert (
        admin.post("/admin/users/enable", data={"csrf": token, "username": "bob"}, follow_redirects=False).status_code
        == 303
    )
    assert login(client_for(settings), "bob", "bob's new password").status_code == 303

    # an admin cannot disable or demote themselves; unknown users and actions are answered, not 500
    for action, data in (("disable", {}), ("role", {"role": "planner"})):
        answer = admin.post(f"/admin/users/{action}", data={"csrf": token, "username": "dee", **data})
        assert answer.status_code == 400 and "you cannot disable yourself" in answer.text
    assert admin.get("/admin/users").status_code == 200  # still signed in, still an admin
    assert admin.post("/admin/users/disable", data={"csrf": token, "username": "nobody"}).status_code == 400
    assert admin.post("/admin/users/delete", data={"csrf": token, "username": "bob"}).status_code == 404


# ------------------------------------------------------------------------------------------- health


def test_human_units_and_statuses():
    assert [human_duration(s) for s in (None, 4.2, 89, 1200, 5400, 3.5 * 3600, 36 * 3600, 1208345.6, 86400 * 14)] == [
        "–",
        "4 s",
        "89 s",
        "20 min",
        "1.5 hours",
        "3.5 hours",
        "36 hours",
        "14 days",
        "14 days",
    ]
    assert (
        human_duration(3599) == "60 min" and human_duration(3600) == "1 hour" and human_duration(2 * 3600) == "2 hours"
    )
    assert human_duration(48 * 3600) == "2 days" and human_duration(-1200) == "20 min"
    late, stale = timedelta(hours=36), timedelta(hours=72)
    assert [status_of(timedelta(hours=h), late, stale) for h in (1, 37, 80)] == ["ok", "late", "stale"]
    assert (
        status_of(None, late) == "never"
        and status_of(timedelta(hours=1), None) == status_of(None, None) == "no schedule"
    )


def test_health_page_shows_human_units_thresholds_and_status_words(web_db):
    engine, settings = web_db
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(delete(schema.ingested_files))
        conn.execute(
            insert(schema.ingested_files).values(
                sha256="f" * 64,
                path="landing/sales.csv",
                kind="sales_daily",
                rows_loaded=10,
                rows_quarantined=0,
                ingested_at=now - timedelta(days=14),
            )
        )
        conn.execute(delete(schema.ingest_stats))
        conn.execute(
            insert(schema.ingest_stats).values(
                client_id="ingest-1",
                received=10,
                stored=1234567,
                duplicates=0,
                quarantined=0,
                batches=1,
                reconnects=0,
                db_errors=0,
                commit_seconds_total=1.0,
                commit_seconds_max=0.1,
                readings_per_second=250.0,
                updated_at=now - timedelta(minutes=20),
            )
        )
    planner = client_for(settings, "planner")
    page = planner.get("/health")
    assert page.status_code == 200
    words = text_of(page.text)
    runs = {
        m.group(1): text_of(m.group(2)) for m in re.finditer(r'<tr data-step="([^"]+)">(.*?)</tr>', page.text, re.S)
    }
    assert (
        "14 days ago" in runs["sales load"]
        and "stale" in runs["sales load"]
        and "late after 36 hours" in runs["sales load"]
    )
    assert (
        "20 min ago" in runs["sensor ingest"] and " late " in f" {runs['sensor ingest']} "
    )  # silent past the 10 min the DAG allows
    assert "ok" in runs["forecast"] and re.search(
        r"\d+ (s|min) ago", runs["forecast"]
    )  # forecast ran just now (web_db)
    assert "1,234,567" in words and "(20 min ago)" in words
    assert re.search(r"median [^<]*?\d", words) and "late above 5 min" in words
    assert not re.search(r"\d{4,}\.\d s\b", words)  # no raw seconds such as "1208345.6 s"
    assert re.search(r"Overall: ✓? ?(ok|late|stale)", words) or "Overall:" in words
    assert all(
        f'class="status status-{s}">{s}<' in page.text for s in ("stale", "late", "ok")
    )  # a word, not only a colour
    assert client_for(settings, "admin").get("/health").status_code == 200


# ---------------------------------------------------------------------------------------- migration


def test_0014_adds_cx_exports_and_goes_back(db_url):
    from alembic import command

    engine = migrate(db_url, "0013")
    assert "cx_exports" not in inspect(engine).get_table_names()
    migrate(db_url)
    assert "cx_exports" in inspect(engine).get_table_names()
    cfg = alembic_config(db_url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0013")
    assert "cx_exports" not in inspect(engine).get_table_names()
    migrate(db_url)
    assert {"ix_cx_exports_alert_at", "ix_cx_exports_at"} <= {
        i["name"] for i in inspect(engine).get_indexes("cx_exports")
    }


# ------------------------------------------------------------------------------------ real Chromium


@pytest.mark.slow
def test_cx_members_first_and_admin_disables_a_user_in_chromium(live_server, browser):
    engine, base = live_server
    alert_id, _ = constructed_audience(engine)
    add_resolved_alerts(engine, 60)  # a list longer than a screen, and than a page

    page = browser_login(browser, base, "cx")
    page.goto(f"{base}/cx?sort=favourites")
    page.locator(f'#cx-alerts tr[data-alert="{alert_id}"] a.members').click()
    page.wait_for_load_state("networkidle")
    assert f"alert={alert_id}" in page.url and "sort=favourites" in page.url  # the list's order is kept
    first = page.locator("main section").first
    assert first.get_attribute("id") == "members-section"
    box = page.locator("#members-section h2").bounding_box()
    assert box is not None and 0 <= box["y"] < 900  # in view without scrolling
    assert page.locator("#members tbody tr").count() == 4
    assert "8 favourites linked → 4 may be contacted" in page.inner_text("#funnel")
    with page.expect_download() as download:
        page.click("#export")
    rows = download.value.path().read_text().splitlines()
    assert rows[0] == ",".join(MEMBER_EXPORT_COLUMNS) and len(rows) == 5
    page.reload()
    assert (
        page.locator("#exports tbody tr[data-export]").count() == 1
        and page.inner_text("#exports tbody tr td.by") == "cyd"
    )
    assert "by cyd (4 members)" in page.inner_text("#alert-exports")
    shot(page, "cx-members-first")
    page.keyboard.press("Tab")  # keyboard: focus moves into the page's links and controls
    assert page.evaluate("document.activeElement.tagName") in ("A", "BUTTON", "SELECT", "INPUT", "DIV")

    phone = browser.new_context(viewport={"width": 390, "height": 844}, accept_downloads=True)
    mobile = phone.new_page()
    mobile.goto(f"{base}/login")
    mobile.fill("#username", ROLES["cx"][0])
    mobile.fill("#password", PASSWORD)
    mobile.click("#login")
    mobile.wait_for_load_state("networkidle")
    mobile.goto(f"{base}/cx?alert={alert_id}")
    box = mobile.locator("#members-section h2").bounding_box()
    assert box is not None and box["y"] < 844
    shot(mobile, "cx-members-first-phone")
    phone.close()

    # admin: the users page; disable bob through it; bob's open session ends at once
    bob = browser_login(browser, base, "store_manager")
    assert bob.url.endswith("/stores/S001/alerts")
    admin = browser_login(browser, base, "admin")
    admin.click("#nav-users")
    admin.wait_for_load_state("networkidle")
    assert admin.url.endswith("/admin/users") and admin.locator("#users tbody tr").count() == 4
    admin.locator('#users tr[data-user="bob"] button.disable').click()
    admin.wait_for_load_state("networkidle")
    assert "user bob: disabled" in admin.inner_text("#done")
    assert "disabled" in admin.inner_text('#users tr[data-user="bob"] td.state')
    admin.fill("#new-username", "gil")
    admin.select_option("#new-role", "store_manager")
    admin.select_option("#new-store", "S002")
    admin.fill("#new-password", "gil's long password")
    admin.click("#add")
    admin.wait_for_load_state("networkidle")
    assert "user gil added" in admin.inner_text("#done")
    shot(admin, "admin-users")
    bob.goto(f"{base}/stores/S001/alerts")
    assert bob.url.endswith("/login")
    admin.goto(f"{base}/health")
    assert admin.locator("#runs tbody tr").count() == 5 and admin.locator("#runs .status").count() == 5
    shot(admin, "admin-health")
    with engine.connect() as conn:
        assert json.loads(
            json.dumps(
                conn.execute(
                    select(schema.users.c.role, schema.users.c.store_id).where(schema.users.c.username == "gil")
                )
                .one()
                ._asdict()
            )
        ) == {"role": "store_manager", "store_id": "S002"}
