"""The simulator's stores, chains, product attributes and member behaviour (issue 19): the default
world's random stream is untouched, substitutes follow substitute_acceptance, members leave only
after repeated unserved visits and never buy again."""

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from lab.simulator import (
    CITY_COORDINATES,
    DEFECT_WINDOW_DAYS,
    WorldSpec,
    build_world,
    defect_probability,
    substitute_acceptance,
    write_world,
)

# hashes of this default-spec world, computed with the simulator BEFORE issue 19: other benchmarks'
# published figures depend on the random stream, so they must never change
IDENTITY = {"stores": 2, "skus": 20, "days": 120, "members": 200}
ARRAY_HASHES = {
    "sold": "8fcfb5fce43d9e43f4c7ae9788243873e4f80cc99ecb015053c77d474a9d630d",
    "shelf_close": "f8bcda9d6656ecd10120fc2e4c94edba6f9b10bed241f6395ab88bd408e76427",
    "expected_demand": "3328762bb53bc06d40f71ad39e9bb9dcdf2f2710d60bd0b46e5e3f94401883e9",
    "empty_at_hour": "666b73c89e2e11d9e4ae56db70d85bbf5d7467c35971dd690e7d965bd827d3da",
}
FRAME_HASHES = {
    "purchase_lines": "63b6122f3d8090b1e5b577af9cc3a1c2726adf5d9389db7d5f87dc1bf3dc75ba",
    "deliveries": "9d1979ae17b71889edab8181728f4d22280fa40b79a49d9f7900d644afc580a9",
    "members": "dfc9bd73f0e635db77fe75088b78a3d314c7a654cc760504858b4025ff3f4a80",
}
FILE_HASHES = {
    "deliveries.csv": "0b2bc9b8b364b61fc3935ffa8ae9db69ef51e026bd7f2a6149ff4f59909ed2a5",
    "ground_truth.json": "fee7b69b34137ff5d53d8d8e8e6fa5efd929863a7c21ef502b7ce3f7476c734f",
    "inventory_records.csv": "53aa297ddb6755d7716e4c3094862471eb2d3aa61fa1f4462a057f620c0a6272",
    "members.csv": "dfc9bd73f0e635db77fe75088b78a3d314c7a654cc760504858b4025ff3f4a80",
    "prices.csv": "a0d4e11a9f885113992464f085a1eb9f1ce55969cc37687c6f388e57b4781c2a",
    "promotions.csv": "957cc3e156376d8546197bc21a26570e695f2a0ab5483f61f3f9193f1487a646",
    "sales/purchase_lines.csv": "ae6f40122d3b9788c586da18dcc75f89eae84eb97ddf0c8e5cb6052ce4556db4",
    "sales/sales_daily.csv": "5c8dc127924e699bd36a266171b06755713cdc1e0c7e3d490e3a694b66a273fb",
    "sensor_readings.jsonl": "8b27cf42755f83c4312232e970d22da09f42d33102c420e2f1160e3462ef4052",
    "sensors.csv": "2bc4cb85d18ff8422c3d49a6171a7a56affa9e186a08bdf6dbeaba9adc9190ea",
    "stockout_days.csv": "743e84514f3b3858470f5d9e627afc8075196d9567ee2021cabbd9f35f4f7625",
}
# the columns stores.csv and products.csv had before (their values must not change either)
OLD_STORES_HASH = "4660d9ba318066d2fcb0d500b8769298c95e360922cfdb129d533f30ab1488c3"
OLD_PRODUCTS_HASH = "d0b7cdc75f316e18183b48f3327c805b36cce345b8589f93e3bc5befd5d44293"

BEHAVING = {"stores": 3, "skus": 20, "days": 150, "members": 800, "incident_share": 0.2, "chains": 2, "seed": 42}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def default_world(tmp_path_factory):
    spec = WorldSpec(**IDENTITY)
    world = build_world(spec)
    out = tmp_path_factory.mktemp("default")
    write_world(world, spec, out)
    return world, out


@pytest.fixture(scope="module")
def behaving():
    spec = WorldSpec(**BEHAVING, member_behaviour=True)
    return spec, build_world(spec)


# ------------------------------------------------------------------------------- byte identity


