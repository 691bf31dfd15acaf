"""The alert quality benchmark's replay and scoring (small worlds; the full run is `shelfwatch bench alerts`)."""

import numpy as np
import pytest
from typer.testing import CliRunner

from lab.bench.alerts import episode_precision, episodes, parse_worlds, replay_world, score_replay
from lab.simulator import WorldSpec
from shelfwatch.cli.app import app


def test_episodes_follow_the_lifecycle_with_hysteresis():
    p = np.array([0.2, 0.6, 0.4, 0.2, 0.7, 0.6])[:, None]
    opened, last = episodes(p >= 0.5, p >= 0.25)
    # opens at 0.6, survives 0.4 (>= keep level), resolves at 0.2, reopens at 0.7
    assert opened[:, 0].tolist() == [-1, 1, 1, -1, 4, 4]
    assert last[:, 0].tolist() == [False, False, True, False, False, True]
    truth = np.array([False, False, True, False, False, False])[:, None]
    assert episode_precision(opened, last, truth) == (2, 1)  # two alerts, the first came true
    no_keep, _ = episodes(p >= 0.5)
    assert no_keep[:, 0].tolist() == [-1, 1, -1, -1, 4, 4]


def test_parse_worlds_names_the_bad_item():
    assert [(s.stores, s.skus, s.seed) for s in parse_worlds("50x500:11, 2x15:3")] == [(50, 500, 11), (2, 15, 3)]
    with pytest.raises(ValueError, match="world 'fifty': expected STORESxSKUS:SEED"):
        parse_worlds("fifty")


@pytest.fixture(scope="module")
def oracle_replay():
    spec = WorldSpec(stores=4, skus=60, days=150, members=300, seed=21, lookahead_days=9, incident_share=0.1)
    return replay_world(spec, days=6, runs_per_day=2, oracle=True)


def test_replay_scores_every_detector_and_thresholds_trade_precision_for_recall(oracle_replay):
    scores = score_replay(oracle_replay, [0.1, 0.5, 0.9], [0.01, 0.0001])
    predicted = [s for s in scores if s.alert_type == "predicted_stockout"]
    assert predicted[0].events > 10  # shelves did empty during the replay
    assert predicted[0].recall >= predicted[1].recall >= predicted[2].recall
    assert predicted[0].precision <= predicted[2].precision
    # fed the true demand distribution, alerts at p >= 0.5 come true more often than not
    assert predicted[1].precision > 0.5 and predicted[1].median_hours > 0
    phantom = [s for s in scores if s.alert_type == "phantom_stockout"]
    assert phantom[0].events > 0 and phantom[0].caught > 0 and phantom[0].alerts >= phantom[1].alerts
    empty = next(s for s in scores if s.alert_type == "shelf_empty")
    assert empty.precision == 1.0 and 0 < empty.median_hours <= 24  # readings every 6 h see an empty shelf soon


def test_replay_sees_only_the_past(oracle_replay):
    """Each run's inputs stop at its own "now": no reading from after it, no sales of its own day."""
    import pandas as pd

    from lab.bench.alerts import inputs_for_run, local_midnights

    w = oracle_replay.world
    day = oracle_replay.first_day + 2
    at = pd.Timestamp(w.dates[day]).tz_localize("UTC") + pd.Timedelta(hours=12)
    fc = pd.DataFrame(columns=["store_id", "sku", "date", "mean", "p10", "p90"])
    inp = inputs_for_run(
        w,
        day,
        at,
        fc,
        pd.DataFrame(columns=["store_id", "sku", "dispersion"]),
        oracle_replay.readings,
        local_midnights(w),
    )
    assert inp.readings["device_ts"].max() <= at
    assert pd.to_datetime(inp.sales["date"]).max() == pd.Timestamp(w.dates[day - 1])
    assert (inp.deliveries["received_at"].dropna() <= at).all()


