"""The planners' forecast explorer (one store and SKU, with the risk heat map) and the bundled
plotly.min.js its charts load, served locally so pages work without a CDN."""

from __future__ import annotations

from pathlib import Path

import plotly
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse

from shelfwatch.web import charts, queries
from shelfwatch.web.deps import EngineDep, current_user, page, require_store

router = APIRouter()


@router.get("/static/plotly.min.js")
def plotly_js() -> FileResponse:
    return FileResponse(Path(plotly.__file__).parent / "package_data" / "plotly.min.js", media_type="application/javascript",
                        headers={"Cache-Control": "public, max-age=86400"})


@router.get("/forecast", response_class=HTMLResponse)
def forecast(request: Request, engine: EngineDep, store: str = "", sku: str = "") -> HTMLResponse:
    user = current_user(request)
    stores, products = queries.stores_and_products(engine)
    if user.role == "store_manager":
        stores = stores[stores["store_id"] == user.store_id]
        store = user.store_id if not store else store
    if store:
        require_store(user, store)
    store = store or (stores["store_id"].iloc[0] if len(stores) else "")
    sku = sku.split(" ")[0] if sku else (products["sku"].iloc[0] if len(products) else "")
    view = queries.series_view(engine, store, sku) if store and sku else None
    heat = queries.risk_heatmap(engine)
    if user.role == "store_manager":
        heat = heat.loc[heat.index == user.store_id]
    product = products.set_index("sku")["name"].get(sku, "")
    return page(request, "forecast.html", user, stores=stores.to_dict("records"), products=products.to_dict("records"), store=store,
                sku=sku, product=product, view=view, series_chart=charts.series_chart(view, f"{store} · {sku} {product}") if view else None,
                heat_chart=charts.risk_heatmap(heat) if len(heat) else None)
