"""The store managers' alert inbox (one line per shelf, sorted, filtered and paged), an alert's
history, and the acknowledge/resolve actions, per shelf (all of its active alerts at once) or per
alert; a store manager sees and acts on their own store only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from math import ceil
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Engine, select

from alerts import lifecycle
from alerts.shelves import TYPE_LABELS, shelf_lines
from core.domain import ALERT_TYPES
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
from sql import schema

MAX_NOTE = 500  # characters of a resolve note
CLOSED_DAYS = 7  # the closed list: resolved or expired in the last days
# The inbox's GET parameters: each one's allowed values, with what a person reads for them ("" = no filter).
SORTS = {"severity": "most severe first", "empty": "expected empty soonest first", "product": "product name A–Z"}
TYPES = {"": "all alert types", **{t: TYPE_LABELS.get(t, t.replace("_", " ")) for t in ALERT_TYPES}}
STATUSES = {"": "open or acknowledged", "open": "open (not yet acknowledged)", "acknowledged": "acknowledged"}
AGES = {"": "any time", "24h": "in the last 24 hours", "7d": "in the last 7 days", "older": "more than 7 days ago"}
PER_PAGE = (10, 25, 50, 100)
DEFAULTS = {"sort": "severity", "type": "", "status": "", "age": "", "per_page": 25, "page": 1, "closed_page": 1}
RESOLVE_REASONS = ("refilled", "counted: stock found", "no stock: ordered", "sensor or data problem")
ACTIONS = {"acknowledge": "acknowledged", "resolve": "resolved"}

router = APIRouter()


def inbox_params(raw) -> tuple[dict, list[str]]:
    """The inbox's sort, filters and pages from a query (a mapping, or (key, value) pairs): every value
    checked against what it may be; a bad one is replaced by its default and named in the errors.
    Unknown keys are ignored."""
    params, errors = dict(DEFAULTS), []
    pairs = raw.items() if hasattr(raw, "items") else raw
    for key, value in pairs:
        value = value.strip()
        choices = {"sort": SORTS, "type": TYPES, "status": STATUSES, "age": AGES}.get(key)
        if choices is not None:
            if value in choices:
                params[key] = value
            else:
                errors.append(
                    f"{key}={value[:40]!r} is not one of: {', '.join(repr(c) for c in choices if c)}; showing "
                    f"{choices[params[key]]}"
                )
        elif key in ("page", "closed_page", "per_page"):
            number = int(value) if value.isascii() and value.isdigit() and len(value) <= 9 else None
            if key == "per_page" and number not in PER_PAGE:
                errors.append(
                    f"per_page={value[:40]!r} is not one of {', '.join(map(str, PER_PAGE))}; showing "
                    f"{DEFAULTS['per_page']} a page"
                )
            elif number is None or number < 1:
                errors.append(f"{key}={value[:40]!r} is not a page number (1, 2, ...); showing page 1")
            else:
                params[key] = number
    return params, errors


def inbox_query(params: dict, **change) -> str:
    """The query string of the inbox with `params` (and `change`), defaults left out: the pages' and
    filters' links and the redirect after an action."""
    merged = {**params, **change}
    return urlencode({k: v for k, v in merged.items() if k in DEFAULTS and v != DEFAULTS[k]})


def page_count(total: int, per_page: int) -> int:
    """Pages of `per_page` lines for `total` lines: at least one (an empty list is page 1 of 1)."""
    return max(1, ceil(total / per_page))


@router.get("/alerts")
def alerts_home(request: Request, engine: EngineDep) -> Response:
    """A store manager's own inbox; for everyone else the store with the most severe open alert."""
    user = current_user(request)
    if user.role == "store_manager":
        return RedirectResponse(f"/stores/{user.store_id}/alerts", status_code=303)
    return RedirectResponse(f"/stores/{queries.most_urgent_store(engine)}/alerts", status_code=303)


@router.get("/stores/{store_id}/alerts", response_class=HTMLResponse)
def inbox(request: Request, engine: EngineDep, store_id: str) -> HTMLResponse:
    """One line per shelf with its reason and what is at stake, most severe first; sort, filters and
    pages are GET parameters (a bad value: status 400, the page with that value's default and a message)."""
    user = current_user(request)
    require_store(user, store_id)
    zones = queries.store_zones(engine)
    if store_id not in zones:
        raise HTTPException(404, f"store {store_id} does not exist")
    params, errors = inbox_params(request.query_params.multi_items())
    now = request.app.state.settings.clock()
    per_page = params["per_page"]
    filters = dict(
        sort=params["sort"],
        alert_type=params["type"] or None,
        status=params["status"] or None,
        age=params["age"] or None,
    )
    alerts, total, shown = queries.inbox_shelves(
        engine, store_id, now, per_page=per_page, page=params["page"], **filters
    )
    order = list(dict.fromkeys(alerts["sku"]))
    lines = shelf_lines(alerts, zones[store_id], now=now)
    lines = lines.set_index("sku").loc[order].reset_index() if len(lines) else lines
    since = datetime.now(UTC) - timedelta(days=CLOSED_DAYS)
    closed, closed_total, closed_shown = queries.closed_alerts(
        engine, store_id, since, per_page=per_page, page=params["closed_page"]
    )
    shown_params = {**params, "page": shown, "closed_page": closed_shown}
    done, shelf, n = (request.query_params.get(k, "") for k in ("done", "shelf", "n"))
    flash = None  # what the last action did; only said of a product that exists (no text of a link's choosing)
    if (
        done in ACTIONS.values()
        and n.isascii()
        and n.isdigit()
        and len(n) < 5
        and queries.shelf_known(engine, store_id, shelf)
    ):
        flash = f"{done.capitalize()} {n} alert{'' if n == '1' else 's'} on {shelf}."
    stores = sorted(zones) if user.role != "store_manager" else [store_id]
    return page(
        request,
        "alerts.html",
        user,
        status_code=400 if errors else 200,
        store_id=store_id,
        lines=lines.to_dict("records"),
        total=total,
        page_no=shown,
        pages=page_count(total, per_page),
        closed=closed.to_dict("records"),
        closed_total=closed_total,
        closed_page=closed_shown,
        closed_pages=page_count(closed_total, per_page),
        closed_days=CLOSED_DAYS,
        params=shown_params,
        errors=errors,
        flash=flash,
        query=lambda **change: inbox_query(shown_params, **change),
        back=inbox_query(shown_params),
        sorts=SORTS,
        types=TYPES,
        statuses=STATUSES,
        ages=AGES,
        per_page_choices=PER_PAGE,
        reasons=RESOLVE_REASONS,
        max_note=MAX_NOTE,
        now=now,
        labels=TYPE_LABELS,
        stores=stores,
        filtered=any(params[k] for k in ("type", "status", "age")),
    )


