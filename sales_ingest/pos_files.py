"""POS file ingest gated by a Great Expectations suite: good rows load, bad rows go to quarantine.

Two file kinds, CSV or Parquet, told apart by their columns: daily sales per store x SKU x day, and
purchase lines (with a member id where a loyalty card was scanned). Every value is read as text first
so a bad row is quarantined exactly as it arrived. Loading the same file again changes nothing:
rows are inserted with ON CONFLICT DO NOTHING, quarantine rows are keyed by content, and a file whose
bytes were already ingested is skipped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine, select

from shelfwatch.core.domain import SALES_FILE
from shelfwatch.core.db import insert_ignore
from shelfwatch.sql import schema

FILE_KINDS = {
    "sales_daily": {
        "columns": ["store_id", "sku", "date", "units"],
        "key": ["store_id", "sku", "date"],
        "table": schema.sales_daily,
    },
    "purchase_lines": {
        "columns": ["store_id", "receipt_id", "line_no", "sku", "date", "member_id", "units"],
        "key": ["store_id", "receipt_id", "line_no"],
        "table": schema.purchase_lines,
    },
}
NULLABLE = {"member_id"}  # no card scanned


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

    def __str__(self) -> str:
        if self.skipped_same_file:
            return f"{self.path}: already ingested (same content), nothing to do"
        why = "; ".join(f"{k}: {v}" for k, v in sorted(self.reasons.items()))
        return (
            f"{self.path} ({self.kind}): {self.rows_total} rows, {self.rows_loaded} loaded, "
            f"{self.rows_already_present} already present, {self.rows_quarantined} quarantined" + (f" [{why}]" if why else "")
        )


# ------------------------------------------------------------------------------------------ reading


def read_raw(path: Path) -> pd.DataFrame:
    """The file's cells as text, exactly as written (blank cells are empty strings)."""
    try:
        if path.suffix.lower() == ".parquet":
            frame = pd.read_parquet(path)
            return frame.astype(object).where(frame.notna(), "").astype(str)
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except Exception as exc:  # noqa: BLE001 - any reader failure means the file is unreadable
        raise SalesFileError(f"{path.name}: cannot be read as {'Parquet' if path.suffix == '.parquet' else 'CSV'} ({exc})") from exc


def detect_kind(path: Path, columns: list[str]) -> str:
    """Which POS file this is, or a clear error naming missing and unexpected columns."""
    kind = "purchase_lines" if {"receipt_id", "member_id", "line_no"} & set(columns) else "sales_daily"
    expected = FILE_KINDS[kind]["columns"]
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


