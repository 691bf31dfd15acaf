"""Substitutes for a missing favourite, on hand-built frames: the rules (category, vegetarian, in stock)
hold, co-purchase and own history rank, ties are deterministic, reasons say why."""

import pandas as pd
import pytest

from alerts.substitutes import (
    CO_PURCHASE_WEIGHT,
    COLUMNS,
    OWN_HISTORY_WEIGHT,
    PRICE_WEIGHT,
    PRIOR_MEMBERS,
    SIZE_WEIGHT,
    UNKNOWN_VEGETARIAN_FACTOR,
    co_purchase_shares,
    shelves_in_stock,
    substitute_slots,
    suggest_substitutes,
)

PRODUCTS = pd.DataFrame(
    [
        # sku, name, category, unit_price, unit_weight_g, vegetarian
        ("V1", "Veggie burger", "burgers", 3.00, 450, True),  # the missing favourite
        ("V2", "Bean burger", "burgers", 3.20, 500, True),
        ("V3", "Beef burger", "burgers", 3.00, 450, False),
        ("V4", "Mystery burger", "burgers", 3.00, 450, None),
        ("V5", "Tofu family pack", "burgers", 6.00, 1000, True),
        ("V6", "Soy burger", "burgers", 3.00, 450, True),  # never in stock
        ("V7", "Lentil burger", "burgers", 3.00, 450, True),
        ("D1", "Milk", "dairy", 1.00, 1000, True),
    ],
    columns=["sku", "name", "category", "unit_price", "unit_weight_g", "vegetarian"],
)

IN_STOCK = pd.DataFrame({"store_id": "S1", "sku": ["V2", "V3", "V4", "V5", "V7", "D1"]})


def buys(member: str, sku: str, days: int, store: str = "S1") -> list[tuple]:
    """`days` purchase lines of one member, one a day."""
    return [(store, sku, pd.Timestamp("2026-10-01") + pd.Timedelta(days=d), member) for d in range(days)]


