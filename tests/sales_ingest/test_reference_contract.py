"""The data contract as data: it covers the schema, its page is generated from it, and its cell
readers accept exactly what the page documents."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from sales_ingest import reference_contract as rc
from sales_ingest.pos_files import SALES_KINDS
from sql import schema
from tests.conftest import REPO_ROOT


def test_committed_page_is_the_generated_one():
    """docs/data-contract.md is `markdown()`; regenerate it with `python -c` running
    `from sales_ingest.reference_contract import markdown; open('docs/data-contract.md','w').write(markdown())`."""
    assert (REPO_ROOT / "docs" / "data-contract.md").read_text() == rc.markdown()


def test_every_table_column_is_specified_with_an_example():
    for spec in rc.ALL_FILES.values():
        table = getattr(schema, spec.table)
        assert spec.column_names == [c for c in spec.column_names if c in table.c], spec.name
        assert set(spec.column_names) == {c.name for c in table.columns}, spec.name
        for col in spec.columns:
            assert col.description and col.example, (spec.name, col.name)
            db_col = table.c[col.name]
            if col.required:
                assert not db_col.nullable or db_col.primary_key, (spec.name, col.name)
            length = getattr(db_col.type, "length", None)
            if length and col.type in (rc.ID, rc.TEXT, rc.ZONE, rc.CHOICE):
                assert col.max_length == length, (spec.name, col.name)
        assert (
            set(spec.key) == {c.name for c in table.primary_key.columns}
            or spec.kind == "pos"
            or spec.name in ("deliveries",)
        )


def test_pos_files_follow_the_sales_contract():
    assert list(rc.POS_FILES) == list(SALES_KINDS)
    for kind, spec in rc.POS_FILES.items():
        assert spec.column_names == SALES_KINDS[kind]["columns"] and list(spec.key) == SALES_KINDS[kind]["key"]
    assert list(rc.ALL_FILES)[: len(rc.REFERENCE_FILES)] == list(rc.REFERENCE_FILES)


def test_file_names_are_exact_and_near_misses_get_a_hint():
    assert rc.spec_for("stores.csv").name == "stores" and rc.spec_for("stores.parquet").name == "stores"
    assert rc.spec_for("Stores.csv") is None and rc.spec_for("inventory.csv") is None
    assert rc.did_you_mean("Deliveries.csv") == "did you mean deliveries.csv?"
    assert rc.did_you_mean("inventory.csv") == "did you mean inventory_records.csv?"
    assert rc.did_you_mean("stock_out_days.parquet") == "did you mean stockout_days.parquet?"
    assert "save it as CSV UTF-8" in rc.did_you_mean("members.xlsx")
    assert "ingest-sales" in rc.did_you_mean("sales.csv")
    assert rc.did_you_mean("holiday_photos.csv").startswith("no input file has that name")
    assert (
        rc.looks_like_input("inventory.csv")
        and not rc.looks_like_input("world.json")
        and not rc.looks_like_input(".~lock.csv")
    )


def test_flag_spellings_are_exactly_the_documented_set():
    assert {k for k, v in rc.FLAG_SPELLINGS.items() if v} == {"1", "true", "yes", "y", "ja"}
    assert {k for k, v in rc.FLAG_SPELLINGS.items() if not v} == {"0", "false", "no", "n", "nee"}
    assert rc.read_flag(" Y ") is True and rc.read_flag("NEE") is False and rc.read_flag("True") is True
    for bad in ("maybe", "", "t", "f", "2", "on", "off", "si"):
        with pytest.raises(rc.CellProblem):
            rc.read_flag(bad)


def test_numbers_decimal_comma_only_where_the_separator_allows_it():
    assert rc.read_number("1.5") == 1.5 and rc.read_number(" -2 ") == -2.0 and rc.read_number("1e3") == 1000.0
    assert rc.read_number("1,5", decimal_comma=True) == 1.5
    for text, comma in (
        ("1,5", False),
        ("1.234,5", True),
        ("1,234,5", True),
        ("nan", False),
        ("inf", False),
        ("1_000", False),
        ("abc", False),
    ):
        with pytest.raises(rc.CellProblem):
            rc.read_number(text, comma)
    assert rc.read_whole("12,0", decimal_comma=True) == 12
    with pytest.raises(rc.CellProblem, match="whole number"):
        rc.read_whole("2.5")


def test_dates_iso_or_excel_serial():
    assert rc.read_date("2026-11-23") == date(2026, 11, 23)
    assert rc.read_date("46349") == date(2026, 11, 23)  # Excel's serial for 2026-11-23
    assert rc.read_date("2026-11-23 00:00:00") == date(2026, 11, 23)  # a Parquet datetime column
    for bad in ("23/11/2026", "2026-11-23 14:00", "46349.5", "123", "tomorrow"):
        with pytest.raises(rc.CellProblem):
            rc.read_date(bad)


def test_timestamps_without_offset_are_read_in_the_store_zone():
    amsterdam = ZoneInfo("Europe/Amsterdam")
    utc = UTC
    assert rc.read_timestamp("2026-11-23T06:00:00+01:00", None) == datetime(2026, 11, 23, 5, tzinfo=utc)
    assert rc.read_timestamp("2026-11-23T05:00:00Z", None) == datetime(2026, 11, 23, 5, tzinfo=utc)
    assert rc.read_timestamp("2026-11-23 06:00", amsterdam) == datetime(2026, 11, 23, 5, tzinfo=utc)
    assert rc.read_timestamp("2026-07-01 06:00", amsterdam) == datetime(2026, 7, 1, 4, tzinfo=utc)  # summer time
    assert rc.read_timestamp("46349.25", amsterdam) == datetime(2026, 11, 23, 5, tzinfo=utc)  # Excel serial date-time
    assert rc.read_timestamp("46349,25", amsterdam, decimal_comma=True) == datetime(2026, 11, 23, 5, tzinfo=utc)
    with pytest.raises(rc.CellProblem, match="no UTC offset"):
        rc.read_timestamp("2026-11-23 06:00", None)
    with pytest.raises(rc.CellProblem, match="is not a timestamp"):
        rc.read_timestamp("next tuesday", amsterdam)


def test_problems_never_repeat_the_value():
    secret = "jan@secret.example"
    for reader in (rc.read_flag, rc.read_number, rc.read_date, lambda t: rc.read_timestamp(t, None)):
        with pytest.raises(rc.CellProblem) as info:
            reader(secret)
        assert secret not in str(info.value)


def test_templates_are_header_and_example():
    for spec in rc.ALL_FILES.values():
        lines = rc.template_csv(spec).splitlines()
        assert lines[0] == ",".join(spec.column_names) and len(lines) == 2
    assert rc.template_path(rc.POS_FILES["sales_daily"]) == "sales/sales_daily.csv"
    assert rc.template_path(rc.REFERENCE_FILES["stores"]) == "stores.csv"
