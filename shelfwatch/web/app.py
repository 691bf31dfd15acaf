"""The web app: server-rendered pages (FastAPI + Jinja2), charts with Plotly, signed session cookies,
a CSRF token on every state-changing form, and role rules on every page.

Pages: /forecast (explorer + risk heat map), /stores/{store}/alerts (inbox with acknowledge/resolve),
/cx (members to contact, CSV export, back-in-stock notices), /health (pipeline health).
"""

from __future__ import annotations

import hmac
import io
import secrets
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
from fastapi import FastAPI, Form, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.middleware.sessions import SessionMiddleware

from shelfwatch.config import Settings
from shelfwatch.db import get_engine
from shelfwatch.web import charts, queries
from shelfwatch.web.auth import User, authenticate, load_user

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
TEMPLATES.env.filters["ts"] = lambda v: "" if v is None or v is pd.NaT or (isinstance(v, float) and pd.isna(v)) else pd.Timestamp(v).strftime("%Y-%m-%d %H:%M")


class Forbidden(HTTPException):
    def __init__(self, why: str) -> None:
        super().__init__(status_code=403, detail=why)


def csrf_token(request: Request) -> str:
    """The session's CSRF token (created on first use); every POST form carries it back."""
    if "csrf" not in request.session:
        request.session["csrf"] = secrets.token_urlsafe(32)
    return request.session["csrf"]


def check_csrf(request: Request, token: str) -> None:
    expected = request.session.get("csrf")
    if not expected or not token or not hmac.compare_digest(expected, token):
        raise Forbidden("the form's CSRF token is missing or wrong: reload the page and try again")