def lines_of(*groups: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame([row for g in groups for row in g], columns=["store_id", "sku", "date", "member_id"])


def affected(*members: str, alert_id: int = 1, store: str = "S1", sku: str = "V1") -> pd.DataFrame:
    return pd.DataFrame({"alert_id": alert_id, "store_id": store, "sku": sku, "member_id": list(members)})


def test_rules_vegetarian_category_stock_and_favourite():
    # every fan of the veggie burger also buys the beef burger: still never offered
    lines = lines_of(*(buys(f"F{i}", "V1", 3) + buys(f"F{i}", "V3", 2) for i in range(8)))
    out = suggest_substitutes(affected("M1", "F0"), PRODUCTS, IN_STOCK, lines, max_per_member=10)
    assert list(out.columns) == COLUMNS
    assert set(out["sku"]) == {"V2", "V4", "V5", "V7"}  # not V3 (meat), V6 (not in stock), D1 (dairy), V1 itself
    assert set(out["member_id"]) == {"M1", "F0"}


def test_non_vegetarian_favourite_may_get_anything_of_its_category():
    beef = affected("M1", sku="V3")
    out = suggest_substitutes(beef, PRODUCTS, IN_STOCK, lines_of(), max_per_member=10)
    assert set(out["sku"]) == {"V2", "V4", "V5", "V7"}


def test_in_stock_is_per_store():
    elsewhere = pd.DataFrame({"store_id": "S2", "sku": ["V2", "V7"]})
    assert suggest_substitutes(affected("M1"), PRODUCTS, elsewhere, lines_of()).empty


def test_unknown_vegetarian_is_allowed_but_scored_lower():
    out = suggest_substitutes(affected("M1"), PRODUCTS, IN_STOCK, lines_of(), max_per_member=10).set_index("sku")
    # V4 and V7 are alike in all but the flag
    assert out.loc["V4", "score"] == pytest.approx(out.loc["V7", "score"] * UNKNOWN_VEGETARIAN_FACTOR, abs=1e-4)
    assert "vegetarian not known" in out.loc["V4", "reason"]


def test_co_purchased_product_ranks_first():
    # ten members who love the veggie burger also buy the (big, dear) family pack
    fans = [buys(f"F{i}", "V1", 3) + buys(f"F{i}", "V5", 1) for i in range(10)]
    out = suggest_substitutes(affected("M1"), PRODUCTS, IN_STOCK, lines_of(*fans))
    assert out["sku"].tolist()[0] == "V5"
    assert out["rank"].tolist() == [1, 2, 3]
    assert "10 of 10 members who love Veggie burger also buy it" in out.iloc[0]["reason"]


def test_own_history_lifts_a_candidate():
    base = suggest_substitutes(affected("M1"), PRODUCTS, IN_STOCK, lines_of()).set_index("sku")
    own = suggest_substitutes(affected("M1"), PRODUCTS, IN_STOCK, lines_of(buys("M1", "V5", 2))).set_index("sku")
    assert "V5" not in base.index and own.index[0] == "V5"
    assert "they bought it themselves on 2 days" in own.loc["V5", "reason"]


def test_co_purchase_leaves_the_member_out():
    # the member is the only fan who buys V5: that is own history, not other members' evidence
    lines = lines_of(buys("M1", "V1", 3), buys("M1", "V5", 1), buys("F1", "V1", 3))
    out = suggest_substitutes(affected("M1"), PRODUCTS, IN_STOCK, lines, max_per_member=10).set_index("sku")
    co = (0 + PRIOR_MEMBERS * 1 / 2) / (1 + PRIOR_MEMBERS)  # no other fan buys it; half of all members do
    expected = CO_PURCHASE_WEIGHT * co + OWN_HISTORY_WEIGHT * 0.5 + SIZE_WEIGHT * 450 / 1000 + PRICE_WEIGHT * 3 / 6
    assert out.loc["V5", "score"] == pytest.approx(expected, abs=1e-4)
    assert "members who love" not in out.loc["V5", "reason"]


def test_ties_go_to_the_lower_sku_and_at_most_three_per_member():
    twins = PRODUCTS.assign(unit_price=3.0, unit_weight_g=450.0, vegetarian=True)
    out = suggest_substitutes(affected("M2", "M1"), twins, IN_STOCK, lines_of())
    assert out["member_id"].tolist() == ["M1"] * 3 + ["M2"] * 3
    assert out["sku"].tolist() == ["V2", "V3", "V4"] * 2
    assert out["score"].nunique() == 1


def test_reason_in_words():
    out = suggest_substitutes(affected("M1"), PRODUCTS, IN_STOCK, lines_of(), max_per_member=10).set_index("sku")
    assert (
        out.loc["V2", "reason"]
        == "same category, vegetarian, similar size (500 g vs 450 g), similar price (3.20 vs 3.00)"
    )
    assert "size 1000 g vs 450 g" in out.loc["V5", "reason"] and "price 6.00 vs 3.00" in out.loc["V5", "reason"]
    assert out["score"].between(0, 1).all()


def test_co_purchase_shares_counts_and_smooths():
    lines = lines_of(
        buys("A", "X", 2),
        buys("A", "Y", 1),
        buys("B", "X", 3),
        buys("B", "Y", 1),
        buys("C", "X", 2),
        buys("D", "X", 1),
        buys("D", "Y", 1),  # bought X on one day only: not a fan
    )
    shares = co_purchase_shares(lines).set_index(["sku", "other_sku"])
    row = shares.loc[("X", "Y")]
    assert (row["n_fav"], row["n_both"]) == (3, 2)
    prior = 3 / 4  # Y's buyers among the four members
    assert row["share"] == pytest.approx((2 + PRIOR_MEMBERS * prior) / (3 + PRIOR_MEMBERS))
    assert ("Y", "X") not in shares.index  # nobody bought Y on two days


def test_empty_inputs():
    assert suggest_substitutes(affected(), PRODUCTS, IN_STOCK, lines_of()).empty
    assert list(suggest_substitutes(affected("M1"), PRODUCTS, IN_STOCK.iloc[:0], lines_of()).columns) == COLUMNS
    assert co_purchase_shares(lines_of()).empty


def test_shelves_in_stock_need_a_unit_and_no_alert_of_their_own():
    risks = pd.DataFrame(
        {
            "store_id": ["S1", "S1", "S1", "S1", "S2"],
            "sku": ["A", "B", "C", "D", "A"],
            "on_shelf": [3.0, 0.4, None, 5.0, 2.0],
        }
    )
    alerted = pd.DataFrame(
        {"store_id": ["S1", "S2"], "sku": ["D", "B"]}
    )  # D has an alert at S1 (any kind); B's alert is elsewhere
    assert sorted(map(tuple, shelves_in_stock(risks, alerted).to_numpy())) == [("S1", "A"), ("S2", "A")]
    assert len(shelves_in_stock(risks, alerted.iloc[0:0])) == 3
    assert shelves_in_stock(risks.iloc[0:0], alerted).empty


def test_substitute_slots_skip_blocked_skus_and_move_the_rest_up():
    subs = pd.DataFrame(
        [
            ("M1", 1, "V2", "Bean burger"),
            ("M1", 2, "V7", "Lentil burger"),
            ("M1", 3, "V5", "Tofu family pack"),
            ("M2", 1, "V7", "Lentil burger"),
        ],
        columns=["member_id", "rank", "sku", "name"],
    )
    slots = substitute_slots(subs, blocked_skus=["V7"]).set_index("member_id")
    assert slots.loc["M1"].tolist() == ["Bean burger (V2)", "Tofu family pack (V5)", ""]
    assert "M2" not in slots.index  # its only substitute has an alert of its own now
    assert substitute_slots(subs, []).set_index("member_id").loc["M2"].tolist() == ["Lentil burger (V7)", "", ""]
    assert list(substitute_slots(subs.iloc[0:0], []).columns) == [
        "member_id",
        "substitute_1",
        "substitute_2",
        "substitute_3",
    ]
