"""Reading the forecaster's input files, with errors that name the file, the rows and the problem."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

SALES_COLUMNS = ["store_id", "sku", "date", "units"]
OPTIONAL_SALES_COLUMNS = ["stockout"]
PROMOTION_COLUMNS = ["store_id", "sku", "start_date", "end_date"]
PRICE_COLUMNS = ["store_id", "sku", "date", "price"]


class ForecastInputError(ValueError):
    """The input cannot be forecast as given; the message says where and why."""


def rows_named(mask: pd.Series, limit: int = 5) -> str:
    """'rows 3, 9' in the file's own numbering (header = line 1, first data row = line 2)."""
    lines = (mask[mask].index + 2).tolist()
    more = f" and {len(lines) - limit} more" if len(lines) > limit else ""
    return "line" + ("s " if len(lines) > 1 else " ") + ", ".join(map(str, lines[:limit])) + more


def validate_sales(frame: pd.DataFrame, source: str = "input") -> pd.DataFrame:
    """Check columns and values of a sales frame and return it typed (date as datetime, units float)."""
    unknown = [c for c in frame.columns if c not in SALES_COLUMNS + OPTIONAL_SALES_COLUMNS]
    missing = [c for c in SALES_COLUMNS if c not in frame.columns]
    if unknown or missing:
        parts = []
        if unknown:
            parts.append(f"unknown column(s) {', '.join(map(repr, unknown))}")
        if missing:
            parts.append(f"missing column(s) {', '.join(map(repr, missing))}")
        raise ForecastInputError(
            f"{source}: {' and '.join(parts)}; expected {', '.join(SALES_COLUMNS)} (optional: stockout)"
        )
    if frame.empty:
        raise ForecastInputError(f"{source}: no rows")
    frame = frame.reset_index(drop=True)
    blank = frame["store_id"].isna() | frame["sku"].isna()
    if blank.any():
        raise ForecastInputError(f"{source}: empty store_id or sku on {rows_named(blank)}")
    dates = pd.to_datetime(frame["date"], errors="coerce", format="mixed")
    if dates.isna().any():
        raise ForecastInputError(f"{source}: unreadable date on {rows_named(dates.isna())} (expected YYYY-MM-DD)")
    units = pd.to_numeric(frame["units"], errors="coerce")
    if units.isna().any():
        raise ForecastInputError(f"{source}: units is not a number on {rows_named(units.isna())}")
    if (units < 0).any():
        raise ForecastInputError(
            f"{source}: negative units on {rows_named(units < 0)}; returns belong in their own feed"
        )
    out = pd.DataFrame(
        {
            "store_id": frame["store_id"].astype(str),
            "sku": frame["sku"].astype(str),
            "date": dates.dt.normalize(),
            "units": units.astype(float),
        }
    )
    if "stockout" in frame.columns:
        flag = pd.to_numeric(frame["stockout"].fillna(0), errors="coerce")
        bad = flag.isna() | ~flag.isin([0, 1])
        if bad.any():
            raise ForecastInputError(f"{source}: stockout must be 0 or 1 on {rows_named(bad)}")
        out["stockout"] = flag.astype(int)
    return out


def read_sales_csv(path: Path) -> pd.DataFrame:
    try:
        frame = pd.read_csv(
            path, dtype={"store_id": str, "sku": str}, keep_default_na=False, na_values={"units": [""], "date": [""]}
        )
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise ForecastInputError(f"{path}: not a readable CSV file ({exc})") from exc
    frame = frame.replace({"store_id": {"": None}, "sku": {"": None}})
    return validate_sales(frame, str(path))


def read_promotions_csv(path: Path) -> pd.DataFrame:
    """Promotion calendar: store_id (empty = every store), sku, start_date, end_date (inclusive)."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in PROMOTION_COLUMNS if c not in frame.columns]
    if missing:
        raise ForecastInputError(
            f"{path}: missing column(s) {', '.join(map(repr, missing))}; expected {', '.join(PROMOTION_COLUMNS)}"
        )
    start = pd.to_datetime(frame["start_date"], errors="coerce")
    end = pd.to_datetime(frame["end_date"], errors="coerce")
    bad = start.isna() | end.isna() | (end < start)
    if bad.any():
        raise ForecastInputError(f"{path}: unreadable or reversed dates on {rows_named(bad)}")
    return frame[["store_id", "sku"]].assign(start_date=start, end_date=end)


def read_prices_csv(path: Path) -> pd.DataFrame:
    """Shelf prices: store_id (empty = every store), sku, date (the price applies from then on), price > 0."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in PRICE_COLUMNS if c not in frame.columns]
    if missing:
        raise ForecastInputError(
            f"{path}: missing column(s) {', '.join(map(repr, missing))}; expected {', '.join(PRICE_COLUMNS)}"
        )
    day = pd.to_datetime(frame["date"], errors="coerce", format="%Y-%m-%d")
    price = pd.to_numeric(frame["price"], errors="coerce")
    bad = day.isna() | price.isna() | ~(price > 0) | (frame["sku"].str.strip() == "")
    if bad.any():
        raise ForecastInputError(
            f"{path}: a date (YYYY-MM-DD), a sku and a price above 0 are needed on {rows_named(bad)}"
        )
    return frame[["store_id", "sku"]].assign(date=day, price=price.astype(float))


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """'2/4' -> (1, 4): shards are numbered from 1 on the command line."""
    if not text:
        return None
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise ForecastInputError(f"--shard {text!r}: expected i/n, e.g. 1/4") from None
    if not 1 <= i <= n:
        raise ForecastInputError(f"--shard {text!r}: i must be between 1 and n")
    return i - 1, n


def parse_quantiles(text: str) -> tuple[float, ...]:
    try:
        levels = tuple(sorted(float(x) for x in text.split(",") if x.strip()))
    except ValueError:
        raise ForecastInputError(f"--quantiles {text!r}: expected numbers such as 0.1,0.5,0.9") from None
    if not levels or any(not 0 < q < 1 for q in levels):
        raise ForecastInputError(f"--quantiles {text!r}: every level must be strictly between 0 and 1")
    return levels
