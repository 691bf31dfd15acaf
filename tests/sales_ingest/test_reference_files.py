"""Reference files behind their GX gate, on SQLite and PostgreSQL: good rows load, bad rows go to
quarantine with file/row/column reasons, bad files are refused with a message, and nothing ends in a
traceback or prints a member's contact details."""

import json
from datetime import UTC, date, datetime

import pandas as pd
import pytest
from sqlalchemy import func, select

from alerts.members import contactable
from core.domain import REFERENCE_FILE
from sales_ingest.contract import Known
from sales_ingest.reference_contract import FLAG_SPELLINGS
from sales_ingest.reference_files import check_folder, load_reference_data
from sql import schema

STORES = (
    "store_id,name,timezone,manager_email\nS001,Utrecht,Europe/Amsterdam,boss1@stores.example\n"
    "S002,London,Europe/London,boss2@stores.example\n"
)
PRODUCTS = (
    "sku,name,category,unit_price,unit_weight_g,shelf_capacity\nA,Bread,bakery,2.49,800,24\nB,Milk,dairy,1.10,1000,12\n"
)
MEMBER_HEADER = "member_id,home_store_id,marketing_consent,opted_out,contact_channel,contact_address\n"
SECRETS = ("jan@secret.example", "+31612345678", "piet@secret.example", "klaas@secret.example", "boss1@stores.example")


def folder(tmp_path, files: dict[str, str | bytes], base: bool = True):
    out = tmp_path / "world"
    out.mkdir(exist_ok=True)
    for name, text in {**({"stores.csv": STORES, "products.csv": PRODUCTS} if base else {}), **files}.items():
        (out / name).write_bytes(text if isinstance(text, bytes) else text.encode())
    return out


def table_rows(engine, table, order=None) -> list[dict]:
    with engine.connect() as conn:
        query = select(table).order_by(*(table.primary_key.columns if order is None else order))
        return [dict(r._mapping) for r in conn.execute(query)]


def quarantine(engine) -> list[dict]:
    return table_rows(engine, schema.quarantine, [schema.quarantine.c.reason])


