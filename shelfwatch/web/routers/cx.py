"""The CX team's pages: members to contact about an alert and their CSV export. Member data is for
CX and admins only; contact addresses appear only in the export file."""

from __future__ import annotations

import io
from datetime import datetime, timezone

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from shelfwatch.alerts.notify import NotifyError, members_for_alert
from shelfwatch.web import queries
from shelfwatch.web.deps import (
    EngineDep,
    Forbidden,
    SettingsDep,
    check_csrf,
    current_user,
    known_id,
    page,
)

router = APIRouter()


@router.get("/cx", response_class=HTMLResponse)
def cx(request: Request, engine: EngineDep, settings: SettingsDep, alert: int | None = None) -> HTMLResponse:
    user = current_user(request)
    if not user.sees_member_data:
        raise Forbidden(f"member data is for the CX team; {user.username} is a {user.role.replace('_', ' ')}")
    alerts = queries.cx_alerts(engine)
    members = None
    if alert is not None:
        try:
            members = members_for_alert(engine, known_id(alert), datetime.now(timezone.utc), settings.member_contact_cap_days, record=False)
        except NotifyError as exc:
            raise HTTPException(404, str(exc)) from None
        members = members.drop(columns=["contact_address"]).to_dict("records")  # addresses only in the export file
    return page(request, "cx.html", user, alerts=alerts.to_dict("records"), selected=alert, members=members)


@router.post("/cx/{alert_id}/export")
def cx_export(request: Request, engine: EngineDep, settings: SettingsDep, alert_id: int, csrf: str = Form("")) -> Response:
    check_csrf(request, csrf)
    user = current_user(request)
    if not user.sees_member_data:
        raise Forbidden("member data is for the CX team")
    try:
        frame = members_for_alert(engine, known_id(alert_id), datetime.now(timezone.utc), settings.member_contact_cap_days)
    except NotifyError as exc:
        raise HTTPException(404, str(exc)) from None
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False)
    return Response(buffer.getvalue(), media_type="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="members_alert_{alert_id}.csv"', "Cache-Control": "no-store"})
