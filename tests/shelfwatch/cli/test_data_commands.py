"""`shelfwatch templates`, `check` and `load-reference` as a retailer runs them, on SQLite and
PostgreSQL: templates load as they are, `check` lists problems by file/row/column and loads nothing,
`load-reference` reports every file and exits 2 only for refused or unknown files; no output ever
shows a member's contact details."""

import json

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from core.db import get_engine
from shelfwatch.cli import common
from shelfwatch.cli.app import app
from sql import schema

runner = CliRunner()
SECRETS = ("jan@secret.example", "+31612345678", "piet@secret.example")
MEMBERS = (
    "member_id,home_store_id,marketing_consent,opted_out,contact_channel,contact_address\n"
    "M1,S001,yes,Y,email,jan@secret.example\n"  # fine: opted out
    "M2,S001,maybe,no,sms,+31612345678\n"  # consent unreadable: refused
    "M3,S404,yes,no,email,piet@secret.example\n"
)  # unknown store: refused


@pytest.fixture(autouse=True)
def wide_console(monkeypatch):
    """Tables and lines unwrapped, so what is printed can be searched. `_width`, not the `width`
    property: undoing the property would pin the shared console at its computed width for every later
    test in the process (under xdist, tests of other modules that pass their own COLUMNS)."""
    monkeypatch.setattr(common.console, "_width", 400)


def invoke(*args: str):
    result = runner.invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    for secret in SECRETS:
        assert secret not in result.output and secret not in (result.stderr or ""), f"{secret} printed"
    return result


def count(db_url, table) -> int:
    with get_engine(db_url).connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def messy_folder(tmp_path):
    """A retailer's folder with a bad row of each kind, a misnamed file and a POS file with a bad row."""
    world = tmp_path / "messy"
    (world / "sales").mkdir(parents=True)
    runner.invoke(app, ["templates", str(tmp_path / "tpl")])
    for name in ("stores.csv", "products.csv"):
        (world / name).write_text((tmp_path / "tpl" / name).read_text())
    (world / "members.csv").write_text(MEMBERS)
    (world / "inventory.csv").write_text("store_id,sku,as_of,book_units\nS001,SKU00001,2026-11-23 00:00,-2\n")
    (world / "deliveries.csv").write_text(
        "delivery_id,store_id,sku,expected_at,expected_units,received_at,received_units\n"
        "D1,S001,SKU00001,2026-11-23 06:00,5,,\nD2,S001,SKU00001,soon,5,,\n"
    )
    (world / "sales" / "sales_daily.csv").write_text(
        "store_id,sku,date,units\nS001,SKU00001,2026-11-20,3\nS001,NOPE,2026-11-20,1\n"
    )
    return world


def test_templates_load_as_they_are(tmp_path, db_url):
    tpl = tmp_path / "tpl"
    written = invoke("templates", str(tpl))
    assert written.exit_code == 0, written.output
    assert sorted(p.relative_to(tpl).as_posix() for p in tpl.rglob("*.csv")) == sorted(
        [
            "deliveries.csv",
            "inventory_records.csv",
            "members.csv",
            "prices.csv",
            "products.csv",
            "promotions.csv",
            "sensors.csv",
            "stockout_days.csv",
            "stores.csv",
            "sales/purchase_lines.csv",
            "sales/sales_daily.csv",
        ]
    )
    assert invoke("templates", str(tpl)).exit_code == 2  # never overwrites without --force
    assert invoke("templates", str(tpl), "--force").exit_code == 0

    checked = invoke("check", str(tpl), "--db", db_url)
    assert checked.exit_code == 0, checked.output
    assert "clean" in checked.output
    loaded = invoke("load-reference", str(tpl), "--db", db_url)
    assert loaded.exit_code == 0, loaded.output
    assert "9 rows loaded, 0 quarantined" in loaded.output
    sales = invoke(
        "ingest-sales",
        str(tpl / "sales" / "sales_daily.csv"),
        str(tpl / "sales" / "purchase_lines.csv"),
        "--db",
        db_url,
    )
    assert sales.exit_code == 0, sales.output
    assert (
        count(db_url, schema.sales_daily) == 1
        and count(db_url, schema.purchase_lines) == 1
        and count(db_url, schema.quarantine) == 0
    )
    with get_engine(db_url).connect() as conn:
        assert conn.execute(select(schema.purchase_lines.c.member_id)).scalar() == "M0000001"


