"""Reference files (stores, products, members, sensors, deliveries, inventory records, promotions, prices,
stock-out days) from a folder, through the one Great Expectations gate (`contract`), driven by the
specs of `reference_contract`.

Each file is read as text exactly as written (CSV: UTF-8 with or without BOM, `,` `;` or tab
separated, repeated header rows and blank lines skipped; or Parquet), typed column by column by the
contract's cell readers, and validated by its GX suite, as POS files are: text frame -> `typed_frame`
-> `Gate.validate` (one GX context for the whole folder), each expectation carrying
`meta={"problem": ...}` -> `first_per_column` (row -> column -> problem) -> `resolve_duplicates`.
Good rows are upserted, parents before children, so a re-load with corrections updates rows and a
re-load of the same files changes nothing; bad rows go to `quarantine` (channel REFERENCE_FILE) with
the raw row and a reason "FILE row N column C: problem". A file that cannot be taken at all (unreadable,
empty, wrong columns) is refused whole, with a message naming what was expected, and the others still
load. A file name that is no input file is reported with a "did you mean" hint.

Foreign keys are checked against the folder's own files and the database, and timestamps without a
UTC offset are read in the row's store time zone, so no input ends in a database error or a traceback.
No message or reason repeats a cell value: some columns hold personal data.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine, update
from sqlalchemy.exc import DataError, IntegrityError

from core.db import insert_ignore, upsert
from core.domain import REFERENCE_FILE
from sales_ingest.contract import (
    ID_COLUMNS,
    Gate,
    Known,
    first_per_column,
    good_rows,
    quarantine_row,
    resolve_duplicates,
    sniff_delimiter,
    typed_frame,
    whole_file_row,
)
from sales_ingest.reference_contract import (
    DOC,
    FLAG_SPELLINGS,
    REFERENCE_FILES,
    FileSpec,
    close_column,
    did_you_mean,
    looks_like_input,
    spec_for,
)
from sql import schema

log = logging.getLogger(__name__)


class FileRefused(ValueError):
    """A file that cannot be taken at all; the message names the file and what was expected."""


# ------------------------------------------------------------------------------------------ results


@dataclass
class Problem:
    file: str
    row: int | None  # None: the file as a whole
    column: str | None
    problem: str

    def __str__(self) -> str:
        where = f" row {self.row}" if self.row is not None else ""
        return f"{self.file}{where}" + (f" column {self.column}" if self.column else "") + f": {self.problem}"


@dataclass
class FileResult:
    file: str
    path: str
    kind: str = "reference"
    rows: int = 0
    loaded: int = 0
    quarantined: int = 0
    reasons: Counter = field(default_factory=Counter)
    refused: str | None = None
    skipped: Counter = field(default_factory=Counter)  # blank lines, repeated header rows
    consent_withdrawn: int = 0  # existing members made uncontactable by a refused row
    problems: list[Problem] = field(default_factory=list)
    quarantine_reasons: list[str] = field(default_factory=list)

    def as_dict(self, reasons_shown: int = 20) -> dict:
        return {
            "path": self.path,
            "kind": self.kind,
            "rows": self.rows,
            "loaded": self.loaded,
            "quarantined": self.quarantined,
            "reasons": dict(sorted(self.reasons.items())),
            "refused": self.refused,
            "skipped": dict(self.skipped),
            "consent_withdrawn": self.consent_withdrawn,
            "quarantine_reasons": self.quarantine_reasons[:reasons_shown],
        }


@dataclass
class FolderResult:
    folder: str
    files: dict[str, FileResult] = field(default_factory=dict)
    unknown: list[tuple[str, str]] = field(default_factory=list)  # (file name, hint)
    pos_files: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[Problem]:
        out = [Problem(name, None, None, f"unknown file name: {hint}") for name, hint in self.unknown]
        for result in self.files.values():
            out += result.problems
        return out

    @property
    def refused(self) -> list[FileResult]:
        return [r for r in self.files.values() if r.refused]

    def as_dict(self) -> dict:
        """JSON-able; `<file name>: rows loaded` at the top level, as before."""
        out: dict = {r.file: r.loaded for r in self.files.values() if r.kind == "reference"}
        out.update(
            {
                "folder": self.folder,
                "files": {name: r.as_dict() for name, r in self.files.items()},
                "unknown_files": [{"file": name, "hint": hint} for name, hint in self.unknown],
                "pos_files": self.pos_files,
                "rows_loaded": sum(r.loaded for r in self.files.values()),
                "rows_quarantined": sum(r.quarantined for r in self.files.values()),
                "files_refused": len(self.refused),
            }
        )
        return out


# ------------------------------------------------------------------------------------------ reading


@dataclass
class RawTable:
    path: Path
    spec: FileSpec
    header: list[str]  # the spec's column names, in the file's order ("" for an unnamed, empty column)
    original: list[str]  # the header as written (raw content keys)
    rows: list[tuple[int, list[str]]]  # (row number, cells as text)
    decimal_comma: bool
    skipped: Counter


def refuse(path: Path, spec: FileSpec, what: str) -> FileRefused:
    return FileRefused(f"{path.name}: {what}. Expected columns ({spec.expected_columns_text()}); see {DOC}")


def decode(path: Path, spec: FileSpec, data: bytes) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        codec = "utf-16"
    else:
        codec = "utf-8-sig"
    try:
        text = data.decode(codec)
    except UnicodeDecodeError:
        raise refuse(path, spec, "is not UTF-8 text (save it as 'CSV UTF-8')") from None
    if "\x00" in text:
        raise refuse(path, spec, "contains NUL bytes: not a text file")
    return text.lstrip("\ufeff")


def cell_text(value) -> str:
    """A Parquet cell as the text a CSV would hold."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if value is pd.NaT:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (pd.Timestamp, datetime)):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    try:
        if pd.isna(value):
            return ""
    except (TypeError, ValueError):
        pass
    return str(value)


