"""stockout_alerts: every 15 minutes, and when forecasts or sensor readings are new: detect stock-out
risks, empty shelves and phantom stock-outs, link the favourite members and their substitutes, queue
notifications; then dispatch the outbox (store-manager e-mails, webhook, members' back-in-stock
notices) and refresh the members-at-risk list.
"""

from __future__ import annotations

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, dag, task

from shelfwatch.dag_wiring import DAG_ARGS, FORECASTS, SENSOR_READINGS, run_step, settings


@dag(
    dag_id="stockout_alerts",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable("*/15 * * * *", timezone="UTC"), assets=(FORECASTS | SENSOR_READINGS)
    ),
    doc_md=__doc__,
    **DAG_ARGS,
)
def stockout_alerts():
    @task
    def detect() -> dict:
        """Detect, link members and queue notifications; a re-run changes nothing; skipped while no
        sales are loaded."""
        from shelfwatch.steps import detect_alerts

        return run_step(detect_alerts, settings())

    @task(trigger_rule="none_failed")
    def notify() -> dict:
        """Deliver the outbox's due messages (also when detection was skipped: the ingest queues
        shelf_empty e-mails itself); each is claimed first, so nothing is sent twice."""
        from shelfwatch.steps import send_notifications

        return send_notifications(settings())

    @task
    def refresh_member_risk() -> dict:
        """Re-rank the members whose favourites keep running out, from this run's alerts (skipped with
        detection)."""
        from shelfwatch.steps import refresh_member_risk

        return run_step(refresh_member_risk, settings())

    detected = detect()
    detected >> notify()
    detected >> refresh_member_risk()


stockout_alerts()
