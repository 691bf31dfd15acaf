"""Login, logout and the landing redirect: the only pages open before sign-in, and where each role
is sent home."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from shelfwatch.web.auth import authenticate
from shelfwatch.web.deps import EngineDep, check_csrf, current_user, page

router = APIRouter()


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, error: str = "") -> HTMLResponse:
    return page(request, "login.html", None, error=error)


@router.post("/login")
def login(request: Request, engine: EngineDep, username: str = Form(...), password: str = Form(...), csrf: str = Form("")) -> Response:
    check_csrf(request, csrf)
    user = authenticate(engine, username, password)
    if user is None:
        return page(request, "login.html", None, error="Unknown user or wrong password.")
    request.session.clear()  # a new session at login: no fixation
    request.session["user"] = user.username
    return RedirectResponse(user.home, status_code=303)


@router.post("/logout")
def logout(request: Request, csrf: str = Form("")) -> Response:
    check_csrf(request, csrf)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.get("/")
def home(request: Request) -> Response:
    return RedirectResponse(current_user(request).home, status_code=303)
