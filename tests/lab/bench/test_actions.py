"""The actions benchmark on a small world (the full run is `shelfwatch bench actions`): plans scored
against the world's demand, the at-risk list against who left, substitutes against acceptance."""

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from forecasting.engine import EngineSettings
from lab.bench.actions import at_risk_scores, bench_spec, next_arrivals, run_actions_bench, window_truth, world_lines
from lab.simulator import build_world
from shelfwatch.cli.app import app


@pytest.fixture(scope="module")
def world():
    return build_world(bench_spec(3, 40, 330, 900, 5))


def test_the_truth_window_runs_to_the_next_actual_arrival(world):
    nxt = next_arrivals(world)
    d = world.n_hist - 5
    s, k = np.array([0, 1, 2]), np.array([3, 3, 3])
    shelf, demand, emptied = window_truth(world, d, s, k, nxt)
    for i in range(3):
        end = nxt[d, s[i], k[i]]
        arrivals = world.deliveries[
            (world.deliveries.store_idx == s[i]) & (world.deliveries.sku_idx == k[i])
        ].arrival_day
        assert end == arrivals[arrivals > d].min()
        assert demand[i] == pytest.approx(world.demand[d:end, s[i], k[i]].sum())
        assert emptied[i] == (~np.isnan(world.empty_at_hour[d:end, s[i], k[i]])).any()
    assert (shelf == world.shelf_open[d, s, k]).all()


def test_member_lines_name_members_and_the_at_risk_points_are_scored(world):
    lines = world_lines(world)
    assert set(lines["member_id"]) <= set(world.members["member_id"]) and len(lines) > 1000
    rows = at_risk_scores(world, seed=1)
    assert len(rows) == 12 and all(r["active_members"] > 0 for r in rows)
    assert sum(r["leave_within_30d"] for r in rows) > 0
    for r in rows:
        assert 0 <= r["ours@100"] <= 1 and r["base_rate"] == pytest.approx(r["leave_within_30d"] / r["active_members"])


def test_the_plans_are_played_against_the_world_and_the_cli_prints_them(world):
    spec = bench_spec(3, 40, 330, 900, 5)
    result = run_actions_bench(
        spec,
        replay_days=2,
        refit_every=7,
        service_level=0.95,
        threshold=0.4,
        engine_settings=EngineSettings(horizon=14, workers=1),
    )
    ours, mean_only = result["scores"]
    assert ours.alerts == mean_only.alerts > 0 and sum(ours.by_kind.values()) == ours.alerts
    assert ours.prevented <= ours.acted_on_stockouts <= ours.stockouts
    # covering the 95 % quantile moves at least as many units as covering the mean, and saves at least as many shelves
    assert (
        ours.units_moved_there + ours.units_to_fine_shelves
        >= mean_only.units_moved_there + mean_only.units_to_fine_shelves
    )
    assert ours.prevented >= mean_only.prevented
    sub = result["substitutes"]
    assert sub["members_with_a_substitute"] <= sub["affected_members"]
    out = CliRunner().invoke(
        app,
        [
            "bench",
            "actions",
            "--world",
            "3x40:5",
            "--members",
            "900",
            "--history-days",
            "330",
            "--replay-days",
            "1",
            "--workers",
            "1",
        ],
        env={"COLUMNS": "250"},
    )
    assert out.exit_code == 0, out.output
    assert "share prevented" in out.output and "Members at risk" in out.output and "Substitutes:" in out.output
    assert pd.Series(["better", "not better"]).apply(lambda w: w in out.output).any()
