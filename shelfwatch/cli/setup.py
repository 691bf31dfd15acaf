"""Set-up commands: `migrate` and `load-reference`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from shelfwatch.cli.common import DbOption, settings_for, show


def migrate(db: Optional[str] = DbOption) -> None:
    """Create or upgrade the database schema (Alembic)."""
    from shelfwatch import steps

    show(steps.migrate_database(settings_for(db)))


def load_reference(world: Path = typer.Argument(..., exists=True, file_okay=False), db: Optional[str] = DbOption) -> None:
    """Load stores, products, members, sensors, deliveries and inventory records from a folder."""
    from shelfwatch import steps

    settings = settings_for(db)
    steps.migrate_database(settings)
    show(steps.load_reference(settings, world))


def mount(app: typer.Typer) -> None:
    app.command("migrate")(migrate)
    app.command("load-reference")(load_reference)
