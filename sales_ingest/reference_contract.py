"""The contract of every file a retailer hands Shelfwatch, as data: file names, columns, types, units,
allowed values, time-zone rules and an example of each.

Every file is specified here in full: the reference files (stores, products, members, sensors,
deliveries, inventory records, promotions, prices, stock-out days) and the POS files (`sales_daily`,
`purchase_lines`). Everything else is generated from these specs: the Great Expectations suite of
every file (the one gate, `contract`), the templates (`shelfwatch templates`), the checker
(`shelfwatch check`) and docs/data-contract.md (`markdown()`).

The cell readers are here too, so the rules the page documents are the rules the loader applies:
`FLAG_SPELLINGS` for yes/no flags, `read_number`, `read_date`, `read_timestamp`. They raise
`CellProblem` with a message that never repeats the cell's value (values may be personal data).
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import lru_cache

DOC = "docs/data-contract.md"

# Yes/no flags (members.marketing_consent, members.opted_out): these spellings, case-insensitive and
# trimmed, and nothing else. Any other value, an empty cell included, refuses the row: consent is never
# guessed.
FLAG_SPELLINGS: dict[str, bool] = {
    "1": True,
    "true": True,
    "yes": True,
    "y": True,
    "ja": True,
    "0": False,
    "false": False,
    "no": False,
    "n": False,
    "nee": False,
}
FLAG_HELP = "accepted: " + ", ".join(
    f"{t}/{f}"
    for t, f in zip(
        [k for k, v in FLAG_SPELLINGS.items() if v], [k for k, v in FLAG_SPELLINGS.items() if not v], strict=True
    )
)

EXCEL_EPOCH = datetime(1899, 12, 30)  # Excel's day 0 (serial dates count days from here)
EXCEL_SERIAL_RANGE = (20000, 80000)  # 1954-10-03 .. 2119-01-09: a bare number outside it is no date
INT_MAX = 2_147_483_647  # PostgreSQL INTEGER

# column types, as the page names them
ID, TEXT, NUMBER, WHOLE, FLAG, CHOICE, DATE, TIMESTAMP, ZONE = (
    "id",
    "text",
    "number",
    "whole number",
    "yes/no flag",
    "one of",
    "date",
    "timestamp",
    "time zone",
)


class CellProblem(ValueError):
    """A cell that cannot be read as its column's type; the message never contains the value."""


def _num(x: float) -> str:
    return str(int(x)) if x == int(x) else f"{x:g}"


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    type: str
    description: str
    example: str
    required: bool = True  # the column must be in the file and every cell filled
    unit: str = ""
    allowed: tuple[str, ...] = ()  # CHOICE: the values (case-insensitive)
    minimum: float | None = None
    strict_minimum: bool = False  # minimum excluded (> rather than >=)
    maximum: float | None = None
    references: str = ""  # the file whose ids this column names ("stores")
    max_length: int | None = None
    personal: bool = False  # personal data: no value of it is ever printed or logged
    default: str | None = None  # an optional column's value when left out or empty (None: no value)
    # How the gate reads and checks the cells (none of this is on the page):
    reader: str = ""  # "": the contract's cell reader of the type; "pandas" (numbers) / "iso" (YYYY-MM-DD dates)
    not_after_today: bool = False  # DATE: a day after today refuses the row
    checked: bool = True  # False: taken as written; the gate checks only that it is filled (when required)

    @property
    def type_text(self) -> str:
        return self.type + (
            f" (at most {self.max_length} characters)" if self.max_length and self.type in (ID, TEXT) else ""
        )

    @property
    def time_zone_rule(self) -> str:
        if self.type == TIMESTAMP:
            return "offset as written; no offset: the store's time zone"
        if self.type == DATE:
            return "the store's local day"
        return ""

    @property
    def allowed_text(self) -> str:
        """Allowed values in words, for the page and for problems."""
        if self.type == FLAG:
            return FLAG_HELP
        if self.type == CHOICE:
            return " | ".join(self.allowed)
        if self.type == ZONE:
            return "an IANA time zone, e.g. Europe/Amsterdam"
        if self.references:
            empty = " (empty: every store)" if not self.required and self.default == "" else ""
            return f"a {self.references.rstrip('s')} in {self.references}.csv or the database{empty}"
        bounds = []
        if self.minimum is not None:
            bounds.append(f"{'>' if self.strict_minimum else '>='} {_num(self.minimum)}")
        if self.maximum is not None:
            bounds.append(f"<= {_num(self.maximum)}")
        return " and ".join(bounds)