def test_default_world_is_byte_identical_to_before(default_world):
    world, out = default_world
    for name, digest in ARRAY_HASHES.items():
        assert sha(np.ascontiguousarray(getattr(world, name)).tobytes()) == digest, name
    for name, digest in FRAME_HASHES.items():
        assert sha(getattr(world, name).to_csv(index=False).encode()) == digest, name
    for name, digest in FILE_HASHES.items():
        assert sha((out / name).read_bytes()) == digest, name
    old_stores = pd.read_csv(out / "stores.csv")[["store_id", "name", "timezone", "manager_email"]]
    assert sha(old_stores.to_csv(index=False).encode()) == OLD_STORES_HASH
    old_products = pd.read_csv(out / "products.csv").drop(columns=["vegetarian"])
    assert sha(old_products.to_csv(index=False).encode()) == OLD_PRODUCTS_HASH
    assert world.defections.empty and world.substitutions.empty and world.missed_visits.empty
    assert (world.demand >= world.sold).all()


def test_behaviour_keeps_the_main_stream(default_world):
    """Behaviour draws from its own stream: sensors, opening shelves of day 0, incidents are the same."""
    world, _ = default_world
    other = build_world(WorldSpec(**IDENTITY, member_behaviour=True))
    assert other.sensors.equals(world.sensors)
    assert np.array_equal(other.shelf_open[0], world.shelf_open[0])
    assert np.array_equal(other.incidents.phantom, world.incidents.phantom)
    assert other.stores.equals(world.stores) and other.products.equals(world.products)


# ------------------------------------------------------------------------------- stores and products


def test_stores_have_chains_and_coordinates(tmp_path):
    spec = WorldSpec(stores=8, skus=10, days=30, members=20, chains=2)
    write_world(build_world(spec), spec, tmp_path)
    stores = pd.read_csv(tmp_path / "stores.csv")
    assert {"chain", "latitude", "longitude"} <= set(stores.columns)
    assert stores["chain"].tolist() == ["Shelfwatch North", "Shelfwatch South"] * 4
    assert stores["latitude"].between(-90, 90).all() and stores["longitude"].between(-180, 180).all()
    assert (stores["latitude"].round(4) == stores["latitude"]).all()
    for tz, lat, lon in stores[["timezone", "latitude", "longitude"]].itertuples(index=False):
        city = CITY_COORDINATES[tz]
        assert abs(lat - city[0]) < 0.5 and abs(lon - city[1]) < 0.6, tz
    one = build_world(WorldSpec(stores=3, skus=10, days=30, members=20)).stores
    assert set(one["chain"]) == {"Shelfwatch"}


def test_products_have_vegetarian_flag_and_hidden_taste_group(default_world):
    world, out = default_world
    products = pd.read_csv(out / "products.csv")
    assert set(products["vegetarian"]) <= {"yes", "no"}
    assert (products.loc[products["category"] == "vegetarian", "vegetarian"] == "yes").all()
    assert "taste_group" not in products.columns
    assert world.products["vegetarian"].dtype == bool
    assert world.products["taste_group"].between(0, 3).all()
    truth = json.loads((out / "product_truth.json").read_text())["products"]
    assert [r["sku"] for r in truth] == world.products["sku"].tolist()
    assert [r["taste_group"] for r in truth] == world.products["taste_group"].tolist()
    member_truth = json.loads((out / "member_truth.json").read_text())
    assert member_truth["defections"] == [] and member_truth["member_behaviour"] is False
    big = build_world(WorldSpec(stores=1, skus=400, days=20, members=10)).products
    share = big.groupby("category")["vegetarian"].mean()
    assert share["vegetarian"] == 1.0 and share["produce"] > 0.8 and 0.2 < share["frozen"] < 0.8
    assert (big.groupby("category")["taste_group"].nunique() >= 2).all()


# ------------------------------------------------------------------------------- acceptance


def products_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sku": [f"P{i}" for i in range(7)],
            "category": ["dairy", "dairy", "dairy", "dairy", "dairy", "dairy", "snacks"],
            "taste_group": [0, 0, 1, 0, 0, 0, 0],
            "vegetarian": [True, True, True, False, True, False, True],
            "unit_weight_g": [500.0, 500.0, 500.0, 500.0, 1000.0, 500.0, 500.0],
        }
    )


