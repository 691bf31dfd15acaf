"""The one gate every file passes, whatever its source: a text frame, typed by its spec
(`reference_contract`: `FileSpec` / `ColumnSpec`), validated by the Great Expectations suite built
from that spec, split into the rows that load and the rows that go to quarantine.

A source reads records as text and hands them, with the spec of their kind, to `typed_frame` ->
`Gate.validate` (one GX context per load: a `Gate` serves every file of an `ingest-sales` or a
`load-reference`) -> `first_per_column` (the problems of a file worded per column) ->
`resolve_duplicates` -> `good_rows` / `quarantine_row`. POS files (`pos_files`) word their problems
per row (`FileSpec.wording == "row"`) and resolve duplicates their own way; their purchase lines then
keep a sale whose loyalty card is not yet a member and let only its member link wait (`member_links`).
Reference files (`reference_files`) upsert their good rows, parents first.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Iterable
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
from sqlalchemy import Engine, select

from sales_ingest.reference_contract import (
    CHOICE,
    DATE,
    FLAG,
    FLAG_HELP,
    FLAG_SPELLINGS,
    ID,
    NUMBER,
    TEXT,
    TIMESTAMP,
    WHOLE,
    ZONE,
    CellProblem,
    ColumnSpec,
    FileSpec,
    read_date,
    read_number,
    read_timestamp,
    read_whole,
    time_zones,
)
from sql import schema

# The id each referenced file is known by, and the table it is read from in the database.
ID_COLUMNS = {
    "stores": "store_id",
    "products": "sku",
    "members": "member_id",
    "sensors": "sensor_id",
    "deliveries": "delivery_id",
}

# ------------------------------------------------------------------------------------------ known ids


class Known:
    """The ids rows may name (the database's plus the folder's good rows so far), matched
    case-insensitively, and the stores' time zones."""

    def __init__(self) -> None:
        self.ids: dict[str, set[str]] = {name: set() for name in ID_COLUMNS}
        self.folded: dict[str, dict[str, str]] = {name: {} for name in ID_COLUMNS}
        self.zones: dict[str, str] = {}

    def add(self, parent: str, ids: Iterable[str]) -> None:
        for value in ids:
            self.ids[parent].add(value)
            self.folded[parent].setdefault(value.casefold(), value)

    def canonical(self, parent: str, value: str) -> str:
        """The known spelling of an id (exact first, then case-insensitive); unknown ids as given."""
        if value in self.ids[parent]:
            return value
        return self.folded[parent].get(value.casefold(), value)

    def zone(self, store_id: str | None) -> ZoneInfo | None:
        name = self.zones.get(store_id) if store_id else None
        try:
            return ZoneInfo(name) if name else None
        except (ValueError, KeyError, OSError):
            return None

    @classmethod
    def from_db(cls, engine: Engine, parents: Iterable[str] = tuple(ID_COLUMNS)) -> Known:
        """The ids of `parents` (default: every referenced file) and the stores' time zones."""
        known = cls()
        with engine.connect() as conn:
            for parent in parents:
                table = getattr(schema, parent)
                known.add(parent, conn.execute(select(table.c[ID_COLUMNS[parent]])).scalars())
            known.zones = dict(conn.execute(select(schema.stores.c.store_id, schema.stores.c.timezone)).all())
        return known


# ------------------------------------------------------------------------------------------ typing


