"""The `members` group: loyalty members' contact lists for the CX team."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from shelfwatch.cli.common import DbOption, error, say, settings_for

members_app = typer.Typer(no_args_is_help=True, help="Loyalty members: contact lists for the CX team.")


def cli_user() -> str:
    """Who runs the command, for the export history: "cli:<login name>" (just "cli" if unknown)."""
    import getpass

    try:
        return f"cli:{getpass.getuser()}"[:64]
    except (OSError, KeyError, ImportError):
        return "cli"


@members_app.command("export")
def members_export(
    alert: int = typer.Option(..., "--alert", help="Alert id."),
    output: Optional[Path] = typer.Option(None, help="CSV to write (default: standard output); its folder must exist."),
    db: Optional[str] = DbOption,
) -> None:
    """Members CX may contact about an alert (consent, not opted out, frequency cap), as CSV.

    The contacts are recorded (they count toward the frequency cap) only once the CSV is written: with
    --output, the file is written to a temporary name in its folder and renamed into place first. The
    export goes into the history the CX page shows (cx_exports: "cli:<login name>", when, how many).
    """
    from shelfwatch.alerts.lifecycle import utc_now
    from shelfwatch.alerts.notify import NotifyError, export_members_csv, members_for_alert, record_cx_export, record_member_contacts
    from shelfwatch.core.db import get_engine

    settings = settings_for(db)
    engine = get_engine(settings.db_url)
    now = utc_now()
    by = cli_user()
    try:
        if output is None:
            frame = members_for_alert(engine, alert, now, settings.member_contact_cap_days, record=False)
            typer.echo(frame.to_csv(index=False), nl=False)
            record_member_contacts(engine, alert, frame["member_id"], now)
            record_cx_export(engine, alert, by, len(frame), now)
            return
        if output.is_dir():
            raise NotifyError(f"{output} is a folder: name the CSV file to write, e.g. {output / f'members_alert_{alert}.csv'}")
        frame = export_members_csv(engine, alert, now, settings.member_contact_cap_days, output, exported_by=by)
    except NotifyError as exc:
        error(exc)
        raise typer.Exit(2) from None
    say(f"{len(frame)} members for alert {alert} -> {output}", err=True)


def mount(app: typer.Typer) -> None:
    app.add_typer(members_app, name="members")