def test_bench_alerts_cli_prints_its_tables(tmp_path, monkeypatch):
    monkeypatch.setenv("SHELFWATCH_OUTPUT_DIR", str(tmp_path))
    result = CliRunner().invoke(
        app,
        [
            "bench",
            "alerts",
            "--worlds",
            "3x30:4",
            "--days",
            "3",
            "--runs-per-day",
            "2",
            "--latency-readings",
            "2",
            "--thresholds",
            "0.3,0.5",
            "--phantom-thresholds",
            "0.01",
            "--workers",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    for text in (
        "predicted_stockout over 3x30 seed 4",
        "by the cause of the stock-out",
        "phantom_stockout",
        "shelf_empty on arrival (SQLite",
        "per world",
    ):
        assert text in result.output


def test_our_threshold_is_compared_with_the_perfect_forecaster_at_the_same_precision():
    import numpy as np

    from lab.bench.alerts import TypeScore, perfect_at_precision

    def row(threshold, true_alerts, caught):
        return TypeScore("predicted_stockout", threshold, 100, true_alerts, 200, caught, np.array([30.0]))

    perfect = [row(0.2, 60, 180), row(0.4, 72, 150), row(0.6, 85, 120)]
    assert perfect_at_precision(perfect, 0.7).threshold == 0.4  # at least as precise, the best recall
    assert perfect_at_precision(perfect, 0.5).threshold == 0.2
    assert perfect_at_precision(perfect, 0.9).threshold == 0.6  # none that precise: its most precise
    assert perfect_at_precision([], 0.5) is None


def test_the_perfect_forecaster_knows_the_plan_but_not_unannounced_surges():
    """A surge (incidents.spike) is in the world's demand, not in what a forecaster could know: the
    oracle's forecast is the planned demand, and stock-out events during a surge are scored apart."""
    from types import SimpleNamespace

    from lab.bench.alerts import FORECASTABLE, SURGE, local_midnights, oracle_forecast, stockout_events
    from lab.simulator import SURGE_DAYS_BEFORE_NOW, build_world

    spec = WorldSpec(stores=4, skus=60, days=150, members=300, seed=21, lookahead_days=9, incident_share=0.1)
    w = build_world(spec)
    s, k = np.nonzero(w.incidents.spike)
    assert len(s) > 0
    surge_day = w.n_hist - SURGE_DAYS_BEFORE_NOW
    assert np.all(w.expected_demand[surge_day, s, k] > 2.5 * w.planned_demand[surge_day, s, k])  # 3x + 1
    assert np.array_equal(w.expected_demand[:surge_day], w.planned_demand[:surge_day])
    fc, _ = oracle_forecast(w, surge_day, horizon=2)
    row = fc[(fc["store_id"] == w.stores["store_id"][s[0]]) & (fc["sku"] == w.products["sku"][k[0]])].iloc[0]
    assert row["mean"] == pytest.approx(float(w.planned_demand[surge_day, s[0], k[0]]), rel=1e-6)

    days = SimpleNamespace(
        world=w, first_day=w.n_hist - 6, midnight=local_midnights(w)
    )  # what stockout_events reads of a replay
    events = stockout_events(days)
    surged = w.incidents.spike[events["s"], events["k"]] & (events["day"] >= surge_day)
    assert set(events["cause"]) <= {FORECASTABLE, SURGE}
    assert (events["cause"] == SURGE).tolist() == surged.tolist() and surged.any()


def test_scores_by_cause_share_the_alerts_and_split_the_events(oracle_replay):
    scores = score_replay(oracle_replay, [0.3], [0.01])
    whole, forecastable, surge = (
        next(s for s in scores if s.alert_type == t)
        for t in ("predicted_stockout", "predicted_stockout:forecastable", "predicted_stockout:surge")
    )
    assert forecastable.events + surge.events == whole.events and forecastable.caught + surge.caught == whole.caught
    assert forecastable.alerts == surge.alerts == whole.alerts and forecastable.precision == whole.precision