def typed_frame(
    text: pd.DataFrame,
    spec: FileSpec,
    known: Known,
    decimal_comma: bool = False,
    rows: list[int] | None = None,
    shape: list[str | None] | None = None,
) -> pd.DataFrame:
    """The spec's columns of a text frame (cells as written; a column the file leaves out is empty),
    on the text frame's index: `<col>` (trimmed text, None when empty), `<col>__value` (the typed value)
    and `<col>__bad` (why the text cannot be read, None when it can); `__row` (the row number messages
    name; default index + 1), `__shape` (a problem of the row's shape), the row rules and `__key` (the
    row's key, for the duplicate check)."""
    n = len(text)
    frame = pd.DataFrame(index=text.index)
    frame["__row"] = rows if rows is not None else [int(i) + 1 for i in text.index]
    frame["__shape"] = shape if shape is not None else [None] * n
    columns = sorted(
        spec.columns, key=lambda c: (c.type != ID, c.type == TIMESTAMP)
    )  # ids first: timestamps need the store
    file_ids: dict[str, str] = {}
    for col in columns:
        texts = [str(t).strip() for t in text[col.name]] if col.name in text else [""] * n
        frame[col.name] = [t or None for t in texts]
        if col.reader:
            frame[f"{col.name}__value"], frame[f"{col.name}__bad"] = read_column(col, frame[col.name])
            continue
        values, bad = [], []
        for t in texts:
            if not t and col.default is not None:
                t = col.default
            value, problem = None, None
            if t or (col.type == ID and col.default == ""):
                try:
                    value = read_cell(col, t, decimal_comma, known, spec, file_ids, frame, len(values))
                except CellProblem as exc:
                    problem = str(exc)
            values.append(value)
            bad.append(problem)
        frame[f"{col.name}__value"] = pd.Series(
            values, index=frame.index, dtype=float if col.type in (NUMBER, WHOLE) else object
        )
        frame[f"{col.name}__bad"] = bad
    for name, rule in ROW_RULES.get(spec.name, {}).items():
        frame[f"__rule_{name}"] = rule(frame)
    frame["__key"] = row_keys(frame, spec) if n else []
    return frame


def read_column(col: ColumnSpec, texts: pd.Series) -> tuple[pd.Series, list[str | None]]:
    """A column read at once by a named reader: "pandas" numbers (what `pd.to_numeric` reads), "iso"
    dates (YYYY-MM-DD); an empty or unreadable cell is a problem naming the column."""
    if col.reader == "pandas":
        values, problem = pd.to_numeric(texts, errors="coerce"), f"{col.name} is not a number"
    elif col.reader == "iso":
        values = pd.to_datetime(texts, errors="coerce", format="%Y-%m-%d")
        problem = f"{col.name} is not a YYYY-MM-DD date"
    else:
        raise AssertionError(f"no reader {col.reader!r}")
    return values, [problem if bad else None for bad in values.isna()]


def read_cell(
    col: ColumnSpec,
    text: str,
    decimal_comma: bool,
    known: Known,
    spec: FileSpec,
    file_ids: dict[str, str],
    frame: pd.DataFrame,
    pos: int,
):
    """The typed value of one cell (see the contract's readers); CellProblem when it cannot be read."""
    if col.type == ID:
        if col.references and col.checked:
            return known.canonical(col.references, text) if text else ""
        if spec.name in ID_COLUMNS and col.name == ID_COLUMNS[spec.name]:  # the file's own id
            value = known.canonical(spec.name, text)
            return file_ids.setdefault(value.casefold(), value)
        return text
    if col.type == TEXT:
        return text
    if col.type == NUMBER:
        return read_number(text, decimal_comma)
    if col.type == WHOLE:
        return float(read_whole(text, decimal_comma))
    if col.type in (FLAG, CHOICE):
        return text.lower()
    if col.type == ZONE:
        return time_zones().get(text.lower(), text)
    if col.type == DATE:
        return read_date(text, decimal_comma)
    if col.type == TIMESTAMP:
        store = frame["store_id__value"].iloc[pos] if "store_id__value" in frame else None
        return read_timestamp(text, known.zone(store), decimal_comma)
    raise AssertionError(f"no reader for {col.type}")


def row_keys(frame: pd.DataFrame, spec: FileSpec) -> list[str | None]:
    """Each row's key: of the typed values, None when one is missing ("column" wording); of the trimmed
    text, None only when all are missing ("row" wording: as GX's compound-columns check reads a key)."""
    if spec.wording == "row":
        return [
            None if all(v is None for v in key) else json.dumps(list(key))
            for key in zip(*(frame[k].tolist() for k in spec.key), strict=True)
        ]
    return [
        None
        if any(v is None for v in key)
        else "\x1f".join(v.isoformat() if hasattr(v, "isoformat") else str(v) for v in key)
        for key in zip(*(frame[f"{k}__value"].tolist() for k in spec.key), strict=True)
    ]


