"""The `quarantine` group: what the gates held back, with reasons printed verbatim."""

from __future__ import annotations

from datetime import datetime

import typer

from shelfwatch.cli.common import DbOption, console, error, escape, say, settings_for

quarantine_app = typer.Typer(
    no_args_is_help=True, help="What the ingest gates held back (POS files, MQTT messages, reference files), and why."
)

# --source names people type -> quarantine channels (core.domain.QUARANTINE_CHANNELS)
SOURCES = {"sales": "sales_file", "mqtt": "mqtt", "reference": "reference_file"}


def parse_since(value: str) -> datetime:
    """An ISO date (midnight UTC) or date-time (no offset = UTC); exit 2 on anything else."""
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        error(
            f"--since {value!r}: expected an ISO date or date-time, e.g. 2026-11-03 or 2026-11-03T08:00 (UTC unless an "
            "offset is given)"
        )
        raise typer.Exit(2) from None


@quarantine_app.command("list")
def quarantine_list(
    source: str | None = typer.Option(
        None,
        "--source",
        help="Only this channel: sales (POS files), mqtt (sensor messages) or reference (reference files).",
    ),
    since: str | None = typer.Option(
        None,
        "--since",
        help="Only entries quarantined at or after this ISO date or date-time (UTC unless it says otherwise).",
    ),
    limit: int = typer.Option(100, "--limit", min=1, help="Most entries to list (newest first)."),
    db: str | None = DbOption,
) -> None:
    """Quarantined entries, newest first: id, when (UTC), channel, source and the reason, verbatim."""
    from rich.table import Table

    from core.db import get_engine
    from shelfwatch.report import quarantine_count, quarantine_rows

    channel = None
    if source is not None:
        channel = SOURCES.get(source.lower(), source if source in SOURCES.values() else None)
        if channel is None:
            error(f"--source {source!r}: expected one of {', '.join(SOURCES)}")
            raise typer.Exit(2)
    when = parse_since(since) if since is not None else None
    settings = settings_for(db)
    engine = get_engine(settings.db_url)
    frame = quarantine_rows(engine, channel=channel, since=when, limit=limit)
    total = quarantine_count(engine, channel=channel, since=when)
    if len(frame):
        table = Table("id", "quarantined at (UTC)", "channel", "source", "reason")
        for r in frame.itertuples():
            table.add_row(
                str(r.quarantine_id),
                r.quarantined_at.strftime("%Y-%m-%d %H:%M:%S"),
                escape(r.channel),
                escape(r.source),
                escape(r.reason),
            )
        console.print(table)
    scope = " ".join(
        part
        for part in (
            f"channel {channel}" if channel else "",
            f"since {when.isoformat()}{'' if when.tzinfo else ' UTC'}" if when else "",
        )
        if part
    )
    say(
        f"{len(frame)} of {total} quarantined entries shown"
        + (f" ({scope})" if scope else "")
        + ("; `shelfwatch quarantine show ID` prints one in full" if len(frame) else "")
    )


@quarantine_app.command("show")
def quarantine_show(
    quarantine_id: int = typer.Argument(..., metavar="ID", help="A quarantine id from `quarantine list`."),
    db: str | None = DbOption,
) -> None:
    """Every field of one quarantine entry, raw content included, verbatim."""
    from core.db import get_engine
    from shelfwatch.report import quarantine_entry

    settings = settings_for(db)
    entry = quarantine_entry(get_engine(settings.db_url), quarantine_id)
    if entry is None:
        error(f"no quarantine entry with id {quarantine_id} (see `shelfwatch quarantine list`)")
        raise typer.Exit(2)
    fields = {**entry, "quarantined_at": entry["quarantined_at"].strftime("%Y-%m-%d %H:%M:%S.%f UTC")}
    for name in ("quarantine_id", "quarantined_at", "channel", "source", "reason", "content_hash"):
        console.print(f"[bold]{name}:[/bold] {escape(str(fields[name]))}", soft_wrap=True, highlight=False)
    console.print("[bold]raw_content:[/bold]", highlight=False)
    say(fields["raw_content"])


def mount(app: typer.Typer) -> None:
    app.add_typer(quarantine_app, name="quarantine")
