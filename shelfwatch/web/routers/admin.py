"""Admins' user management: list users, add one, change a role or store, reset a password, disable
or enable a user. The rules are `shelfwatch.web.auth`'s, the same the `shelfwatch users` commands
apply; every POST is CSRF-checked and for admins only. Passwords are never logged or shown."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from shelfwatch.web import auth, queries
from shelfwatch.web.auth import User, UserError
from shelfwatch.web.deps import EngineDep, Forbidden, check_csrf, current_user, page

router = APIRouter()
ACTIONS = ("role", "password", "disable", "enable")


def require_admin(user: User) -> None:
    if user.role != "admin":
        raise Forbidden(f"managing users is for admins; {user.username} is a {user.role.replace('_', ' ')}")


def users_page(
    request: Request,
    engine,
    user: User,
    status_code: int = 200,
    error: str = "",
    form: dict | None = None,
    target: str = "",
) -> HTMLResponse:
    """The users page; with `error` (a 400) the form that failed keeps what was typed (never a password)."""
    response = page(
        request,
        "users.html",
        user,
        status_code=status_code,
        users=auth.list_users(engine),
        roles=auth.ROLES,
        stores=sorted(queries.store_zones(engine)),
        error=error,
        form=form or {},
        target=target,
        done=request.session.pop("admin_done", ""),
        min_password=auth.MIN_PASSWORD,
    )
    response.headers["Cache-Control"] = "no-store"  # who has which role: not for a shared cache
    return response


def done(request: Request, message: str) -> Response:
    """Post/redirect/get: the message shows once on the next view of the page."""
    request.session["admin_done"] = message
    return RedirectResponse("/admin/users", status_code=303)


@router.get("/admin/users", response_class=HTMLResponse)
def users(request: Request, engine: EngineDep) -> HTMLResponse:
    user = current_user(request)
    require_admin(user)
    return users_page(request, engine, user)


@router.post("/admin/users")
def add(
    request: Request,
    engine: EngineDep,
    csrf: str = Form(""),
    username: str = Form("", max_length=200),
    role: str = Form("", max_length=40),
    store: str = Form("", max_length=40),
    password: str = Form("", max_length=1000),
) -> Response:
    check_csrf(request, csrf)
    user = current_user(request)
    require_admin(user)
    username = username.strip()
    try:
        created = auth.create_user(engine, username, password, role, store or None)
    except UserError as exc:
        return users_page(
            request, engine, user, 400, str(exc), {"username": username, "role": role, "store": store}, target="add"
        )
    return done(
        request,
        f"user {created.username} added: "
        f"{created.role.replace('_', ' ')}{' of ' + created.store_id if created.store_id else ''}",
    )


@router.post("/admin/users/{action}")
def change(
    request: Request,
    engine: EngineDep,
    action: str,
    csrf: str = Form(""),
    username: str = Form("", max_length=200),
    role: str = Form("", max_length=40),
    store: str = Form("", max_length=40),
    password: str = Form("", max_length=1000),
) -> Response:
    """One change to one user: `role` (role and store), `password` (ends their sessions), `disable`
    (ends their sessions; not yourself), `enable`."""
    check_csrf(request, csrf)
    user = current_user(request)
    require_admin(user)
    if action not in ACTIONS:
        return users_page(request, engine, user, 404, f"unknown action {action[:40]!r}")
    try:
        if action in ("disable", "role") and username == user.username:
            raise UserError("you cannot disable yourself or change your own role: ask another admin")
        if action == "role":
            changed = auth.set_role(engine, username, role, store or None)
            message = (
                f"user {username}: now "
                f"{changed.role.replace('_', ' ')}{' of ' + changed.store_id if changed.store_id else ''}"
            )
        elif action == "password":
            auth.reset_password(engine, username, password)
            message = f"user {username}: new password set; their sessions have ended"
        elif action == "disable":
            if not auth.disable_user(engine, username):
                raise UserError(f"unknown user {username}")
            message = f"user {username}: disabled; their sessions have ended"
        else:
            auth.enable_user(engine, username)
            message = f"user {username}: enabled; they can sign in with their password"
    except UserError as exc:
        return users_page(
            request, engine, user, 400, str(exc), {"role": role, "store": store}, target=f"{action}:{username}"
        )
    return done(request, message)
