"""Login, logout and the landing redirect: the only pages open before sign-in, and where each role
is sent home."""

from __future__ import annotations

import math

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from shelfwatch.web import auth
from shelfwatch.web.deps import EngineDep, check_csrf, current_user, page

WRONG = "Unknown user or wrong password."

router = APIRouter()


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, error: str = "") -> HTMLResponse:
    return page(request, "login.html", None, error=error)


@router.post("/login")
def login(
    request: Request,
    engine: EngineDep,
    username: str = Form(..., max_length=200),
    password: str = Form(..., max_length=1000),
    csrf: str = Form(""),
) -> Response:
    """Sign in, throttled per username and per client address (auth.login_wait), every attempt kept
    in login_attempts. The answers do not tell an unknown user from a wrong password."""
    check_csrf(request, csrf)
    client = request.client.host if request.client else "unknown"
    wait = auth.login_wait(engine, username, client)
    if wait > 0:
        auth.record_attempt(engine, username, client, succeeded=False, throttled=True)
        return page(
            request,
            "login.html",
            None,
            error=f"Too many failed sign-ins: try again in {math.ceil(wait)} s.",
            status_code=429,
        )
    user = auth.authenticate(engine, username, password)
    auth.record_attempt(engine, username, client, succeeded=user is not None)
    if user is None:
        return page(request, "login.html", None, error=WRONG, status_code=401)
    auth.end_session(engine, request.session.get("sid"))
    request.session.clear()  # a new session at login: no fixation
    request.session["sid"] = auth.start_session(engine, user.username)
    return RedirectResponse(user.home, status_code=303)


@router.post("/logout")
def logout(request: Request, engine: EngineDep, csrf: str = Form("")) -> Response:
    """End the session on the server too: a copy of the cookie opens nothing afterwards."""
    check_csrf(request, csrf)
    auth.end_session(engine, request.session.get("sid"))
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.get("/")
def home(request: Request) -> Response:
    return RedirectResponse(current_user(request).home, status_code=303)