@dataclass(frozen=True)
class FileSpec:
    name: str  # "stores": stores.csv / stores.parquet
    kind: str  # "reference" (load-reference) | "pos" (ingest-sales)
    table: str  # the database table it fills
    description: str
    columns: tuple[ColumnSpec, ...]
    key: tuple[str, ...]  # the columns that name one row; a second row with the same key is a duplicate
    rules: tuple[str, ...] = ()  # rules across columns, in words
    # How the gate words problems: "column" (one per column, the most basic first: "column C: problem") or
    # "row" (every problem of the row, in `check_order`, each naming its column: "C is empty")
    wording: str = "column"
    check_order: tuple[str, ...] = ()  # "row" wording: the columns whose checks run first, in this order

    @property
    def file_names(self) -> tuple[str, str]:
        return (f"{self.name}.csv", f"{self.name}.parquet")

    @property
    def personal(self) -> bool:
        return any(c.personal for c in self.columns)

    def column(self, name: str) -> ColumnSpec:
        return next(c for c in self.columns if c.name == name)

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def example_row(self) -> dict[str, str]:
        return {c.name: c.example for c in self.columns}

    def expected_columns_text(self) -> str:
        optional = [c.name for c in self.columns if not c.required]
        text = "required: " + ", ".join(self.required_columns)
        return text + (f"; optional: {', '.join(optional)}" if optional else "")


def _id(name: str, description: str, example: str, length: int = 32, **kw) -> ColumnSpec:
    return ColumnSpec(name, ID, description, example, max_length=length, **kw)


def _store_ref(description: str = "The store (stores.store_id).", **kw) -> ColumnSpec:
    return _id("store_id", description, "S001", references="stores", **kw)


def _sku_ref(description: str = "The product (products.sku).") -> ColumnSpec:
    return _id("sku", description, "SKU00001", references="products")


