"""The CX team's pages: members to contact about an alert with the substitutes to offer them, why
linked favourites are not all on the list (the contact funnel), their CSV export, the history of
exports, the members at risk of leaving, and whether notices worked. Member data is for CX and admins
only; contact addresses appear only in the export file, and the history keeps counts only."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response

from alerts.effect_report import cx_effect
from alerts.member_risk import at_risk_count, at_risk_list
from alerts.notify import (
    SUBSTITUTE_SLOTS,
    NotifyError,
    contact_funnel,
    members_for_alert,
    record_cx_export,
    record_member_contacts,
)
from shelfwatch.web import queries
from shelfwatch.web.auth import User
from shelfwatch.web.deps import (
    EngineDep,
    Forbidden,
    SettingsDep,
    check_csrf,
    current_user,
    known_id,
    page,
)

PER_PAGE = 50  # alerts a page: the list is paged, never cut off
MAX_PAGE = 10**6  # a page number past this is not one anyone reached by clicking
HISTORY_ROWS = 20  # newest exports shown
RISK_PER_PAGE = 50  # members at risk a page, paged like the alerts
EFFECT_WINDOW_DAYS = 14  # a purchase within this many days of a notice counts
EFFECT_RESAMPLES = 1000  # the effect's bootstrap on every page view: enough for a 95 % interval's ends to ±1 point

router = APIRouter()


def require_cx(user: User) -> None:
    if not user.sees_member_data:
        raise Forbidden(f"member data is for the CX team; {user.username} is a {user.role.replace('_', ' ')}")


def page_number(value: str, what: str, errors: list[str]) -> int:
    """A page number from the URL (1 when empty); a bad one is reported in `errors` and reads as 1."""
    if not value:
        return 1
    if value.isdigit() and 1 <= int(value) <= MAX_PAGE:
        return int(value)
    errors.append(f"{what} {value[:20]!r} is not a page number")
    return 1


def list_params(
    stores: dict, store: str, status: str, sort: str, page_no: str, risk_page: str = ""
) -> tuple[dict, list[str]]:
    """The alert list's GET parameters, checked: each bad one is reported and replaced by its default,
    so a hand-edited URL gets a 400 page that still works, never a 500."""
    errors = []
    if store and store not in stores:
        errors.append(f"unknown store {store[:40]!r}")
        store = ""
    if status not in queries.CX_STATUSES:
        errors.append(f"unknown status {status[:40]!r}: one of {', '.join(s for s in queries.CX_STATUSES if s)}")
        status = ""
    sort = sort or "severity"
    if sort not in queries.CX_SORTS:
        errors.append(f"unknown order {sort[:40]!r}: one of {', '.join(queries.CX_SORTS)}")
        sort = "severity"
    number = page_number(page_no, "page", errors)
    risk_number = page_number(risk_page, "at-risk page", errors)
    return {"store": store, "status": status, "sort": sort, "page": number, "risk_page": risk_number}, errors


@router.get("/cx", response_class=HTMLResponse)
def cx(
    request: Request,
    engine: EngineDep,
    settings: SettingsDep,
    alert: int | None = None,
    store: str = "",
    status: str = "",
    sort: str = "severity",
    page_no: Annotated[str, Query(alias="page")] = "",
    risk_page: str = "",
) -> HTMLResponse:
    user = current_user(request)
    require_cx(user)
    members = funnel = None
    if alert is not None:
        now = datetime.now(UTC)
        try:
            members = members_for_alert(engine, known_id(alert), now, settings.member_contact_cap_days, record=False)
            funnel = contact_funnel(engine, alert, now, settings.member_contact_cap_days)
        except NotifyError as exc:
            raise HTTPException(404, str(exc)) from None
        members = members.drop(columns=["contact_address"]).to_dict("records")  # addresses only in the export file
        for m in members:
            m["substitutes"] = [m[slot] for slot in SUBSTITUTE_SLOTS if m[slot]]
    zones = queries.store_zones(engine)
    params, errors = list_params(zones, store, status, sort, page_no, risk_page)
    alerts, total, number = queries.cx_alerts(
        engine, params["store"] or None, params["status"], params["sort"], params["page"], PER_PAGE
    )
    params["page"] = number
    at_risk, risk_total, params["risk_page"] = risk_list_page(engine, params["risk_page"])
    effect = cx_effect(engine, settings.clock(), EFFECT_WINDOW_DAYS, n_boot=EFFECT_RESAMPLES)
    history, history_total = queries.cx_export_history(engine, None, HISTORY_ROWS)
    alert_history = queries.cx_export_history(engine, alert, HISTORY_ROWS)[0] if alert is not None else []
    # what the list's links keep: the filters, order and page (empty ones left out)
    keep = {
        k: v
        for k, v in params.items()
        if v and not (k == "sort" and v == "severity") and not (k in ("page", "risk_page") and v == 1)
    }
    return page(
        request,
        "cx.html",
        user,
        status_code=400 if errors else 200,
        errors=errors,
        alerts=alerts.to_dict("records"),
        total=total,
        pages=max(1, -(-total // PER_PAGE)),
        per_page=PER_PAGE,
        params=params,
        keep=keep,
        stores=sorted(zones),
        statuses=[s for s in queries.CX_STATUSES if s],
        sorts=queries.CX_SORTS,
        cap_days=settings.member_contact_cap_days,
        selected=alert,
        members=members,
        funnel=funnel,
        history=history,
        history_total=history_total,
        alert_history=alert_history,
        at_risk=at_risk,
        risk_total=risk_total,
        risk_pages=max(1, -(-risk_total // RISK_PER_PAGE)),
        risk_per_page=RISK_PER_PAGE,
        effect=effect,
    )


def risk_list_page(engine, number: int) -> tuple[list[dict], int, int]:
    """One page of the members at risk (a page past the last is the last), their total, and the page."""
    total = at_risk_count(engine)
    number = max(1, min(number, -(-total // RISK_PER_PAGE)))
    frame, total = at_risk_list(engine, RISK_PER_PAGE, (number - 1) * RISK_PER_PAGE)
    return frame.to_dict("records"), total, number


@router.post("/cx/{alert_id}/export")
def cx_export(
    request: Request, engine: EngineDep, settings: SettingsDep, alert_id: int, csrf: str = Form("")
) -> Response:
    """The contact list as CSV (with contact details); the contacts count toward the frequency cap and
    the export goes into the history (who, when, how many) once the file is made."""
    check_csrf(request, csrf)
    user = current_user(request)
    require_cx(user)
    now = datetime.now(UTC)
    try:
        frame = members_for_alert(engine, known_id(alert_id), now, settings.member_contact_cap_days, record=False)
    except NotifyError as exc:
        raise HTTPException(404, str(exc)) from None
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    record_member_contacts(engine, alert_id, frame["member_id"], now)
    record_cx_export(engine, alert_id, user.username, len(frame), now)
    return Response(
        buffer.getvalue(),
        media_type="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="members_alert_{alert_id}.csv"',
            "Cache-Control": "no-store",
        },
    )