def read_table(path: Path, spec: FileSpec) -> RawTable:
    """The file's header and cells as text; FileRefused when it cannot be read as a table."""
    try:
        if path.suffix == ".parquet":
            try:
                frame = pd.read_parquet(path)
            except Exception as exc:  # noqa: BLE001 - whatever the reader says, the file is unreadable
                raise refuse(path, spec, f"cannot be read as Parquet ({type(exc).__name__})") from None
            original = [str(c) for c in frame.columns]
            records = [[cell_text(v) for v in row] for row in frame.itertuples(index=False, name=None)]
            numbered = list(enumerate(records, start=1))
            decimal_comma = False
            if not original:
                raise refuse(path, spec, "is empty: it has no columns")
        else:
            data = path.read_bytes()
            text = decode(path, spec, data)
            if not text.strip():
                raise refuse(path, spec, "is empty: expected a header line naming the columns")
            delimiter = sniff_delimiter(text)
            try:
                records = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
            except csv.Error as exc:
                raise refuse(path, spec, f"cannot be read as CSV ({exc})") from None
            while records and not any(c.strip() for c in records[0]):
                records.pop(0)  # blank lines above the header
            original, records = records[0], records[1:]
            numbered = list(enumerate(records, start=1))
            decimal_comma = delimiter in (";", "\t")
    except OSError as exc:
        raise refuse(path, spec, f"cannot be read ({type(exc).__name__})") from None
    return check_header(path, spec, original, numbered, decimal_comma)


def check_header(
    path: Path, spec: FileSpec, original: list[str], numbered: list[tuple[int, list[str]]], decimal_comma: bool
) -> RawTable:
    """Columns named as the contract says (any case, spaces trimmed); the rest refuses the file."""
    names = [c.strip().lstrip("\ufeff").strip().lower() for c in original]
    # an unnamed column is harmless only if it is empty throughout (a trailing separator)
    for i, name in enumerate(names):
        if not name and any(i < len(cells) and cells[i].strip() for _, cells in numbered):
            raise refuse(path, spec, f"column {i + 1} has no name in the header line")
    expected = spec.column_names
    duplicated = sorted({n for n in names if n and names.count(n) > 1})
    missing = [c for c in spec.required_columns if c not in names]
    unexpected = [n for n in names if n and n not in expected]
    if not (duplicated or missing or unexpected):
        skipped: Counter = Counter()
        rows = []
        width = len(names)
        for number, cells in numbered:
            stripped = [c.strip() for c in cells]
            if not any(stripped):
                skipped["blank line(s)"] += 1
            elif [s.lower() for s in stripped[:width]] == names and not any(stripped[width:]):
                skipped["repeated header line(s)"] += 1
            else:
                rows.append((number, cells))
        return RawTable(
            path, spec, names, [c.strip().lstrip("\ufeff").strip() for c in original], rows, decimal_comma, skipped
        )
    if not set(names) & set(expected):
        raise refuse(path, spec, "the first line does not name any expected column (is the header line missing?)")
    parts = []
    if missing:
        parts.append("missing required column(s) " + ", ".join(repr(c) for c in missing))
    if unexpected:
        parts.append("unexpected column(s) " + ", ".join(describe_unexpected(n, spec) for n in unexpected))
    if duplicated:
        parts.append("column(s) named twice: " + ", ".join(repr(c) for c in duplicated))
    raise refuse(path, spec, "; ".join(parts))