def test_check_lists_problems_by_file_row_and_column_and_loads_nothing(tmp_path, db_url):
    world = messy_folder(tmp_path)
    invoke("migrate", "--db", db_url)
    result = invoke("check", str(world), "--db", db_url)
    assert result.exit_code == 1, result.output
    lines = [" ".join(line.replace("│", " ").split()) for line in result.output.splitlines()]
    for expected in (
        "inventory.csv unknown file name: did you mean inventory_records.csv?",
        "members.csv 2 marketing_consent is not a yes/no flag (accepted: 1/0, true/false, yes/no, y/n, ja/nee)",
        "members.csv 3 home_store_id names an unknown store (not in stores.csv nor in the database)",
        "deliveries.csv 2 expected_at is not a timestamp (ISO 8601,",
        "sales/sales_daily.csv 2 sku unknown sku",
    ):
        assert any(line.startswith(expected) for line in lines), f"{expected!r} not in\n{result.output}"
    assert "Nothing was loaded" in result.output
    for table in (schema.stores, schema.members, schema.deliveries, schema.sales_daily, schema.quarantine):
        assert count(db_url, table) == 0, table.name


def test_check_never_creates_a_database(tmp_path):
    db = tmp_path / "none" / "shelfwatch.db"
    result = invoke("check", str(messy_folder(tmp_path)), "--db", f"sqlite:///{db}")
    assert result.exit_code == 1 and not db.exists() and "checked against the folder's own files only" in result.output


def test_load_reference_reports_each_file_and_exits_2_for_unknown_or_refused_files(tmp_path, db_url):
    world = messy_folder(tmp_path)
    result = invoke("load-reference", str(world), "--db", db_url)
    assert result.exit_code == 2, result.output
    out = result.output
    assert "members.csv: 3 rows, 1 loaded, 2 quarantined" in out
    assert "quarantined: members.csv row 2 column marketing_consent: is not a yes/no flag" in out
    assert "quarantined: members.csv row 3 column home_store_id: names an unknown store" in out
    assert "unknown file inventory.csv: not loaded; did you mean inventory_records.csv?" in out
    assert "quarantined rows are not a failure" in out and "1 file(s) refused or unknown" in out
    with get_engine(db_url).connect() as conn:
        reasons = list(conn.execute(select(schema.quarantine.c.reason)).scalars())
        assert conn.execute(select(schema.members.c.opted_out)).scalar() is True  # M1's `Y`
    assert len(reasons) == 3
    for reason in reasons:
        assert not any(secret in reason for secret in SECRETS)

    # the misnamed file renamed: every file loads (bad rows stay quarantined), exit 0
    (world / "inventory.csv").rename(world / "inventory_records.csv")
    again = invoke("load-reference", str(world), "--db", db_url, "--json")
    assert again.exit_code == 0, again.output
    assert "inventory_records.csv: 1 rows, 0 loaded, 1 quarantined" in again.output
    assert "quarantined: inventory_records.csv row 1 column book_units: is negative (must be >= 0)" in again.output
    assert count(db_url, schema.inventory_records) == 0 and count(db_url, schema.members) == 1


def test_load_reference_refused_file_exit_2_and_others_load(tmp_path, db_url):
    world = tmp_path / "w"
    world.mkdir()
    runner.invoke(app, ["templates", str(tmp_path / "tpl")])
    (world / "stores.csv").write_text((tmp_path / "tpl" / "stores.csv").read_text())
    (world / "members.csv").write_text(
        "member_id,home_store_id,marketing_consent,contact_channel,contact_address\n"
        "M1,S001,yes,email,jan@secret.example\n"
    )
    result = invoke("load-reference", str(world), "--db", db_url)
    assert result.exit_code == 2
    assert "refused members.csv: missing required column(s) 'opted_out'" in result.output
    assert "stores.csv: 1 rows, 1 loaded" in result.output
    assert count(db_url, schema.stores) == 1 and count(db_url, schema.members) == 0


def test_load_reference_of_an_empty_folder_says_so(tmp_path, db_url):
    (tmp_path / "empty").mkdir()
    result = invoke("load-reference", str(tmp_path / "empty"), "--db", db_url)
    assert result.exit_code == 2 and "no reference file found" in result.output


def test_load_reference_json_is_the_step_summary(tmp_path, db_url):
    runner.invoke(app, ["templates", str(tmp_path / "tpl")])
    result = invoke("load-reference", str(tmp_path / "tpl"), "--db", db_url, "--json")
    assert result.exit_code == 0
    summary, end = json.JSONDecoder().raw_decode(result.output)
    assert "stores.csv: 1 rows, 1 loaded" in result.output[end:]  # the per-file lines follow
    assert summary["stores.csv"] == 1 and summary["files"]["members.csv"]["loaded"] == 1 and summary["pos_files"] == []


@pytest.mark.parametrize("command", ["templates", "check", "load-reference"])
def test_help_points_to_the_data_contract(command):
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "docs/data-contract.md" in result.output
