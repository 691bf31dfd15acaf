"""A retailer's own files with the export mistakes people make, on both databases.

Each case starts from one clean retailer folder (2 stores, 3 SKUs, a favourite vegetarian burger, 4
members), makes one mistake, and runs the commands a user runs. Every case must end in a clear error
or a quarantine that names the file, the row and the column; nothing half-loaded; no traceback; no
member's contact detail in any output or quarantine reason. README "Use your own data" walks the
same commands.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from core.db import get_engine
from shelfwatch.cli.app import app
from sql import schema

ADDRESSES = ["ada.vegan@example.com", "+31612345678", "bob.burger@example.org", "+31687654321"]
END = date(2026, 11, 22)
DAYS = 60


def clean_folder(root: Path) -> Path:
    """The retailer's files, right: reference files in `root`, POS files in `root/sales`."""
    root.mkdir(parents=True, exist_ok=True)
    files = {
        "stores.csv": "store_id,name,timezone,manager_email\n"
        "S001,Utrecht,Europe/Amsterdam,m1@stores.example\nS002,Leeds,Europe/London,m2@stores.example\n",
        "products.csv": "sku,name,category,unit_price,unit_weight_g,shelf_capacity\n"
        "BURGER,Veggie burger 2x,frozen,3.99,226,12\nBREAD,Bread,bakery,2.49,800,24\n"
        "MILK,Milk 1 l,dairy,1.19,1030,30\n",
        "members.csv": "member_id,home_store_id,marketing_consent,opted_out,contact_channel,contact_address\n"
        f"M1,S001,yes,no,email,{ADDRESSES[0]}\nM2,S001,ja,nee,sms,{ADDRESSES[1]}\n"
        f"M3,S002,1,0,email,{ADDRESSES[2]}\nM4,S002,true,false,sms,{ADDRESSES[3]}\n",
        "sensors.csv": "sensor_id,store_id,sku,kind,tare_g\n"
        "S001-BURGER,S001,BURGER,shelf_units,0\nS002-BURGER,S002,BURGER,shelf_units,0\n",
        "deliveries.csv": "delivery_id,store_id,sku,expected_at,expected_units,received_at,received_units\n"
        "D1,S001,BURGER,2026-11-25T06:00:00+01:00,12,,\nD2,S002,BURGER,2026-11-25T06:00:00+00:00,12,,\n",
        "inventory_records.csv": "store_id,sku,as_of,book_units\n"
        "S001,BURGER,2026-11-22T22:00:00+01:00,3\nS002,BURGER,2026-11-22T22:00:00+00:00,9\n",
    }
    for name, text in files.items():
        (root / name).write_text(text)
    sales = root / "sales"
    sales.mkdir(exist_ok=True)
    daily, lines = ["store_id,sku,date,units"], ["store_id,receipt_id,line_no,sku,date,member_id,units"]
    for d in range(DAYS):
        day = END - timedelta(days=DAYS - 1 - d)
        for store in ("S001", "S002"):
            for sku, units in (("BURGER", 4), ("BREAD", 6), ("MILK", 9)):
                daily.append(f"{store},{sku},{day},{units + (d % 3)}")
            member = "M1" if store == "S001" else "M3"
            lines.append(f"{store},R-{store}-{day:%Y%m%d},1,BURGER,{day},{member},2")
    (sales / "sales_daily.csv").write_text("\n".join(daily) + "\n")
    (sales / "purchase_lines.csv").write_text("\n".join(lines) + "\n")
    return root


def replace_in(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1))


def run(args: list[str], db_url: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, [*args, "--db", db_url])
    out = result.output + (getattr(result, "stderr", "") if getattr(result, "stderr_bytes", None) else "")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"{args} ended in {type(result.exception).__name__}: {result.exception}\n{out}")
    return result.exit_code, out


def load(folder: Path, db_url: str) -> tuple[int, str]:
    """What a user runs: check, load-reference, ingest-sales. Exit code of the worst, all output."""
    outputs, worst = [], 0
    for args in (
        ["check", str(folder)],
        ["load-reference", str(folder)],
        ["ingest-sales", str(folder / "sales" / "sales_daily.csv"), str(folder / "sales" / "purchase_lines.csv")],
    ):
        code, out = run(args, db_url)
        outputs.append(out)
        worst = max(worst, code if args[0] != "check" else 0)
    return worst, "\n".join(outputs)