def create_app(settings: Settings) -> FastAPI:
    engine = get_engine(settings.db_url)
    app = FastAPI(title="Shelfwatch", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(SessionMiddleware, secret_key=settings.web_secret or secrets.token_urlsafe(48), session_cookie="shelfwatch_session",
                       https_only=settings.web_secure_cookies, same_site="lax", max_age=12 * 3600)

    def current_user(request: Request) -> User:
        user = load_user(engine, request.session.get("user"))
        if user is None:
            raise HTTPException(status_code=303, headers={"Location": "/login"})
        return user

    def page(request: Request, template: str, user: User | None, **context) -> HTMLResponse:
        return TEMPLATES.TemplateResponse(request, template, {"user": user, "csrf": csrf_token(request), **context})

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden) -> HTMLResponse:
        user = load_user(engine, request.session.get("user"))
        return TEMPLATES.TemplateResponse(request, "forbidden.html", {"user": user, "csrf": csrf_token(request), "why": exc.detail}, status_code=403)

    @app.get("/static/plotly.min.js")
    def plotly_js() -> FileResponse:
        import plotly

        return FileResponse(Path(plotly.__file__).parent / "package_data" / "plotly.min.js", media_type="application/javascript",
                            headers={"Cache-Control": "public, max-age=86400"})

    @app.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, error: str = "") -> HTMLResponse:
        return page(request, "login.html", None, error=error)

    @app.post("/login")
    def login(request: Request, username: str = Form(...), password: str = Form(...), csrf: str = Form("")) -> Response:
        check_csrf(request, csrf)
        user = authenticate(engine, username, password)
        if user is None:
            return page(request, "login.html", None, error="Unknown user or wrong password.")
        request.session.clear()  # a new session at login: no fixation
        request.session["user"] = user.username
        return RedirectResponse(user.home, status_code=303)

    @app.post("/logout")
    def logout(request: Request, csrf: str = Form("")) -> Response:
        check_csrf(request, csrf)
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    @app.get("/")
    def home(request: Request) -> Response:
        return RedirectResponse(current_user(request).home, status_code=303)

    @app.get("/forecast", response_class=HTMLResponse)
    def forecast(request: Request, store: str = "", sku: str = "") -> HTMLResponse:
        user = current_user(request)
        stores, products = queries.stores_and_products(engine)
        if user.role == "store_manager":
            stores = stores[stores["store_id"] == user.store_id]
            store = user.store_id if not store else store
        if store and not user.can_view_store(store):
            raise Forbidden(f"{user.username} manages {user.store_id}, not {store}")
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

    @app.get("/alerts")
    def alerts_home(request: Request) -> Response:
        """A store manager's own inbox; for everyone else the store with the most severe open alert."""
        user = current_user(request)
        if user.role == "store_manager":
            return RedirectResponse(f"/stores/{user.store_id}/alerts", status_code=303)
        return RedirectResponse(f"/stores/{queries.most_urgent_store(engine)}/alerts", status_code=303)

    @app.get("/stores/{store_id}/alerts", response_class=HTMLResponse)
    def inbox(request: Request, store_id: str) -> HTMLResponse:
        user = current_user(request)
        if not user.can_view_store(store_id):
            raise Forbidden(f"{user.username} manages {user.store_id}, not {store_id}")
        active, closed = queries.store_alerts(engine, store_id)
        stores, _ = queries.stores_and_products(engine)
        return page(request, "alerts.html", user, store_id=store_id, active=active.to_dict("records"), closed=closed.to_dict("records"),
                    stores=stores["store_id"].tolist() if user.role != "store_manager" else [store_id])

    @app.get("/alerts/{alert_id}/history", response_class=HTMLResponse)
    def history(request: Request, alert_id: int) -> HTMLResponse:
        from alerts.lifecycle import history as alert_history

        user = current_user(request)
        store_id = queries.alert_store(engine, alert_id)
        if store_id is None:
            raise HTTPException(404, f"alert {alert_id} does not exist")
        if not user.can_view_store(store_id):
            raise Forbidden(f"{user.username} manages {user.store_id}, not {store_id}")
        return page(request, "history.html", user, alert_id=alert_id, store_id=store_id, events=alert_history(engine, alert_id))

    @app.post("/alerts/{alert_id}/{action}")
    def act(request: Request, alert_id: int, action: str, csrf: str = Form(""), note: str = Form("")) -> Response:
        from alerts import lifecycle

        check_csrf(request, csrf)
        user = current_user(request)
        store_id = queries.alert_store(engine, alert_id)
        if store_id is None:
            raise HTTPException(404, f"alert {alert_id} does not exist")
        if not (user.acts_on_alerts and user.can_view_store(store_id)):
            raise Forbidden(f"{user.username} ({user.role}) may not change alerts of {store_id}")
        if action not in ("acknowledge", "resolve"):
            raise HTTPException(404, f"unknown action {action}")
        try:
            if action == "acknowledge":
                lifecycle.acknowledge(engine, alert_id, user.username)
            else:
                lifecycle.resolve(engine, alert_id, user.username, note=note or None)
        except lifecycle.AlertStateError as exc:
            raise HTTPException(409, str(exc)) from None
        return RedirectResponse(f"/stores/{store_id}/alerts", status_code=303)

    @app.get("/cx", response_class=HTMLResponse)
    def cx(request: Request, alert: int | None = None) -> HTMLResponse:
        from alerts.notify import members_for_alert

        user = current_user(request)
        if not user.sees_member_data:
            raise Forbidden(f"member data is for the CX team; {user.username} is a {user.role.replace('_', ' ')}")
        alerts = queries.cx_alerts(engine)
        members = None
        if alert is not None:
            members = members_for_alert(engine, alert, datetime.now(timezone.utc), settings.member_contact_cap_days, record=False)
            members = members.drop(columns=["contact_address"]).to_dict("records")  # addresses only in the export file
        return page(request, "cx.html", user, alerts=alerts.to_dict("records"), selected=alert, members=members)

    @app.post("/cx/{alert_id}/export")
    def cx_export(request: Request, alert_id: int, csrf: str = Form("")) -> Response:
        from alerts.notify import NotifyError, members_for_alert

        check_csrf(request, csrf)
        user = current_user(request)
        if not user.sees_member_data:
            raise Forbidden("member data is for the CX team")
        try:
            frame = members_for_alert(engine, alert_id, datetime.now(timezone.utc), settings.member_contact_cap_days)
        except NotifyError as exc:
            raise HTTPException(404, str(exc)) from None
        buffer = io.StringIO()
        frame.to_csv(buffer, index=False)
        return Response(buffer.getvalue(), media_type="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="members_alert_{alert_id}.csv"', "Cache-Control": "no-store"})

    @app.get("/health", response_class=HTMLResponse)
    def health(request: Request) -> HTMLResponse:
        user = current_user(request)
        if user.role not in ("planner", "admin"):
            raise Forbidden("pipeline health is for planners and admins")
        info = queries.pipeline_health(engine)
        dag_runs = queries.airflow_runs(settings.airflow_db_url).to_dict("records") if settings.airflow_db_url else None
        return page(request, "health.html", user, info=info, dag_runs=dag_runs, consumers=info["consumers"].to_dict("records"),
                    stale=info["stale"].head(50).to_dict("records"), stale_count=len(info["stale"]),
                    quarantine=info["quarantine"].to_dict("records"), samples=info["samples"].to_dict("records"))

    return app
