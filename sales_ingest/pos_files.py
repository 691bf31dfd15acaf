"""POS files, one sales source: CSV or Parquet files through the one Great Expectations gate
(`contract`, with the POS specs of `reference_contract.POS_FILES`); good rows load, bad rows go to
quarantine.

Two file kinds, told apart by their columns: daily sales per store x SKU x day, and purchase lines
(with a member id where a loyalty card was scanned; a card not yet in the member file does not stop
the sale: the line is stored without it and the link waits in pending_member_links until the member
arrives, see `member_links`). Every value is read as text first
so a bad row is quarantined exactly as it arrived. Loading the same file again changes nothing:
rows are inserted with ON CONFLICT DO NOTHING, quarantine rows are keyed by content, and a file whose
bytes were already ingested is skipped.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import Connection, Engine, select, tuple_

from core.db import insert_ignore
from core.domain import SALES_FILE
from sales_ingest.contract import Gate, Known, good_rows, quarantine_row, sniff_delimiter, typed_frame, whole_file_row
from sales_ingest.member_links import attach_pending_member_links, waiting_links
from sales_ingest.reference_contract import POS_FILES, FileSpec
from sql import schema

# The two POS kinds: their columns, key and table, from their specs.
SALES_KINDS = {
    kind: {"columns": spec.column_names, "key": list(spec.key), "table": getattr(schema, spec.table)}
    for kind, spec in POS_FILES.items()
}


class SalesFileError(ValueError):
    """The file as a whole cannot be read as a POS file (unreadable, wrong columns)."""


@dataclass
class SalesIngestSummary:
    path: str
    kind: str
    rows_total: int = 0
    rows_loaded: int = 0
    rows_already_present: int = 0
    rows_quarantined: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    skipped_same_file: bool = False
    member_links_waiting: int = 0  # lines stored without their (not yet known) member; the link waits

    def __str__(self) -> str:
        if self.skipped_same_file:
            return f"{self.path}: already ingested (same content), nothing to do"
        why = "; ".join(f"{k}: {v}" for k, v in sorted(self.reasons.items()))
        n = self.member_links_waiting
        waiting = f", {n} member links wait for their member" if n != 1 else ", 1 member link waits for its member"
        return (
            f"{self.path} ({self.kind}): {self.rows_total} rows, {self.rows_loaded} loaded, "
            f"{self.rows_already_present} already present, {self.rows_quarantined} quarantined"
            + (f" [{why}]" if why else "")
            + (waiting if n else "")
        )


# ------------------------------------------------------------------------------------------ reading


def read_raw(path: Path) -> pd.DataFrame:
    """The file's cells as text, exactly as written (blank cells are empty strings), indexed by data
    row number - 1 so messages name the file's own rows. CSV exports as spreadsheets write them are
    read as such: a UTF-8 BOM or UTF-16, `;` or tab separators (`attrs["decimal_comma"]`), header
    names in any case, blank lines and repeated header lines (skipped). A row with more cells than
    the header keeps them under `attrs["extra_cells"]` and is quarantined."""
    try:
        if path.suffix.lower() == ".parquet":
            frame = pd.read_parquet(path)
            frame = frame.astype(object).where(frame.notna(), "").astype(str)
            frame.columns = [str(c).strip().lower() for c in frame.columns]
            frame.attrs.update(decimal_comma=False, extra_cells=set())
            return frame
        data = path.read_bytes()
        text = data.decode("utf-16" if data.startswith((b"\xff\xfe", b"\xfe\xff")) else "utf-8-sig").lstrip("\ufeff")
        delimiter = sniff_delimiter(text)
        records = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except Exception as exc:  # noqa: BLE001 - any reader failure means the file is unreadable
        kind = "Parquet" if path.suffix.lower() == ".parquet" else "CSV (UTF-8)"
        raise SalesFileError(f"{path.name}: cannot be read as {kind} ({type(exc).__name__})") from None
    while records and not any(c.strip() for c in records[0]):
        records.pop(0)
    if not records:
        raise SalesFileError(f"{path.name}: is empty: expected a header line naming the columns")
    header = [c.strip().lower() for c in records[0]]
    while header and not header[-1]:
        header.pop()  # a trailing separator
    rows, numbers, extra = [], [], set()
    for number, cells in enumerate(records[1:], start=1):
        stripped = [c.strip() for c in cells]
        if not any(stripped) or [c.lower() for c in stripped[: len(header)]] == header:
            continue  # a blank line, or the header repeated (files glued together)
        if any(stripped[len(header) :]):
            extra.add(number - 1)
        rows.append((cells + [""] * len(header))[: len(header)])
        numbers.append(number - 1)
    frame = (
        pd.DataFrame(rows, columns=header, index=numbers, dtype=str)
        if rows
        else pd.DataFrame(columns=header, dtype=str)
    )
    frame.attrs.update(decimal_comma=delimiter in (";", "\t"), extra_cells=extra)
    return frame


def parse_frame(raw: pd.DataFrame, kind: str, known: Known) -> pd.DataFrame:
    """`contract.typed_frame` of the file's text, after what a spreadsheet export changes: decimal
    commas in `;`/tab files, and store/SKU ids in another case than the master data's (mapped to it).
    The raw frame stays as it was, for quarantine."""
    text = raw.copy()
    if raw.attrs.get("decimal_comma") and "units" in text:
        text["units"] = text["units"].str.replace(",", ".", regex=False)
    for column, parent in (("store_id", "stores"), ("sku", "products")):
        ids = known.ids[parent]
        by_case = {i.lower(): i for i in ids}
        text[column] = text[column].map(
            lambda v, ids=ids, by_case=by_case: v if v in ids else by_case.get(v.strip().lower(), v)
        )
    return typed_frame(text, POS_FILES[kind], known)


def validate(
    gate: Gate, frame: pd.DataFrame, raw: pd.DataFrame, kind: str, known: Known, today: date
) -> dict[int, list[str]]:
    """Row index -> the problems of the row, as the gate words them for POS files, duplicates resolved,
    and rows with more cells than the header."""
    failures = gate.validate(frame, POS_FILES[kind], known, today)
    problems = {idx: [problem for _, _, problem in row] for idx, row in failures.items()}
    return extra_cell_problems(raw, resolve_pos_duplicates(frame, POS_FILES[kind], problems))


def resolve_pos_duplicates(frame: pd.DataFrame, spec: FileSpec, problems: dict[int, list[str]]) -> dict[int, list[str]]:
    """Identical repeats of a row are harmless (keep the first); conflicting repeats are ambiguous.
    Rows are compared by their text (POS wording; reference files compare typed values,
    `contract.resolve_duplicates`)."""
    key = list(spec.key)
    cols = spec.column_names
    dup_rows = [i for i, p in problems.items() if "duplicate key" in p]
    if not dup_rows:
        return problems
    dups = frame.loc[dup_rows, cols]
    conflicting = dups.groupby(key, dropna=False)[cols].transform("nunique").gt(1).any(axis=1)
    out = {i: [p for p in ps if p != "duplicate key"] for i, ps in problems.items()}
    first_of_identical = ~dups.duplicated(subset=cols, keep="first")
    for i in dup_rows:
        if conflicting.loc[i]:
            out[i].append("duplicate key with different values")
        elif not first_of_identical.loc[i]:
            out[i].append("identical duplicate row")  # dropped silently would lose the record of it
    return {i: ps for i, ps in out.items() if ps}


def extra_cell_problems(raw: pd.DataFrame, problems: dict[int, list[str]]) -> dict[int, list[str]]:
    """Rows with more cells than the header: ambiguous, so quarantined rather than cut short."""
    for idx in raw.attrs.get("extra_cells", ()):
        problems.setdefault(idx, []).append("more cells than the header names")
    return problems


def detect_kind(path: Path, columns: list[str]) -> str:
    """Which POS file this is, or a clear error naming missing and unexpected columns."""
    kind = "purchase_lines" if {"receipt_id", "member_id", "line_no"} & set(columns) else "sales_daily"
    expected = SALES_KINDS[kind]["columns"]
    missing = [c for c in expected if c not in columns]
    unexpected = [c for c in columns if c not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append("missing column " + ", ".join(repr(c) for c in missing))
        if unexpected:
            parts.append("unexpected column " + ", ".join(repr(c) for c in unexpected))
        raise SalesFileError(f"{path.name}: {'; '.join(parts)}. Expected: {', '.join(expected)}")
    return kind


# ------------------------------------------------------------------------------------------ rows


def detach_unknown_members(
    rows: list[dict], known_members: set[str], source: str, when: datetime
) -> tuple[list[dict], list[dict]]:
    """Purchase lines whose loyalty card is not (yet) a known member: the sale is kept with member_id
    None, and the link goes apart as a pending_member_links row, attached when the member arrives."""
    kept, links = [], []
    for row in rows:
        member = row.get("member_id")
        if member is not None and member not in known_members:
            links.append(
                {
                    "store_id": row["store_id"],
                    "receipt_id": row["receipt_id"],
                    "line_no": row["line_no"],
                    "member_id": member,
                    "source": source,
                    "first_seen_at": when,
                }
            )
            row = {**row, "member_id": None}
        kept.append(row)
    return kept, links


def quarantine_rows(raw: pd.DataFrame, problems: dict[int, list[str]], path: Path) -> list[dict]:
    now = datetime.now(UTC)
    rows = []
    for idx, ps in sorted(problems.items()):
        content = json.dumps({"row": idx + 1, **raw.loc[idx].to_dict()}, sort_keys=True)
        reason = f"{path.name} row {idx + 1}: " + "; ".join(dict.fromkeys(ps))
        rows.append(quarantine_row(SALES_FILE, str(path), content, reason, now))
    return rows


# ------------------------------------------------------------------------------------------ entry points


def known_ids(engine: Engine) -> Known:
    """The store, SKU and member ids a sales record may name."""
    return Known.from_db(engine, ("stores", "products", "members"))


def as_known(known: Known | dict[str, set[str]]) -> Known:
    """`Known`, also from the ids by kind a caller may hold (`{"stores": ..., "skus": ..., "members": ...}`)."""
    if isinstance(known, Known):
        return known
    out = Known()
    for name, parent in (("stores", "stores"), ("skus", "products"), ("members", "members")):
        out.add(parent, known.get(name, ()))
    return out


def ingest_sales_file(
    engine: Engine,
    path: Path | str,
    today: date | None = None,
    known: Known | dict[str, set[str]] | None = None,
    gate: Gate | None = None,
) -> SalesIngestSummary:
    """Validate one POS file with the GX suite, load its good rows and quarantine the rest. `known`
    and `gate` (one GX context) are shared by every file of a load."""
    path = Path(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with engine.connect() as conn:
        seen = conn.execute(
            select(schema.ingested_files.c.kind).where(schema.ingested_files.c.sha256 == digest)
        ).scalar()
    if seen is not None:
        return SalesIngestSummary(str(path), seen, skipped_same_file=True)
    try:
        raw = read_raw(path)
        kind = detect_kind(path, list(raw.columns))
    except SalesFileError as exc:
        quarantine_whole_file(engine, path, str(exc))
        raise
    known = as_known(known) if known else known_ids(engine)
    frame = parse_frame(raw, kind, known)
    problems = validate(gate or Gate(), frame, raw, kind, known, today or date.today())
    rows = good_rows(frame, POS_FILES[kind], raw.columns, set(problems))
    bad = quarantine_rows(raw, problems, path)
    links: list[dict] = []
    if kind == "purchase_lines":
        rows, links = detach_unknown_members(rows, known.ids["members"], str(path), datetime.now(UTC))
    with engine.begin() as conn:
        links = links_of_new_lines(conn, links)  # a line already stored keeps what it has
        loaded = insert_ignore(conn, SALES_KINDS[kind]["table"], rows)
        insert_ignore(conn, schema.pending_member_links, links)
        insert_ignore(conn, schema.quarantine, bad)
        attach_pending_member_links(conn)  # a member loaded since `known` was read is attached at once
        waiting = waiting_links(conn, links)
        conn.execute(
            schema.ingested_files.insert().values(
                sha256=digest,
                path=str(path),
                kind=kind,
                rows_loaded=loaded,
                rows_quarantined=len(bad),
                ingested_at=datetime.now(UTC),
            )
        )
    reasons = Counter(p for ps in problems.values() for p in dict.fromkeys(ps))
    return SalesIngestSummary(
        str(path), kind, len(raw), loaded, len(rows) - loaded, len(bad), dict(reasons), member_links_waiting=waiting
    )


def links_of_new_lines(conn: Connection, links: list[dict]) -> list[dict]:
    """The pending links whose purchase line is not stored yet (read before the lines are inserted)."""
    lines = schema.purchase_lines
    stored: set[tuple] = set()
    for start in range(0, len(links), 500):
        keys = [(x["store_id"], x["receipt_id"], x["line_no"]) for x in links[start : start + 500]]
        key_cols = tuple_(lines.c.store_id, lines.c.receipt_id, lines.c.line_no)
        stored |= {
            tuple(r)
            for r in conn.execute(
                select(lines.c.store_id, lines.c.receipt_id, lines.c.line_no).where(key_cols.in_(keys))
            )
        }
    return [x for x in links if (x["store_id"], x["receipt_id"], x["line_no"]) not in stored]


def quarantine_whole_file(engine: Engine, path: Path, reason: str) -> None:
    """A file that cannot be read row by row is kept whole, so nothing is lost."""
    with engine.begin() as conn:
        insert_ignore(conn, schema.quarantine, [whole_file_row(SALES_FILE, path, reason, datetime.now(UTC))])


def ingest_sales_paths(engine: Engine, paths: list[Path | str], today: date | None = None) -> list[SalesIngestSummary]:
    """Files and folders (all *.csv and *.parquet inside); daily sales before purchase lines."""
    files: list[Path] = []
    for p in map(Path, paths):
        files += [q for q in p.iterdir() if is_pos_file(q)] if p.is_dir() else [p]
    known, gate = known_ids(engine), Gate()
    return [ingest_sales_file(engine, f, today, known, gate) for f in load_order(files)]


def is_pos_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in (".csv", ".parquet")


def load_order(files: list[Path]) -> list[Path]:
    """Daily sales before purchase lines (lines refer to the days), then by name."""
    return sorted(files, key=lambda f: ("line" in f.name, str(f)))