# Parents before children: the order files load in, so a row may name an id loaded just before it.
REFERENCE_FILES: dict[str, FileSpec] = {
    f.name: f
    for f in (
        FileSpec(
            "stores",
            "reference",
            "stores",
            "One row per store.",
            (
                _id("store_id", "The store's id, as the POS files and the shelf sensors name it.", "S001"),
                ColumnSpec(
                    "name", TEXT, "The store's name, as people know it.", "Shelfwatch Market Utrecht", max_length=120
                ),
                ColumnSpec(
                    "timezone",
                    ZONE,
                    "The store's IANA time zone: its days, its trading hours and any time written without an offset.",
                    "Europe/Amsterdam",
                    max_length=64,
                ),
                ColumnSpec(
                    "manager_email",
                    TEXT,
                    "Where the store's alert e-mails go.",
                    "manager.s001@stores.example",
                    max_length=200,
                    personal=True,
                ),
                ColumnSpec(
                    "chain",
                    TEXT,
                    "The chain or region the store belongs to: a recommended transfer comes only from stores of the "
                    "same "
                    "chain. Empty: the store is in the one unnamed chain.",
                    "Shelfwatch North",
                    max_length=64,
                    required=False,
                ),
                ColumnSpec(
                    "latitude",
                    NUMBER,
                    "Where the store is (WGS84): transfers come from the nearest stores first. Empty: unknown "
                    "(such stores come after those whose distance is known).",
                    "52.0907",
                    unit="degrees",
                    minimum=-90,
                    maximum=90,
                    required=False,
                ),
                ColumnSpec(
                    "longitude",
                    NUMBER,
                    "Where the store is (WGS84), east positive.",
                    "5.1214",
                    unit="degrees",
                    minimum=-180,
                    maximum=180,
                    required=False,
                ),
            ),
            ("store_id",),
        ),
        FileSpec(
            "products",
            "reference",
            "products",
            "One row per product (SKU), the same in every store.",
            (
                _id("sku", "The product's id, as the POS files and the shelf sensors name it.", "SKU00001"),
                ColumnSpec("name", TEXT, "The product's name.", "Wholegrain bread 800 g", max_length=200),
                ColumnSpec("category", TEXT, "Product group, for the report.", "bakery", max_length=64),
                ColumnSpec(
                    "unit_price", NUMBER, "Shelf price of one unit.", "2.49", unit="currency per unit", minimum=0
                ),
                ColumnSpec(
                    "unit_weight_g",
                    NUMBER,
                    "Weight of one unit: a weight sensor's grams are divided by it.",
                    "800",
                    unit="g",
                    minimum=0,
                    strict_minimum=True,
                ),
                ColumnSpec(
                    "shelf_capacity",
                    WHOLE,
                    "Units that fit on the shelf.",
                    "24",
                    unit="units",
                    minimum=1,
                    maximum=INT_MAX,
                ),
                ColumnSpec(
                    "vegetarian",
                    FLAG,
                    "Whether the product is vegetarian: a vegetarian favourite is never given a non-vegetarian "
                    "substitute. Empty: unknown.",
                    "yes",
                    required=False,
                ),
            ),
            ("sku",),
        ),
        FileSpec(
            "members",
            "reference",
            "members",
            "Loyalty members who may be told when a favourite product is back. Personal data: "
            "Shelfwatch never prints or logs a value of this file; a refused row is kept only in the quarantine table.",
            (
                _id("member_id", "The loyalty card id, as purchase_lines.member_id names it.", "M0000001"),
                _id("home_store_id", "The member's home store (stores.store_id).", "S001", references="stores"),
                ColumnSpec(
                    "marketing_consent",
                    FLAG,
                    "Whether the member agreed to be contacted. Required: an unreadable or empty value refuses the "
                    "row.",
                    "yes",
                ),
                ColumnSpec(
                    "opted_out",
                    FLAG,
                    "Whether the member has since opted out (wins over consent). Required: an unreadable or empty "
                    "value "
                    "refuses the row.",
                    "no",
                ),
                ColumnSpec(
                    "contact_channel",
                    CHOICE,
                    "How to reach the member.",
                    "email",
                    allowed=("email", "sms", "app"),
                    max_length=16,
                ),
                ColumnSpec(
                    "contact_address",
                    TEXT,
                    "E-mail address (channel email), phone number (sms) or app id (app).",
                    "jan.jansen@example.com",
                    max_length=200,
                    personal=True,
                ),
            ),
            ("member_id",),
            rules=(
                "contact_address must be an e-mail address when contact_channel is email, and a phone number (digits, "
                "spaces, +, -, brackets) "
                "when it is sms.",
                "A refused row never makes a member contactable: if the member is already in the database, a refused "
                "row that withdraws consent, "
                "opts out, or cannot be read on either flag sets marketing_consent to false (and opted_out to true "
                "when the row says so).",
            ),
        ),
        FileSpec(
            "sensors",
            "reference",
            "sensors",
            "One row per shelf sensor and what it measures.",
            (
                _id("sensor_id", "The sensor's id, as its MQTT messages name it.", "S001-SH-SKU00001", length=64),
                _store_ref("The store the sensor is in (stores.store_id)."),
                _sku_ref("The product on the sensor's shelf (products.sku)."),
                ColumnSpec(
                    "kind",
                    CHOICE,
                    "What the sensor counts: units on the shelf, grams on the shelf, or units in the back room.",
                    "shelf_units",
                    allowed=("shelf_units", "shelf_weight_g", "backroom_units"),
                    max_length=32,
                ),
                ColumnSpec(
                    "tare_g",
                    NUMBER,
                    "Weight of the empty shelf or tray, taken off weight readings.",
                    "0",
                    unit="g",
                    minimum=0,
                    required=False,
                    default="0",
                ),
            ),
            ("sensor_id",),
        ),
        FileSpec(
            "deliveries",
            "reference",
            "deliveries",
            "Deliveries expected and received, per store and product.",
            (
                _id(
                    "delivery_id",
                    "The delivery line's id (unique across stores).",
                    "D-S001-SKU00001-20261123",
                    length=64,
                ),
                _store_ref("The store delivered to (stores.store_id)."),
                _sku_ref("The product delivered (products.sku)."),
                ColumnSpec("expected_at", TIMESTAMP, "When the delivery is due.", "2026-11-23T06:00:00+01:00"),
                ColumnSpec("expected_units", NUMBER, "Units ordered.", "24", unit="units", minimum=0),
                ColumnSpec(
                    "received_at",
                    TIMESTAMP,
                    "When it arrived; empty while it has not.",
                    "2026-11-23T06:40:00+01:00",
                    required=False,
                ),
                ColumnSpec(
                    "received_units",
                    NUMBER,
                    "Units that arrived; empty while it has not.",
                    "24",
                    unit="units",
                    minimum=0,
                    required=False,
                ),
            ),
            ("delivery_id",),
        ),
        FileSpec(
            "inventory_records",
            "reference",
            "inventory_records",
            "Book stock: the units the stock system believes a store has.",
            (
                _store_ref(),
                _sku_ref(),
                ColumnSpec("as_of", TIMESTAMP, "When the stock was counted or computed.", "2026-11-23T00:00:00+01:00"),
                ColumnSpec(
                    "book_units",
                    NUMBER,
                    "Units in the store (shelf and back room) by the books.",
                    "41",
                    unit="units",
                    minimum=0,
                ),
            ),
            ("store_id", "sku", "as_of"),
        ),
        FileSpec(
            "promotions",
            "reference",
            "promotions",
            "Promotions, past and planned; the forecast expects more sales during them.",
            (
                _store_ref("The store (stores.store_id); empty: every store.", required=False, default=""),
                _sku_ref("The product on promotion (products.sku)."),
                ColumnSpec("start_date", DATE, "First day of the promotion.", "2026-12-21"),
                ColumnSpec("end_date", DATE, "Last day of the promotion (included).", "2026-12-27"),
            ),
            ("store_id", "sku", "start_date"),
            rules=("end_date must not be before start_date.",),
        ),
        FileSpec(
            "prices",
            "reference",
            "prices",
            "Shelf prices, past and planned: a row sets the price from its date on, until the next "
            "row for the same store and product. The forecast learns how demand answers price changes and uses the "
            "planned ones.",
            (
                _store_ref(
                    "The store (stores.store_id); empty: every store (a store's own row wins on the same date).",
                    required=False,
                    default="",
                ),
                _sku_ref("The product (products.sku)."),
                ColumnSpec("date", DATE, "First day (store-local) the price applies.", "2026-12-01"),
                ColumnSpec(
                    "price",
                    NUMBER,
                    "Shelf price per unit, in the store's currency (a decimal point, no comma).",
                    "2.49",
                    unit="currency per unit",
                    minimum=0,
                    strict_minimum=True,
                ),
            ),
            ("store_id", "sku", "date"),
        ),
        FileSpec(
            "stockout_days",
            "reference",
            "stockout_days",
            "Days a shelf was empty before closing: the forecast does not read those days' low sales as low demand.",
            (
                _store_ref(),
                _sku_ref(),
                ColumnSpec("date", DATE, "The day the shelf ran empty.", "2026-11-20"),
                ColumnSpec(
                    "empty_from_hour",
                    NUMBER,
                    "Store-local hour it was first seen empty (14.5 = 14:30); empty: unknown.",
                    "14.5",
                    unit="hour of the day",
                    minimum=0,
                    maximum=24,
                    required=False,
                ),
            ),
            ("store_id", "sku", "date"),
        ),
    )
}

