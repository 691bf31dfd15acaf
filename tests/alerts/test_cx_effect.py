"""Did notifying members work? A known effect is recovered with an interval that contains it, the
bootstrap resamples whole alerts and repeats with its seed, and the outcome counts only the right
purchases in the right window."""

import pandas as pd
import pytest

from alerts.cx_effect import notice_effect

REFERENCE = pd.Timestamp("2026-11-01 08:00", tz="UTC")
NOTICE = pd.Timestamp("2026-11-01 09:00", tz="UTC")


def world(treated_bought: list[int], control_bought: list[int]):
    """One alert per entry (sku K<i> at S1) with one notified and one uncontactable member; 1 = the member
    bought the alert's product four days later. Returns notices, linked, members, lines."""
    notices, linked, members, lines = [], [], [], []
    for i, (t, c) in enumerate(zip(treated_bought, control_bought, strict=True)):
        for member, consent, bought in ((f"T{i}", True, t), (f"C{i}", False, c)):
            linked.append((i, member, "S1", f"K{i}", REFERENCE))
            members.append((member, consent, False))
            if bought:
                lines.append(("S1", f"K{i}", pd.Timestamp("2026-11-05"), member))
        notices.append((f"T{i}", i, "stockout_notice", NOTICE))
    return frames(notices, linked, members, lines)


def frames(notices, linked, members, lines):
    return (
        pd.DataFrame(notices, columns=["member_id", "alert_id", "kind", "at"]),
        pd.DataFrame(linked, columns=["alert_id", "member_id", "store_id", "sku", "reference_at"]),
        pd.DataFrame(members, columns=["member_id", "marketing_consent", "opted_out"]),
        pd.DataFrame(lines, columns=["store_id", "sku", "date", "member_id"]),
    )


def test_known_effect_is_recovered():
    result = notice_effect(*world([1] * 8 + [0] * 2, [1] * 2 + [0] * 8), n_boot=500)
    assert (result["treated_n"], result["treated_bought"], result["treated_rate"]) == (10, 8, 0.8)
    assert (result["control_n"], result["control_bought"], result["control_rate"]) == (10, 2, 0.2)
    assert result["effect"] == pytest.approx(0.6)
    assert result["ci_low"] <= 0.6 <= result["ci_high"]
    assert result["alerts"] == 10 and result["note"] is None
    assert result["by_kind"]["stockout_notice"]["effect"] == pytest.approx(0.6)


def test_enough_data_excludes_zero():
    result = notice_effect(*world(([1] * 8 + [0] * 2) * 5, ([1] * 2 + [0] * 8) * 5), n_boot=1000)
    assert result["effect"] == pytest.approx(0.6)
    assert 0 < result["ci_low"] < 0.6 < result["ci_high"]


def test_bootstrap_is_deterministic_with_its_seed():
    data = world([1, 0, 1, 1, 0, 1, 1, 1] * 5, [0, 0, 1, 0, 0, 1, 0, 1] * 5)
    a, b = notice_effect(*data, n_boot=300, seed=7), notice_effect(*data, n_boot=300, seed=7)
    assert (a["ci_low"], a["ci_high"]) == (b["ci_low"], b["ci_high"])
    c = notice_effect(*data, n_boot=300, seed=8)
    assert (a["ci_low"], a["ci_high"]) != (c["ci_low"], c["ci_high"])


def test_members_of_one_alert_move_together():
    # alert 0: all 10 notified buy, no control does; alert 1 the other way round. Pooled effect 0, but
    # with two alerts the evidence is two alerts, not 40 members: the interval spans almost -1..1
    notices, linked, members, lines = [], [], [], []
    for alert, (t, c) in enumerate([(1, 0), (0, 1)]):
        for j in range(10):
            for member, consent, bought in ((f"T{alert}-{j}", True, t), (f"C{alert}-{j}", False, c)):
                linked.append((alert, member, "S1", "K", REFERENCE))
                members.append((member, consent, False))
                if bought:
                    lines.append(("S1", "K", pd.Timestamp("2026-11-03"), member))
            notices.append((f"T{alert}-{j}", alert, "stockout_notice", NOTICE))
    result = notice_effect(*frames(notices, linked, members, lines), n_boot=500)
    assert result["effect"] == pytest.approx(0.0)
    assert result["ci_low"] <= -0.9 and result["ci_high"] >= 0.9