def count(engine, table) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def assert_no_personal_values(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, f"personal value {secret!r} printed"


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# ------------------------------------------------------------------------------- the simulator's world


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from lab.simulator import simulate_world

    return simulate_world(tmp_path_factory.mktemp("w"), stores=2, skus=5, days=40, members=40, seed=3)


def test_simulated_world_loads_clean_and_a_second_load_changes_nothing(engine, world):
    first = load_reference_data(engine, world)
    assert first["rows_quarantined"] == 0 and first["files_refused"] == 0 and first["unknown_files"] == []
    assert first["members.csv"] == 40 and first["stores.csv"] == 2  # the old shape: file name -> rows loaded
    tables = [
        schema.stores,
        schema.products,
        schema.members,
        schema.sensors,
        schema.deliveries,
        schema.inventory_records,
        schema.promotions,
        schema.prices,
        schema.stockout_days,
    ]
    before = {t.name: table_rows(engine, t) for t in tables}
    assert all(before.values())
    again = load_reference_data(engine, world)
    assert again["rows_quarantined"] == 0
    assert {t.name: table_rows(engine, t) for t in tables} == before
    assert count(engine, schema.quarantine) == 0
    json.dumps(again)  # JSON-able, for the DAG and `--json`


# ------------------------------------------------------------------------------- consent


def test_opted_out_y_is_opted_out(engine, tmp_path):
    """Problem 1: `opted_out=Y` used to load as not opted out."""
    load_reference_data(
        engine, folder(tmp_path, {"members.csv": MEMBER_HEADER + "M1,S001,yes,Y,email,jan@secret.example\n"})
    )
    (member,) = table_rows(engine, schema.members)
    assert member["opted_out"] is True and member["marketing_consent"] is True
    assert contactable(pd.DataFrame({"member_id": ["M1"]}), pd.DataFrame([member])).empty


def test_every_flag_spelling_both_ways_and_nothing_else(engine, tmp_path):
    spellings = list(FLAG_SPELLINGS)
    lines = []
    for i, spelling in enumerate(spellings):
        shown = spelling.upper() if i % 2 else f" {spelling.title()} "  # any case, trimmed
        opposite = next(s for s in spellings if FLAG_SPELLINGS[s] != FLAG_SPELLINGS[spelling])
        lines.append(f"M{i},S001,{shown},{opposite},app,app:{i}")
        lines.append(f"N{i},S001,{opposite},{shown},app,app:n{i}")
    refused = ["maybe", "", "t", "f", "2", "on", "-"]
    lines += [f"X{i},S001,{bad},no,app,app:x{i}" for i, bad in enumerate(refused)]
    lines += [f"Y{i},S001,yes,{bad},app,app:y{i}" for i, bad in enumerate(refused)]
    summary = load_reference_data(engine, folder(tmp_path, {"members.csv": MEMBER_HEADER + "\n".join(lines) + "\n"}))
    loaded = {m["member_id"]: m for m in table_rows(engine, schema.members)}
    for i, spelling in enumerate(spellings):
        assert loaded[f"M{i}"]["marketing_consent"] is FLAG_SPELLINGS[spelling], spelling
        assert loaded[f"N{i}"]["opted_out"] is FLAG_SPELLINGS[spelling], spelling
    assert not any(m.startswith(("X", "Y")) for m in loaded), "an unreadable flag never defaults"
    members = summary["files"]["members.csv"]
    assert members["quarantined"] == 2 * len(refused)
    reasons = [q["reason"] for q in quarantine(engine)]
    assert any(r.startswith("members.csv row ") and "column marketing_consent: is empty" in r for r in reasons)
    assert any(
        "column opted_out: is not a yes/no flag (accepted: 1/0, true/false, yes/no, y/n, ja/nee)" in r for r in reasons
    )
    assert {q["channel"] for q in quarantine(engine)} == {REFERENCE_FILE}


def test_a_member_with_unknown_consent_never_ends_up_contactable(engine, tmp_path):
    world = folder(
        tmp_path,
        {"members.csv": MEMBER_HEADER + "M1,S001,yes,no,email,jan@secret.example\nM2,S001,1,0,sms,+31612345678\n"},
    )
    load_reference_data(engine, world)
    members = pd.DataFrame(table_rows(engine, schema.members))
    assert set(contactable(pd.DataFrame({"member_id": ["M1", "M2"]}), members)["member_id"]) == {"M1", "M2"}
    # the next export: M1's opt-out is unreadable, M2 withdrew consent but the row names an unknown
    # store, M3 is new with an empty consent
    (world / "members.csv").write_text(
        MEMBER_HEADER + "M1,S001,yes,maybe,email,jan@secret.example\nM2,S404,no,0,sms,+31612345678\n"
        "M3,S001,,no,email,piet@secret.example\n"
    )
    summary = load_reference_data(engine, world)
    assert summary["files"]["members.csv"]["consent_withdrawn"] == 2
    members = pd.DataFrame(table_rows(engine, schema.members))
    assert set(members["member_id"]) == {"M1", "M2"}  # M3 not loaded
    assert contactable(pd.DataFrame({"member_id": ["M1", "M2", "M3"]}), members).empty
    assert_no_personal_values(json.dumps(summary), *(q["reason"] for q in quarantine(engine)))
    # a later readable row restores what it says
    (world / "members.csv").write_text(MEMBER_HEADER + "M1,S001,yes,no,email,jan@secret.example\n")
    load_reference_data(engine, world)
    assert table_rows(engine, schema.members)[0]["marketing_consent"] is True


# ------------------------------------------------------------------------------- bad files


def test_missing_column_refuses_the_file_with_a_message_and_no_personal_value(engine, tmp_path):
    """Problem 2: a members.csv missing a column ended in an IntegrityError printing e-mails/phones."""
    text = (
        "member_id,home_store_id,marketing_consent,contact_channel,contact_address\n"
        "M1,S001,yes,email,jan@secret.example\n"
    )
    summary = load_reference_data(engine, folder(tmp_path, {"members.csv": text}))
    why = summary["files"]["members.csv"]["refused"]
    assert why.startswith("members.csv: missing required column(s) 'opted_out'")
    assert (
        "Expected columns (required: member_id, home_store_id, marketing_consent, opted_out, contact_channel, "
        "contact_address)" in why
    )
    assert "docs/data-contract.md" in why
    assert summary["files_refused"] == 1 and summary["stores.csv"] == 2  # the other files still load
    assert count(engine, schema.members) == 0
    (kept,) = quarantine(engine)
    assert kept["raw_content"] == text and kept["reason"].startswith(
        "members.csv: missing required column"
    )  # the file, kept whole
    assert_no_personal_values(json.dumps(summary), kept["reason"])


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "members.csv: is empty"),
        (b"\xef\xbb\xbf\r\n\r\n", "members.csv: is empty"),
        (
            "member_id;home_store_id;marketing_consent;opted_out;contact_channel;contact_address\n"
            "M1;S001;ja;nee;email;jan@secret.\xe9xample\n".encode("latin-1"),
            "members.csv: is not UTF-8 text",
        ),
        (
            b"M1,S001,yes,no,email,jan@secret.example\n",
            "members.csv: the first line does not name any expected column (is the header line missing?)",
        ),
        (
            (MEMBER_HEADER.strip() + ",optout,jan@secret.example\nM1,S001,yes,no,email,x@y.z,1,2\n").encode(),
            "members.csv: unexpected column(s) 'optout' (did you mean 'opted_out'?), one not shown (this file "
            "holds personal data)",
        ),
        ((MEMBER_HEADER.strip() + ",member_id\n").encode(), "members.csv: column(s) named twice: 'member_id'"),
    ],
)
def test_bad_files_are_refused_with_what_was_expected(engine, tmp_path, content, expected):
    summary = load_reference_data(engine, folder(tmp_path, {"members.csv": content}))
    why = summary["files"]["members.csv"]["refused"]
    assert why.startswith(expected) and "Expected columns (" in why
    assert summary["stores.csv"] == 2 and count(engine, schema.members) == 0
    assert_no_personal_values(json.dumps(summary))


