"""Members at risk because their favourites keep running out, on hand-built frames: more and more
recent outages rank higher, lapsed buyers still count, only the past counts, and reasons say why."""

import pandas as pd
import pytest

from alerts.at_risk import (
    BEHAVIOUR_WEIGHT,
    COLUMNS,
    PERSISTENCE_WEIGHT,
    count_baseline_score,
    empty_exposure,
    favourite_outages,
    members_at_risk,
    standing_favourites,
)

AS_OF = pd.Timestamp("2026-11-01")


def visits(
    member: str, skus: list[str], every: int = 6, last_ago: int = 1, first_ago: int = 179, store: str = "S1"
) -> list[tuple]:
    """A member buying `skus` every `every` days, from `first_ago` days before AS_OF to `last_ago`."""
    days = range(last_ago, first_ago + 1, every)
    return [(store, sku, (AS_OF - pd.Timedelta(days=d)).date(), member, 1) for d in days for sku in skus]


def lines_of(*groups: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame([r for g in groups for r in g], columns=["store_id", "sku", "date", "member_id", "units"])


def out(sku: str, *days_ago: int, share: float = 1.0, store: str = "S1") -> list[tuple]:
    return [(store, sku, (AS_OF - pd.Timedelta(days=d)).date(), share) for d in days_ago]


def outages_of(*groups: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame([r for g in groups for r in g], columns=["store_id", "sku", "date", "empty_share"])


def test_more_outages_rank_higher():
    lines = lines_of(visits("A", ["X"]), visits("B", ["Y"]))
    risk = members_at_risk(lines, outages_of(out("X", 2, 3, 4, 5, 6), out("Y", 4)), AS_OF)
    assert list(risk.columns) == COLUMNS
    assert risk["member_id"].tolist() == ["A", "B"] and risk["rank"].tolist() == [1, 2]
    assert risk.set_index("member_id").loc["A", "out_days_30"] == 5
    baseline = count_baseline_score(lines, outages_of(out("X", 2, 3, 4, 5, 6), out("Y", 4)), AS_OF)
    assert baseline[["member_id", "score"]].values.tolist() == [["A", 5.0], ["B", 1.0]]


def test_the_last_30_days_count_in_full_and_the_90_days_before_for_a_third():
    lines = lines_of(visits("A", ["X"]), visits("B", ["Y"]))
    risk = members_at_risk(lines, outages_of(out("X", 45, 50)), AS_OF)
    assert risk["member_id"].tolist() == ["A"]  # B's favourite never ran out
    fav = standing_favourites(lines, AS_OF)
    exposure = empty_exposure(fav, outages_of(out("X", 45, 50), out("Y", 2, share=0.5), out("Y", 20)), AS_OF)
    assert exposure["A"] == pytest.approx(2 * PERSISTENCE_WEIGHT)  # two whole days, 45 and 50 days ago
    assert exposure["B"] == pytest.approx(
        (0.5 + 1.0) * (1 + PERSISTENCE_WEIGHT)
    )  # half a day and a whole day, this month
    ranked = members_at_risk(lines, outages_of(out("X", 45, 50), out("Y", 2, share=0.5), out("Y", 20)), AS_OF)
    assert ranked["member_id"].tolist() == ["B", "A"]


def test_a_member_who_stopped_buying_still_counts():
    # bought X on five days months ago, nothing since: X's empty shelf may be why
    lines = lines_of(visits("C", ["X"], every=10, last_ago=110, first_ago=150))
    risk = members_at_risk(lines, outages_of(out("X", 3)), AS_OF)
    assert risk["member_id"].tolist() == ["C"]
    assert risk.iloc[0]["days_since_last_visit"] == 110


def test_favourite_rules_window_and_min_days():
    lines = lines_of(
        visits("A", ["X"], every=10, last_ago=1, first_ago=21),  # 3 days: a favourite
        visits("B", ["X"], every=10, last_ago=1, first_ago=11),  # 2 days: not
        visits("C", ["X"], every=10, last_ago=181, first_ago=300),  # before the window
    )
    assert standing_favourites(lines, AS_OF)["member_id"].tolist() == ["A"]
    assert members_at_risk(lines, outages_of(out("X", 2)), AS_OF)["member_id"].tolist() == ["A"]


def test_only_data_before_as_of():
    lines = lines_of(visits("A", ["X"]))
    # today's outage and today's purchases are not over yet
    assert members_at_risk(lines, outages_of(out("X", 0)), AS_OF).empty
    today = lines_of([("S1", "Z", AS_OF.date(), "A", 1)] * 5)
    assert standing_favourites(pd.concat([lines, today]), AS_OF)["sku"].tolist() == ["X"]


def test_outages_at_other_stores_do_not_count():
    lines = lines_of(visits("A", ["X"]))
    assert members_at_risk(lines, outages_of(out("X", 2, store="S2")), AS_OF).empty


def test_members_without_outages_in_90_days_are_left_out():
    lines = lines_of(visits("A", ["X"]), visits("B", ["Y"]), visits("C", ["Z"]))
    risk = members_at_risk(lines, outages_of(out("X", 60), out("Y", 5), out("Z", 95)), AS_OF).set_index("member_id")
    assert list(risk.index) == ["B", "A"]
    assert risk.loc["A", "favourites_out_30"] == 0 and risk.loc["A", "favourites_out_90"] == 1
    assert risk.loc["A", "score"] == pytest.approx(
        PERSISTENCE_WEIGHT, abs=1e-4
    )  # still visiting: one outage 60 days ago, for a third
    assert risk.loc["A", "reason"].startswith("1 of their 1 favourite out once in 90 days")


def test_duplicate_outage_days_count_once_with_the_larger_share():
    lines = lines_of(visits("A", ["X"]))
    fav = standing_favourites(lines, AS_OF)
    twice = outages_of(out("X", 3, share=0.25), out("X", 3, share=0.75))
    counts = favourite_outages(fav, twice, AS_OF).set_index("member_id")
    assert counts.loc["A", "out_days_30"] == 1
    assert empty_exposure(fav, twice, AS_OF)["A"] == pytest.approx(0.75 * (1 + PERSISTENCE_WEIGHT))


def test_overdue_visits_add_to_the_risk_and_reason_in_words():
    # D shops every 6 days for four favourites but has not been in for 12 days; E is on rhythm
    lines = lines_of(
        visits("D", ["A", "B", "C", "F"], last_ago=12, first_ago=180),
        visits("E", ["A", "B", "C", "F"], last_ago=6, first_ago=174),
    )
    outages = outages_of(out("A", 13, 20), out("B", 14, 21), out("C", 15))
    risk = members_at_risk(lines, outages, AS_OF).set_index("member_id")
    assert risk.index.tolist() == ["D", "E"]
    d = risk.loc["D"]
    assert (d["favourites"], d["favourites_out_30"], d["out_days_30"]) == (4, 3, 5)
    assert (d["days_since_last_visit"], d["usual_interval_days"], d["missed_visits_30"]) == (12, 6.0, 1.0)
    assert d["reason"] == "3 of their 4 favourites out 5 times in 30 days; last visit 12 days ago (usually every 6)"
    assert d["score"] - risk.loc["E", "score"] == pytest.approx(BEHAVIOUR_WEIGHT * 1.0, abs=1e-3)


def test_ties_by_member_id():
    lines = lines_of(visits("B", ["X"]), visits("A", ["X"]))
    risk = members_at_risk(lines, outages_of(out("X", 3)), AS_OF)
    assert risk["member_id"].tolist() == ["A", "B"] and risk["score"].nunique() == 1


def test_favourite_outages_per_window():
    fav = pd.DataFrame({"member_id": ["A", "A", "B"], "store_id": "S1", "sku": ["X", "Y", "X"]})
    counts = favourite_outages(fav, outages_of(out("X", 5, 40), out("Y", 50, 60, 100)), AS_OF).set_index("member_id")
    assert counts.loc["A"].to_dict() == {
        "favourites": 2,
        "favourites_out_30": 1,
        "out_days_30": 1,
        "favourites_out_90": 2,
        "out_days_90": 4,
    }
    assert counts.loc["B"].to_dict() == {
        "favourites": 1,
        "favourites_out_30": 1,
        "out_days_30": 1,
        "favourites_out_90": 1,
        "out_days_90": 2,
    }


def test_empty_inputs():
    lines = lines_of(visits("A", ["X"]))
    assert list(members_at_risk(lines, outages_of(), AS_OF).columns) == COLUMNS
    assert members_at_risk(lines_of(), outages_of(out("X", 2)), AS_OF).empty
    assert count_baseline_score(lines_of(), outages_of(), AS_OF).empty