# The POS columns, described and read as the POS gate always read them: numbers as pandas reads them,
# dates YYYY-MM-DD only and not after today, ids checked against the database (the member id is not:
# an unknown card does not stop the sale, its link waits).
_POS_COLUMNS: dict[str, ColumnSpec] = {
    c.name: c
    for c in (
        _id("store_id", "The store (stores.store_id), spelled exactly as there.", "S001", references="stores"),
        _id("sku", "The product (products.sku), spelled exactly as there.", "SKU00001", references="products"),
        ColumnSpec(
            "date",
            DATE,
            "The store-local day of the sale, written YYYY-MM-DD; not after today.",
            "2026-11-20",
            reader="iso",
            not_after_today=True,
        ),
        ColumnSpec(
            "units", NUMBER, "Units sold (a decimal point, no comma).", "3", unit="units", minimum=0, reader="pandas"
        ),
        ColumnSpec(
            "receipt_id",
            TEXT,
            "The receipt, unique within the store.",
            "R-S001-20261120-0042",
            max_length=64,
            checked=False,
        ),
        ColumnSpec("line_no", WHOLE, "Line number on the receipt.", "1", reader="pandas"),
        _id(
            "member_id",
            "Loyalty card scanned; empty: none. A card not yet in members.csv does not stop the sale: the line is "
            "kept and its member link waits until the member is loaded.",
            "M0000001",
            references="members",
            required=False,
            checked=False,
        ),
    )
}


