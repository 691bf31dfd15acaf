"""The `report` command: the report folder."""

from __future__ import annotations

from pathlib import Path

import typer

from shelfwatch.cli.common import DbOption, settings_for, show


def report(
    world: Path | None = typer.Option(None, help="World folder with ground_truth.json to score against."),
    db: str | None = DbOption,
) -> None:
    """Write the report folder (summary, CX contact list, plots)."""
    from shelfwatch import steps

    show(steps.write_report(settings_for(db), world))


def mount(app: typer.Typer) -> None:
    app.command("report")(report)
