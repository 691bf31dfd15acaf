"""Members at risk from the database, on both databases: empty days from stockout_days (a share of the
08-22 trading day) and from empty-shelf alerts (store-local days), the list replaced whole and
idempotently, and read back with home store and contactability, never contact details."""

import json
from datetime import UTC, date, datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import insert, select
from typer.testing import CliRunner

from alerts.member_risk import (
    alert_day_outages,
    at_risk_list,
    load_risk_inputs,
    refresh_member_risk,
    stockout_day_outages,
)
from core.settings import Settings
from shelfwatch.cli.app import app
from sql import schema

AS_OF = datetime(2026, 11, 23, tzinfo=UTC)
TODAY = AS_OF.date()


def seed_reference(engine, members: dict[str, tuple[str, bool, bool]]) -> None:
    """Two stores (S1 Amsterdam, S2 London), products K1..K6 and `members`: id -> (home store, consent, opted out)."""
    with engine.begin() as conn:
        conn.execute(
            insert(schema.stores),
            [
                {
                    "store_id": "S1",
                    "name": "Centrum",
                    "timezone": "Europe/Amsterdam",
                    "manager_email": "s1@shop.example",
                },
                {"store_id": "S2", "name": "Soho", "timezone": "Europe/London", "manager_email": "s2@shop.example"},
            ],
        )
        conn.execute(
            insert(schema.products),
            [
                {
                    "sku": f"K{i}",
                    "name": f"Product {i}",
                    "category": "c",
                    "unit_price": 1.0,
                    "unit_weight_g": 100.0,
                    "shelf_capacity": 20,
                }
                for i in range(1, 7)
            ],
        )
        conn.execute(
            insert(schema.members),
            [
                {
                    "member_id": m,
                    "home_store_id": store,
                    "marketing_consent": consent,
                    "opted_out": out,
                    "contact_channel": "email",
                    "contact_address": f"{m.lower()}@members.example",
                }
                for m, (store, consent, out) in members.items()
            ],
        )


def add_lines(engine, rows: list[tuple[str, str, date, str]]) -> None:
    """Purchase lines (store_id, sku, date, member_id), one receipt each."""
    with engine.begin() as conn:
        conn.execute(
            insert(schema.purchase_lines),
            [
                {
                    "store_id": s,
                    "receipt_id": f"R{i}",
                    "line_no": 1,
                    "sku": sku,
                    "date": d,
                    "member_id": m,
                    "units": 1.0,
                }
                for i, (s, sku, d, m) in enumerate(rows)
            ],
        )


def add_alert(
    engine, store: str, sku: str, alert_type: str, opened_at: datetime, resolved_at: datetime | None = None
) -> int:
    with engine.begin() as conn:
        return conn.execute(
            insert(schema.alerts)
            .values(
                store_id=store,
                sku=sku,
                alert_type=alert_type,
                status="resolved" if resolved_at else "open",
                probability=1.0,
                severity=1.0,
                evidence="{}",
                opened_at=opened_at,
                updated_at=resolved_at or opened_at,
                resolved_at=resolved_at,
            )
            .returning(schema.alerts.c.alert_id)
        ).scalar_one()


def every_five_days(store: str, sku: str, member: str) -> list[tuple]:
    return [(store, sku, TODAY - timedelta(days=ago), member) for ago in range(1, 171, 5)]