def count(engine, table) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def quarantine_reasons(engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(select(schema.quarantine.c.reason)).scalars())


def member(engine, member_id: str):
    with engine.connect() as conn:
        return conn.execute(select(schema.members).where(schema.members.c.member_id == member_id)).first()


# ------------------------------------------------------------------------------------- the mistakes
# Each: (name, mistake(folder), what must hold after loading: check(engine, exit_code, output)).


def says(output: str, *words: str) -> None:
    low = output.lower()
    for word in words:
        assert word.lower() in low, f"{word!r} not in the output:\n{output}"


def opted_out_as_y(f):
    replace_in(f / "members.csv", "M2,S001,ja,nee", "M2,S001,Y,Y")


def check_opted_out_as_y(engine, code, out):
    assert member(engine, "M2").opted_out is True and code == 0


def consent_unclear(f):
    replace_in(f / "members.csv", "M3,S002,1,0", "M3,S002,maybe,0")


def check_consent_unclear(engine, code, out):
    says(out, "members.csv", "row 3", "marketing_consent")
    assert member(engine, "M3") is None and member(engine, "M1") is not None


def members_missing_column(f):
    text = (f / "members.csv").read_text().splitlines()
    (f / "members.csv").write_text("\n".join(",".join(line.split(",")[:-1]) for line in text) + "\n")


def check_members_missing_column(engine, code, out):
    says(out, "members.csv", "contact_address")
    assert code == 2 and count(engine, schema.members) == 0 and count(engine, schema.stores) == 2


def misnamed_inventory(f):
    (f / "inventory_records.csv").rename(f / "inventory.csv")


def check_misnamed_inventory(engine, code, out):
    says(out, "inventory.csv", "inventory_records.csv")
    assert code == 2 and count(engine, schema.inventory_records) == 0 and count(engine, schema.deliveries) == 2


def capitalised_deliveries(f):
    (f / "deliveries.csv").rename(f / "Deliveries.csv")


def check_capitalised_deliveries(engine, code, out):
    says(out, "Deliveries.csv", "deliveries.csv")
    assert code == 2 and count(engine, schema.deliveries) == 0


def delivery_without_offset(f):
    replace_in(f / "deliveries.csv", "2026-11-25T06:00:00+01:00", "2026-11-25 06:00")


def check_delivery_without_offset(engine, code, out):
    with engine.connect() as conn:
        at = conn.execute(
            select(schema.deliveries.c.expected_at).where(schema.deliveries.c.delivery_id == "D1")
        ).scalar_one()
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    assert at == datetime(2026, 11, 25, 5, 0, tzinfo=UTC)  # read in the store's zone (Amsterdam, +01:00)
    assert code == 0


def delivery_garbled_time(f):
    replace_in(f / "deliveries.csv", "2026-11-25T06:00:00+00:00", "next tuesday")


def check_delivery_garbled_time(engine, code, out):
    says(out, "deliveries.csv", "row 2", "expected_at")
    assert count(engine, schema.deliveries) == 1


def negative_book_stock(f):
    replace_in(
        f / "inventory_records.csv",
        "S001,BURGER,2026-11-22T22:00:00+01:00,3",
        "S001,BURGER,2026-11-22T22:00:00+01:00,-2",
    )


def check_negative_book_stock(engine, code, out):
    says(out, "inventory_records.csv", "row 1", "book_units")
    assert count(engine, schema.inventory_records) == 1


def bom(f):
    (f / "stores.csv").write_bytes(b"\xef\xbb\xbf" + (f / "stores.csv").read_bytes())


def check_bom(engine, code, out):
    assert count(engine, schema.stores) == 2 and code == 0


def semicolons_decimal_commas(f):
    text = (
        (f / "products.csv")
        .read_text()
        .replace(",", ";")
        .replace("3.99", "3,99")
        .replace("2.49", "2,49")
        .replace("1.19", "1,19")
    )
    (f / "products.csv").write_text(text)