def describe_unexpected(name: str, spec: FileSpec) -> str:
    """An unexpected header name, with a hint; in a file with personal data only when it is a close
    miss of an expected name (a header line that is really data would otherwise print the data)."""
    guess = close_column(name, spec)
    if guess:
        return f"{name[:40]!r} (did you mean {guess!r}?)"
    if spec.personal or not re.fullmatch(r"[a-z0-9_ .\-]{1,40}", name):
        return "one not shown (this file holds personal data)" if spec.personal else "one with an unusual name"
    return repr(name)


# ------------------------------------------------------------------------------------------ rows


def text_frame(table: RawTable) -> tuple[pd.DataFrame, list[int], list[str | None]]:
    """The table as the gate takes it: a text frame of its named columns (a cell the row lacks is
    empty), the row numbers and each row's shape problem (more cells than the header names)."""
    width = len(table.header)
    text = pd.DataFrame(
        {
            name: [cells[i] if i < len(cells) else "" for _, cells in table.rows]
            for i, name in enumerate(table.header)
            if name
        },
        index=range(len(table.rows)),
    )
    shape = [
        f"has {len(cells)} cells where the header names {width} columns"
        if any(c.strip() for c in cells[width:])
        else None
        for _, cells in table.rows
    ]
    return text, [number for number, _ in table.rows], shape


def row_reason(file: str, row: int, cols: dict[str, tuple[int, str]], spec: FileSpec) -> list[tuple[str, str]]:
    """(column, problem) of a bad row, in the file's column order."""
    order = {name: i for i, name in enumerate(["", *spec.column_names])}
    return [
        (col, problem)
        for col, (_, problem) in sorted(cols.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0]))
    ]


def reason_text(file: str, row: int, parts: list[tuple[str, str]]) -> str:
    """`FILE row N column C: problem; column D: problem` (a problem of the whole row has no column)."""
    return f"{file} row {row} " + "; ".join((f"column {c}: {p}" if c else p) for c, p in parts)


def consent_withdrawals(frame: pd.DataFrame, bad: set[int], existing: set[str]) -> dict[str, dict]:
    """members: for each refused row of a member already in the database, what keeps them from being
    contacted on its account: consent withdrawn unless the row clearly grants it and clearly does not
    opt out; opted out when the row says so. A refused row never makes anyone contactable."""
    out: dict[str, dict] = {}
    for pos in sorted(bad):
        member = frame.at[pos, "member_id__value"]
        if not member or member not in existing:
            continue
        consent = FLAG_SPELLINGS.get(frame.at[pos, "marketing_consent__value"] or "")
        opted = FLAG_SPELLINGS.get(frame.at[pos, "opted_out__value"] or "")
        change = out.setdefault(member, {})
        if consent is not True or opted is not False:
            change["marketing_consent"] = False
        if opted is True:
            change["opted_out"] = True
        if not change:
            del out[member]
    return out


# ------------------------------------------------------------------------------------------ the folder


def scan_folder(folder: Path) -> tuple[dict[str, list[Path]], list[Path], list[tuple[str, str]]]:
    """Reference files by spec name, POS files (by name, at the top), and unknown files with hints."""
    reference: dict[str, list[Path]] = {}
    pos: list[Path] = []
    unknown: list[tuple[str, str]] = []
    for path in sorted(Path(folder).iterdir()):
        if not path.is_file():
            continue
        spec = spec_for(path.name)
        if spec is None:
            if looks_like_input(path.name):
                unknown.append((path.name, did_you_mean(path.name)))
        elif spec.kind == "pos":
            pos.append(path)
        else:
            reference.setdefault(spec.name, []).append(path)
    return reference, pos, unknown