def _pos_spec(kind: str, table: str, description: str, columns: list[str], key: list[str]) -> FileSpec:
    return FileSpec(
        kind,
        "pos",
        table,
        description,
        tuple(_POS_COLUMNS[c] for c in columns),
        tuple(key),
        wording="row",
        check_order=("units", "date", "store_id", "sku", "line_no"),
    )


POS_FILES: dict[str, FileSpec] = {
    f.name: f
    for f in (
        _pos_spec(
            "sales_daily",
            "sales_daily",
            "Units sold per store, product and day.",
            ["store_id", "sku", "date", "units"],
            ["store_id", "sku", "date"],
        ),
        _pos_spec(
            "purchase_lines",
            "purchase_lines",
            "Receipt lines, with the loyalty card where one was scanned (to find members' favourite products).",
            ["store_id", "receipt_id", "line_no", "sku", "date", "member_id", "units"],
            ["store_id", "receipt_id", "line_no"],
        ),
    )
}
ALL_FILES: dict[str, FileSpec] = {**REFERENCE_FILES, **POS_FILES}  # every input file, reference files first

# Extensions of files that look like an attempt at an input file (others, e.g. .json, are ignored).
TABLE_SUFFIXES = (".csv", ".parquet", ".tsv", ".txt", ".xlsx", ".xls")


def spec_for(file_name: str) -> FileSpec | None:
    """The spec a file name means, exactly (case-sensitive: `Deliveries.csv` is not `deliveries.csv`)."""
    for spec in ALL_FILES.values():
        if file_name in spec.file_names:
            return spec
    return None


def looks_like_input(file_name: str) -> bool:
    """A file that is, or tries to be, an input file (a table-like extension)."""
    return not file_name.startswith((".", "~$")) and file_name.lower().endswith(TABLE_SUFFIXES)


def did_you_mean(file_name: str) -> str:
    """A hint for a file name that is no input file: the accepted name it most resembles, if any."""
    stem, _, suffix = file_name.rpartition(".")
    stem, suffix = (stem or suffix).strip().lower(), ("." + suffix.lower()) if stem else ""
    names = list(ALL_FILES)
    target = ".parquet" if suffix == ".parquet" else ".csv"
    candidates = [n for n in names if n == stem] or [
        n for n in names if len(stem) >= 4 and (n.startswith(stem) or stem.startswith(n))
    ]
    candidates = candidates or difflib.get_close_matches(stem, names, n=1, cutoff=0.6)
    if not candidates:
        return "no input file has that name; accepted: " + ", ".join(n + ".csv" for n in names) + " (or .parquet)"
    spec = ALL_FILES[candidates[0]]
    hint = f"did you mean {spec.name}{target}?"
    if suffix not in (".csv", ".parquet"):
        hint += " (save it as CSV UTF-8 or Parquet)"
    if spec.kind == "pos":
        hint += " (a POS file: `shelfwatch ingest-sales`)"
    return hint


def close_column(name: str, spec: FileSpec) -> str | None:
    """The expected column a header name most resembles (for `did you mean`)."""
    match = difflib.get_close_matches(name, spec.column_names, n=1, cutoff=0.75)
    return match[0] if match else None


# ---------------------------------------------------------------------------------- reading cells

_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def read_number(text: str, decimal_comma: bool = False) -> float:
    """A number with a decimal point; a decimal comma only where the file allows it (`;` or tab separated)."""
    t = text.strip()
    if "," in t:
        if not decimal_comma:
            raise CellProblem(
                "has a comma: write decimals with a point (a decimal comma is read only in ;-separated files)"
            )
        if t.count(",") > 1 or "." in t:
            raise CellProblem("is not a number (no thousands separators)")
        t = t.replace(",", ".")
    if not _NUMBER.fullmatch(t):
        raise CellProblem("is not a number")
    value = float(t)
    if not math.isfinite(value):
        raise CellProblem("is not a finite number")
    return value


