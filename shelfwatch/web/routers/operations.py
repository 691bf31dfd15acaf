"""Pipeline health for planners and admins: ingest consumers, stale sensors, quarantined files and,
when an Airflow metadata database is configured, the recent DAG runs."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from shelfwatch.web import queries
from shelfwatch.web.deps import EngineDep, Forbidden, SettingsDep, current_user, page

router = APIRouter()


@router.get("/health", response_class=HTMLResponse)
def health(request: Request, engine: EngineDep, settings: SettingsDep) -> HTMLResponse:
    user = current_user(request)
    if user.role not in ("planner", "admin"):
        raise Forbidden("pipeline health is for planners and admins")
    info = queries.pipeline_health(engine)
    dag_runs = queries.airflow_runs(settings.airflow_db_url).to_dict("records") if settings.airflow_db_url else None
    return page(request, "health.html", user, info=info, dag_runs=dag_runs, consumers=info["consumers"].to_dict("records"),
                stale=info["stale"].head(50).to_dict("records"), stale_count=len(info["stale"]),
                quarantine=info["quarantine"].to_dict("records"), samples=info["samples"].to_dict("records"))
