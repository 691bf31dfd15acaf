"""POS ingest behind the GX suite, on SQLite and PostgreSQL: bad rows quarantined, good rows loaded."""

import json
from datetime import date

import pandas as pd
import pytest
from sqlalchemy import func, select

from core.db import insert_ignore
from sales_ingest.pos_files import SalesFileError, ingest_sales_file, ingest_sales_paths
from sql import schema

TODAY = date(2026, 11, 23)


@pytest.fixture
def shop(engine):
    with engine.begin() as conn:
        insert_ignore(
            conn,
            schema.stores,
            [{"store_id": s, "name": s, "timezone": "UTC", "manager_email": "m@x"} for s in ("S1", "S2")],
        )
        insert_ignore(
            conn,
            schema.products,
            [
                {"sku": k, "name": k, "category": "c", "unit_price": 1.0, "unit_weight_g": 100.0, "shelf_capacity": 10}
                for k in ("A", "B")
            ],
        )
        insert_ignore(
            conn,
            schema.members,
            [
                {
                    "member_id": "M1",
                    "home_store_id": "S1",
                    "marketing_consent": True,
                    "opted_out": False,
                    "contact_channel": "email",
                    "contact_address": "m1@x",
                }
            ],
        )
    return engine


def count(engine, table):
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def reasons(engine):
    with engine.connect() as conn:
        return [r.reason for r in conn.execute(select(schema.quarantine).order_by(schema.quarantine.c.reason))]


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


GOOD = "store_id,sku,date,units\nS1,A,2026-11-20,3\nS1,B,2026-11-20,0\nS2,A,2026-11-21,7\n"


def test_good_file_loads_and_second_load_changes_nothing(shop, tmp_path):
    path = write(tmp_path, "sales.csv", GOOD)
    first = ingest_sales_file(shop, path, TODAY)
    assert (first.kind, first.rows_total, first.rows_loaded, first.rows_quarantined) == ("sales_daily", 3, 3, 0)
    again = ingest_sales_file(shop, path, TODAY)
    assert again.skipped_same_file and count(shop, schema.sales_daily) == 3
    # the same rows under another file name: validated again, nothing new
    copy = write(tmp_path, "sales_copy.csv", GOOD + "\n")
    third = ingest_sales_file(shop, copy, TODAY)
    assert (third.rows_loaded, third.rows_already_present) == (0, 3) and count(shop, schema.sales_daily) == 3
    with shop.connect() as conn:
        assert (
            conn.execute(select(schema.sales_daily.c.units).where(schema.sales_daily.c.store_id == "S2")).scalar()
            == 7.0
        )


def test_bad_rows_are_quarantined_with_reasons_and_good_rows_load(shop, tmp_path):
    text = (
        "store_id,sku,date,units\n"
        "S1,A,2026-11-20,3\n"  # row 1 good
        "S1,A,2026-11-19,-3\n"  # row 2 negative
        "S1,ZZZ,2026-11-20,1\n"  # row 3 unknown sku
        "S9,A,2026-11-20,1\n"  # row 4 unknown store
        "S1,B,2026-12-25,1\n"  # row 5 future
        "S2,B,2026-11-20,lots\n"  # row 6 not a number
        ",B,2026-11-20,1\n"  # row 7 empty key
        "S2,A,20/11/2026,1\n"  # row 8 bad date
        "S2,B,2026-11-18,2\n"  # row 9 good
    )
    summary = ingest_sales_file(shop, write(tmp_path, "pos.csv", text), TODAY)
    assert (summary.rows_total, summary.rows_loaded, summary.rows_quarantined) == (9, 2, 7)
    got = reasons(shop)
    assert len(got) == 7
    expected = {
        "pos.csv row 2: units is negative (must be >= 0)",
        "pos.csv row 3: unknown sku",
        "pos.csv row 4: unknown store_id",
        "pos.csv row 5: date is in the future (after 2026-11-23)",
        "pos.csv row 6: units is not a number",
        "pos.csv row 8: date is not a YYYY-MM-DD date",
    }
    assert expected <= set(got)
    assert any(r.startswith("pos.csv row 7: store_id is empty") for r in got)
    with shop.connect() as conn:
        raw = json.loads(
            conn.execute(
                select(schema.quarantine.c.raw_content).where(schema.quarantine.c.reason.like("%row 6%"))
            ).scalar()
        )
    assert raw == {"row": 6, "store_id": "S2", "sku": "B", "date": "2026-11-20", "units": "lots"}
    assert count(shop, schema.sales_daily) == 2
    # the same file re-sent with one more row: re-validated, its bad rows are not quarantined twice
    again = ingest_sales_file(shop, write(tmp_path, "pos.csv", text + "S1,B,2026-11-17,4\n"), TODAY)
    assert (again.rows_loaded, again.rows_already_present, again.rows_quarantined) == (1, 2, 7)
    assert count(shop, schema.quarantine) == 7 and count(shop, schema.sales_daily) == 3


def test_wrong_column_rejects_file_but_keeps_it_in_quarantine(shop, tmp_path):
    path = write(tmp_path, "weird.csv", "store_id,sku,date,qty\nS1,A,2026-11-20,3\n")
    with pytest.raises(SalesFileError) as err:
        ingest_sales_file(shop, path, TODAY)
    assert (
        str(err.value)
        == "weird.csv: missing column 'units'; unexpected column 'qty'. Expected: store_id, sku, date, units"
    )
    assert count(shop, schema.sales_daily) == 0
    with shop.connect() as conn:
        row = conn.execute(select(schema.quarantine)).one()
    assert row.raw_content.startswith("store_id,sku,date,qty") and "missing column 'units'" in row.reason


def test_duplicate_keys(shop, tmp_path):
    text = "store_id,sku,date,units\nS1,A,2026-11-20,3\nS1,A,2026-11-20,3\nS1,B,2026-11-20,1\nS1,B,2026-11-20,2\n"
    summary = ingest_sales_file(shop, write(tmp_path, "dups.csv", text), TODAY)
    assert summary.rows_loaded == 1  # S1/A kept once; S1/B conflicting -> both quarantined
    assert summary.reasons == {"identical duplicate row": 1, "duplicate key with different values": 2}


def test_parquet_and_purchase_lines(shop, tmp_path):
    pd.DataFrame(
        {"store_id": ["S1", "S1"], "sku": ["A", "B"], "date": ["2026-11-20", "2026-11-21"], "units": [1, 2]}
    ).to_parquet(tmp_path / "day.parquet")
    (tmp_path / "lines.csv").write_text(
        "store_id,receipt_id,line_no,sku,date,member_id,units\n"
        "S1,R1,1,A,2026-11-20,M1,1\n"
        "S1,R1,2,B,2026-11-20,,2\n"  # no card scanned
        "S1,R2,1,A,2026-11-20,M404,1\n"  # unknown member
    )
    summaries = ingest_sales_paths(shop, [tmp_path], TODAY)
    assert [s.kind for s in summaries] == ["sales_daily", "purchase_lines"]
    assert summaries[0].rows_loaded == 2
    # the sale with an unknown card is stored; only its member link waits (tests/sales_ingest/test_member_links.py)
    assert (summaries[1].rows_loaded, summaries[1].rows_quarantined, summaries[1].member_links_waiting) == (3, 0, 1)
    assert reasons(shop) == []
    with shop.connect() as conn:
        lines = schema.purchase_lines
        members = conn.execute(select(lines.c.member_id).order_by(lines.c.receipt_id, lines.c.line_no)).scalars().all()
    assert members == ["M1", None, None]
