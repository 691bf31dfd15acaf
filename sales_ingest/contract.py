"""The sales contract, whatever the source: record kinds and their columns, the Great Expectations
suite every sales record meets, and the rows that load or go to quarantine.

A source (POS files in `pos_files`; a Kafka topic of POS events would sit beside it) reads records as
text, names their kind and hands the frame to `typed_frame` -> `validate_with_gx` ->
`resolve_duplicates` -> `good_rows` / `quarantine_row`, exactly as `iot_ingest.contract` serves the
MQTT consumer. Purchase lines then pass `detach_unknown_members`: a sale whose loyalty card is not yet
a member is kept, and only its member link waits (`member_links`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from datetime import date, datetime
from pathlib import Path

import pandas as pd
from sqlalchemy import Engine, select

from sql import schema

SALES_KINDS = {
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


def typed_frame(raw: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Parsed columns next to the raw ones; unparsable values become NaN/NaT for GX to flag."""
    out = raw.copy()
    for col in SALES_KINDS[kind]["columns"]:
        out[col] = raw[col].str.strip().replace("", None)
    out["units_value"] = pd.to_numeric(out["units"], errors="coerce")
    out["date_value"] = pd.to_datetime(out["date"], errors="coerce", format="%Y-%m-%d")
    if kind == "purchase_lines":
        out["line_no_value"] = pd.to_numeric(out["line_no"], errors="coerce")
    return out


def build_suite(kind: str, known: dict[str, set[str]], today: date):
    """The expectations every POS file must meet; `known` holds the valid store and SKU ids."""
    import great_expectations as gx

    e = gx.expectations
    suite = gx.ExpectationSuite(name=f"pos_{kind}")
    for col in SALES_KINDS[kind]["columns"]:
        if col not in NULLABLE:
            suite.add_expectation(e.ExpectColumnValuesToNotBeNull(column=col))
    suite.add_expectation(
        e.ExpectColumnValuesToNotBeNull(column="units_value", meta={"problem": "units is not a number"})
    )
    suite.add_expectation(
        e.ExpectColumnValuesToBeBetween(
            column="units_value", min_value=0, meta={"problem": "units is negative (must be >= 0)"}
        )
    )
    suite.add_expectation(
        e.ExpectColumnValuesToNotBeNull(column="date_value", meta={"problem": "date is not a YYYY-MM-DD date"})
    )
    suite.add_expectation(
        e.ExpectColumnValuesToBeBetween(
            column="date_value",
            max_value=pd.Timestamp(today),
            meta={"problem": f"date is in the future (after {today})"},
        )
    )
    suite.add_expectation(
        e.ExpectColumnValuesToBeInSet(
            column="store_id", value_set=sorted(known["stores"]), meta={"problem": "unknown store_id"}
        )
    )
    suite.add_expectation(
        e.ExpectColumnValuesToBeInSet(column="sku", value_set=sorted(known["skus"]), meta={"problem": "unknown sku"})
    )
    if kind == "purchase_lines":
        # An unknown member_id is no reason to reject the sale: `detach_unknown_members` keeps the line
        # and lets only its member link wait (pending_member_links).
        suite.add_expectation(
            e.ExpectColumnValuesToNotBeNull(column="line_no_value", meta={"problem": "line_no is not a number"})
        )
    suite.add_expectation(
        e.ExpectCompoundColumnsToBeUnique(column_list=SALES_KINDS[kind]["key"], meta={"problem": "duplicate key"})
    )
    return suite


def validate_with_gx(frame: pd.DataFrame, kind: str, known: dict[str, set[str]], today: date) -> dict[int, list[str]]:
    """Run the suite on the frame; returns row index -> problems (empty when every row passes)."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")  # no phoning home from a closed network
    import great_expectations as gx

    for name in ("great_expectations", "great_expectations.data_context.types.base"):  # no INFO chatter on stderr
        logging.getLogger(name).setLevel(logging.WARNING)
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


def resolve_duplicates(frame: pd.DataFrame, kind: str, problems: dict[int, list[str]]) -> dict[int, list[str]]:
    """Identical repeats of a row are harmless (keep the first); conflicting repeats are ambiguous."""
    key = SALES_KINDS[kind]["key"]
    cols = SALES_KINDS[kind]["columns"]
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


def good_rows(frame: pd.DataFrame, kind: str, bad: set[int]) -> list[dict]:
    """The typed rows that passed, ready to insert."""
    ok = frame.drop(index=list(bad))
    out = pd.DataFrame({c: ok[c] for c in SALES_KINDS[kind]["columns"] if c not in ("units", "date", "line_no")})
    out["units"] = ok["units_value"].astype(float)
    out["date"] = ok["date_value"].dt.date
    if kind == "purchase_lines":
        out["line_no"] = ok["line_no_value"].astype(int)
        out["member_id"] = ok["member_id"].where(ok["member_id"].notna(), None)
    return out.to_dict("records")


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


def known_ids(engine: Engine) -> dict[str, set[str]]:
    """The store, SKU and member ids a sales record may name."""
    with engine.connect() as conn:
        return {
            "stores": set(conn.execute(select(schema.stores.c.store_id)).scalars()),
            "skus": set(conn.execute(select(schema.products.c.sku)).scalars()),
            "members": set(conn.execute(select(schema.members.c.member_id)).scalars()),
        }