@pytest.fixture
def risk_world(engine):
    """A (consent) loves K1 at S1, which stockout_days say was empty 2, 5 (from 15:00) and 8 days ago;
    B (no consent) loves K2 at S1, empty-shelf alert from 10 to 8 days ago; C (opted out) loves K3 at
    S2, a phantom stock-out open for 3 days; D loves K4, only ever predicted to run out."""
    seed_reference(
        engine, {"A": ("S1", True, False), "B": ("S1", False, False), "C": ("S2", True, True), "D": ("S1", True, False)}
    )
    add_lines(
        engine,
        every_five_days("S1", "K1", "A")
        + every_five_days("S1", "K2", "B")
        + every_five_days("S2", "K3", "C")
        + every_five_days("S1", "K4", "D"),
    )
    with engine.begin() as conn:
        conn.execute(
            insert(schema.stockout_days),
            [
                {"store_id": "S1", "sku": "K1", "date": TODAY - timedelta(days=ago), "empty_from_hour": hour}
                for ago, hour in ((2, None), (5, 15.0), (8, 8.0))
            ],
        )
    add_alert(
        engine,
        "S1",
        "K2",
        "shelf_empty",
        AS_OF - timedelta(days=10) + timedelta(hours=9),
        AS_OF - timedelta(days=8) + timedelta(hours=12),
    )
    add_alert(engine, "S2", "K3", "phantom_stockout", AS_OF - timedelta(days=3) + timedelta(hours=10))
    add_alert(engine, "S1", "K4", "predicted_stockout", AS_OF - timedelta(days=4))
    return engine


def test_stockout_days_are_a_share_of_the_trading_day():
    days = pd.DataFrame(
        {"store_id": "S1", "sku": "K1", "date": ["2026-11-20"] * 5, "empty_from_hour": [15.0, None, 6.0, 23.0, 8.0]}
    )
    assert stockout_day_outages(days)["empty_share"].tolist() == [0.5, 1.0, 1.0, 0.0, 1.0]


def test_alert_days_are_store_local_and_open_ones_run_to_as_of():
    alerts = pd.DataFrame(
        {
            "store_id": ["S1", "S2"],
            "sku": ["K1", "K2"],
            # 23:30 UTC is already the 21st in Amsterdam; the London alert is still open
            "opened_at": pd.to_datetime(["2026-11-20 23:30", "2026-11-21 10:00"], utc=True),
            "resolved_at": pd.to_datetime(["2026-11-22 10:00", None], utc=True),
        }
    )
    out = alert_day_outages(alerts, {"S1": "Europe/Amsterdam", "S2": "Europe/London"}, AS_OF)
    days = {k: sorted(g["date"].dt.strftime("%m-%d")) for k, g in out.groupby("sku")}
    assert days == {"K1": ["11-21", "11-22"], "K2": ["11-21", "11-22", "11-23"]} and set(out["empty_share"]) == {1.0}
    assert alert_day_outages(alerts.iloc[0:0], {}, AS_OF).empty


def test_refresh_ranks_from_both_sources_and_is_idempotent(risk_world):
    engine = risk_world
    _, outages = load_risk_inputs(engine, AS_OF)
    k1 = outages[outages["sku"] == "K1"].set_index(outages[outages["sku"] == "K1"]["date"].dt.date)["empty_share"]
    assert k1.to_dict() == {
        TODAY - timedelta(days=8): 1.0,
        TODAY - timedelta(days=5): 0.5,
        TODAY - timedelta(days=2): 1.0,
    }
    assert sorted(outages.loc[outages["sku"] == "K2", "date"].dt.date) == [
        TODAY - timedelta(days=d) for d in (10, 9, 8)
    ]
    assert "K4" not in set(outages["sku"])  # a prediction is not an empty shelf

    summary = refresh_member_risk(engine, AS_OF, Settings())
    assert summary["members_at_risk"] == 3 and summary["as_of"] == "2026-11-23T00:00:00+00:00"
    frame, total = at_risk_list(engine)
    assert (
        total == 3 and frame["rank"].tolist() == [1, 2, 3] and set(frame["member_id"]) == {"A", "B", "C"}
    )  # D met no empty shelf
    rows = frame.set_index("member_id")
    assert rows.loc["A", "reason"].startswith(
        "1 of their 1 favourite out 3 times in 30 days; last visit 1 day ago (usually every 5)"
    )
    assert (
        rows.loc["B", "out_days_30"] == 3 and rows.loc["C", "out_days_30"] == 3
    )  # today (as-of's day) is not over: not counted
    assert rows["contactable"].to_dict() == {"A": True, "B": False, "C": False}
    assert rows["home_store_id"].to_dict() == {"A": "S1", "B": "S1", "C": "S2"}
    assert not {"contact_address", "contact_channel"} & set(frame.columns)
    assert rows.loc["A", "score"] < rows.loc["C", "score"]  # A's 5-days-ago outage was half a day

    with engine.connect() as conn:
        before = conn.execute(select(schema.member_risk).order_by(schema.member_risk.c.member_id)).all()
    refresh_member_risk(engine, AS_OF, Settings())
    with engine.connect() as conn:
        assert conn.execute(select(schema.member_risk).order_by(schema.member_risk.c.member_id)).all() == before
    # a later as-of: the list is replaced whole; only C's phantom stock-out is still open
    later = refresh_member_risk(engine, AS_OF + timedelta(days=120), Settings())
    assert later["members_at_risk"] == at_risk_list(engine)[1] == 1 and at_risk_list(engine)[0][
        "member_id"
    ].tolist() == ["C"]


