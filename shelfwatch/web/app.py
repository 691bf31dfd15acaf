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

from core.db import get_engine
from core.settings import Settings
from shelfwatch.web.deps import TEMPLATES, Forbidden, csrf_token, session_user
from shelfwatch.web.routers import admin, alerts, auth, cx, forecasts, operations


async def forbidden(request: Request, exc: Forbidden) -> HTMLResponse:
    """A role rule said no: a readable page with the reason, status 403."""
    return TEMPLATES.TemplateResponse(
        request,
        "forbidden.html",
        {"user": session_user(request), "csrf": csrf_token(request), "why": exc.detail},
        status_code=403,
    )


# Every response: no framing, no MIME sniffing, no referrer to other sites, and scripts, styles and
# images from this server only (the pages' inline Plotly calls are the one inline script they run).
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
PERSONAL_PATHS = ("/cx",)  # pages with member data: never kept in a cache


async def security_headers(request: Request, call_next):
    response = await call_next(request)
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.url.path.startswith(PERSONAL_PATHS):
        response.headers["Cache-Control"] = "no-store"
    return response


def create_app(settings: Settings) -> FastAPI:
    # redirect_slashes=False: "/cx/" is a 404, not a redirect whose Location comes from the Host header
    app = FastAPI(title="Shelfwatch", docs_url=None, redoc_url=None, openapi_url=None, redirect_slashes=False)
    app.middleware("http")(security_headers)
    app.state.settings = settings
    app.state.engine = get_engine(settings.db_url)
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.web_secret or secrets.token_urlsafe(48),
        session_cookie="shelfwatch_session",
        https_only=settings.web_secure_cookies,
        same_site="lax",
        max_age=12 * 3600,
    )
    app.add_exception_handler(Forbidden, forbidden)
    # no path is shared across routers; inside alerts, GET .../history stays ahead of POST .../{action}
    for module in (auth, forecasts, alerts, cx, operations, admin):
        app.include_router(module.router)
    return app
