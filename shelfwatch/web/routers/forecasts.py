"""The planners' forecast explorer (one store and SKU, found by SKU or by part of the product's name;
its chart, the forecast's numbers as a table and as CSV, and the stock-out risk heat map with links to
the stores' inboxes by category) and the bundled plotly.min.js its charts load, served locally so
pages work without a CDN.

Who sees what: any signed-in role may read forecasts; a store manager only their own store's (the
page, the CSV and the heat map alike)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pandas as pd
import plotly
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response

from shelfwatch.web import charts, queries
from shelfwatch.web.deps import EngineDep, current_user, page, require_store

router = APIRouter()
MATCHES_SHOWN = 20  # products listed when a name matches several
SUGGESTIONS = 15  # products offered while typing


@router.get("/static/plotly.min.js")
def plotly_js() -> FileResponse:
    return FileResponse(
        Path(plotly.__file__).parent / "package_data" / "plotly.min.js",
        media_type="application/javascript",
        headers={"Cache-Control": "public, max-age=86400"},
    )


def _store_for(user, engine, store: str) -> tuple[str, list[dict]]:
    """The store asked for (a store manager's own when none is), checked against the role, and the stores
    the user may pick from."""
    stores = queries.explorer_stores(engine)
    if user.role == "store_manager":
        stores = [s for s in stores if s["store_id"] == user.store_id]
        store = store or user.store_id
    if store:
        require_store(user, store)
    return store or (stores[0]["store_id"] if stores else ""), stores


@router.get("/forecast", response_class=HTMLResponse)
def forecast(request: Request, engine: EngineDep, store: str = "", sku: str = "") -> HTMLResponse:
    user = current_user(request)
    store, stores = _store_for(user, engine, store)
    asked = sku.strip()
    problem, matches, more, product, view = None, [], False, None, None
    if store and store not in {s["store_id"] for s in stores}:
        problem = {"what": "store", "value": store}
    elif asked:
        found = queries.explorer_find_products(engine, asked, limit=MATCHES_SHOWN)
        if len(found) == 1:
            product = found[0]
        elif found:
            matches, more = found[:MATCHES_SHOWN], len(found) > MATCHES_SHOWN
        else:
            problem = {"what": "SKU or product", "value": asked}
    else:
        product = queries.explorer_first_product(engine)
    if product and store:
        view = queries.series_view(engine, store, product["sku"])
    heat = queries.risk_heatmap(engine, user.store_id if user.role == "store_manager" else None)
    stores_, categories, grid = charts.heatmap_cells(heat)
    title = f"{store} · {product['sku']} {product['name']}" if product else ""
    return page(
        request,
        "forecast.html",
        user,
        status_code=404 if problem else 200,
        store_id=store or None,
        stores=stores,
        store=store,
        sku=product["sku"] if product else asked,
        asked=asked,
        product=product,
        problem=problem,
        matches=matches,
        more=more,
        view=view,
        forecast_rows=_forecast_rows(view) if view else [],
        history_rows=_history_rows(view) if view else [],
        series_chart=charts.series_chart(view, title) if view else None,
        heat_chart=charts.risk_heatmap(heat) if len(heat) else None,
        heat_stores=stores_,
        heat_categories=categories,
        heat_grid=grid,
    )


def _day(value) -> str:
    """A calendar day as a person reads it: "Tue 2026-12-01"."""
    return pd.Timestamp(value).strftime("%a %Y-%m-%d")


def _forecast_rows(view: dict) -> list[dict]:
    return [
        {"day": _day(r["date"]), **{k: float(r[k]) for k in ("mean", "p10", "p50", "p90")}}
        for r in view["forecast"].to_dict("records")
    ]


def _history_rows(view: dict) -> list[dict]:
    """The chart's history as table rows, newest first, stock-out days marked."""
    out = {
        _day(d): charts.hour_text(h) or "during the day"
        for d, h in zip(view["stockouts"]["date"], view["stockouts"]["empty_from_hour"], strict=True)
    }
    rows = [
        {"day": _day(d), "units": float(u), "stockout": out.get(_day(d))}
        for d, u in zip(view["history"]["date"], view["history"]["units"], strict=True)
    ]
    return rows[::-1]


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:60]


@router.get("/forecast.csv")
def forecast_csv(request: Request, engine: EngineDep, store: str = "", sku: str = "") -> Response:
    """The latest forecast of one store x SKU as CSV (the numbers of the explorer's table), as a download."""
    user = current_user(request)
    store, stores = _store_for(user, engine, store)
    if store not in {s["store_id"] for s in stores}:
        raise HTTPException(404, "unknown store")
    found = queries.explorer_find_products(engine, sku, limit=1) if sku.strip() else []
    if not found or found[0]["sku"].upper() != sku.strip().split()[0].upper():
        raise HTTPException(404, "unknown SKU: give the SKU itself, e.g. ?store=S001&sku=SKU00001")
    product = found[0]
    run, frame = queries.explorer_forecast(engine, store, product["sku"])
    frame = frame.assign(date=frame["date"].astype(str))
    for column in ("mean", "p10", "p50", "p90"):
        frame[column] = frame[column].astype(float).round(3)
    frame.insert(0, "sku", product["sku"])
    frame.insert(0, "store_id", store)
    frame.insert(0, "run_id", run["run_id"] if run else "")
    buffer = io.StringIO()
    frame[["run_id", "store_id", "sku", "date", "mean", "p10", "p50", "p90"]].to_csv(
        buffer, index=False, lineterminator="\n"
    )
    name = f"forecast_{_safe_name(store)}_{_safe_name(product['sku'])}.csv"
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/forecast/products")
def product_suggestions(request: Request, engine: EngineDep, q: str = "") -> JSONResponse:
    """Products whose SKU or name holds `q` (the SKU box's suggestions while typing), at most a few."""
    current_user(request)
    found = queries.explorer_find_products(engine, q, limit=SUGGESTIONS)[:SUGGESTIONS] if len(q.strip()) >= 2 else []
    return JSONResponse([{"sku": p["sku"], "name": p["name"], "category": p["category"]} for p in found])