def test_misnamed_files_are_unknown_with_a_hint(engine, tmp_path):
    """Problem 4: `inventory.csv` and `Deliveries.csv` were skipped silently."""
    inventory = "store_id,sku,as_of,book_units\nS001,A,2026-11-23T00:00:00+01:00,3\n"
    summary = load_reference_data(
        engine,
        folder(
            tmp_path,
            {
                "inventory.csv": inventory,
                "Deliveries.csv": "x\n",
                "notes.json": "{}",
                "sales_daily.csv": "store_id,sku,date,units\n",
            },
        ),
    )
    assert summary["unknown_files"] == [
        {"file": "Deliveries.csv", "hint": "did you mean deliveries.csv?"},
        {"file": "inventory.csv", "hint": "did you mean inventory_records.csv?"},
    ]
    assert summary["pos_files"] == ["sales_daily.csv"]  # left to ingest-sales, not unknown
    assert count(engine, schema.inventory_records) == 0 and summary["stores.csv"] == 2


def test_csv_and_parquet_of_the_same_file_are_both_refused(engine, tmp_path):
    world = folder(tmp_path, {})
    pd.read_csv(world / "products.csv").to_parquet(world / "products.parquet")
    summary = load_reference_data(engine, world)
    assert (
        "keep one" in summary["files"]["products.csv"]["refused"]
        and "keep one" in summary["files"]["products.parquet"]["refused"]
    )
    assert count(engine, schema.products) == 0 and count(engine, schema.stores) == 2


# ------------------------------------------------------------------------------- time zones, numbers