def read_whole(text: str, decimal_comma: bool = False) -> int:
    value = read_number(text, decimal_comma)
    if value != int(value):
        raise CellProblem("is not a whole number")
    return int(value)


def excel_serial(text: str, decimal_comma: bool = False) -> float | None:
    """The days of an Excel serial date (46349 = 2026-11-23), or None if the text is no such number."""
    try:
        value = read_number(text, decimal_comma)
    except CellProblem:
        return None
    return value if EXCEL_SERIAL_RANGE[0] <= value <= EXCEL_SERIAL_RANGE[1] else None


def read_date(text: str, decimal_comma: bool = False) -> date:
    """YYYY-MM-DD (a midnight time after it is allowed), or an Excel serial date."""
    t = text.strip()
    serial = excel_serial(t, decimal_comma)
    if serial is not None:
        if serial != int(serial):
            raise CellProblem("is an Excel serial date with a time of day: a day is expected")
        return (EXCEL_EPOCH + timedelta(days=int(serial))).date()
    try:
        if len(t) > 10:
            stamp = datetime.fromisoformat(t)
            if stamp.time() != datetime.min.time():
                raise CellProblem("has a time of day: a date (YYYY-MM-DD) is expected")
            return stamp.date()
        return date.fromisoformat(t)
    except ValueError:
        raise CellProblem("is not a date (YYYY-MM-DD, e.g. 2026-11-23, or an Excel serial date)") from None


def read_timestamp(text: str, zone: tzinfo | None, decimal_comma: bool = False) -> datetime:
    """ISO 8601 with a UTC offset; without one (or an Excel serial date-time) in the store's time zone
    `zone`. Returns a UTC datetime."""
    t = text.strip()
    serial = excel_serial(t, decimal_comma)
    if serial is not None:
        stamp = EXCEL_EPOCH + timedelta(days=serial)
        stamp = stamp.replace(microsecond=0) + timedelta(seconds=round(stamp.microsecond / 1e6))
    else:
        try:
            stamp = datetime.fromisoformat(t)
        except ValueError:
            raise CellProblem(
                "is not a timestamp (ISO 8601, e.g. 2026-11-23T06:00:00+01:00; without an offset it is read in the "
                "store's time zone)"
            ) from None
    if stamp.tzinfo is None:
        if zone is None:
            raise CellProblem("has no UTC offset, and the row's store has no known time zone to read it in")
        stamp = stamp.replace(tzinfo=zone)
    try:
        return stamp.astimezone(UTC)
    except (OverflowError, ValueError):
        raise CellProblem("is out of the range of timestamps") from None


def read_flag(text: str) -> bool:
    value = FLAG_SPELLINGS.get(text.strip().lower())
    if value is None:
        raise CellProblem(f"is not a yes/no flag ({FLAG_HELP})")
    return value


@lru_cache(maxsize=1)
def time_zones() -> dict[str, str]:
    """Every IANA time zone name, by its lower-case spelling."""
    import zoneinfo

    return {name.lower(): name for name in zoneinfo.available_timezones()}


