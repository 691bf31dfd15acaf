"""Pipeline health for planners and admins: when each step last ran and whether that is on time,
sensor ingest lag and consumers, stale sensors, quarantined files and, when an Airflow metadata
database is configured, the recent DAG runs. Every figure in human units ("20 min", "14 days"),
with the threshold it is judged by and a status word (ok / late / stale), not colour alone."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from core.db import as_utc
from core.settings import Settings
from shelfwatch.web import queries
from shelfwatch.web.deps import EngineDep, Forbidden, SettingsDep, current_user, page

router = APIRouter()

# How old each step's last run may get before the page calls it late, then stale, and why.
SALES_LOAD_LATE = timedelta(hours=36)  # POS exports land daily: a day and a half means one is missing
FORECAST_LATE = timedelta(hours=36)  # demand_forecast runs nightly (03:00 UTC): a night was missed
DETECTION_LATE = timedelta(
    hours=2
)  # stockout_alerts runs every 15 min, but the time shown is its last change to an alert
STALE_FACTOR = 2  # twice the late limit: not a slow day any more, the step has stopped
CONSUMER_STALE = timedelta(hours=1)  # an ingest consumer silent this long has stopped, not paused
LAG_STALE = timedelta(hours=1)  # readings an hour behind arrive too late for the 15-minute alert cycle


def human_duration(seconds: float | None) -> str:
    """A length of time as a person says it: "45 s", "20 min", "3.5 hours", "14 days"."""
    if seconds is None or seconds != seconds:  # None or NaN
        return "–"
    s = abs(float(seconds))

    def amount(value: float, unit: str) -> str:
        text = f"{value:.0f}" if value >= 10 else f"{value:.1f}".removesuffix(".0")
        return f"{text} {unit}{'' if text == '1' else 's'}"

    if s < 90:
        return f"{s:.0f} s"
    if s < 3600:
        return f"{s / 60:.0f} min"
    if s < 48 * 3600:
        return amount(s / 3600, "hour")
    return amount(s / 86400, "day")


def ago(ts, now: datetime) -> str:
    """ "3.5 hours ago"; a time after `now` (a clock ahead) says so instead of a negative age."""
    if ts is None or ts != ts:
        return "never"
    seconds = (now - as_utc(ts)).total_seconds()
    return f"{human_duration(seconds)} ago" if seconds >= 0 else f"{human_duration(seconds)} ahead of now"


def status_of(age: timedelta | None, late: timedelta | None, stale: timedelta | None = None) -> str:
    """ok / late / stale for an age against its limits; "no schedule" without limits (run or not),
    else "never" without an age."""
    if late is None:
        return "no schedule"
    if age is None:
        return "never"
    if stale is not None and age > stale:
        return "stale"
    return "late" if age > late else "ok"


def run_limits(settings: Settings) -> dict:
    """Each step's (late, stale) limits and why; None: it runs when there is work, no schedule."""
    silence = timedelta(minutes=settings.ingest_max_silence_minutes)
    return {
        "sales load": (SALES_LOAD_LATE, STALE_FACTOR * SALES_LOAD_LATE, "POS exports land daily"),
        "forecast": (FORECAST_LATE, STALE_FACTOR * FORECAST_LATE, "nightly forecast run"),
        "alert detection": (
            DETECTION_LATE,
            STALE_FACTOR * DETECTION_LATE,
            "runs every 15 min; shown is its last change to an alert",
        ),
        "notifications": (None, None, "sent when there is something to send"),
        "sensor ingest": (
            silence,
            CONSUMER_STALE,
            "the iot_ingest DAG fails after this silence (SHELFWATCH_INGEST_MAX_SILENCE_MINUTES)",
        ),
    }


def health_figures(info: dict, settings: Settings, now: datetime) -> dict:
    """What the page shows, judged: each last run with its age, limit and status; the ingest lag
    (median and p95) against SHELFWATCH_INGEST_MAX_LAG_SECONDS, the limit the iot_ingest DAG fails
    on; each consumer's last report."""
    runs = []
    for step, at in info["runs"].items():
        late, stale, why = run_limits(settings)[step]
        age = None if at is None else now - as_utc(at)
        runs.append(
            {
                "step": step,
                "at": at,
                "ago": ago(at, now),
                "status": status_of(age, late, stale),
                "why": why,
                "limit": f"late after {human_duration(late.total_seconds())}, stale after "
                f"{human_duration(stale.total_seconds())}"
                if late
                else "–",
            }
        )
    lag_late = timedelta(seconds=settings.ingest_max_lag_seconds)
    lag = []
    for name, key in (("median", "lag_median_s"), ("95th percentile", "lag_p95_s")):
        value = info[key]
        lag.append(
            {
                "measure": name,
                "value": human_duration(value),
                "seconds": value,
                "status": "no readings"
                if value is None
                else status_of(timedelta(seconds=max(value, 0.0)), lag_late, LAG_STALE),
                "limit": f"late above {human_duration(lag_late.total_seconds())}, stale above "
                f"{human_duration(LAG_STALE.total_seconds())}",
            }
        )
    silence = timedelta(minutes=settings.ingest_max_silence_minutes)
    consumers = []
    for c in info["consumers"].to_dict("records"):
        at = c["updated_at"]
        consumers.append(
            {
                **c,
                "ago": ago(at, now),
                "status": status_of(now - as_utc(at) if at is not None else None, silence, CONSUMER_STALE),
            }
        )
    worst = [f["status"] for f in runs + lag + consumers]
    overall = "stale" if "stale" in worst else "late" if "late" in worst else "ok"
    return {
        "runs": runs,
        "lag": lag,
        "consumers": consumers,
        "overall": overall,
        "counts": {s: worst.count(s) for s in ("ok", "late", "stale", "never")},
    }


@router.get("/health", response_class=HTMLResponse)
def health(request: Request, engine: EngineDep, settings: SettingsDep) -> HTMLResponse:
    user = current_user(request)
    if user.role not in ("planner", "admin"):
        raise Forbidden("pipeline health is for planners and admins")
    info = queries.pipeline_health(engine)
    now = datetime.now(UTC)  # the wall clock: these are times the jobs really ran
    dag_runs = queries.airflow_runs(settings.airflow_db_url).to_dict("records") if settings.airflow_db_url else None
    for r in dag_runs or []:
        r["took"] = human_duration(r["seconds"]) if r["seconds"] == r["seconds"] else ""
    stale = info["stale"].head(50).to_dict("records")
    for s in stale:
        hours = s["silent_hours"]
        s["silent"] = (
            human_duration(hours * 3600)
            if hours is not None and not (isinstance(hours, float) and math.isnan(hours))
            else "never reported"
        )
    return page(
        request,
        "health.html",
        user,
        info=info,
        figures=health_figures(info, settings, now),
        dag_runs=dag_runs,
        stale=stale,
        stale_count=len(info["stale"]),
        quarantine=info["quarantine"].to_dict("records"),
        samples=info["samples"].to_dict("records"),
        stale_after=human_duration(settings.sensor_stale_hours * 3600),
    )
