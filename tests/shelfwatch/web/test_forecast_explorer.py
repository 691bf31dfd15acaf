"""The planners' forecast explorer (issue 18): hover text with the 80 % interval, the forecast's numbers
as a table and a CSV download (with the role rules of the page), search by product name, a clear
message for an unknown SKU, and the risk heat map with numbers, hover and links to the stores' inboxes
by category; over HTTP (TestClient, SQLite and PostgreSQL) and in real headless Chromium."""

from __future__ import annotations

import csv
import html
import io
import json
import re
from urllib.parse import quote

import pytest
from sqlalchemy import func, select

from core.domain import STOCKOUT_TYPES
from sql import schema
from tests.shelfwatch.web.test_pages import browser_login, client_for, shot

ACTIVE = ("open", "acknowledged")


def figure(page_text: str, div: str) -> dict:
    """The Plotly figure a page draws into `div` (the JSON of its inline Plotly.newPlot call)."""
    found = re.search(
        r'Plotly\.newPlot\("' + div + r'", \.\.\.\(\(\) => \{ const f = (\{.*?\}); return \[', page_text, re.DOTALL
    )
    assert found, f"no figure for #{div}"
    return json.loads(found.group(1))


def latest_forecast(engine, store: str, sku: str) -> tuple[str, list]:
    f, r = schema.forecasts, schema.forecast_runs
    with engine.connect() as conn:
        run_id = conn.execute(select(r.c.run_id).order_by(r.c.created_at.desc()).limit(1)).scalar()
        rows = conn.execute(
            select(f.c.date, f.c.mean, f.c.p10, f.c.p50, f.c.p90)
            .where(f.c.run_id == run_id, f.c.store_id == store, f.c.sku == sku)
            .order_by(f.c.date)
        ).all()
    return run_id, rows


def products(engine) -> list:
    p = schema.products
    with engine.connect() as conn:
        return conn.execute(select(p.c.sku, p.c.name, p.c.category).order_by(p.c.sku)).all()


def heat_cells(engine, store: str | None = None) -> dict:
    """(store, category) -> (expected empty shelves, active stock-out alerts), straight from the tables."""
    a, p = schema.alerts, schema.products
    query = (
        select(a.c.store_id, p.c.category, func.sum(a.c.probability), func.count())
        .join(p, p.c.sku == a.c.sku)
        .where(a.c.status.in_(ACTIVE), a.c.alert_type.in_(STOCKOUT_TYPES))
        .group_by(a.c.store_id, p.c.category)
    )
    if store:
        query = query.where(a.c.store_id == store)
    with engine.connect() as conn:
        return {(s, c): (float(risk), int(n)) for s, c, risk, n in conn.execute(query)}


def test_forecast_table_and_hover_show_the_interval_rounded(web_db):
    engine, settings = web_db
    client = client_for(settings, "planner")
    run_id, rows = latest_forecast(engine, "S001", "SKU00002")
    assert rows, "the small world forecasts every series"
    answer = client.get("/forecast", params={"store": "S001", "sku": "SKU00002"})
    assert answer.status_code == 200
    text = answer.text
    # the table: one row per forecast day, mean and quantiles to 1 decimal, headers with scope
    table = text[text.index('<table id="forecast-table"') :]
    table = table[: table.index("</table>")]
    assert table.count('<th scope="col"') == 5 and table.count('<th scope="row">') == len(rows)
    first = rows[0]
    assert (
        f'<td class="num">{first.mean:.1f}</td><td class="num">{first.p10:.1f}</td><td class="num">{first.p50:.1f}</td>'
        in table
    )
    assert first.date.strftime("%a %Y-%m-%d") in table
    # which run, and when it was made, in the store's zone (S001: Europe/London), labelled
    assert f'<b id="run-id">{run_id}</b>' in text
    made = re.search(r'<time id="run-time">([^<]+)</time>', text).group(1)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d (GMT|BST)", made), made
    # hover: the day, the mean to 1 decimal, the 80 % interval p10-p90 and p50, from the trace's own data
    fig = figure(text, "series")
    trace = next(t for t in fig["data"] if t.get("name") == "forecast mean")
    assert (
        "%{y:.1f}" in trace["hovertemplate"]
        and "80 % interval %{customdata[0]:.1f}–%{customdata[2]:.1f}" in trace["hovertemplate"]
    )
    assert "median (p50) %{customdata[1]:.1f}" in trace["hovertemplate"] and "%{x|" in trace["hovertemplate"]
    assert trace["customdata"][0] == pytest.approx([first.p10, first.p50, first.p90], abs=1e-3)
    sales = next(t for t in fig["data"] if t.get("name") == "units sold")
    assert "sold %{y" in sales["hovertemplate"]
    assert all(
        t.get("hovertemplate") or t.get("hoverinfo") == "skip" for t in fig["data"]
    )  # no raw 6-decimal hover anywhere