def check_reference_file(
    gate: Gate, path: Path, spec: FileSpec, known: Known
) -> tuple[FileResult, RawTable | None, pd.DataFrame | None, dict]:
    """Read, type and validate one file; nothing is written. Good rows are those without problems."""
    result = FileResult(path.name, str(path))
    try:
        table = read_table(path, spec)
    except FileRefused as exc:
        result.refused = str(exc)
        result.problems.append(Problem(path.name, None, None, str(exc).removeprefix(f"{path.name}: ")))
        return result, None, None, {}
    text, numbers, shape = text_frame(table)
    frame = typed_frame(text, spec, known, table.decimal_comma, numbers, shape)
    problems = first_per_column(gate.validate(frame, spec, known))
    resolve_duplicates(frame, spec, problems)
    result.rows, result.skipped = len(frame), table.skipped
    rows = frame["__row"].tolist()
    for pos in sorted(problems):
        parts = row_reason(path.name, rows[pos], problems[pos], spec)
        result.quarantine_reasons.append(reason_text(path.name, rows[pos], parts))
        for column, problem in parts:
            result.problems.append(Problem(path.name, rows[pos], column or None, problem))
            result.reasons[(f"column {column}: " if column else "") + problem] += 1
    result.quarantined = len(problems)
    return result, table, frame, problems


def add_good_ids(known: Known, spec: FileSpec, frame: pd.DataFrame, bad: set[int]) -> None:
    """The folder's good rows become ids the next files may name."""
    if spec.name not in ID_COLUMNS:
        return
    good = [pos for pos in range(len(frame)) if pos not in bad]
    column = ID_COLUMNS[spec.name]
    known.add(spec.name, (frame.at[p, f"{column}__value"] for p in good))
    if spec.name == "stores":
        known.zones.update({frame.at[p, "store_id__value"]: frame.at[p, "timezone__value"] for p in good})


def reference_files_in(folder: Path, result: FolderResult) -> list[tuple[FileSpec, Path]]:
    """The reference files to read, parents first; a kind given as both CSV and Parquet is refused."""
    reference, pos, unknown = scan_folder(folder)
    result.unknown, result.pos_files = unknown, [p.name for p in pos]
    todo = []
    for spec in REFERENCE_FILES.values():
        paths = reference.get(spec.name, [])
        if len(paths) > 1:
            why = f"{' and '.join(p.name for p in paths)}: the same file twice (CSV and Parquet); keep one"
            for p in paths:
                result.files[p.name] = FileResult(
                    p.name, str(p), refused=why, problems=[Problem(p.name, None, None, why)]
                )
        elif paths:
            todo.append((spec, paths[0]))
    return todo


def check_folder(
    folder: Path | str, known: Known | None = None, pos_paths: list[Path] | None = None, today: date | None = None
) -> FolderResult:
    """Every problem of every file in a folder (reference files, and POS files at its top or in
    `pos_paths`), against `known` (the database's ids) plus the folder's own files. Loads nothing."""
    folder = Path(folder)
    known = known or Known()
    result = FolderResult(str(folder))
    gate = Gate()
    for spec, path in reference_files_in(folder, result):
        file_result, _, frame, problems = check_reference_file(gate, path, spec, known)
        result.files[path.name] = file_result
        if frame is not None:
            add_good_ids(known, spec, frame, set(problems))
    for path in [folder / name for name in result.pos_files] + list(pos_paths or []):
        name = str(path.relative_to(folder)) if path.is_relative_to(folder) else str(path)
        result.files[name] = check_pos_file(gate, path, name, known, today or date.today())
    return result