def typed_frame(raw: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Parsed columns next to the raw ones; unparsable values become NaN/NaT for GX to flag."""
    out = raw.copy()
    for col in FILE_KINDS[kind]["columns"]:
        out[col] = raw[col].str.strip().replace("", None)
    out["units_value"] = pd.to_numeric(out["units"], errors="coerce")
    out["date_value"] = pd.to_datetime(out["date"], errors="coerce", format="%Y-%m-%d")
    if kind == "purchase_lines":
        out["line_no_value"] = pd.to_numeric(out["line_no"], errors="coerce")
    return out


# ------------------------------------------------------------------------------------------ GX suite


def build_suite(kind: str, known: dict[str, set[str]], today: date):
    """The expectations every POS file must meet; `known` holds the valid store, SKU and member ids."""
    import great_expectations as gx

    e = gx.expectations
    suite = gx.ExpectationSuite(name=f"pos_{kind}")
    for col in FILE_KINDS[kind]["columns"]:
        if col not in NULLABLE:
            suite.add_expectation(e.ExpectColumnValuesToNotBeNull(column=col))
    suite.add_expectation(e.ExpectColumnValuesToNotBeNull(column="units_value", meta={"problem": "units is not a number"}))
    suite.add_expectation(e.ExpectColumnValuesToBeBetween(column="units_value", min_value=0, meta={"problem": "units is negative (must be >= 0)"}))
    suite.add_expectation(e.ExpectColumnValuesToNotBeNull(column="date_value", meta={"problem": "date is not a YYYY-MM-DD date"}))
    suite.add_expectation(
        e.ExpectColumnValuesToBeBetween(column="date_value", max_value=pd.Timestamp(today), meta={"problem": f"date is in the future (after {today})"})
    )
    suite.add_expectation(e.ExpectColumnValuesToBeInSet(column="store_id", value_set=sorted(known["stores"]), meta={"problem": "unknown store_id"}))
    suite.add_expectation(e.ExpectColumnValuesToBeInSet(column="sku", value_set=sorted(known["skus"]), meta={"problem": "unknown sku"}))
    if kind == "purchase_lines":
        suite.add_expectation(e.ExpectColumnValuesToBeInSet(column="member_id", value_set=sorted(known["members"]), meta={"problem": "unknown member_id"}))
        suite.add_expectation(e.ExpectColumnValuesToNotBeNull(column="line_no_value", meta={"problem": "line_no is not a number"}))
    suite.add_expectation(e.ExpectCompoundColumnsToBeUnique(column_list=FILE_KINDS[kind]["key"], meta={"problem": "duplicate key"}))
    return suite


def validate_with_gx(frame: pd.DataFrame, kind: str, known: dict[str, set[str]], today: date) -> dict[int, list[str]]:
    """Run the suite on the frame; returns row index -> problems (empty when every row passes)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")  # no phoning home from a closed network
    import great_expectations as gx

    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    asset = context.data_sources.add_pandas("pos").add_dataframe_asset("file")
    batch = asset.add_batch_definition_whole_dataframe("whole").get_batch(batch_parameters={"dataframe": frame})
    suite = context.suites.add(build_suite(kind, known, today))
    result = batch.validate(suite, result_format={"result_format": "COMPLETE"})
    problems: dict[int, list[str]] = {}
    for r in result.results:
        if r.success:
            continue
        cfg = r.expectation_config
        problem = (cfg.meta or {}).get("problem") or f"{cfg.kwargs.get('column')} is empty"
        for idx in r.result.get("unexpected_index_list") or []:
            problems.setdefault(int(idx), []).append(problem)
    return problems


# ------------------------------------------------------------------------------------------ rows


def resolve_duplicates(frame: pd.DataFrame, kind: str, problems: dict[int, list[str]]) -> dict[int, list[str]]:
    """Identical repeats of a row are harmless (keep the first); conflicting repeats are ambiguous."""
    key = FILE_KINDS[kind]["key"]
    cols = FILE_KINDS[kind]["columns"]
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


def quarantine_rows(raw: pd.DataFrame, problems: dict[int, list[str]], path: Path) -> list[dict]:
    now = datetime.now(timezone.utc)
    rows = []
    for idx, ps in sorted(problems.items()):
        content = json.dumps({"row": idx + 1, **raw.loc[idx].to_dict()}, sort_keys=True)
        reason = f"{path.name} row {idx + 1}: " + "; ".join(dict.fromkeys(ps))
        rows.append(quarantine_row(str(path), content, reason, now))
    return rows


def quarantine_row(source: str, content: str, reason: str, when: datetime) -> dict:
    digest = hashlib.sha256((content + "\x00" + reason).encode()).hexdigest()
    return {"channel": SALES_FILE, "source": source, "raw_content": content, "reason": reason, "content_hash": digest, "quarantined_at": when}


def good_rows(frame: pd.DataFrame, kind: str, bad: set[int]) -> list[dict]:
    ok = frame.drop(index=list(bad))
    out = pd.DataFrame({c: ok[c] for c in FILE_KINDS[kind]["columns"] if c not in ("units", "date", "line_no")})
    out["units"] = ok["units_value"].astype(float)
    out["date"] = ok["date_value"].dt.date
    if kind == "purchase_lines":
        out["line_no"] = ok["line_no_value"].astype(int)
        out["member_id"] = ok["member_id"].where(ok["member_id"].notna(), None)
    return out.to_dict("records")


def known_ids(engine: Engine) -> dict[str, set[str]]:
    with engine.connect() as conn:
        return {
            "stores": set(conn.execute(select(schema.stores.c.store_id)).scalars()),
            "skus": set(conn.execute(select(schema.products.c.sku)).scalars()),
            "members": set(conn.execute(select(schema.members.c.member_id)).scalars()),
        }


# ------------------------------------------------------------------------------------------ entry points


def ingest_sales_file(engine: Engine, path: Path | str, today: date | None = None, known: dict[str, set[str]] | None = None) -> SalesIngestSummary:
    """Validate one POS file with the GX suite, load its good rows and quarantine the rest."""
    path = Path(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with engine.connect() as conn:
        seen = conn.execute(select(schema.ingested_files.c.kind).where(schema.ingested_files.c.sha256 == digest)).scalar()
    if seen is not None:
        return SalesIngestSummary(str(path), seen, skipped_same_file=True)
    try:
        raw = read_raw(path)
        kind = detect_kind(path, list(raw.columns))
    except SalesFileError as exc:
        quarantine_whole_file(engine, path, str(exc))
        raise
    frame = typed_frame(raw, kind)
    problems = validate_with_gx(frame, kind, known or known_ids(engine), today or date.today())
    problems = resolve_duplicates(frame, kind, problems)
    rows = good_rows(frame, kind, set(problems))
    bad = quarantine_rows(raw, problems, path)
    with engine.begin() as conn:
        loaded = insert_ignore(conn, FILE_KINDS[kind]["table"], rows)
        insert_ignore(conn, schema.quarantine, bad)
        conn.execute(
            schema.ingested_files.insert().values(
                sha256=digest, path=str(path), kind=kind, rows_loaded=loaded, rows_quarantined=len(bad), ingested_at=datetime.now(timezone.utc)
            )
        )
    reasons = Counter(p for ps in problems.values() for p in dict.fromkeys(ps))
    return SalesIngestSummary(str(path), kind, len(raw), loaded, len(rows) - loaded, len(bad), dict(reasons))


def quarantine_whole_file(engine: Engine, path: Path, reason: str) -> None:
    """A file that cannot be read row by row is kept whole, so nothing is lost."""
    content = path.read_bytes().decode("utf-8", errors="replace")
    with engine.begin() as conn:
        insert_ignore(conn, schema.quarantine, [quarantine_row(str(path), content, reason, datetime.now(timezone.utc))])


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
