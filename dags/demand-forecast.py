"""demand_forecast: when new sales are in (and daily), forecast every store x SKU, one mapped task
per store shard (each on its own worker, in the forecasting pool), then publish the forecasts asset.

A planner can re-run one store (`stores`) or forecast from the history up to a past day (`until`)
from the UI's trigger form.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, Param, dag, get_current_context, task

from shelfwatch.dag_wiring import DAG_ARGS, FORECASTS, POOL_FORECASTING, SALES, run_step, settings


@dag(
    dag_id="demand_forecast",
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("0 3 * * *", timezone="UTC"), assets=[SALES]),
    doc_md=__doc__,
    **DAG_ARGS,
    params={
        "stores": Param(
            [], type="array", items={"type": "string"}, description="Only these stores (one shard); empty = all stores"
        ),
        "until": Param(
            "", type="string", description="Forecast from the history up to this day (YYYY-MM-DD); empty = all of it"
        ),
    },
)
def demand_forecast():
    @task
    def plan_shards() -> list[int]:
        """Shard numbers to map over: SHELFWATCH_FORECAST_SHARDS, or one when stores are named."""
        params = get_current_context()["params"]
        return [0] if params["stores"] else list(range(settings().forecast_shards))

    @task(
        pool=POOL_FORECASTING,
        execution_timeout=timedelta(hours=3),
        map_index_template="{{ shard_label }}",
        max_active_tis_per_dag=16,
    )
    def forecast_shard(shard: int) -> dict:
        """Forecast one shard of stores (a stable hash of the store id) into the shared run; skipped
        while no sales are loaded."""
        from shelfwatch.steps import forecast_demand

        context = get_current_context()
        params = context["params"]
        shards = 1 if params["stores"] else settings().forecast_shards
        context["shard_label"] = ", ".join(params["stores"]) if params["stores"] else f"shard {shard + 1} of {shards}"
        return run_step(
            forecast_demand, settings(), shard=(shard, shards), stores=params["stores"], until=params["until"]
        )

    @task(outlets=[FORECASTS])
    def publish(results: list[dict]) -> dict:
        """One summary of the run for the UI; the asset event triggers stockout_alerts."""
        results = list(results)
        return {
            "run_id": results[0]["run_id"],
            "series": sum(r["series"] for r in results),
            "rejected": sum(r["rejected"] for r in results),
        }

    publish(forecast_shard.expand(shard=plan_shards()))


demand_forecast()