# ---------------------------------------------------------------------------------- the page


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _table(spec: FileSpec) -> list[str]:
    lines = [
        "| column | type | unit | required | allowed values | time zone | description | example |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in spec.columns:
        required = (
            "required"
            if c.required
            else ("optional" + (f" (empty: {c.default or 'every store'})" if c.default is not None else ""))
        )
        lines.append(
            "| "
            + " | ".join(
                _cell(x)
                for x in (
                    f"`{c.name}`",
                    c.type_text,
                    c.unit,
                    required,
                    c.allowed_text,
                    c.time_zone_rule,
                    c.description + (" Personal data." if c.personal else ""),
                    f"`{c.example}`" if c.example else "",
                )
            )
            + " |"
        )
    return lines


def template_csv(spec: FileSpec) -> str:
    """The file's header line and its example row, as CSV (what `shelfwatch templates` writes)."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(spec.column_names)
    writer.writerow([spec.example_row()[c] for c in spec.column_names])
    return out.getvalue()


def template_path(spec: FileSpec) -> str:
    """Where a file goes in a folder, relative to it: reference files at the top, POS files in sales/."""
    return f"{spec.name}.csv" if spec.kind == "reference" else f"sales/{spec.name}.csv"


def _example(spec: FileSpec) -> list[str]:
    return ["```csv", *template_csv(spec).rstrip("\n").split("\n"), "```"]


def markdown() -> str:
    """docs/data-contract.md, generated from the specs (a test keeps the committed page equal to it)."""
    flags_true = ", ".join(f"`{k}`" for k, v in FLAG_SPELLINGS.items() if v)
    flags_false = ", ".join(f"`{k}`" for k, v in FLAG_SPELLINGS.items() if not v)
    ref_names = "\n".join(f"  {f'{s.name}.csv':<24}(or {s.name}.parquet)" for s in REFERENCE_FILES.values())
    out = [
        "# Data contract: the files Shelfwatch reads",
        "",
        "<!-- Generated by `sales_ingest.reference_contract.markdown()`; do not edit by hand.",
        "     tests/sales_ingest/test_reference_contract.py fails when this page and the code disagree. -->",
        "",
        "A retailer hands Shelfwatch two sorts of files: **reference files** (master data: stores, products, members, "
        "sensors,",
        "deliveries, book stock, promotions, prices, stock-out days), loaded with `shelfwatch load-reference FOLDER`, "
        "and **POS files**",
        "(sales), loaded with `shelfwatch ingest-sales PATH...`. Shelf-sensor readings arrive over MQTT and are not "
        "files.",
        "",
        "- `shelfwatch templates DIR` writes every file below with its header and one example row, in this layout.",
        "- `shelfwatch check FOLDER` checks every file of a folder against this page (and the ids already in the "
        "database)",
        "  and lists each problem by file, row and column. It loads nothing. Exit 0: clean; 1: problems.",
        "- `shelfwatch load-reference FOLDER` loads the reference files; `shelfwatch ingest-sales FOLDER/sales` the "
        "POS files.",
        "",
        "## Folder layout and file names",
        "",
        "```",
        "FOLDER/",
        ref_names,
        f"  {'sales/':<24}POS files: any name ending .csv or .parquet, the kind told by the columns",
        "    sales_daily.csv",
        "    purchase_lines.csv",
        "```",
        "",
        "Reference file names are exact and case-sensitive: `stores.csv` or `stores.parquet`, not `Stores.csv` or "
        "`stores.xlsx`.",
        "A file in FOLDER that looks like a table (.csv, .parquet, .tsv, .txt, .xlsx, .xls) under any other name is "
        "reported as",
        "an **unknown file**, with a hint (`inventory.csv`: did you mean inventory_records.csv?), and `load-reference` "
        "exits 2.",
        "`sales_daily.csv` / `purchase_lines.csv` at the top of FOLDER are POS files: `load-reference` leaves them to",
        "`ingest-sales`, `check` checks them. Other files (.json, .jsonl, .npz, ...) and sub-folders are ignored.",
        "",
        "Reference files load parents before children, in the order of this page, so a row may name an id defined in "
        "the",
        "same folder: " + " → ".join(f"`{n}`" for n in REFERENCE_FILES) + ".",
        "",
        "## How a reference file is read",
        "",
        "- **CSV**: UTF-8 (with or without a byte-order mark); the separator is `,`, `;` or a tab, whichever the "
        "header line",
        "  uses. The first line names the columns (any case; spaces around names are ignored). A repeated header line, "
        "blank",
        "  lines and trailing empty lines are skipped. Optional columns may be left out. Row N in a message is the Nth "
        "line",
        "  under the header (line N+1 of a file without line breaks inside quoted cells).",
        "- **Parquet**: the same column names; typed columns (numbers, booleans, dates, timestamps) are read as their "
        "text.",
        "- **Ids** (`id` columns) are trimmed and matched case-insensitively to the ids already known: `s001` names "
        "the",
        "  store `S001`. The spelling already in the database, else the first one in the file, is the one stored.",
        "- **Numbers** use a decimal point (`1.5`). A decimal comma (`1,5`) is read in `;`- or tab-separated files "
        "only;",
        "  thousands separators are never read. Negative values are refused where they mean nothing (stock, units, "
        "prices,",
        "  weights, capacities).",
        "- **Dates** are `YYYY-MM-DD`, or an Excel serial date (`46349` = 2026-11-23).",
        "- **Timestamps** are ISO 8601 with a UTC offset (`2026-11-23T06:00:00+01:00`, `...Z`). Without an offset, or "
        "as an",
        "  Excel serial date-time, they are read in the row's store time zone (`stores.timezone`, from the same "
        "folder's",
        "  stores file or the database); a row whose store is unknown is refused.",
        "- **Choices** (`one of`) and **time zones** are matched case-insensitively and stored in the spelling listed.",
        "",
        "### Yes/no flags",
        "",
        "`marketing_consent` and `opted_out` accept exactly these spellings, case-insensitive and trimmed: "
        f"{flags_true} mean",
        f"yes; {flags_false} mean no. Anything else, an empty cell included, refuses the row. Consent is never "
        "guessed.",
        "",
        "## A bad row, a bad file",
        "",
        "- **A bad row** (an empty required cell, a value of the wrong type, a negative stock, an unknown store or "
        "product,",
        "  an unreadable flag, a timestamp that cannot be placed in time, a duplicate key) is refused: it goes to the",
        "  `quarantine` table (channel `reference_file`) with the raw row and a reason such as",
        "  `members.csv row 3 column opted_out: is not a yes/no flag (...)`. The file's other rows load. Quarantined "
        "rows",
        "  are not a failure: `load-reference` exits 0 and lists them; `shelfwatch quarantine list --source reference` "
        "shows",
        "  them later. Two rows with the same key: identical copies load once (the copies are quarantined); rows that",
        "  differ are all refused.",
        "- **A bad file** (unreadable, not UTF-8, empty, a required column missing, an unexpected column) is refused "
        "whole,",
        "  with a message naming the file and the columns expected; it is kept whole in quarantine, the other files "
        "still",
        "  load, and `load-reference` exits 2. So does an unknown file name, and a file given as both .csv and "
        ".parquet",
        "  (both are refused: keep one).",
        "- Loading the same folder twice changes nothing.",
        "- No message, log line or quarantine reason ever repeats a value of a personal column (members' contact",
        "  details, managers' e-mail addresses), nor any cell value at all: messages name the file, row and column.",
        "",
        "## Reference files",
    ]
    for spec in REFERENCE_FILES.values():
        out += [
            "",
            f"### {spec.name}.csv / {spec.name}.parquet → table `{spec.table}`",
            "",
            spec.description,
            "",
            f"Key (one row per): {', '.join(f'`{k}`' for k in spec.key)}.",
            "",
            *_table(spec),
        ]
        if spec.rules:
            out += ["", *[f"- {rule}" for rule in spec.rules]]
        out += ["", "Example:", "", *_example(spec)]
    out += [
        "",
        "## POS files",
        "",
        "POS files are read by `shelfwatch ingest-sales` (sales_ingest/pos_files.py), through their own Great "
        "Expectations",
        "gate (sales_ingest/contract.py). Any file name ending .csv or .parquet is accepted; the kind is told by the "
        "columns",
        "(a file with `receipt_id`, `line_no` or `member_id` is purchase lines), and the columns must be exactly those "
        "below.",
        "CSV as spreadsheets save it is read: UTF-8 (with or without BOM) or UTF-16, `,` `;` or tab separators (with "
        "`;`",
        "or tab, `units` may use a decimal comma), header names in any case, blank lines and repeated header lines",
        "skipped, store and SKU ids in any case. Dates are `YYYY-MM-DD` only (a DD-MM-YYYY date refuses the row rather",
        "than guess). Row N in a message is the Nth line under the header. A bad row is quarantined (channel",
        "`sales_file`); a file with missing or unexpected columns is quarantined whole and `ingest-sales` exits 2; a "
        "file",
        "whose bytes were loaded before is skipped. A date after today, an unknown store or product, a negative or",
        "non-numeric `units`, more cells than the header names and conflicting duplicate keys refuse the row. A",
        "purchase line whose `member_id` is not (yet) a member is stored without it; the link waits and is attached",
        "when the member file brings that member.",
    ]
    for spec in POS_FILES.values():
        out += [
            "",
            f"### {spec.name} → table `{spec.table}`",
            "",
            spec.description,
            "",
            f"Key (one row per): {', '.join(f'`{k}`' for k in spec.key)}.",
            "",
            *_table(spec),
            "",
            "Example:",
            "",
            *_example(spec),
        ]
    return "\n".join(out) + "\n"
