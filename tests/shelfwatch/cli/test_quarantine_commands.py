"""`shelfwatch quarantine list|show` and `ingest-sales` on both databases: reasons and raw content
printed verbatim (never read as Rich markup), filters, newest first, clear errors."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from core.db import insert_ignore
from core.domain import MQTT, REFERENCE_FILE, SALES_FILE
from shelfwatch.cli import common
from shelfwatch.cli.app import app
from shelfwatch.report import quarantine_count, quarantine_entry, quarantine_rows
from sql import schema

runner = CliRunner()
T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def wide_console():
    """A wide console, so table cells are not wrapped across lines and can be searched verbatim."""
    before = common.console._width
    common.console.width = 400
    yield
    common.console._width = before


def db_args(engine) -> list[str]:
    return ["--db", engine.url.render_as_string(hide_password=False)]


def entry(channel, source, reason, raw, at):
    return {
        "channel": channel,
        "source": source,
        "reason": reason,
        "raw_content": raw,
        "content_hash": f"{source}:{reason}"[:64],
        "quarantined_at": at,
    }


@pytest.fixture
def held(engine):
    """Three quarantine entries, one per channel, an hour apart (the MQTT one newest)."""
    with engine.begin() as conn:
        insert_ignore(
            conn,
            schema.quarantine,
            [
                entry(
                    REFERENCE_FILE,
                    "world/products.csv",
                    "row 2: [bold]unit_price[/bold] is negative",
                    "B,[bold]b[/bold],-1",
                    T0,
                ),
                entry(
                    SALES_FILE,
                    "landing/pos.csv",
                    "row 3: [unknown sku: 2]",
                    "S1,ZZZ,2026-11-20,1\n[red]x[/red]",
                    T0 + timedelta(hours=1),
                ),
                entry(
                    MQTT,
                    "shelfwatch/v1/stores/S1/sensors/X1/readings",
                    "[/] not JSON: Expecting value",
                    '{"seq": [1, 2]',
                    T0 + timedelta(hours=2),
                ),
            ],
        )
    return engine


def ids(engine) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(select(schema.quarantine.c.channel, schema.quarantine.c.quarantine_id)).all())


def test_quarantine_queries_filter_and_order(held):
    frame = quarantine_rows(held)
    assert frame["channel"].tolist() == [MQTT, SALES_FILE, REFERENCE_FILE]  # newest first
    assert str(frame["quarantined_at"].dt.tz) == "UTC" and frame["quarantined_at"].iloc[0] == T0 + timedelta(hours=2)
    assert quarantine_rows(held, channel=SALES_FILE)["reason"].tolist() == ["row 3: [unknown sku: 2]"]
    assert quarantine_rows(held, since=datetime(2026, 11, 20, 9, 0))["channel"].tolist() == [
        MQTT,
        SALES_FILE,
    ]  # naive = UTC
    assert quarantine_rows(held, since=datetime(2026, 11, 20, 10, 0, tzinfo=timezone(timedelta(hours=1))))[
        "channel"
    ].tolist() == [MQTT, SALES_FILE]
    assert (
        len(quarantine_rows(held, limit=1)) == 1
        and quarantine_count(held) == 3
        and quarantine_count(held, channel=MQTT) == 1
    )
    with pytest.raises(ValueError, match="unknown quarantine channel"):
        quarantine_rows(held, channel="kafka")
    one = quarantine_entry(held, ids(held)[SALES_FILE])
    assert one["raw_content"] == "S1,ZZZ,2026-11-20,1\n[red]x[/red]" and one["quarantined_at"] == T0 + timedelta(
        hours=1
    )
    assert quarantine_entry(held, 987654) is None


def test_list_prints_reasons_verbatim_newest_first(held):
    result = runner.invoke(app, ["quarantine", "list", *db_args(held)])
    assert result.exit_code == 0, result.output
    out = result.output
    for text in (
        "row 3: [unknown sku: 2]",
        "row 2: [bold]unit_price[/bold] is negative",
        "[/] not JSON: Expecting value",
        "landing/pos.csv",
        "quarantined at (UTC)",
        "2026-11-20 10:00:00",
        "3 of 3 quarantined entries shown",
    ):
        assert text in out, text
    assert out.index("[/] not JSON") < out.index("[unknown sku: 2]") < out.index("[bold]unit_price")


@pytest.mark.parametrize(
    ("options", "channels"),
    [
        (["--source", "sales"], [SALES_FILE]),
        (["--source", "mqtt"], [MQTT]),
        (["--source", "reference"], [REFERENCE_FILE]),
        (["--since", "2026-11-20T09:30"], [MQTT]),
        (["--since", "2026-11-20"], [MQTT, SALES_FILE, REFERENCE_FILE]),
        (["--since", "2026-11-21"], []),
        (["--limit", "2"], [MQTT, SALES_FILE]),
    ],
)
def test_list_filters(held, options, channels):
    result = runner.invoke(app, ["quarantine", "list", *options, *db_args(held)])
    assert result.exit_code == 0, result.output
    shown = [c for c in (MQTT, SALES_FILE, REFERENCE_FILE) if f"│ {c} " in result.output]
    assert shown == channels
    assert f"{len(channels)} of " in result.output


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--source", "kafka"], "--source 'kafka': expected one of sales, mqtt, reference"),
        (["--since", "last tuesday"], "--since 'last tuesday': expected an ISO date or date-time"),
    ],
)
def test_list_rejects_bad_options(held, options, message):
    result = runner.invoke(app, ["quarantine", "list", *options, *db_args(held)])
    assert result.exit_code == 2 and message in " ".join(result.output.split())


def test_show_prints_every_field_verbatim(held):
    result = runner.invoke(app, ["quarantine", "show", str(ids(held)[SALES_FILE]), *db_args(held)])
    assert result.exit_code == 0, result.output
    for text in (
        f"quarantine_id: {ids(held)[SALES_FILE]}",
        "channel: sales_file",
        "source: landing/pos.csv",
        "reason: row 3: [unknown sku: 2]",
        "content_hash: landing/pos.csv:row 3: [unknown sku: 2]",
        "quarantined_at: 2026-11-20 09:00:00.000000 UTC",
        "raw_content:\nS1,ZZZ,2026-11-20,1\n[red]x[/red]",
    ):
        assert text in result.output, text


def test_show_unknown_id_exits_2(held):
    result = runner.invoke(app, ["quarantine", "show", "987654", *db_args(held)])
    assert result.exit_code == 2
    assert "no quarantine entry with id 987654" in result.output


def test_ingest_sales_prints_reasons_verbatim_and_quarantine_lists_them(engine, tmp_path):
    with engine.begin() as conn:
        insert_ignore(
            conn, schema.stores, [{"store_id": "S1", "name": "S1", "timezone": "UTC", "manager_email": "m@x"}]
        )
        insert_ignore(
            conn,
            schema.products,
            [
                {
                    "sku": "A",
                    "name": "A",
                    "category": "c",
                    "unit_price": 1.0,
                    "unit_weight_g": 100.0,
                    "shelf_capacity": 10,
                }
            ],
        )
    pos = tmp_path / "[store 1] pos.csv"  # markup-like file names stay too
    pos.write_text("store_id,sku,date,units\nS1,A,2026-11-20,3\nS1,ZZZ,2026-11-20,1\nS1,A,2026-11-21,2\n")
    result = runner.invoke(app, ["ingest-sales", str(pos), *db_args(engine)])
    assert result.exit_code == 0, result.output
    assert f"{pos} (sales_daily): 3 rows, 2 loaded, 0 already present, 1 quarantined [unknown sku: 1]" in result.output
    assert "shelfwatch quarantine list --source sales" in result.output

    listed = runner.invoke(app, ["quarantine", "list", "--source", "sales", *db_args(engine)])
    assert listed.exit_code == 0, listed.output
    assert (
        "unknown sku" in listed.output
        and str(pos) in listed.output
        and "1 of 1 quarantined entries shown" in listed.output
    )
    qid = ids(engine)[SALES_FILE]
    shown = runner.invoke(app, ["quarantine", "show", str(qid), *db_args(engine)])
    assert shown.exit_code == 0 and "ZZZ" in shown.output and f"source: {pos}" in shown.output