def test_stockout_days_are_marked_in_the_hover_and_the_history_table(web_db):
    engine, settings = web_db
    so, s = schema.stockout_days, schema.sales_daily
    with engine.connect() as conn:
        last = conn.execute(select(func.max(s.c.date))).scalar()
        store, sku, n = conn.execute(
            select(so.c.store_id, so.c.sku, func.count())
            .where(so.c.date > last.fromordinal(last.toordinal() - 100))
            .group_by(so.c.store_id, so.c.sku)
            .order_by(func.count().desc())
            .limit(1)
        ).first()
    text = client_for(settings, "planner").get("/forecast", params={"store": store, "sku": sku}).text
    trace = next(t for t in figure(text, "series")["data"] if t.get("name") == "stock-out day (masked)")
    assert len(trace["x"]) >= n and "stock-out day" in trace["hovertemplate"]
    assert all(c.startswith("shelf empty") for c in trace["customdata"])
    history = text[text.index('<table id="history-table"') :]
    assert history[: history.index("</table>")].count('class="stockout"') >= n


def test_forecast_csv_has_the_numbers_and_downloads(web_db):
    engine, settings = web_db
    run_id, rows = latest_forecast(engine, "S002", "SKU00003")
    answer = client_for(settings, "planner").get("/forecast.csv", params={"store": "S002", "sku": "SKU00003"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.headers["content-disposition"] == 'attachment; filename="forecast_S002_SKU00003.csv"'
    table = list(csv.DictReader(io.StringIO(answer.text)))
    assert answer.text.splitlines()[0] == "run_id,store_id,sku,date,mean,p10,p50,p90"
    assert len(table) == len(rows) > 0
    for got, want in zip(table, rows, strict=True):
        assert (got["run_id"], got["store_id"], got["sku"], got["date"]) == (
            run_id,
            "S002",
            "SKU00003",
            want.date.isoformat(),
        )
        assert [float(got[k]) for k in ("mean", "p10", "p50", "p90")] == pytest.approx(
            [want.mean, want.p10, want.p50, want.p90], abs=6e-4
        )
        assert float(got["p10"]) <= float(got["p50"]) <= float(got["p90"])
    page = client_for(settings, "planner").get("/forecast", params={"store": "S002", "sku": "SKU00003"}).text
    assert 'id="csv" href="/forecast.csv?store=S002&amp;sku=SKU00003"' in page


def test_forecast_csv_follows_the_role_rules(web_db):
    _, settings = web_db
    manager = client_for(settings, "store_manager")  # bob manages S001
    refused = manager.get("/forecast.csv", params={"store": "S002", "sku": "SKU00001"})
    assert refused.status_code == 403 and "bob manages S001, not S002" in refused.text
    assert "text/csv" not in refused.headers["content-type"]
    own = manager.get("/forecast.csv", params={"sku": "SKU00001"})  # no store: the manager's own
    assert own.status_code == 200 and own.text.splitlines()[1].split(",")[1] == "S001"
    assert manager.get("/forecast.csv", params={"store": "S001", "sku": "SKU00001"}).status_code == 200
    assert manager.get("/forecast", params={"store": "S002", "sku": "SKU00001"}).status_code == 403
    for role in ("planner", "cx", "admin"):  # every signed-in role may read forecasts
        assert (
            client_for(settings, role).get("/forecast.csv", params={"store": "S002", "sku": "SKU00001"}).status_code
            == 200
        ), role
    planner = client_for(settings, "planner")
    assert planner.get("/forecast.csv", params={"store": "S999", "sku": "SKU00001"}).status_code == 404
    assert (
        planner.get("/forecast.csv", params={"store": "S001", "sku": "SKU9"}).status_code == 404
    )  # a part of a SKU is not one
    assert planner.get("/forecast.csv", params={"store": "S001", "sku": ""}).status_code == 404
    signed_out = client_for(settings).get(
        "/forecast.csv", params={"store": "S001", "sku": "SKU00001"}, follow_redirects=False
    )
    assert signed_out.status_code == 303 and signed_out.headers["location"] == "/login"


def test_search_by_product_name(web_db):
    engine, settings = web_db
    client = client_for(settings, "planner")
    catalogue = products(engine)

    def expected(q: str) -> list[str]:
        return [p.sku for p in catalogue if q.lower() in p.name.lower() or q.lower() in p.sku.lower()]

    # one match: that product's chart, whatever the case typed
    unique = next(p for p in catalogue if len(expected(p.name)) == 1)
    for typed in (unique.name, unique.name.upper(), unique.name.lower()[2:]):
        if expected(typed) != [unique.sku]:
            continue
        answer = client.get("/forecast", params={"store": "S001", "sku": typed})
        assert answer.status_code == 200 and 'id="series"' in answer.text, typed
        assert f"S001 · {unique.sku} {html.escape(unique.name)}" in answer.text
    assert (
        'id="series"' in client.get("/forecast", params={"store": "S001", "sku": unique.sku.lower()}).text
    )  # a SKU in any case
    prefix = next((p for p in catalogue if len(expected(p.name)) > 1), None)  # "X item 1" is also part of "X item 11"
    if prefix is not None:
        answer = client.get("/forecast", params={"store": "S001", "sku": prefix.name.lower()})
        assert answer.status_code == 200 and f"S001 · {prefix.sku} {html.escape(prefix.name)}" in answer.text
    # several: a list of links to choose from, no chart
    category = next(c for c in sorted({p.category for p in catalogue}) if len(expected(c)) > 1)
    answer = client.get("/forecast", params={"store": "S002", "sku": category.upper()})
    assert answer.status_code == 200 and 'id="series"' not in answer.text
    listed = re.findall(r'<a href="/forecast\?store=S002&amp;sku=(SKU\d+)">', answer.text)
    assert listed == expected(category) and len(listed) > 1
    assert f"products match '{category.upper()}'" in answer.text
    # the suggestions while typing come from the same search, a few at most
    suggested = client.get("/forecast/products", params={"q": category[:4]}).json()
    assert [s["sku"] for s in suggested] == expected(category[:4])[:15] and all(
        {"sku", "name", "category"} == set(s) for s in suggested
    )
    assert client.get("/forecast/products", params={"q": "x"}).json() == []
    # none: a clear message, status 404, no chart
    for typed in ("no such thing", "100%", "item_1", "SKU99999"):
        answer = client.get("/forecast", params={"store": "S001", "sku": typed})
        assert answer.status_code == 404 and 'id="series"' not in answer.text, typed
        assert f"unknown SKU or product: '{html.escape(typed)}'" in answer.text, typed


def test_unknown_sku_or_store_is_an_escaped_message(web_db):
    _, settings = web_db
    client = client_for(settings, "planner")
    evil = '<script>alert("x")</script>'
    answer = client.get("/forecast", params={"store": "S001", "sku": evil})
    assert answer.status_code == 404
    assert (
        evil not in answer.text
        and "unknown SKU or product: '&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;'" in answer.text
    )
    assert 'id="series"' not in answer.text and 'id="heat"' in answer.text  # the heat map is still there
    answer = client.get("/forecast", params={"store": evil, "sku": "SKU00001"})
    assert answer.status_code == 404 and evil not in answer.text and "unknown store: '&lt;script&gt;" in answer.text


def test_heat_map_has_numbers_readable_hover_and_links_by_category(web_db):
    engine, settings = web_db
    cells = heat_cells(engine)
    assert cells, "the small world has open stock-out alerts"
    text = client_for(settings, "planner").get("/forecast", params={"store": "S001", "sku": "SKU00001"}).text
    trace = figure(text, "heat")["data"][0]
    assert trace["texttemplate"] == "%{text}" and trace["hovertemplate"] == "%{hovertext}<extra></extra>"
    stores, categories = trace["y"], trace["x"]
    assert {(s, c) for s, c in cells} <= {(s, c) for s in stores for c in categories}
    for (store, category), (risk, n) in cells.items():
        i, j = stores.index(store), categories.index(category)
        assert trace["z"][i][j] == pytest.approx(risk) and trace["text"][i][j] == f"{risk:.1f}"
        alerts = f"{n} open alert" + ("" if n == 1 else "s")
        assert trace["hovertext"][i][j] == f"{store} · {category}: {risk:.1f} shelves expected to go empty, {alerts}"
        link = f"/stores/{store}/alerts?category={quote(category)}"
        assert trace["customdata"][i][j] == link  # what the click handler opens
        assert (
            f'<a href="{link}">{risk:.1f} ({n})<span class="sr-only">: {store} {category}</span></a>' in text
        )  # the same link in the table
    assert 'heat.on("plotly_click"' in text
    table = text[text.index('<table id="heat-table"') :]
    assert table.count('<th scope="row">') == len(stores) and table.count('<th scope="col"') == len(categories) + 1
    # the link opens the store's inbox (a category it does not filter by yet is simply ignored)
    store, category = next(iter(cells))
    assert (
        client_for(settings, "planner").get(f"/stores/{store}/alerts", params={"category": category}).status_code == 200
    )


def test_a_store_manager_sees_their_own_store_only_in_the_heat_map(web_db):
    engine, settings = web_db
    text = client_for(settings, "store_manager").get("/forecast").text
    assert 'id="series-heading">S001 ·' in text
    own = heat_cells(engine, "S001")
    if own:
        trace = figure(text, "heat")["data"][0]
        assert trace["y"] == ["S001"]
        assert "/stores/S002/alerts" not in text
    assert '<option value="S002"' not in text


@pytest.mark.slow
def test_forecast_explorer_in_chromium(live_server, browser):
    engine, base = live_server
    page = browser_login(browser, base, "planner")
    # search by part of a name: several products, a list of links; the suggestions fill in while typing
    catalogue = products(engine)
    category = next(
        c for c in sorted({p.category for p in catalogue}) if sum(c in p.name.lower() for p in catalogue) > 1
    )
    page.select_option("#store", "S001")
    page.fill("#sku", "")
    page.type("#sku", category[:5], delay=30)
    page.wait_for_selector("#skus option:nth-child(2)", state="attached")  # filled from /forecast/products
    page.fill("#sku", category)
    page.click("#show")
    page.wait_for_load_state("networkidle")
    assert page.locator("#matches li").count() > 1 and page.locator("#series").count() == 0
    shot(page, "planner-forecast-search-matches")
    page.locator("#matches a").first.click()
    page.wait_for_selector("#series .main-svg")

    # hover on a forecast point: the day, the mean to 1 decimal and the 80 % interval
    page.goto(f"{base}/forecast?store=S001&sku=SKU00002")
    page.wait_for_selector("#series .main-svg")
    run_id, rows = latest_forecast(engine, "S001", "SKU00002")
    point = page.evaluate("""() => {
        const gd = document.getElementById("series"), i = gd.data.findIndex(t => t.name === "forecast mean");
        const points = gd.calcdata[i], last = points[points.length - 1];
        const box = gd.querySelector(".nsewdrag").getBoundingClientRect();
        return {x: box.left + gd._fullLayout.xaxis.c2p(last.x), y: box.top + gd._fullLayout.yaxis.c2p(last.y),
                template: gd.data[i].hovertemplate};
    }""")
    assert "80 % interval" in point["template"]
    page.mouse.move(point["x"], point["y"])
    page.wait_for_selector("#series .hoverlayer .hovertext")
    hover = page.locator("#series .hoverlayer .hovertext").text_content()  # SVG: its text, lines run together
    last = rows[-1]
    assert f"forecast mean {last.mean:.1f} units" in hover, hover
    assert f"80 % interval {last.p10:.1f}–{last.p90:.1f}" in hover and f"median (p50) {last.p50:.1f}" in hover, hover
    assert last.date.strftime("%d %b %Y") in hover, hover
    assert page.locator("#forecast-table").is_visible() and page.locator("#forecast-table tbody tr").count() == len(
        rows
    )
    assert page.inner_text("#run-id") == run_id and page.locator("#run-time").inner_text().endswith(("GMT", "BST"))
    shot(page, "planner-forecast-explorer")
    with page.expect_download() as download:
        page.click("#csv")
    assert download.value.suggested_filename == "forecast_S001_SKU00002.csv"
    with open(download.value.path()) as f:
        assert f.readline().strip() == "run_id,store_id,sku,date,mean,p10,p50,p90"

    # an unknown product: a message, no chart
    page.fill("#sku", "<b>nothing like this</b>")
    page.click("#show")
    page.wait_for_load_state("networkidle")
    assert "unknown SKU or product: '<b>nothing like this</b>'" in page.inner_text("#problem")
    assert page.locator("#series").count() == 0
    shot(page, "planner-forecast-unknown")

    # the heat map: numbers in the cells, a readable hover, and a click opens the store's inbox by category
    page.goto(f"{base}/forecast?store=S001&sku=SKU00002")
    page.wait_for_selector("#heat .main-svg")
    page.locator("#heat .nsewdrag").scroll_into_view_if_needed()  # the mouse reaches what is in the viewport only
    cell = page.evaluate("""() => {
        const gd = document.getElementById("heat"), t = gd.data[0];
        const box = gd.querySelector(".nsewdrag").getBoundingClientRect();
        for (let i = 0; i < t.y.length; i++) for (let j = 0; j < t.x.length; j++) if (t.customdata[i][j])
            return {x: box.left + (j + 0.5) * box.width / t.x.length, y: box.top + (i + 0.5) * box.height / t.y.length,
                    link: t.customdata[i][j], hover: t.hovertext[i][j], text: t.text[i][j]};
        return null;
    }""")
    assert cell and "shelves expected to go empty" in cell["hover"]
    assert page.locator("#heat .texttext, #heat text.textpoint, #heat g.text text").count() >= 1 or cell["text"]
    page.mouse.move(cell["x"], cell["y"])
    page.wait_for_selector("#heat .hoverlayer .hovertext")
    assert "shelves expected to go empty" in page.locator("#heat .hoverlayer .hovertext").text_content()
    shot(page, "planner-forecast-heat-hover")
    with page.expect_navigation():
        page.mouse.click(cell["x"], cell["y"])
    assert page.url == f"{base}{cell['link']}" and "/alerts?category=" in page.url
    shot(page, "planner-forecast-heat-click")
    # the same links as a table, for the keyboard
    page.go_back()
    page.wait_for_selector("#heat-table a")
    link = page.locator("#heat-table a").first
    href = link.get_attribute("href")
    link.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(f"{base}{href}")
    assert re.search(r"/stores/[^/]+/alerts\?category=", page.url)
