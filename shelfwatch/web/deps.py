"""What the routers share: settings and engine from `app.state`, the signed-in user and role checks,
the CSRF token, and the Jinja2 templates with the `page(...)` render helper.

`current_user` is a plain helper called inside each handler, not a `Depends`: handlers check CSRF
before login and FastAPI validates query/path parameters before the body runs, so calling it in
the body keeps exactly which error (403, 303 to /login, 422) a request gets.
"""

from __future__ import annotations

import hmac
import secrets
from pathlib import Path
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy import Engine

from core.db import local_time
from core.settings import Settings
from shelfwatch.web import auth, queries
from shelfwatch.web.auth import User

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
# Plotly's config on every chart: no "edit in Chart Studio" / cloud link, no logo
PLOT_CONFIG = {
    "responsive": True,
    "displaylogo": False,
    "showLink": False,
    "showSendToCloud": False,
    "showEditInChartStudio": False,
}
TEMPLATES.env.globals["plot_config"] = PLOT_CONFIG
# every time a person reads is in a store's own zone, labelled: {{ a.opened_at|local(zone) }}
TEMPLATES.env.filters["local"] = local_time


class Forbidden(HTTPException):
    """A signed-in user whose role may not see or do this: rendered as forbidden.html (app.py's handler)."""

    def __init__(self, why: str) -> None:
        super().__init__(status_code=403, detail=why)


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_engine(request: Request) -> Engine:
    return request.app.state.engine


SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]


def csrf_token(request: Request) -> str:
    """The session's CSRF token (created on first use); every POST form carries it back."""
    if "csrf" not in request.session:
        request.session["csrf"] = secrets.token_urlsafe(32)
    return request.session["csrf"]


def check_csrf(request: Request, token: str) -> None:
    expected = request.session.get("csrf")
    if not expected or not token or not hmac.compare_digest(expected, token):
        raise Forbidden("the form's CSRF token is missing or wrong: reload the page and try again")


def session_user(request: Request) -> User | None:
    """The signed-in user of a live server-side session, or None."""
    return auth.session_user(get_engine(request), request.session.get("sid"))


def current_user(request: Request) -> User:
    """The signed-in user; anyone else is sent to /login (303)."""
    user = session_user(request)
    if user is None:
        raise HTTPException(status_code=303, headers={"Location": "/login"})
    return user


MAX_ID = 2**31 - 1  # the largest id the databases' integer columns hold


def known_id(value: int, what: str = "alert") -> int:
    """An id from a URL that can exist at all; anything else (0, negative, 20 digits) is a 404, not
    a database error."""
    if not 1 <= value <= MAX_ID:
        raise HTTPException(404, f"{what} {value} does not exist")
    return value


def require_store(user: User, store_id: str) -> None:
    """A store manager sees only their own store."""
    if not user.can_view_store(store_id):
        raise Forbidden(f"{user.username} manages {user.store_id}, not {store_id}")


def page(request: Request, template: str, user: User | None, status_code: int = 200, **context) -> HTMLResponse:
    """Render a page with what base.html needs: the user, the session's CSRF token, the time zone
    times are shown in (`zone`: the page's store, else the user's store, else UTC; `zones` maps every
    store) and the "data as of" stamp."""
    extra = {}
    if user is not None:
        engine = get_engine(request)
        zones = queries.store_zones(engine)
        store = context.get("store_id") or user.store_id
        extra = {"zones": zones, "zone": zones.get(store, "UTC"), "data_as_of": queries.data_as_of(engine)}
    return TEMPLATES.TemplateResponse(
        request, template, {"user": user, "csrf": csrf_token(request), **extra, **context}, status_code=status_code
    )