def contact_rule(frame: pd.DataFrame) -> list[str | None]:
    """members: an e-mail address for channel email, a phone number for sms."""
    out = []
    for channel, address in zip(frame["contact_channel__value"], frame["contact_address"], strict=True):
        problem = None
        if address and channel == "email" and not re.fullmatch(r"[^@\s]+@[^@\s]+", address):
            problem = "is not an e-mail address (contact_channel is email)"
        elif address and channel == "sms" and not re.fullmatch(r"\+?[0-9][0-9 ()\-]{5,24}", address):
            problem = "is not a phone number (contact_channel is sms)"
        out.append(problem)
    return out


def date_order_rule(frame: pd.DataFrame) -> list[str | None]:
    """promotions: the last day is not before the first."""
    return [
        ("is before start_date" if isinstance(s, date) and isinstance(e, date) and e < s else None)
        for s, e in zip(frame["start_date__value"], frame["end_date__value"], strict=True)
    ]


# rules across columns, per file: name -> (frame -> problem per row); the problem is the column's
ROW_RULES = {"members": {"contact_address": contact_rule}, "promotions": {"end_date": date_order_rule}}


# ------------------------------------------------------------------------------------------ the GX suite

# A row's problems keep one per column, the first by this order ("column" wording).
RANK_SHAPE, RANK_EMPTY, RANK_READ, RANK_LENGTH, RANK_RANGE, RANK_SET, RANK_REF, RANK_RULE, RANK_DUP = range(9)


def build_suite(spec: FileSpec, known: Known, today: date, frame: pd.DataFrame | None = None):
    """The expectations every row of a file meets, from its spec; `known` holds the ids rows may name.
    Each expectation's meta names the column, the problem (or the frame column holding it) and its rank.
    GX evaluates (and reports) the expectations grouped by the frame column they read, the groups in
    the order they first appear: every column's empty check comes first, then each column's other
    checks (`check_order` first). Given the `frame`, a check of problems found while typing it (`__shape`,
    `<col>__bad`, the row rules) is left out where the frame holds none: it could not fail, and each
    expectation costs GX tens of milliseconds."""
    import great_expectations as gx

    e = gx.expectations
    suite = gx.ExpectationSuite(name=f"{spec.kind}_{spec.name}")
    by_row = spec.wording == "row"

    def add(
        expectation_type, named: str | None, rank: int, problem: str | None = None, detail: str | None = None, **kw
    ):
        if detail and frame is not None and frame[detail].isna().all():
            return  # nothing found while typing: the check could not fail
        meta = {"column": named, "rank": rank, "problem": problem, "detail": detail}
        suite.add_expectation(expectation_type(meta=meta, **kw))

    def said(column: str, problem: str) -> str:
        return f"{column} {problem}" if by_row else problem

    add(e.ExpectColumnValuesToBeNull, None, RANK_SHAPE, detail="__shape", column="__shape")
    for col in spec.columns:
        c = col.name
        if col.required and col.default is None:
            if by_row:
                empty = f"{c} is empty"
            elif col.type == FLAG:
                empty = f"is empty (a yes/no flag is required: {FLAG_HELP})"
            else:
                empty = "is empty (required)"
            add(e.ExpectColumnValuesToNotBeNull, c, RANK_EMPTY, empty, column=c)
    first = [spec.column(name) for name in spec.check_order if name in spec.column_names]
    for col in first + [col for col in spec.columns if col.name not in spec.check_order]:
        c, value = col.name, f"{col.name}__value"
        add(e.ExpectColumnValuesToBeNull, c, RANK_READ, detail=f"{c}__bad", column=f"{c}__bad")
        if not col.checked:
            continue
        if col.max_length:
            add(
                e.ExpectColumnValueLengthsToBeBetween,
                c,
                RANK_LENGTH,
                said(c, f"is longer than {col.max_length} characters"),
                column=c,
                max_value=col.max_length,
            )
        if col.minimum is not None or col.maximum is not None:
            add(
                e.ExpectColumnValuesToBeBetween,
                c,
                RANK_RANGE,
                said(c, range_problem(col)),
                column=value,
                min_value=col.minimum,
                max_value=col.maximum,
                strict_min=col.strict_minimum,
            )
        if col.not_after_today:  # the values are pandas timestamps (reader "iso")
            add(
                e.ExpectColumnValuesToBeBetween,
                c,
                RANK_RANGE,
                said(c, f"is in the future (after {today})"),
                column=value,
                max_value=pd.Timestamp(today),
            )
        if col.type == FLAG:
            add(
                e.ExpectColumnValuesToBeInSet,
                c,
                RANK_SET,
                said(c, f"is not a yes/no flag ({FLAG_HELP})"),
                column=value,
                value_set=sorted(FLAG_SPELLINGS),
            )
        if col.type == CHOICE:
            add(
                e.ExpectColumnValuesToBeInSet,
                c,
                RANK_SET,
                said(c, f"is not one of {', '.join(col.allowed)}"),
                column=value,
                value_set=list(col.allowed),
            )
        if col.type == ZONE:
            add(
                e.ExpectColumnValuesToBeInSet,
                c,
                RANK_SET,
                said(c, "is not an IANA time zone name (e.g. Europe/Amsterdam)"),
                column=value,
                value_set=sorted(time_zones().values()),
            )
        if col.references:
            ids = sorted(known.ids[col.references] | ({""} if col.default == "" else set()))
            parent = col.references.removesuffix("s")
            add(
                e.ExpectColumnValuesToBeInSet,
                c,
                RANK_REF,
                f"unknown {c}"
                if by_row
                else f"names an unknown {parent} (not in {col.references}.csv nor in the database)",
                # "row" wording: the id as the source wrote it (mapped to the known case); GX runs a
                # column's expectations together, so this problem follows the column's empty one
                column=c if by_row else value,
                value_set=ids,
            )
    for name in ROW_RULES.get(spec.name, {}):
        add(e.ExpectColumnValuesToBeNull, name, RANK_RULE, detail=f"__rule_{name}", column=f"__rule_{name}")
    add(e.ExpectColumnValuesToBeUnique, "+".join(spec.key), RANK_DUP, "duplicate key", column="__key")
    return suite