def test_timestamps_without_offset_are_read_in_the_store_time_zone(engine, tmp_path):
    """Problem 5: a timestamp without an offset ended in a TypeError naming no file, row or column."""
    with engine.begin() as conn:  # a store known only to the database
        conn.execute(
            schema.stores.insert().values(
                store_id="S003", name="Tokyo", timezone="Asia/Tokyo", manager_email="boss3@x.example"
            )
        )
    deliveries = (
        "delivery_id,store_id,sku,expected_at,expected_units,received_at,received_units\n"
        "D1,S001,A,2026-11-23 06:00,10,,\n"  # Amsterdam (from the folder): 05:00 UTC
        "D2,S002,A,2026-07-01T06:00:00,10,2026-07-01T06:30:00Z,10\n"  # London summer time: 05:00 UTC
        "D3,S003,B,2026-11-23 06:00,5,,\n"  # Tokyo (from the database): 21:00 UTC the day before
        "D4,S404,A,2026-11-23 06:00,10,,\n"  # unknown store: refused
        "D5,S001,A,23.11.2026 06:00,10,,\n"  # unreadable: refused, naming the column
        "D6,S001,A,2026-11-23T06:00:00+01:00,10,,\n"
    )  # an offset wins
    inventory = "store_id,sku,as_of,book_units\nS002,B,2026-11-23 00:00,4\n"
    summary = load_reference_data(
        engine, folder(tmp_path, {"deliveries.csv": deliveries, "inventory_records.csv": inventory})
    )
    got = {d["delivery_id"]: as_utc(d["expected_at"]) for d in table_rows(engine, schema.deliveries)}
    assert got == {
        "D1": utc(2026, 11, 23, 5),
        "D2": utc(2026, 7, 1, 5),
        "D3": utc(2026, 11, 22, 21),
        "D6": utc(2026, 11, 23, 5),
    }
    assert [as_utc(r["as_of"]) for r in table_rows(engine, schema.inventory_records)] == [utc(2026, 11, 23, 0)]
    reasons = [q["reason"] for q in quarantine(engine)]
    assert (
        "deliveries.csv row 4 column store_id: names an unknown store (not in stores.csv nor in the database); "
        "column expected_at: "
        "has no UTC offset, and the row's store has no known time zone to read it in"
    ) in reasons
    assert any(r.startswith("deliveries.csv row 5 column expected_at: is not a timestamp (ISO 8601") for r in reasons)
    assert summary["files"]["deliveries.csv"]["quarantined"] == 2


def test_negative_stock_and_other_meaningless_negatives_are_refused(engine, tmp_path):
    """Problem 6: negative book stock loaded (and raised a stock-out with on_shelf -2)."""
    files = {
        "inventory_records.csv": (
            "store_id,sku,as_of,book_units\nS001,A,2026-11-23T00:00:00Z,-2\nS001,B,2026-11-23T00:00:00Z,3\n"
        ),
        "products.csv": PRODUCTS + "C,Bad,x,-1,0,0\n",
        "sensors.csv": (
            "sensor_id,store_id,sku,kind,tare_g\nX1,S001,A,shelf_weight_g,-5\n"
            "X2,S001,A,shelf_scale,0\nX3,S001,B,Backroom_Units,\n"
        ),
        "deliveries.csv": (
            "delivery_id,store_id,sku,expected_at,expected_units,received_at,received_units\n"
            "D1,S001,A,2026-11-23T06:00:00Z,-1,,\n"
        ),
    }
    load_reference_data(engine, folder(tmp_path, files))
    assert [(r["sku"], r["book_units"]) for r in table_rows(engine, schema.inventory_records)] == [("B", 3.0)]
    assert [(s["sensor_id"], s["kind"], s["tare_g"]) for s in table_rows(engine, schema.sensors)] == [
        ("X3", "backroom_units", 0.0)
    ]
    reasons = [q["reason"] for q in quarantine(engine)]
    assert "inventory_records.csv row 1 column book_units: is negative (must be >= 0)" in reasons
    assert (
        "products.csv row 3 column unit_price: is negative (must be >= 0); column unit_weight_g: is out of range "
        "(must be > 0); "
        "column shelf_capacity: is out of range (must be >= 1 and <= 2147483647)"
    ) in reasons
    assert "sensors.csv row 1 column tare_g: is negative (must be >= 0)" in reasons
    assert "sensors.csv row 2 column kind: is not one of shelf_units, shelf_weight_g, backroom_units" in reasons
    assert "deliveries.csv row 1 column expected_units: is negative (must be >= 0)" in reasons


