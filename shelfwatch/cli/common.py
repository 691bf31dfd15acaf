"""What the command modules share: the console, the `--db` option, settings, JSON output, a progress bar.

Cheap imports only: every command module imports this at start-up.

Rich reads `[...]` in printed strings as markup, so data (file names, reasons, ids, exception
messages) never goes into `console.print` raw: print it with `say` / `error`, or pass it through
`escape` (also for table cells).
"""

from __future__ import annotations

import json
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.markup import escape

from core.settings import Settings

console = Console()
err_console = Console(stderr=True)

DbOption = typer.Option(None, "--db", help="SQLAlchemy URL (default: SHELFWATCH_DATABASE_URL or the SQLite file).")


@contextmanager
def progress_bar(label: str, total: int | None = None):
    """A Rich progress bar on stderr; yields `advance(n)`."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


AsOfOption = typer.Option(
    None,
    "--as-of",
    help='"Now" for this run, ISO time (UTC unless it has an offset), e.g. 2026-11-23T00:00. '
    "Default: SHELFWATCH_AS_OF, else the wall clock; never the last date in the data.",
)


def settings_for(db: str | None = None, broker: str | None = None, as_of: str | None = None) -> Settings:
    """Settings from the environment with the command's options on top; a bad `--as-of` exits 2."""
    settings = Settings.from_env(database_url=db, mqtt_url=broker, as_of=as_of)
    try:
        settings.clock()
    except ValueError:
        error(
            f"--as-of / SHELFWATCH_AS_OF {settings.as_of!r} is not an ISO time (e.g. 2026-11-23T00:00 or "
            "2026-11-23T00:00+01:00)"
        )
        raise typer.Exit(2) from None
    return settings


def show(summary: dict) -> None:
    """A step's summary as JSON (rendered as JSON, never as markup: reasons like `[unknown sku: 2]` stay)."""
    console.print_json(json.dumps(summary, default=str))


def say(text: object, style: str | None = None, err: bool = False) -> None:
    """Print data verbatim: no markup, and no line breaks added (long paths and reasons stay whole)."""
    (err_console if err else console).print(escape(str(text)), style=style, soft_wrap=True)


def error(message: object, label: str = "error:") -> None:
    """`error: <message>` on one line, the label red, the message verbatim."""
    console.print(f"[red]{escape(label)}[/red] {escape(str(message))}", soft_wrap=True)


def reachable_url(url: str) -> bool:
    """Whether a database URL's server answers (the benchmark skips what is not there)."""
    from sqlalchemy import create_engine, text

    try:
        with create_engine(url).connect() as conn:
            conn.execute(text("select 1"))
        return True
    except Exception:
        return False