def range_problem(col: ColumnSpec) -> str:
    if col.minimum == 0 and not col.strict_minimum and col.maximum is None:
        return "is negative (must be >= 0)"
    return f"is out of range (must be {col.allowed_text})"


# A failed expectation on one row: (column, rank, problem).
Failure = tuple[str, int, str]


class Gate:
    """One ephemeral GX context for a whole load (every file of an `ingest-sales`, a `load-reference`
    or a `check`); each file gets its own asset and suite."""

    def __init__(self) -> None:
        self.context = None  # made by the first file that has rows: a load of nothing starts no GX
        self.runs = 0

    def start(self) -> None:
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")  # no phoning home from a closed network
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        for name in ("great_expectations", "great_expectations.data_context.types.base"):  # the latter sets INFO itself
            logging.getLogger(name).setLevel(logging.WARNING)
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        self.source = self.context.data_sources.add_pandas("files")

    def validate(
        self, frame: pd.DataFrame, spec: FileSpec, known: Known, today: date | None = None
    ) -> dict[int, list[Failure]]:
        """Row index -> the failures of the row, in the suite's order (empty when every row passes)."""
        if not len(frame):
            return {}
        if self.context is None:
            self.start()
        self.runs += 1
        asset = self.source.add_dataframe_asset(f"{spec.name}_{self.runs}")
        batch = asset.add_batch_definition_whole_dataframe("whole").get_batch(batch_parameters={"dataframe": frame})
        suite = build_suite(spec, known, today or date.today(), frame)
        suite.name = f"{suite.name}_{self.runs}"
        suite = self.context.suites.add(suite)
        result = batch.validate(suite, result_format={"result_format": "COMPLETE"})
        failures: dict[int, list[Failure]] = {}
        for r in result.results:
            if r.success:
                continue
            config = r.expectation_config
            if raised(r.exception_info) or "unexpected_index_list" not in (r.result or {}):
                raise RuntimeError(
                    f"Great Expectations could not evaluate {config.type} on {config.kwargs.get('column')}"
                )
            meta = config.meta or {}
            for idx in r.result.get("unexpected_index_list") or []:
                problem = meta["problem"] or frame.at[idx, meta["detail"]]
                failures.setdefault(int(idx), []).append((meta["column"] or "", meta["rank"], problem))
        return failures


def raised(info) -> bool:
    """Whether GX could not evaluate an expectation (its exception info is flat or per metric)."""
    info = info or {}
    return bool(info.get("raised_exception")) or any(
        isinstance(v, dict) and v.get("raised_exception") for v in info.values()
    )