def test_cli_at_risk_lists_without_contact_details(risk_world):
    engine = risk_world
    db = ["--db", engine.url.render_as_string(hide_password=False)]
    runner = CliRunner()
    empty = runner.invoke(app, ["members", "at-risk", *db])
    assert empty.exit_code == 0 and "never refreshed" in empty.output
    table = runner.invoke(
        app, ["members", "at-risk", "--refresh", "--as-of", "2026-11-23T00:00", *db], env={"COLUMNS": "300"}
    )
    assert table.exit_code == 0, table.output
    assert "3 members at risk" in table.output and "favourite out 3 times" in table.output and "@" not in table.output
    listed = runner.invoke(app, ["members", "at-risk", "--limit", "2", "--format", "json", *db])
    assert listed.exit_code == 0, listed.output
    result = json.loads(listed.output)
    assert result["total"] == 3 and len(result["members"]) == 2 and result["members"][0]["rank"] == 1
    assert (
        set(result["members"][0]) >= {"member_id", "reason", "home_store_id", "contactable"}
        and "members.example" not in listed.output
    )
    assert runner.invoke(app, ["members", "at-risk", "--format", "xml", *db]).exit_code == 2


def test_report_lists_the_top_members_at_risk_and_the_notices_effect(risk_world, tmp_path, monkeypatch):
    from shelfwatch import report
    from shelfwatch.report import write_report

    monkeypatch.setattr(
        report, "plot_forecasts", lambda *args, **kwargs: []
    )  # this world has no sales or forecasts to plot
    engine = risk_world
    refresh_member_risk(engine, AS_OF, Settings())
    settings = Settings(database_url=str(engine.url), output_dir=tmp_path, as_of=AS_OF.isoformat())
    summary = write_report(engine, settings)
    text = (tmp_path / "summary.md").read_text()
    assert summary["members_at_risk_listed"] == 3 and "## Members at risk (top 3)" in text
    table = text[text.index("## Members at risk") :].splitlines()
    assert "| # | member | why | contactable |" in table
    rows = [line for line in table if line.startswith("| ") and line[2].isdigit()]
    assert (
        len(rows) == 3
        and rows[0].startswith("| 1 | ")
        and any("| A | 1 of their 1 favourite out 3 times" in r and r.endswith("| yes |") for r in rows)
    )
    assert "Did notices work? Not enough data yet to tell whether notices work" in text
    assert "members.example" not in text


def test_the_step_refreshes_at_the_settings_clock(risk_world):
    from shelfwatch import steps

    result = steps.refresh_member_risk(
        Settings(database_url=risk_world.url.render_as_string(hide_password=False), as_of="2026-11-23T00:00")
    )
    assert result["as_of"] == "2026-11-23T00:00:00+00:00" and result["members_at_risk"] == 3
    assert json.loads(json.dumps(result)) == result  # a DAG task's return value (XCom)