def check_semicolons_decimal_commas(engine, code, out):
    with engine.connect() as conn:
        price = conn.execute(select(schema.products.c.unit_price).where(schema.products.c.sku == "BURGER")).scalar_one()
    assert price == pytest.approx(3.99) and code == 0


def duplicated_header(f):
    lines = (f / "products.csv").read_text().splitlines()
    (f / "products.csv").write_text("\n".join([lines[0], *lines[1:3], lines[0], *lines[3:]]) + "\n")


def check_duplicated_header(engine, code, out):
    assert count(engine, schema.products) == 3


def trailing_empty_lines(f):
    (f / "sensors.csv").write_text((f / "sensors.csv").read_text() + "\n\n,,,,\n\n")


def check_trailing_empty_lines(engine, code, out):
    assert count(engine, schema.sensors) == 2 and code == 0


def mixed_case_ids(f):
    replace_in(f / "sensors.csv", "S002-BURGER,S002,BURGER", "S002-BURGER,s002,burger")


def check_mixed_case_ids(engine, code, out):
    with engine.connect() as conn:
        row = conn.execute(select(schema.sensors).where(schema.sensors.c.sensor_id == "S002-BURGER")).first()
    assert row is not None and (row.store_id, row.sku) == ("S002", "BURGER")


def excel_serial_date(f):
    (f / "promotions.csv").write_text("store_id,sku,start_date,end_date\n,BURGER,46350,46356\n")


def check_excel_serial_date(engine, code, out):
    with engine.connect() as conn:
        rows = conn.execute(select(schema.promotions)).all()
    reasons = [r for r in quarantine_reasons(engine) if "promotions.csv" in r]
    assert (len(rows) == 1 and rows[0].start_date == date(1900, 1, 1) + timedelta(days=46350 - 2)) or (
        not rows and reasons
    )


def unknown_home_store(f):
    replace_in(f / "members.csv", "M4,S002,true", "M4,S009,true")


def check_unknown_home_store(engine, code, out):
    says(out, "members.csv", "row 4", "home_store_id")
    assert member(engine, "M4") is None and count(engine, schema.members) == 3


def bad_timezone(f):
    replace_in(f / "stores.csv", "Europe/London", "GMT+1 London")


def check_bad_timezone(engine, code, out):
    says(out, "stores.csv", "row 2", "timezone")
    assert count(engine, schema.stores) == 1


def pos_day_first_dates(f):
    path = f / "sales" / "sales_daily.csv"
    lines = path.read_text().splitlines()
    fixed = [lines[0]] + [
        ",".join(p[:2] + [datetime.fromisoformat(p[2]).strftime("%d-%m-%Y"), p[3]]) if p[2] >= "2026-11-16" else ln
        for ln in lines[1:]
        for p in [ln.split(",")]
    ]
    path.write_text("\n".join(fixed) + "\n")


def check_pos_day_first_dates(engine, code, out):
    says(out, "sales_daily.csv", "date is not a YYYY-MM-DD date")
    assert count(engine, schema.sales_daily) == 2 * 3 * (DAYS - 7)
    assert any("sales_daily.csv row" in r and "date" in r for r in quarantine_reasons(engine))


def pos_unknown_sku(f):
    (f / "sales" / "sales_daily.csv").write_text(
        (f / "sales" / "sales_daily.csv").read_text() + "S001,TOFU,2026-11-22,2\n"
    )


def check_pos_unknown_sku(engine, code, out):
    says(out, "[unknown sku: 1]")  # printed verbatim, not eaten as markup
    assert count(engine, schema.sales_daily) == 2 * 3 * DAYS


def pos_unknown_loyalty_card(f):
    replace_in(
        f / "sales" / "purchase_lines.csv",
        f"S001,R-S001-{END:%Y%m%d},1,BURGER,{END},M1,2",
        f"S001,R-S001-{END:%Y%m%d},1,BURGER,{END},M77,2",
    )


