"""Accessibility: every page, as the role that uses it, at desktop and phone sizes, checked by axe-core
(the npm package pinned in package-lock.json, injected into real headless Chromium through
Playwright) against WCAG 2 A/AA rules. A serious or critical violation fails the test, named with
the page, the rule and the first offending elements."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select

from sql import schema
from tests.conftest import ON_CI, REPO_ROOT
from tests.shelfwatch.web.test_pages import browser_login, shot

AXE = REPO_ROOT / "node_modules" / "axe-core" / "axe.min.js"
SIZES = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
BLOCKING = ("serious", "critical")


@pytest.fixture(scope="module")
def axe_source() -> str:
    if not AXE.exists():
        if ON_CI:
            pytest.fail(
                "axe-core is not installed and CI=true: `make test` installs it with npm ci (package-lock.json)"
            )
        pytest.skip("axe-core not installed (npm ci)")
    return AXE.read_text()


def violations(page, axe_source: str) -> list[dict]:
    """axe-core's serious and critical WCAG 2 A/AA violations on the page as it is now."""
    page.evaluate(axe_source)
    result = page.evaluate("""async () => {
        const r = await axe.run(document, {
            runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']},
        });
        return r.violations.map(v => ({
            id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map(n => n.target.join(' ')),
        }));
    }""")
    return [v for v in result if v["impact"] in BLOCKING]


def pages_for(engine, role: str) -> list[str]:
    """The pages a role works with (every page its navigation offers, and the detail pages behind them)."""
    with engine.connect() as conn:
        alert_id = conn.execute(
            select(schema.alerts.c.alert_id).where(schema.alerts.c.store_id == "S001").limit(1)
        ).scalar()
        sku = conn.execute(
            select(schema.forecasts.c.sku).where(schema.forecasts.c.store_id == "S001").limit(1)
        ).scalar()
    pages = {
        "planner": ["/forecast", f"/forecast?store=S001&sku={sku}", "/health"],
        "store_manager": ["/stores/S001/alerts", f"/alerts/{alert_id}/history", f"/forecast?store=S001&sku={sku}"],
        "cx": ["/cx", f"/cx?alert={alert_id}"],
        "admin": ["/health", "/admin/users"],
    }
    return pages[role]


@pytest.mark.slow
@pytest.mark.parametrize("size", list(SIZES))
def test_no_serious_accessibility_violations_on_any_page(live_server, browser, axe_source, size):
    engine, base = live_server
    found = []
    login = browser.new_page(viewport=SIZES[size])
    login.goto(f"{base}/login")
    found += [("/login", v) for v in violations(login, axe_source)]
    for role in ("planner", "store_manager", "cx", "admin"):
        page = browser_login(browser, base, role)
        page.set_viewport_size(SIZES[size])
        for path in pages_for(engine, role):
            response = page.goto(f"{base}{path}")
            assert response.status == 200, f"{role} {path}: {response.status}"
            page.wait_for_load_state("networkidle")
            found += [(f"{role} {path}", v) for v in violations(page, axe_source)]
            shot(page, f"a11y-{size}-{role}-{re.sub(r'[^a-z0-9]+', '-', path.lower()).strip('-')}")
    assert not found, "\n".join(
        f"{where}: {v['impact']} {v['id']} ({v['help']}) at {json.dumps(v['nodes'])}" for where, v in found
    )
