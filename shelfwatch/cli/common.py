"""What the command modules share: the console, the `--db` option, settings, JSON output, a progress bar.

Cheap imports only: every command module imports this at start-up.
"""

from __future__ import annotations

import json
from contextlib import contextmanager

import typer
from rich.console import Console

from shelfwatch.core.settings import Settings

console = Console()

DbOption = typer.Option(None, "--db", help="SQLAlchemy URL (default: SHELFWATCH_DATABASE_URL or the SQLite file).")


@contextmanager
def progress_bar(label: str, total: int | None = None):
    """A Rich progress bar on stderr; yields `advance(n)`."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda n: bar.advance(task, n)


def settings_for(db: str | None = None, broker: str | None = None) -> Settings:
    return Settings.from_env(database_url=db, mqtt_url=broker)


def show(summary: dict) -> None:
    console.print_json(json.dumps(summary, default=str))


def reachable_url(url: str) -> bool:
    """Whether a database URL's server answers (the benchmark skips what is not there)."""
    from sqlalchemy import create_engine, text

    try:
        with create_engine(url).connect() as conn:
            conn.execute(text("select 1"))
        return True
    except Exception:
        return False