def check_pos_unknown_loyalty_card(engine, code, out):
    assert count(engine, schema.purchase_lines) == 2 * DAYS  # the sale is kept
    with engine.connect() as conn:
        assert conn.execute(select(schema.pending_member_links.c.member_id)).scalars().all() == ["M77"]


def pos_negative_units(f):
    replace_in(f / "sales" / "sales_daily.csv", f"S002,MILK,{END},", f"S002,MILK,{END},-")


def check_pos_negative_units(engine, code, out):
    says(out, "sales_daily.csv")
    assert any("units is negative" in r for r in quarantine_reasons(engine))
    assert count(engine, schema.sales_daily) == 2 * 3 * DAYS - 1


def pos_missing_column(f):
    path = f / "sales" / "sales_daily.csv"
    path.write_text("\n".join(",".join(line.split(",")[:3]) for line in path.read_text().splitlines()) + "\n")


def check_pos_missing_column(engine, code, out):
    says(out, "sales_daily.csv", "units")
    assert code == 2 and count(engine, schema.sales_daily) == 0


def pos_conflicting_duplicate(f):
    (f / "sales" / "sales_daily.csv").write_text(
        (f / "sales" / "sales_daily.csv").read_text() + f"S001,BREAD,{END},99\n"
    )


def check_pos_conflicting_duplicate(engine, code, out):
    assert any("duplicate key with different values" in r for r in quarantine_reasons(engine))


def consent_blank(f):
    replace_in(f / "members.csv", "M4,S002,true,false", "M4,S002,,false")


def check_consent_blank(engine, code, out):
    says(out, "members.csv", "row 4", "marketing_consent")
    assert member(engine, "M4") is None


def pos_spreadsheet_export(f):
    """Saved from a Dutch spreadsheet: BOM, `;`, a decimal comma, ids in lower case."""
    path = f / "sales" / "sales_daily.csv"
    rows = [line.split(",") for line in path.read_text().splitlines()]
    for row in rows:
        if row[:3] == ["S001", "BURGER", str(END)]:
            row[:2] = ["s001", "burger"]
        if row[:3] == ["S002", "MILK", str(END)]:
            row[3] = "2,5"
    path.write_bytes(b"\xef\xbb\xbf" + ("\n".join(";".join(row) for row in rows) + "\n").encode())


def check_pos_spreadsheet_export(engine, code, out):
    assert count(engine, schema.sales_daily) == 2 * 3 * DAYS and code == 0
    with engine.connect() as conn:
        sd = schema.sales_daily
        milk = conn.execute(
            select(sd.c.units).where(sd.c.store_id == "S002", sd.c.sku == "MILK", sd.c.date == END)
        ).scalar_one()
        burger = conn.execute(
            select(sd.c.units).where(sd.c.store_id == "S001", sd.c.sku == "BURGER", sd.c.date == END)
        ).scalar_one()
    assert milk == 2.5 and burger > 0


def pos_glued_files(f):
    path = f / "sales" / "sales_daily.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:100] + ["", lines[0], ""] + lines[100:] + ["", ""]) + "\n")


def check_pos_glued_files(engine, code, out):
    assert count(engine, schema.sales_daily) == 2 * 3 * DAYS and code == 0


def pos_extra_cells(f):
    replace_in(f / "sales" / "sales_daily.csv", f"S002,BREAD,{END},", f"S002,BREAD,{END},1,7,")


def check_pos_extra_cells(engine, code, out):
    assert any("sales_daily.csv row" in r and "more cells than the header" in r for r in quarantine_reasons(engine))
    assert count(engine, schema.sales_daily) == 2 * 3 * DAYS - 1


