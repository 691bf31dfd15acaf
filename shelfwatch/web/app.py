"""The web app: server-rendered pages (FastAPI + Jinja2), charts with Plotly, signed session cookies,
a CSRF token on every state-changing form, and role rules on every page.

Pages: /forecast (explorer + risk heat map), /stores/{store}/alerts (inbox with acknowledge/resolve),
/cx (members to contact, CSV export, back-in-stock notices), /health (pipeline health).
This module only assembles the app; the pages live in `routers/`, what they share in `deps.py`.
"""

from __future__ import annotations

import secrets

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from starlette.middleware.sessions import SessionMiddleware

from shelfwatch.core.db import get_engine
from shelfwatch.core.settings import Settings
from shelfwatch.web.deps import TEMPLATES, Forbidden, csrf_token, session_user
from shelfwatch.web.routers import alerts, auth, cx, forecasts, operations


async def forbidden(request: Request, exc: Forbidden) -> HTMLResponse:
    """A role rule said no: a readable page with the reason, status 403."""
    return TEMPLATES.TemplateResponse(request, "forbidden.html", {"user": session_user(request), "csrf": csrf_token(request), "why": exc.detail},
                                      status_code=403)


def create_app(settings: Settings) -> FastAPI:
    app = FastAPI(title="Shelfwatch", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.settings = settings
    app.state.engine = get_engine(settings.db_url)
    app.add_middleware(SessionMiddleware, secret_key=settings.web_secret or secrets.token_urlsafe(48), session_cookie="shelfwatch_session",
                       https_only=settings.web_secure_cookies, same_site="lax", max_age=12 * 3600)
    app.add_exception_handler(Forbidden, forbidden)
    # no path is shared across routers; inside alerts, GET .../history stays ahead of POST .../{action}
    for module in (auth, forecasts, alerts, cx, operations):
        app.include_router(module.router)
    return app
