"""The `members` group: loyalty members' contact lists, the members at risk and whether notices
worked, for the CX team. Never contact details, except in the export CX sends from."""

from __future__ import annotations

from pathlib import Path

import typer

from shelfwatch.cli.common import AsOfOption, DbOption, console, error, escape, say, settings_for, show

members_app = typer.Typer(
    no_args_is_help=True,
    help="Loyalty members: contact lists, members at risk and the notices' effect, for the CX team.",
)
FORMATS = ("table", "json")


def check_format(format: str) -> None:
    if format not in FORMATS:
        error(f"--format {format!r}: expected table or json")
        raise typer.Exit(2)


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
    output: Path | None = typer.Option(None, help="CSV to write (default: standard output); its folder must exist."),
    db: str | None = DbOption,
) -> None:
    """Members CX may contact about an alert (consent, not opted out, frequency cap), as CSV.

    The contacts are recorded (they count toward the frequency cap) only once the CSV is written: with
    --output, the file is written to a temporary name in its folder and renamed into place first. The
    export goes into the history the CX page shows (cx_exports: "cli:<login name>", when, how many).
    """
    from alerts.lifecycle import utc_now
    from alerts.notify import (
        NotifyError,
        export_members_csv,
        members_for_alert,
        record_cx_export,
        record_member_contacts,
    )
    from core.db import get_engine

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
            raise NotifyError(
                f"{output} is a folder: name the CSV file to write, e.g. {output / f'members_alert_{alert}.csv'}"
            )
        frame = export_members_csv(engine, alert, now, settings.member_contact_cap_days, output, exported_by=by)
    except NotifyError as exc:
        error(exc)
        raise typer.Exit(2) from None
    say(f"{len(frame)} members for alert {alert} -> {output}", err=True)


@members_app.command("at-risk")
def members_at_risk(
    limit: int = typer.Option(50, "--limit", min=1, help="How many members, most at risk first."),
    format: str = typer.Option("table", "--format", help="table or json."),
    refresh: bool = typer.Option(
        False, "--refresh", help="Re-rank at --as-of first (what the alerts DAG does after each detection)."
    ),
    db: str | None = DbOption,
    as_of: str | None = AsOfOption,
) -> None:
    """Members whose favourites keep running out, most at risk first: why ("3 of their 5 favourites out
    4 times in 30 days; ..."), their home store and whether CX may contact them (marketing consent, not
    opted out). Never contact details."""
    import json

    from alerts.member_risk import at_risk_list, refresh_member_risk
    from core.db import get_engine

    check_format(format)
    settings = settings_for(db, as_of=as_of)
    engine = get_engine(settings.db_url)
    if refresh:
        summary = refresh_member_risk(engine, settings.clock(), settings)
        say(f"refreshed as of {summary['as_of']}: {summary['members_at_risk']} members at risk", err=True)
    frame, total = at_risk_list(engine, limit)
    if format == "json":
        typer.echo(
            json.dumps(
                {"total": total, "members": json.loads(frame.to_json(orient="records", date_format="iso"))}, indent=1
            )
        )
        return
    if frame.empty:
        say("No member at risk" + (" (the list was never refreshed: add --refresh)" if total == 0 else "") + ".")
        return
    from rich.table import Table

    table = Table(
        "rank",
        "member",
        "score",
        "why",
        "home store",
        "contactable",
        title=f"{len(frame)} of {total} members at risk (as of {frame['as_of'].iloc[0]:%Y-%m-%d %H:%M} UTC)",
    )
    for r in frame.itertuples():
        table.add_row(
            str(r.rank),
            escape(r.member_id),
            f"{r.score:.2f}",
            escape(r.reason),
            escape(r.home_store_id),
            "yes" if r.contactable else "no",
        )
    console.print(table)


@members_app.command("cx-effect")
def members_cx_effect(
    window_days: int = typer.Option(14, "--window-days", min=1, help="Days after a notice in which a purchase counts."),
    format: str = typer.Option("table", "--format", help="table or json."),
    db: str | None = DbOption,
    as_of: str | None = AsOfOption,
) -> None:
    """Did notices work? Notified members against linked members of the same alerts we could not contact
    (no consent): who bought the product or a substitute within --window-days, the difference and its
    95 % interval (alerts resampled whole)."""
    from alerts.effect_report import cx_effect
    from core.db import get_engine

    check_format(format)
    settings = settings_for(db, as_of=as_of)
    result = cx_effect(get_engine(settings.db_url), settings.clock(), window_days)
    if format == "json":
        show(result)
        return
    from rich.table import Table

    table = Table(
        "group",
        "members",
        "bought",
        "rate",
        title=f"Notices and purchases within {window_days} days, {result['alerts']} comparable alerts",
    )
    for label, key in (("notified", "treated"), ("could not contact", "control")):
        rate = result[f"{key}_rate"]
        table.add_row(
            label, str(result[f"{key}_n"]), str(result[f"{key}_bought"]), "-" if rate is None else f"{rate:.0%}"
        )
    console.print(table)
    say(result["sentence"])


def mount(app: typer.Typer) -> None:
    app.add_typer(members_app, name="members")