def test_acceptance_follows_the_rules():
    p = products_frame()

    def acc(f, c):
        return float(substitute_acceptance(p, f, c))

    assert acc(0, 6) == 0.0  # another category
    assert acc(0, 0) == 0.0  # itself
    assert acc(0, 3) == 0.0  # vegetarian favourite, non-vegetarian candidate
    assert acc(3, 0) == pytest.approx(0.10 + 0.45)  # non-vegetarian favourite accepts a vegetarian one
    assert acc(3, 5) == pytest.approx(0.10 + 0.45 + 0.15)
    assert acc(0, 1) == pytest.approx(0.70) and acc(0, 2) == pytest.approx(0.25)  # same taste group wins
    assert acc(0, 4) == pytest.approx(0.35) and acc(4, 0) == pytest.approx(0.35)  # double or half the size: half
    every = substitute_acceptance(p, np.repeat(np.arange(7), 7), np.tile(np.arange(7), 7))
    assert every.shape == (49,) and (every >= 0).all() and (every <= 0.9).all()
    assert substitute_acceptance(p, 0, np.arange(7)).shape == (7,)


def test_defect_probability():
    assert defect_probability(1) == 0.0
    assert defect_probability(2) == pytest.approx(0.12)
    assert defect_probability(30) == pytest.approx(0.6)


# ------------------------------------------------------------------------------- member behaviour


def member_of_lines(world) -> pd.DataFrame:
    lines = world.purchase_lines
    return pd.DataFrame(
        {
            "member_id": world.favourites["member_id"].to_numpy()[lines["member_idx"].to_numpy()],
            "store_id": world.stores["store_id"].to_numpy()[lines["store_idx"].to_numpy()],
            "sku": world.products["sku"].to_numpy()[lines["sku_idx"].to_numpy()],
            "day": lines["day"].to_numpy(),
        }
    )


def test_defectors_leave_after_repeated_misses_and_never_buy_again(behaving):
    _, world = behaving
    assert len(world.defections) >= 3
    assert world.defections["member_id"].is_unique
    lines = member_of_lines(world)
    missed = world.missed_visits
    for member, day, when in world.defections[["member_id", "day", "date"]].itertuples(index=False):
        assert when == world.dates[day].strftime("%Y-%m-%d")
        assert not (lines.loc[lines["member_id"] == member, "day"] > day).any()
        visits = set(missed.loc[missed["member_id"] == member, "day"])
        assert day in visits
        assert len({v for v in visits if day - DEFECT_WINDOW_DAYS < v <= day}) >= 2
        assert max(visits) == day  # a member who left wants nothing any more


def test_substitutes_are_bought_as_purchase_lines_of_the_same_category(behaving):
    _, world = behaving
    subs = world.substitutions
    hist = subs[subs["day"] < world.n_hist]
    assert len(hist) >= 5
    category = dict(zip(world.products["sku"], world.products["category"], strict=True))
    assert (hist["favourite_sku"].map(category) == hist["substitute_sku"].map(category)).all()
    index = {sku: i for i, sku in enumerate(world.products["sku"])}
    accept = substitute_acceptance(
        world.products, hist["favourite_sku"].map(index).to_numpy(), hist["substitute_sku"].map(index).to_numpy()
    )
    assert (accept > 0).all()
    lines = member_of_lines(world)
    merged = hist.merge(
        lines,
        left_on=["member_id", "store_id", "substitute_sku", "day"],
        right_on=["member_id", "store_id", "sku", "day"],
    )
    key = ["member_id", "store_id", "substitute_sku", "day"]
    assert len(merged.drop_duplicates(key)) == len(hist.drop_duplicates(key))
    # a substitute is only bought for a favourite the shelf could not serve
    missed = set(map(tuple, world.missed_visits[["member_id", "store_id", "sku", "day"]].to_numpy().tolist()))
    assert all(
        (m, s, f, d) in missed
        for m, s, f, d in hist[["member_id", "store_id", "favourite_sku", "day"]].itertuples(index=False)
    )


def test_demand_covers_sales_and_members_who_left_stop_buying(behaving, tmp_path):
    spec, world = behaving
    assert world.demand.shape == world.sold.shape and world.demand.dtype == np.float32
    assert (world.demand >= world.sold).all()
    assert (world.sold <= world.shelf_open + 1e-9).all()
    assert world.unserved_member_buys.sum() == len(world.missed_visits)
    off = build_world(WorldSpec(**BEHAVING))
    assert off.sensors.equals(world.sensors)
    assert len(world.substitutions) > 0 and not off.defections.shape[0]
    write_world(world, spec, tmp_path)
    truth = json.loads((tmp_path / "member_truth.json").read_text())
    assert [(d["member_id"], d["date"]) for d in truth["defections"]] == list(
        zip(world.defections["member_id"], world.defections["date"], strict=True)
    )
    lines = pd.read_csv(tmp_path / "sales" / "purchase_lines.csv")
    assert not lines.duplicated(["store_id", "receipt_id", "line_no"]).any()