def check_pos_file(gate: Gate, path: Path, name: str, known: Known, today: date) -> FileResult:
    """A POS file through the gate, worded as `ingest-sales` words it (sales_ingest.pos_files), read-only."""
    from sales_ingest.pos_files import SALES_KINDS, SalesFileError, detect_kind, parse_frame, read_raw, validate

    result = FileResult(name, str(path), kind="pos")
    try:
        raw = read_raw(path)
        kind = detect_kind(path, list(raw.columns))
    except SalesFileError as exc:
        message = str(exc).removeprefix(f"{path.name}: ")
    except Exception as exc:  # noqa: BLE001 - any reader failure means the file is unreadable
        message = f"cannot be read ({type(exc).__name__})"
    else:
        message = None
    if message:
        result.refused = f"{name}: {message}"
        result.problems.append(Problem(name, None, None, message))
        return result
    result.kind = kind
    frame = parse_frame(raw, kind, known)
    problems = validate(gate, frame, raw, kind, known, today) if len(frame) else {}
    columns = SALES_KINDS[kind]["columns"]
    result.rows = len(raw)
    for idx in sorted(problems):
        for problem in dict.fromkeys(problems[idx]):
            first = problem.split(" ", 1)[0]
            column = first if first in columns else None
            if column is None and problem.startswith("unknown "):
                column = problem.removeprefix("unknown ").strip()
            result.problems.append(Problem(name, idx + 1, column if column in columns else None, problem))
            result.reasons[problem] += 1
    result.quarantined = len(problems)
    return result


def load_reference_data(engine: Engine, world_dir: Path | str) -> dict:
    """Validate and upsert every reference file in `world_dir`, parents before children; bad rows go
    to quarantine, refused files are reported (and kept whole in quarantine). Returns a JSON-able
    summary (`<file name>: rows loaded`, plus `files`, `unknown_files`, ...; see FolderResult)."""
    folder = Path(world_dir)
    known = Known.from_db(engine)
    result = FolderResult(str(folder))
    gate = Gate()
    now = datetime.now(UTC)
    for spec, path in reference_files_in(folder, result):
        existing_members = set(known.ids["members"]) if spec.name == "members" else set()
        file_result, table, frame, problems = check_reference_file(gate, path, spec, known)
        result.files[path.name] = file_result
        if table is None:
            quarantine_whole_file(engine, path, file_result.refused, now)
            continue
        bad = set(problems)
        rows = good_rows(frame, spec, table.header, bad)
        quarantined = [
            quarantine_row(REFERENCE_FILE, str(path), raw_content(table, pos), reason, now)
            for pos, reason in zip(sorted(problems), file_result.quarantine_reasons, strict=True)
        ]
        withdrawals = consent_withdrawals(frame, bad, existing_members) if spec.name == "members" else {}
        try:
            with engine.begin() as conn:
                file_result.loaded = upsert(conn, getattr(schema, spec.table), rows)
                insert_ignore(conn, schema.quarantine, quarantined)
                for member_id, change in withdrawals.items():
                    conn.execute(update(schema.members).where(schema.members.c.member_id == member_id).values(**change))
        except (IntegrityError, DataError) as exc:  # validation should make this impossible; never quote the rows
            why = f"the database refused its rows ({type(exc).__name__}); nothing of this file was loaded"
            file_result.refused, file_result.loaded = f"{path.name}: {why}", 0
            file_result.problems.append(Problem(path.name, None, None, why))
            quarantine_whole_file(engine, path, file_result.refused, now)
            continue
        file_result.consent_withdrawn = len(withdrawals)
        add_good_ids(known, spec, frame, bad)
        if problems:
            log.info("%s: %d of %d rows quarantined", path.name, len(problems), len(frame))
    for file_result in result.refused:
        log.info("%s refused: %s", file_result.file, file_result.refused)
    for name, hint in result.unknown:
        log.info("%s: unknown file name: %s", name, hint)
    return result.as_dict()


def raw_content(table: RawTable, pos: int) -> str:
    """The raw row as JSON, keyed by the header as written (the quarantine table keeps it)."""
    number, cells = table.rows[pos]
    width = len(table.original)
    row = {
        "row": number,
        **{name: (cells[i] if i < len(cells) else "") for i, name in enumerate(table.original) if table.header[i]},
    }
    if any(c.strip() for c in cells[width:]):
        row["extra_cells"] = cells[width:]
    return json.dumps(row, ensure_ascii=False)


def quarantine_whole_file(engine: Engine, path: Path, reason: str, when: datetime) -> None:
    """A refused file is kept whole (its text, or a note for a binary or huge one), so nothing is lost."""
    with engine.begin() as conn:
        insert_ignore(conn, schema.quarantine, [whole_file_row(REFERENCE_FILE, path, reason, when)])
