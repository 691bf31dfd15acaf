"""POS files, one sales source: CSV or Parquet files gated by the sales contract's Great Expectations
suite (`contract`); good rows load, bad rows go to quarantine.

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
from sales_ingest.contract import (
    SALES_KINDS,
    detach_unknown_members,
    good_rows,
    known_ids,
    quarantine_row,
    resolve_duplicates,
    sniff_delimiter,
    typed_frame,
    validate_with_gx,
    whole_file_row,
)
from sales_ingest.member_links import attach_pending_member_links, waiting_links
from sql import schema


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


def parse_frame(raw: pd.DataFrame, kind: str, known: dict[str, set[str]]) -> pd.DataFrame:
    """`contract.typed_frame` of the file's text, after what a spreadsheet export changes: decimal
    commas in `;`/tab files, and store/SKU ids in another case than the master data's (mapped to it).
    The raw frame stays as it was, for quarantine."""
    text = raw.copy()
    if raw.attrs.get("decimal_comma") and "units" in text:
        text["units"] = text["units"].str.replace(",", ".", regex=False)
    for column, ids in (("store_id", known.get("stores", set())), ("sku", known.get("skus", set()))):
        by_case = {i.lower(): i for i in ids}
        text[column] = text[column].map(lambda v: v if v in ids else by_case.get(v.strip().lower(), v))
    return typed_frame(text, kind)


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


def quarantine_rows(raw: pd.DataFrame, problems: dict[int, list[str]], path: Path) -> list[dict]:
    now = datetime.now(UTC)
    rows = []
    for idx, ps in sorted(problems.items()):
        content = json.dumps({"row": idx + 1, **raw.loc[idx].to_dict()}, sort_keys=True)
        reason = f"{path.name} row {idx + 1}: " + "; ".join(dict.fromkeys(ps))
        rows.append(quarantine_row(SALES_FILE, str(path), content, reason, now))
    return rows


# ------------------------------------------------------------------------------------------ entry points


def ingest_sales_file(
    engine: Engine, path: Path | str, today: date | None = None, known: dict[str, set[str]] | None = None
) -> SalesIngestSummary:
    """Validate one POS file with the GX suite, load its good rows and quarantine the rest."""
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
    known = known or known_ids(engine)
    frame = parse_frame(raw, kind, known)
    problems = validate_with_gx(frame, kind, known, today or date.today())
    problems = extra_cell_problems(raw, resolve_duplicates(frame, kind, problems))
    rows = good_rows(frame, kind, set(problems))
    bad = quarantine_rows(raw, problems, path)
    links: list[dict] = []
    if kind == "purchase_lines":
        rows, links = detach_unknown_members(rows, known["members"], str(path), datetime.now(UTC))
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
    known = known_ids(engine)
    return [ingest_sales_file(engine, f, today, known) for f in load_order(files)]


def is_pos_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in (".csv", ".parquet")


def load_order(files: list[Path]) -> list[Path]:
    """Daily sales before purchase lines (lines refer to the days), then by name."""
    return sorted(files, key=lambda f: ("line" in f.name, str(f)))
