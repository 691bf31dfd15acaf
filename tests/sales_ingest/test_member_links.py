"""A sale with an unknown loyalty card is stored; only its member link waits, and is attached when the
member arrives. Both databases."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from core.db import insert_ignore
from sales_ingest.member_links import attach_pending_member_links
from sales_ingest.pos_files import ingest_sales_file
from shelfwatch.steps import apply_retention, load_reference
from sql import schema
from tests.sales_ingest.test_pos_files import TODAY, count, reasons, write

LINES = (
    "store_id,receipt_id,line_no,sku,date,member_id,units\n"
    "S1,R1,1,A,2026-11-20,M1,1\n"  # known member
    "S1,R1,2,B,2026-11-20,,2\n"  # no card scanned
    "S1,R2,1,A,2026-11-20,M404,3\n"  # a card the member file does not name yet
)


def member(member_id):
    return {
        "member_id": member_id,
        "home_store_id": "S1",
        "marketing_consent": True,
        "opted_out": False,
        "contact_channel": "email",
        "contact_address": f"{member_id.lower()}@x",
    }


@pytest.fixture
def shop(engine):
    """Stores S1, S2, products A, B and one member, M1 (as in test_pos_files)."""
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
        insert_ignore(conn, schema.members, [member("M1")])
    return engine


def line_members(engine):
    lines = schema.purchase_lines
    with engine.connect() as conn:
        return {(r.receipt_id, r.line_no): r.member_id for r in conn.execute(select(lines))}


def pending(engine):
    links = schema.pending_member_links
    with engine.connect() as conn:
        return [(r.store_id, r.receipt_id, r.line_no, r.member_id, r.source) for r in conn.execute(select(links))]


def test_unknown_member_keeps_the_sale_and_the_link_waits(shop, tmp_path):
    path = write(tmp_path, "lines.csv", LINES)
    summary = ingest_sales_file(shop, path, TODAY)
    assert (summary.rows_total, summary.rows_loaded, summary.rows_quarantined, summary.member_links_waiting) == (
        3,
        3,
        0,
        1,
    )
    assert summary.reasons == {} and reasons(shop) == []
    assert "3 loaded" in str(summary) and str(summary).endswith("0 quarantined, 1 member link waits for its member")
    assert line_members(shop) == {("R1", 1): "M1", ("R1", 2): None, ("R2", 1): None}
    assert pending(shop) == [("S1", "R2", 1, "M404", str(path))]
    with shop.connect() as conn:
        assert (
            conn.execute(
                select(schema.purchase_lines.c.units).where(schema.purchase_lines.c.receipt_id == "R2")
            ).scalar()
            == 3.0
        )


def test_member_arriving_later_is_attached_once(shop, tmp_path):
    path = write(tmp_path, "lines.csv", LINES)
    ingest_sales_file(shop, path, TODAY)
    with shop.begin() as conn:
        assert attach_pending_member_links(conn) == 0  # the member is still unknown: nothing changes
    assert pending(shop) and line_members(shop)[("R2", 1)] is None
    with shop.begin() as conn:
        insert_ignore(conn, schema.members, [member("M404")])
        assert attach_pending_member_links(conn) == 1
    assert line_members(shop) == {("R1", 1): "M1", ("R1", 2): None, ("R2", 1): "M404"}
    assert pending(shop) == []
    with shop.begin() as conn:
        assert attach_pending_member_links(conn) == 0  # idempotent
    assert ingest_sales_file(shop, path, TODAY).skipped_same_file
    # the same rows under another name: nothing new, nothing waits, the attached member stays
    again = ingest_sales_file(shop, write(tmp_path, "lines_copy.csv", LINES + "\n"), TODAY)
    assert (again.rows_loaded, again.rows_already_present, again.member_links_waiting) == (0, 3, 0)
    assert line_members(shop)[("R2", 1)] == "M404" and pending(shop) == []
    assert count(shop, schema.purchase_lines) == 3


def test_resent_line_does_not_get_a_link_it_did_not_have(shop, tmp_path):
    """A line already stored keeps what it has: a re-send naming an unknown card adds no pending link."""
    ingest_sales_file(
        shop,
        write(tmp_path, "a.csv", "store_id,receipt_id,line_no,sku,date,member_id,units\nS1,R9,1,A,2026-11-20,,1\n"),
        TODAY,
    )
    again = ingest_sales_file(
        shop,
        write(tmp_path, "b.csv", "store_id,receipt_id,line_no,sku,date,member_id,units\nS1,R9,1,A,2026-11-20,M777,1\n"),
        TODAY,
    )
    assert (again.rows_loaded, again.rows_already_present, again.member_links_waiting) == (0, 1, 0)
    assert pending(shop) == []


def test_member_known_before_the_write_is_attached_in_the_same_load(shop, tmp_path):
    """`known` read before a member was loaded (one read for many files): the load attaches it at once."""
    known = {"stores": {"S1", "S2"}, "skus": {"A", "B"}, "members": {"M1"}}
    with shop.begin() as conn:
        insert_ignore(conn, schema.members, [member("M404")])
    summary = ingest_sales_file(shop, write(tmp_path, "lines.csv", LINES), TODAY, known)
    assert summary.member_links_waiting == 0 and "member link" not in str(summary)
    assert line_members(shop)[("R2", 1)] == "M404" and pending(shop) == []


def test_unknown_store_or_sku_still_quarantines_the_whole_row(shop, tmp_path):
    text = (
        "store_id,receipt_id,line_no,sku,date,member_id,units\n"
        "S9,R1,1,A,2026-11-20,M404,1\n"  # unknown store (and card)
        "S1,R1,2,ZZZ,2026-11-20,M404,1\n"  # unknown sku (and card)
        "S1,R1,3,A,2026-11-20,M405,1\n"  # good sale, unknown card
    )
    summary = ingest_sales_file(shop, write(tmp_path, "lines.csv", text), TODAY)
    assert (summary.rows_loaded, summary.rows_quarantined, summary.member_links_waiting) == (1, 2, 1)
    assert reasons(shop) == ["lines.csv row 1: unknown store_id", "lines.csv row 2: unknown sku"]
    assert [p[:4] for p in pending(shop)] == [("S1", "R1", 3, "M405")]


def test_load_reference_attaches_waiting_links(shop, settings, tmp_path):
    ingest_sales_file(shop, write(tmp_path, "lines.csv", LINES), TODAY)
    world = tmp_path / "world"
    world.mkdir()
    (world / "members.csv").write_text(
        "member_id,home_store_id,marketing_consent,opted_out,contact_channel,contact_address\nM404,S1,true,false,email,m404@x\n"
    )
    done = load_reference(settings, world)
    assert done["member_links_attached"] == 1
    assert line_members(shop)[("R2", 1)] == "M404" and pending(shop) == []
    assert load_reference(settings, world)["member_links_attached"] == 0


def test_retention_deletes_old_pending_links(shop, settings, tmp_path):
    ingest_sales_file(shop, write(tmp_path, "lines.csv", LINES), TODAY)
    links = schema.pending_member_links
    now = datetime.now(UTC)
    later = now + timedelta(days=settings.quarantine_retention_days + 1)
    with shop.begin() as conn:
        insert_ignore(
            conn,
            links,
            [
                {
                    "store_id": "S1",
                    "receipt_id": "R1",
                    "line_no": 2,
                    "member_id": "M500",
                    "source": "new.csv",
                    "first_seen_at": later - timedelta(days=1),
                }
            ],
        )
    assert apply_retention(settings, now)["pending_links_deleted"] == 0
    done = apply_retention(settings, later)
    assert done["pending_links_deleted"] == 1 and "quarantine_deleted" in done
    assert [p[3] for p in pending(shop)] == ["M500"]
    assert count(shop, schema.purchase_lines) == 3  # the sales stay
    assert apply_retention(settings, later)["pending_links_deleted"] == 0