def act_on_shelf(engine: Engine, store_id: str, sku: str, action: str, actor: str, note: str | None) -> list[int]:
    """Acknowledge (its open alerts) or resolve (all its active alerts) one shelf, in one transaction:
    every alert moves, or none. AlertStateError when there is nothing to move."""
    a = schema.alerts
    with engine.begin() as conn:
        rows = conn.execute(
            select(a.c.alert_id, a.c.status)
            .where(a.c.store_id == store_id, a.c.sku == sku, a.c.status.in_(lifecycle.ACTIVE))
            .order_by(a.c.alert_id)
        ).all()
        if not rows:
            raise lifecycle.AlertStateError(f"{sku} at {store_id} has no open or acknowledged alerts")
        targets = [r.alert_id for r in rows if action == "resolve" or r.status == "open"]
        if not targets:
            raise lifecycle.AlertStateError(f"every alert on {sku} at {store_id} is already acknowledged")
        now = lifecycle.utc_now()
        for alert_id in targets:
            lifecycle.transition(conn, alert_id, ACTIONS[action], actor, now, note)
    return targets


@router.post("/stores/{store_id}/shelves/{sku}/{action}")
def act_shelf(
    request: Request,
    engine: EngineDep,
    store_id: str,
    sku: str,
    action: str,
    csrf: str = Form(""),
    note: str = Form(""),
    reason: str = Form(""),
    back: str = Form(""),
) -> Response:
    """Acknowledge or resolve every active alert of one shelf. Resolve needs a note typed by the
    person (at most MAX_NOTE characters), optionally after one of RESOLVE_REASONS."""
    check_csrf(request, csrf)
    user = current_user(request)
    if len(note) > MAX_NOTE:
        raise HTTPException(400, f"the note has {len(note)} characters; at most {MAX_NOTE}")
    if not queries.shelf_known(engine, store_id, sku):
        raise HTTPException(404, f"there is no shelf {sku} at store {store_id}")
    if not (user.acts_on_alerts and user.can_view_store(store_id)):
        raise Forbidden(f"{user.username} ({user.role}) may not change alerts of {store_id}")
    if action not in ACTIONS:
        raise HTTPException(404, f"unknown action {action}")
    note_text = None
    if action == "resolve":
        if reason and reason not in RESOLVE_REASONS:
            raise HTTPException(400, f"unknown reason {reason[:40]!r}: one of {', '.join(RESOLVE_REASONS)}, or none")
        if not note.strip():
            raise HTTPException(400, "resolving needs a note: type what you found or did")
        note_text = f"{reason}: {note.strip()}" if reason else note.strip()
    try:
        moved = act_on_shelf(engine, store_id, sku, action, user.username, note_text)
    except lifecycle.AlertStateError as exc:
        raise HTTPException(409, str(exc)) from None
    params, _ = inbox_params(parse_qsl(back[:500]))
    query = (
        inbox_query(params)
        + ("&" if inbox_query(params) else "")
        + urlencode({"done": ACTIONS[action], "shelf": sku, "n": len(moved)})
    )
    return RedirectResponse(f"/stores/{store_id}/alerts?{query}", status_code=303)


@router.get("/alerts/{alert_id}/history", response_class=HTMLResponse)
def history(request: Request, engine: EngineDep, alert_id: int) -> HTMLResponse:
    user = current_user(request)
    info = queries.alert_info(engine, known_id(alert_id))
    if info is None:
        raise HTTPException(404, f"alert {alert_id} does not exist")
    require_store(user, info["store_id"])
    return page(
        request,
        "history.html",
        user,
        alert_id=alert_id,
        store_id=info["store_id"],
        alert=info,
        type_label=TYPE_LABELS.get(info["alert_type"], info["alert_type"]),
        events=lifecycle.history(engine, alert_id),
    )


@router.post("/alerts/{alert_id}/{action}")
def act(
    request: Request, engine: EngineDep, alert_id: int, action: str, csrf: str = Form(""), note: str = Form("")
) -> Response:
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