def test_outcome_window_store_and_substitutes():
    notices, linked, members, _ = world([0] * 6, [0] * 6)
    lines = pd.DataFrame(
        [
            ("S1", "K0", pd.Timestamp("2026-11-15"), "T0"),  # day 14 after the notice: inside
            ("S1", "K1", pd.Timestamp("2026-11-16"), "T1"),  # day 15: too late
            ("S1", "K2", pd.Timestamp("2026-11-01"), "T2"),  # the notice day itself: left out
            ("S2", "K3", pd.Timestamp("2026-11-03"), "T3"),  # another store
            ("S1", "SUB", pd.Timestamp("2026-11-03"), "T4"),  # T4's substitute
            ("S1", "SUB", pd.Timestamp("2026-11-03"), "C5"),  # a substitute, but not C5's
        ],
        columns=["store_id", "sku", "date", "member_id"],
    )
    substitutes = pd.DataFrame({"alert_id": [4], "member_id": ["T4"], "sku": ["SUB"]})
    assert notice_effect(notices, linked, members, lines, n_boot=100)["treated_bought"] == 1
    result = notice_effect(notices, linked, members, lines, substitutes=substitutes, n_boot=100)
    assert (result["treated_bought"], result["control_bought"]) == (2, 0)
    assert notice_effect(notices, linked, members, lines, window_days=15, n_boot=100)["treated_bought"] == 2


def test_control_is_uncontactable_and_never_notified():
    notices, linked, members, lines = world([1, 0], [0, 1])
    extra = pd.DataFrame(
        [(0, "X1", "S1", "K0", REFERENCE), (0, "X2", "S1", "K0", REFERENCE), (0, "X3", "S1", "K0", REFERENCE)],
        columns=linked.columns,
    )
    # X1 consented but was not told (frequency cap): neither group; X2 had no consent yet was notified
    # elsewhere: not a clean control; X3 is not in members at all
    more_members = pd.DataFrame([("X1", True, False), ("X2", False, False)], columns=members.columns)
    more_notices = pd.DataFrame([("X2", 99, "stockout_notice", NOTICE)], columns=notices.columns)
    result = notice_effect(
        pd.concat([notices, more_notices]),
        pd.concat([linked, extra]),
        pd.concat([members, more_members]),
        lines,
        n_boot=100,
    )
    assert (result["treated_n"], result["control_n"]) == (2, 2)


def test_only_alerts_with_both_groups_are_compared():
    notices, linked, members, lines = world([1, 1, 0], [0, 1, 0])
    linked = linked[linked["member_id"] != "C2"]  # alert 2 has no control
    result = notice_effect(notices, linked, members, lines, n_boot=100)
    assert (result["alerts"], result["alerts_left_out"]) == (2, 1)
    assert (result["treated_n"], result["treated_bought"], result["control_n"], result["control_bought"]) == (
        2,
        2,
        2,
        1,
    )


def test_by_kind_measures_each_notice_from_its_own_time():
    notices, linked, members, lines = world([0, 0], [0, 0])
    back = pd.DataFrame(
        [
            ("T0", 0, "back_in_stock", pd.Timestamp("2026-11-20 07:00", tz="UTC")),
            ("T1", 1, "back_in_stock", pd.Timestamp("2026-11-20 07:00", tz="UTC")),
        ],
        columns=notices.columns,
    )
    lines = pd.DataFrame([("S1", "K0", pd.Timestamp("2026-11-21"), "T0")], columns=lines.columns)
    result = notice_effect(pd.concat([notices, back]), linked, members, lines, n_boot=100)
    assert result["treated_bought"] == 0  # overall: from the first notice, day 20 is too late
    assert result["by_kind"]["back_in_stock"]["treated_bought"] == 1
    assert result["by_kind"]["stockout_notice"]["treated_bought"] == 0
    assert result["by_kind"]["back_in_stock"]["effect"] == pytest.approx(0.5)


def test_empty_inputs():
    notices, linked, members, lines = frames([], [], [], [])
    result = notice_effect(notices, linked, members, lines)
    assert result["effect"] is None and result["note"] and result["by_kind"] == {}
    assert result["treated_n"] == 0 and result["treated_rate"] is None
    only_treated = world([1], [0])
    no_control = notice_effect(
        only_treated[0], only_treated[1], only_treated[2].assign(marketing_consent=True), only_treated[3]
    )
    assert no_control["effect"] is None and "no alert" in no_control["note"]
    one = notice_effect(*world([1], [0]))
    assert one["effect"] == 1.0 and one["ci_low"] is None and one["note"]
