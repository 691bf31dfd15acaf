"""The CX effect report from the database, on both databases: notices from CX lists and from sent
back-in-stock e-mails, the alert's first notice as everyone's reference, substitutes counted as
buying, notices younger than their window left out; and the result in words."""

import json
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import insert
from typer.testing import CliRunner

from alerts.effect_report import cx_effect, effect_sentence
from shelfwatch.cli.app import app
from sql import schema
from tests.alerts.test_member_risk import add_alert, add_lines, seed_reference

AS_OF = datetime(2026, 11, 23, tzinfo=UTC)


def at(day: str, hour: int = 9) -> datetime:
    return datetime.fromisoformat(f"2026-{day}T{hour:02d}:00:00+00:00")


def seed_notices(engine) -> dict[str, int]:
    """Alert K1 (N1 on the CX list 10-21, N2 sent a back-in-stock e-mail 10-22; C1, C2 not contactable)
    and alert K2 (N1 on the list 10-21; C1), both at S1; alert K5 at S2 told on 11-20: too recent.
    Purchases: N1 K1 on 10-25, N2 its substitute K3 on 10-28 (yes, yes); C1 K1 on the reference day
    (not after it) and C2 K1 on 11-20 (past 14 days) (no, no). Alert K2: N1 nothing, C1 K2 on 10-23.
    Treated 2 of 3, control 1 of 3."""
    seed_reference(
        engine,
        {"N1": ("S1", True, False), "N2": ("S1", True, False), "C1": ("S1", False, False), "C2": ("S1", False, False)},
    )
    k1 = add_alert(engine, "S1", "K1", "shelf_empty", at("10-20"), at("10-22", 8))
    k2 = add_alert(engine, "S1", "K2", "predicted_stockout", at("10-20"), at("10-24"))
    k5 = add_alert(engine, "S2", "K5", "shelf_empty", at("11-19"))
    with engine.begin() as conn:
        conn.execute(
            insert(schema.alert_members),
            [
                {"alert_id": a, "member_id": m, "score": 1.0}
                for a, ms in ((k1, ("N1", "N2", "C1", "C2")), (k2, ("N1", "C1")), (k5, ("N1", "C1")))
                for m in ms
            ],
        )
        conn.execute(
            insert(schema.member_contacts),
            [
                {"member_id": "N1", "alert_id": k1, "kind": "stockout_notice", "at": at("10-21")},
                {"member_id": "N1", "alert_id": k2, "kind": "stockout_notice", "at": at("10-21")},
                {"member_id": "N1", "alert_id": k5, "kind": "stockout_notice", "at": at("11-20")},
            ],
        )
        conn.execute(
            insert(schema.outbox),
            [
                {
                    "idempotency_key": f"alert:{k1}:back_in_stock:N2",
                    "kind": "back_in_stock",
                    "alert_id": k1,
                    "member_id": "N2",
                    "status": "sent",
                    "attempts": 1,
                    "next_attempt_at": at("10-22"),
                    "created_at": at("10-22"),
                    "sent_at": at("10-22", 10),
                },
                {
                    "idempotency_key": f"alert:{k1}:back_in_stock:C1",
                    "kind": "back_in_stock",
                    "alert_id": k1,
                    "member_id": "C1",
                    "status": "cancelled",
                    "attempts": 1,
                    "next_attempt_at": at("10-22"),
                    "created_at": at("10-22"),
                    "sent_at": at("10-22", 10),
                },
            ],
        )
        conn.execute(
            insert(schema.alert_substitutes),
            [{"alert_id": k1, "member_id": "N2", "rank": 1, "sku": "K3", "score": 0.5, "reason": "same category"}],
        )
    add_lines(
        engine,
        [
            ("S1", "K1", date(2026, 10, 25), "N1"),
            ("S1", "K3", date(2026, 10, 28), "N2"),
            ("S1", "K1", date(2026, 10, 21), "C1"),
            ("S1", "K1", date(2026, 11, 20), "C2"),
            ("S1", "K2", date(2026, 10, 23), "C1"),
            ("S2", "K5", date(2026, 11, 21), "N1"),
        ],
    )
    return {"K1": k1, "K2": k2, "K5": k5}


def test_effect_from_lists_and_sent_notices(engine):
    seed_notices(engine)
    result = cx_effect(engine, AS_OF, window_days=14, n_boot=500)
    assert (result["treated_n"], result["treated_bought"], result["control_n"], result["control_bought"]) == (
        3,
        2,
        3,
        1,
    )
    assert result["effect"] == pytest.approx(1 / 3) and result["alerts"] == 2 and result["alerts_notified"] == 2
    assert result["ci_low"] is not None and result["ci_low"] <= result["effect"] <= result["ci_high"]
    assert (
        set(result["by_kind"]) == {"stockout_notice", "back_in_stock"}
        and result["by_kind"]["back_in_stock"]["treated_n"] == 1
    )
    assert result["sentence"].startswith(
        "Notified members bought the product or a substitute within 14 days 67 % of the time, "
        "against 33 % of comparable members we could not contact: +33 points (95 % interval "
    )
    # on 11-05 only notices up to 10-21 12:00 have had their day and 14 more: N1's two, not N2's e-mail
    early = cx_effect(engine, datetime(2026, 11, 5, 12, tzinfo=UTC), window_days=14, n_boot=200)
    assert (
        early["alerts_notified"] == 2 and early["treated_n"] == 2
    )  # N1 on both lists (10-21); N2's 10-22 e-mail too recent
    none_yet = cx_effect(engine, datetime(2026, 11, 1, tzinfo=UTC), window_days=14, n_boot=200)
    assert none_yet["effect"] is None and none_yet["sentence"].startswith(
        "Not enough data yet to tell whether notices work: no member was notified"
    )


def test_effect_sentence_words():
    base = {
        "window_days": 14,
        "treated_rate": 0.41,
        "control_rate": 0.23,
        "effect": 0.18,
        "ci_low": 0.09,
        "ci_high": 0.27,
    }
    assert effect_sentence(base) == (
        "Notified members bought the product or a substitute within 14 days 41 % of the time, against 23 % of "
        "comparable members we could not contact: +18 points (95 % interval +9 to +27)."
    )
    assert effect_sentence({**base, "effect": -0.05, "ci_low": None}).endswith(
        "-5 points (one comparable alert: too few for an interval)."
    )
    assert "no notified alert also has members we could not contact" in effect_sentence(
        {"window_days": 14, "effect": None, "alerts_notified": 3, "treated_n": 0}
    )


def test_cli_cx_effect(engine):
    seed_notices(engine)
    db = ["--db", engine.url.render_as_string(hide_password=False), "--as-of", "2026-11-23T00:00"]
    runner = CliRunner()
    listed = runner.invoke(app, ["members", "cx-effect", "--format", "json", *db])
    assert listed.exit_code == 0, listed.output
    result = json.loads(listed.output)
    assert result["treated_n"] == 3 and result["control_bought"] == 1 and result["window_days"] == 14
    table = runner.invoke(app, ["members", "cx-effect", "--window-days", "30", *db], env={"COLUMNS": "300"})
    assert table.exit_code == 0, table.output
    assert "notified" in table.output and "could not contact" in table.output and "within 30 days" in table.output
    assert "@" not in table.output