# ------------------------------------------------------------------------------- export mistakes


def test_the_usual_export_mistakes_load(engine, tmp_path):
    """BOM, `;` with decimal commas, CRLF, a repeated header row, trailing empty lines, Excel serial
    dates and mixed-case ids."""
    stores = (
        "\ufeffStore_ID ; Name ; TimeZone ; Manager_Email\r\nS001;Utrecht;europe/amsterdam;boss1@stores.example\r\n"
        "Store_ID ; Name ; TimeZone ; Manager_Email\r\nS002;London;Europe/London;boss2@stores.example\r\n\r\n"
        ";;;\r\n\r\n"
    )
    products = (
        "sku;name;category;unit_price;unit_weight_g;shelf_capacity\nA;Bread;bakery;2,49;800;24\n"
        "B;Milk;dairy;1,5;1000,5;12,0\n"
    )
    files = {
        "stores.csv": stores.encode("utf-8"),
        "products.csv": products,
        "members.csv": MEMBER_HEADER + "m1,s001,Ja,Nee,EMAIL,jan@secret.example\n",
        # the same sensor twice, in two spellings
        "sensors.csv": "sensor_id,store_id,sku,kind\ns1-a,s001,a,shelf_units\nS1-A,S001,A,shelf_units\n",
        "promotions.csv": "store_id\tsku\tstart_date\tend_date\n\tb\t46349\t46355\ns002\tA\t2026-12-01\t2026-12-07\n",
        "stockout_days.csv": 'store_id,sku,date,empty_from_hour\nS002,b,46348,"14.5"\n',
    }
    summary = load_reference_data(engine, folder(tmp_path, files, base=False))
    assert summary["rows_quarantined"] == 1, summary  # only the second spelling of the same sensor (an identical copy)
    assert summary["files"]["stores.csv"]["skipped"] == {"repeated header line(s)": 1, "blank line(s)": 3}
    assert [(s["store_id"], s["timezone"]) for s in table_rows(engine, schema.stores)] == [
        ("S001", "Europe/Amsterdam"),
        ("S002", "Europe/London"),
    ]
    assert [
        (p["sku"], p["unit_price"], p["unit_weight_g"], p["shelf_capacity"])
        for p in table_rows(engine, schema.products)
    ] == [("A", 2.49, 800.0, 24), ("B", 1.5, 1000.5, 12)]
    (member,) = table_rows(engine, schema.members)
    assert (
        member["member_id"],
        member["home_store_id"],
        member["marketing_consent"],
        member["opted_out"],
        member["contact_channel"],
    ) == ("m1", "S001", True, False, "email")
    assert [(s["sensor_id"], s["store_id"], s["sku"]) for s in table_rows(engine, schema.sensors)] == [
        ("s1-a", "S001", "A")
    ]
    assert [
        (p["store_id"], p["sku"], p["start_date"], p["end_date"]) for p in table_rows(engine, schema.promotions)
    ] == [("", "B", date(2026, 11, 23), date(2026, 11, 29)), ("S002", "A", date(2026, 12, 1), date(2026, 12, 7))]
    assert [(s["sku"], s["date"], s["empty_from_hour"]) for s in table_rows(engine, schema.stockout_days)] == [
        ("B", date(2026, 11, 22), 14.5)
    ]
    (copy,) = quarantine(engine)
    assert copy["reason"] == "sensors.csv row 2 column sensor_id: identical copy of row 1 (loaded once)"
    assert json.loads(copy["raw_content"]) == {
        "row": 2,
        "sensor_id": "S1-A",
        "store_id": "S001",
        "sku": "A",
        "kind": "shelf_units",
    }


def test_a_decimal_comma_is_refused_where_it_is_ambiguous(engine, tmp_path):
    products = 'sku,name,category,unit_price,unit_weight_g,shelf_capacity\nA,Bread,bakery,"2,49",800,24\n'
    load_reference_data(engine, folder(tmp_path, {"products.csv": products}, base=False))
    (kept,) = quarantine(engine)
    assert kept["reason"].startswith("products.csv row 1 column unit_price: has a comma: write decimals with a point")


