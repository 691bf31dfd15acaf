"""The store managers' alert inbox, an alert's history, and the acknowledge/resolve actions; a store
manager sees and acts on their own store only."""

from __future__ import annotations

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from shelfwatch.alerts import lifecycle
from shelfwatch.web import queries
from shelfwatch.web.deps import (
    EngineDep,
    Forbidden,
    check_csrf,
    current_user,
    known_id,
    page,
    require_store,
)

MAX_NOTE = 500  # characters of a resolve note

router = APIRouter()


@router.get("/alerts")
def alerts_home(request: Request, engine: EngineDep) -> Response:
    """A store manager's own inbox; for everyone else the store with the most severe open alert."""
    user = current_user(request)
    if user.role == "store_manager":
        return RedirectResponse(f"/stores/{user.store_id}/alerts", status_code=303)
    return RedirectResponse(f"/stores/{queries.most_urgent_store(engine)}/alerts", status_code=303)


@router.get("/stores/{store_id}/alerts", response_class=HTMLResponse)
def inbox(request: Request, engine: EngineDep, store_id: str) -> HTMLResponse:
    user = current_user(request)
    require_store(user, store_id)
    active, closed = queries.store_alerts(engine, store_id)
    stores, _ = queries.stores_and_products(engine)
    return page(request, "alerts.html", user, store_id=store_id, active=active.to_dict("records"), closed=closed.to_dict("records"),
                stores=stores["store_id"].tolist() if user.role != "store_manager" else [store_id])


@router.get("/alerts/{alert_id}/history", response_class=HTMLResponse)
def history(request: Request, engine: EngineDep, alert_id: int) -> HTMLResponse:
    user = current_user(request)
    store_id = queries.alert_store(engine, known_id(alert_id))
    if store_id is None:
        raise HTTPException(404, f"alert {alert_id} does not exist")
    require_store(user, store_id)
    return page(request, "history.html", user, alert_id=alert_id, store_id=store_id, events=lifecycle.history(engine, alert_id))


@router.post("/alerts/{alert_id}/{action}")
def act(request: Request, engine: EngineDep, alert_id: int, action: str, csrf: str = Form(""), note: str = Form("")) -> Response:
    check_csrf(request, csrf)
    user = current_user(request)
    if len(note) > MAX_NOTE:
        raise HTTPException(400, f"the note has {len(note)} characters; at most {MAX_NOTE}")
    store_id = queries.alert_store(engine, known_id(alert_id))
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