def first_per_column(failures: dict[int, list[Failure]]) -> dict[int, dict[str, tuple[int, str]]]:
    """Row -> column -> (rank, problem): the first problem of each column of each bad row."""
    problems: dict[int, dict[str, tuple[int, str]]] = {}
    for pos, row in failures.items():
        for column, rank, problem in row:
            if column not in problems.setdefault(pos, {}) or problems[pos][column][0] > rank:
                problems[pos][column] = (rank, problem)
    return problems


def resolve_duplicates(frame: pd.DataFrame, spec: FileSpec, problems: dict[int, dict[str, tuple[int, str]]]) -> None:
    """Identical copies of a row load once (the copies are quarantined); rows with the same key and
    different values are all refused: which one is right is for a person to say."""
    key_col = "+".join(spec.key)
    dups = sorted(p for p, cols in problems.items() if cols.get(key_col, (None, ""))[1] == "duplicate key")
    groups: dict[str, list[int]] = {}
    for pos in dups:
        groups.setdefault(frame.at[pos, "__key"], []).append(pos)
    values = [f"{c.name}__value" for c in spec.columns]
    rows = frame["__row"]
    for members in groups.values():
        signatures = {tuple(str(frame.at[p, v]) for v in values) for p in members}
        first = members[0]
        for pos in members:
            others = ", ".join(str(rows[p]) for p in members if p != pos)
            if len(signatures) == 1:
                if pos == first:
                    del problems[pos][key_col]
                    if not problems[pos]:
                        del problems[pos]
                else:
                    problems[pos][key_col] = (RANK_DUP, f"identical copy of row {rows[first]} (loaded once)")
            else:
                problems[pos][key_col] = (RANK_DUP, f"same key as row {others} with different values")


# ------------------------------------------------------------------------------------------ rows


def good_rows(frame: pd.DataFrame, spec: FileSpec, present: Iterable[str], bad: Iterable[int]) -> list[dict]:
    """The typed rows that passed, ready to insert, with the columns the file has (`present`) and the
    key, always."""
    present = set(present)
    keep = ~frame.index.isin(list(bad))
    columns = {}
    for col in spec.columns:
        if col.name not in present and col.name not in spec.key:
            continue  # left out: the database keeps what it has (or the column's default)
        values = frame[f"{col.name}__value"].to_numpy(dtype=object)[keep].tolist()
        if col.type == FLAG:
            values = [None if v is None else FLAG_SPELLINGS[v] for v in values]  # an optional flag left empty: unknown
        elif col.type == WHOLE:
            values = [int(v) for v in values]
        elif col.type == NUMBER:
            values = [None if pd.isna(v) else float(v) for v in values]
        elif col.type == DATE:
            values = [v.date() if isinstance(v, pd.Timestamp) else v for v in values]
        columns[col.name] = values
    return [dict(zip(columns, row, strict=True)) for row in zip(*columns.values(), strict=True)] if columns else []


WHOLE_FILE_LIMIT = 10_000_000  # a refused file larger than this is quarantined as a note, not its bytes


def sniff_delimiter(text: str) -> str:
    """`,`, `;` or tab: whichever the header line uses most (spreadsheets save `;` where the decimal
    mark is a comma)."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    first = re.sub(r'"[^"]*"', "", first)  # separators inside quoted names do not count
    counts = {d: first.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def whole_file_row(channel: str, path: Path, reason: str, when: datetime) -> dict:
    """The quarantine row of a file refused whole, so nothing is lost: its text (NUL-safe for
    PostgreSQL), or a note with size and hash for a binary or huge file."""
    try:
        data = path.read_bytes()
    except OSError:
        data = b""
    if path.suffix.lower() == ".csv" and len(data) <= WHOLE_FILE_LIMIT:
        content = data.decode("utf-8", errors="replace").replace("\x00", "\ufffd")
    else:
        content = f"<{path.name}: {len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()}; not copied here>"
    return quarantine_row(channel, str(path), content, reason, when)


def quarantine_row(channel: str, source: str, content: str, reason: str, when: datetime) -> dict:
    """A quarantine row keyed by its content and reason, so a re-load adds nothing."""
    digest = hashlib.sha256((content + "\x00" + reason).encode()).hexdigest()
    return {
        "channel": channel,
        "source": source,
        "raw_content": content,
        "reason": reason,
        "content_hash": digest,
        "quarantined_at": when,
    }