def test_parquet_files_load_like_csv(engine, tmp_path):
    world = tmp_path / "pq"
    world.mkdir()
    pd.DataFrame(
        {
            "store_id": ["S001"],
            "name": ["Utrecht"],
            "timezone": ["Europe/Amsterdam"],
            "manager_email": ["boss1@stores.example"],
        }
    ).to_parquet(world / "stores.parquet")
    pd.DataFrame(
        {
            "sku": ["A"],
            "name": ["Bread"],
            "category": ["bakery"],
            "unit_price": [2.49],
            "unit_weight_g": [800.0],
            "shelf_capacity": [24],
        }
    ).to_parquet(world / "products.parquet")
    pd.DataFrame(
        {
            "member_id": ["M1", "M2", "M3"],
            "home_store_id": ["s001"] * 3,
            "marketing_consent": pd.array([True, False, None], dtype="boolean"),
            "opted_out": [False, True, False],
            "contact_channel": ["email", "sms", "app"],
            "contact_address": ["jan@secret.example", "+31612345678", "app:3"],
        }
    ).to_parquet(world / "members.parquet")
    pd.DataFrame(
        {"store_id": ["S001"], "sku": ["A"], "as_of": [pd.Timestamp("2026-11-23 06:00")], "book_units": [5]}
    ).to_parquet(world / "inventory_records.parquet")  # a zone-less timestamp: the store's zone
    pd.DataFrame(
        {"store_id": [None], "sku": ["A"], "start_date": [date(2026, 12, 1)], "end_date": [pd.Timestamp("2026-12-07")]}
    ).to_parquet(world / "promotions.parquet")
    summary = load_reference_data(engine, world)
    assert summary["products.parquet"] == 1 and summary["files"]["members.parquet"]["quarantined"] == 1
    assert [(m["member_id"], m["marketing_consent"], m["opted_out"]) for m in table_rows(engine, schema.members)] == [
        ("M1", True, False),
        ("M2", False, True),
    ]
    assert [as_utc(r["as_of"]) for r in table_rows(engine, schema.inventory_records)] == [utc(2026, 11, 23, 5)]
    assert [(p["store_id"], p["end_date"]) for p in table_rows(engine, schema.promotions)] == [("", date(2026, 12, 7))]
    (kept,) = quarantine(engine)
    assert kept["reason"].startswith("members.parquet row 3 column marketing_consent: is empty")
    assert kept["source"] == str(world / "members.parquet")


# ------------------------------------------------------------------------------- keys


def test_unknown_ids_are_quarantined_never_an_integrity_error(engine, tmp_path):
    files = {
        "stores.csv": STORES + "S003,Broken,Nowhere/City,boss3@stores.example\n",  # refused: its children follow
        "members.csv": MEMBER_HEADER + "M1,S003,yes,no,app,app:1\nM2,S002,yes,no,app,app:2\n",
        "sensors.csv": "sensor_id,store_id,sku,kind,tare_g\nX1,S001,ZZ,shelf_units,0\n",
        "promotions.csv": "store_id,sku,start_date,end_date\nS404,A,2026-12-01,2026-12-07\n,A,2026-12-08,2026-12-01\n",
        "stockout_days.csv": "store_id,sku,date,empty_from_hour\nS001,A,2026-11-20,25\n",
        "prices.csv": (
            "store_id,sku,date,price\n,A,2026-12-01,0\nS404,A,2026-12-01,1.5\n,ZZ,2026-12-01,1.5\n,A,2026-12-08,2.49\n"
        ),
    }
    summary = load_reference_data(engine, folder(tmp_path, files))
    assert summary["files_refused"] == 0
    assert [(r["store_id"], r["sku"], r["price"]) for r in table_rows(engine, schema.prices)] == [("", "A", 2.49)]
    assert [m["member_id"] for m in table_rows(engine, schema.members)] == ["M2"]
    assert (
        count(engine, schema.sensors) == 0
        and count(engine, schema.promotions) == 0
        and count(engine, schema.stockout_days) == 0
    )
    reasons = {q["reason"] for q in quarantine(engine)}
    assert reasons == {
        "stores.csv row 3 column timezone: is not an IANA time zone name (e.g. Europe/Amsterdam)",
        "members.csv row 1 column home_store_id: names an unknown store (not in stores.csv nor in the database)",
        "sensors.csv row 1 column sku: names an unknown product (not in products.csv nor in the database)",
        "promotions.csv row 1 column store_id: names an unknown store (not in stores.csv nor in the database)",
        "promotions.csv row 2 column end_date: is before start_date",
        "stockout_days.csv row 1 column empty_from_hour: is out of range (must be >= 0 and <= 24)",
        "prices.csv row 1 column price: is out of range (must be > 0)",
        "prices.csv row 2 column store_id: names an unknown store (not in stores.csv nor in the database)",
        "prices.csv row 3 column sku: names an unknown product (not in products.csv nor in the database)",
    }


