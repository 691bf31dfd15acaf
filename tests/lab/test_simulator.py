"""The simulated world: deterministic, stock-limited sales, incidents with ground truth."""

import json

import numpy as np
import pandas as pd
import pytest

from lab.simulator import WorldSpec, build_world, simulate_world

SMALL = dict(stores=2, skus=12, days=120, members=80, seed=3)


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory):
    return simulate_world(tmp_path_factory.mktemp("world"), **SMALL)


def test_same_seed_same_files(world_dir, tmp_path):
    again = simulate_world(tmp_path / "again", **SMALL)
    for name in [
        "sales/sales_daily.csv",
        "sales/purchase_lines.csv",
        "sensor_readings.jsonl",
        "ground_truth.json",
        "deliveries.csv",
    ]:
        assert (world_dir / name).read_bytes() == (again / name).read_bytes(), name


def test_other_seed_other_sales(world_dir, tmp_path):
    other = simulate_world(tmp_path / "other", **{**SMALL, "seed": 4})
    assert (world_dir / "sales/sales_daily.csv").read_bytes() != (other / "sales/sales_daily.csv").read_bytes()


def test_empty_shelf_sells_nothing():
    world = build_world(WorldSpec(**SMALL))
    assert (world.sold <= world.shelf_open + 1e-9).all()
    empty = world.shelf_open <= 0
    assert empty.any(), "the world should contain empty shelves"
    assert (world.sold[empty] == 0).all()


def test_sales_have_weekly_pattern_and_slow_movers(world_dir):
    sales = pd.read_csv(world_dir / "sales/sales_daily.csv", parse_dates=["date"])
    assert len(sales) == 2 * 12 * 120
    by_dow = sales.groupby(sales["date"].dt.dayofweek)["units"].mean()
    assert by_dow.max() > by_dow.min() * 1.05
    zero_share = sales.groupby("sku")["units"].apply(lambda u: (u == 0).mean())
    assert (zero_share > 0.4).any(), "some SKUs should be intermittent"


def test_ground_truth_and_readings(world_dir):
    truth = json.loads((world_dir / "ground_truth.json").read_text())
    assert truth["now"].startswith("2026-11-23")
    assert {i["kind"] for i in truth["incidents"]} <= {"empty_now", "empty_before_delivery", "phantom_stock"}
    readings = [json.loads(line) for line in (world_dir / "sensor_readings.jsonl").read_text().splitlines()]
    assert readings and {"sensor_id", "store_id", "sku", "kind", "value", "ts", "seq"} <= readings[0].keys()
    assert all(pd.Timestamp(r["ts"]).tzinfo is not None for r in readings[:50])
    lines = pd.read_csv(world_dir / "sales/purchase_lines.csv")
    assert lines["member_id"].notna().all() and not lines.duplicated(["store_id", "receipt_id", "line_no"]).any()


def test_phantom_stock_keeps_books_above_zero():
    spec = WorldSpec(**{**SMALL, "incident_share": 0.3, "sensor_share": 0.3})
    world = build_world(spec)
    ph = world.incidents.phantom
    assert ph.any()
    n = world.n_hist
    assert (world.shelf_close[n - 1][ph] == 0).all()
    assert np.allclose(world.sold[n - 1][ph], 0)
