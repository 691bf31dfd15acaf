"""The `members` group: loyalty members' contact lists for the CX team."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from shelfwatch.cli.common import DbOption, console, settings_for

members_app = typer.Typer(no_args_is_help=True, help="Loyalty members: contact lists for the CX team.")


@members_app.command("export")
def members_export(
    alert: int = typer.Option(..., "--alert", help="Alert id."),
    output: Optional[Path] = typer.Option(None, help="CSV to write (default: standard output)."),
    db: Optional[str] = DbOption,
) -> None:
    """Members CX may contact about an alert (consent, not opted out, frequency cap), as CSV."""
    from shelfwatch.alerts.lifecycle import utc_now
    from shelfwatch.alerts.notify import NotifyError, members_for_alert
    from shelfwatch.core.db import get_engine

    settings = settings_for(db)
    try:
        frame = members_for_alert(get_engine(settings.db_url), alert, utc_now(), settings.member_contact_cap_days)
    except NotifyError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    if output is None:
        typer.echo(frame.to_csv(index=False), nl=False)
    else:
        frame.to_csv(output, index=False)
        Console(stderr=True).print(f"{len(frame)} members for alert {alert} -> {output}")


def mount(app: typer.Typer) -> None:
    app.add_typer(members_app, name="members")