def test_conflicting_duplicates_are_all_refused(engine, tmp_path):
    products = PRODUCTS + "a,Bread again,bakery,2.99,800,24\nC,Cheese,dairy,4,500,10\nC,Cheese,dairy,4.0,500,10\n"
    summary = load_reference_data(engine, folder(tmp_path, {"products.csv": products}))
    assert [p["sku"] for p in table_rows(engine, schema.products)] == ["B", "C"]
    assert summary["files"]["products.csv"]["reasons"] == {
        "column sku: same key as row 3 with different values": 1,
        "column sku: same key as row 1 with different values": 1,
        "column sku: identical copy of row 4 (loaded once)": 1,
    }


def test_a_bad_folder_loaded_twice_changes_nothing(engine, tmp_path):
    files = {
        "members.csv": MEMBER_HEADER + "M1,S001,yes,maybe,email,jan@secret.example\nM2,S001,no,no,sms,+31612345678\n",
        "inventory_records.csv": "store_id,sku,as_of,book_units\nS001,A,2026-11-23 00:00,-2\n",
        "sensors.csv": "sensor_id,store_id\nX,S001\n",
        "inventory.csv": "",
    }
    world = folder(tmp_path, files)
    first = load_reference_data(engine, world)
    snapshot = (table_rows(engine, schema.members), quarantine(engine))
    second = load_reference_data(engine, world)
    assert (table_rows(engine, schema.members), quarantine(engine)) == snapshot
    assert (
        first["rows_quarantined"] == second["rows_quarantined"] == 2 and len(snapshot[1]) == 3
    )  # two rows, one refused file
    assert_no_personal_values(json.dumps(second), *(q["reason"] for q in snapshot[1]))


def test_check_folder_reads_the_folder_only(tmp_path):
    """`check` without a database: the folder's own files are the known ids, and nothing is written."""
    world = folder(
        tmp_path,
        {
            "members.csv": MEMBER_HEADER
            + "M1,S001,yes,no,email,jan@secret.example\nM2,S009,yes,no,email,piet@secret.example\n"
        },
    )
    result = check_folder(world, Known())
    assert [str(p) for p in result.problems] == [
        "members.csv row 2 column home_store_id: names an unknown store (not in stores.csv nor in the database)"
    ]


def test_empty_unnamed_columns_header_only_files_and_far_dates_are_no_crash(tmp_path):
    files = {
        "stores.csv": "store_id,,name,timezone,manager_email,\nS001,,Utrecht,Europe/Amsterdam,boss1@stores.example,\n",
        "promotions.csv": "store_id,sku,start_date,end_date\n",  # no promotions: fine
        "inventory_records.csv": (
            "store_id,sku,as_of,book_units\nS001,A,0001-01-01T00:00:00,1\nS001,A,9999-12-31T23:59:59-05:00,1\n"
        ),
    }
    result = check_folder(folder(tmp_path, files), Known())
    assert result.files["stores.csv"].rows == 1 and result.files["promotions.csv"].rows == 0
    assert [str(p) for p in result.problems] == [
        "inventory_records.csv row 1 column as_of: is out of the range of timestamps",
        "inventory_records.csv row 2 column as_of: is out of the range of timestamps",
    ]