MISTAKES = [
    (opted_out_as_y, check_opted_out_as_y),
    (consent_unclear, check_consent_unclear),
    (consent_blank, check_consent_blank),
    (members_missing_column, check_members_missing_column),
    (misnamed_inventory, check_misnamed_inventory),
    (capitalised_deliveries, check_capitalised_deliveries),
    (delivery_without_offset, check_delivery_without_offset),
    (delivery_garbled_time, check_delivery_garbled_time),
    (negative_book_stock, check_negative_book_stock),
    (bom, check_bom),
    (semicolons_decimal_commas, check_semicolons_decimal_commas),
    (duplicated_header, check_duplicated_header),
    (trailing_empty_lines, check_trailing_empty_lines),
    (mixed_case_ids, check_mixed_case_ids),
    (excel_serial_date, check_excel_serial_date),
    (unknown_home_store, check_unknown_home_store),
    (bad_timezone, check_bad_timezone),
    (pos_day_first_dates, check_pos_day_first_dates),
    (pos_unknown_sku, check_pos_unknown_sku),
    (pos_unknown_loyalty_card, check_pos_unknown_loyalty_card),
    (pos_negative_units, check_pos_negative_units),
    (pos_missing_column, check_pos_missing_column),
    (pos_conflicting_duplicate, check_pos_conflicting_duplicate),
    (pos_spreadsheet_export, check_pos_spreadsheet_export),
    (pos_glued_files, check_pos_glued_files),
    (pos_extra_cells, check_pos_extra_cells),
]


@pytest.mark.parametrize("mistake, check", MISTAKES, ids=[m.__name__ for m, _ in MISTAKES])
def test_an_export_mistake_ends_in_a_clear_error_or_quarantine(mistake, check, tmp_path, db_url):
    folder = clean_folder(tmp_path / "retailer")
    mistake(folder)
    assert run(["migrate"], db_url)[0] == 0
    code, out = load(folder, db_url)
    engine = get_engine(db_url)
    check(engine, code, out)
    assert "Traceback" not in out
    leaked = [a for a in ADDRESSES if a in out or any(a in r for r in quarantine_reasons(engine))]
    assert not leaked, f"personal data in the output or a quarantine reason: {leaked}"
    again_code, again = load(folder, db_url)  # loading the same files again changes nothing
    assert again_code == code and "Traceback" not in again
    code2, listing = run(["quarantine", "list", "--limit", "500"], db_url)
    assert code2 == 0 and not [a for a in ADDRESSES if a in listing]


def test_members_file_corpus_never_prints_contact_details(tmp_path, db_url):
    """Every broken members file a CRM export can produce: no address or phone in any output."""
    variants = {
        "no header": lambda t: "\n".join(t.splitlines()[1:]),
        "header only half": lambda t: t.replace("contact_channel,contact_address", "contact"),
        "address in the consent column": lambda t: t.replace("M1,S001,yes", f"M1,S001,{ADDRESSES[0]}"),
        "shifted columns": lambda t: t.replace("M3,S002,1,0,email,", "M3,S002,1,0,"),
        "tabs": lambda t: t.replace(",", "\t"),
    }
    assert run(["migrate"], db_url)[0] == 0
    for name, broken in variants.items():
        folder = clean_folder(tmp_path / name.replace(" ", "_"))
        (folder / "members.csv").write_text(broken((folder / "members.csv").read_text()))
        code, out = load(folder, db_url)
        assert "Traceback" not in out, name
        reasons = quarantine_reasons(get_engine(db_url))
        assert not [a for a in ADDRESSES if a in out or any(a in r for r in reasons)], (
            f"{name}: personal data printed:\n{out}"
        )


def test_the_templates_walk_end_to_end(tmp_path, db_url):
    """README "Use your own data": templates -> check -> load -> run, from the templates as written."""
    folder = tmp_path / "mine"
    written = CliRunner().invoke(app, ["templates", str(folder)])  # `templates` takes no --db
    assert written.exit_code == 0, written.output
    code, out = run(["check", str(folder)], db_url)
    assert code == 0, out
    assert run(["migrate"], db_url)[0] == 0
    assert run(["load-reference", str(folder)], db_url)[0] == 0
    code, out = run(
        ["ingest-sales", str(folder / "sales" / "sales_daily.csv"), str(folder / "sales" / "purchase_lines.csv")],
        db_url,
    )
    assert code == 0, out
    code, out = run(["alerts", "detect", "--as-of", "2026-11-21T00:00"], db_url)
    assert code == 0, out
    assert json.loads(out[: out.rindex("}") + 1])["as_of"] == "2026-11-21T00:00:00+00:00"
