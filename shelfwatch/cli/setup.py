"""Set-up commands: `migrate` and `load-reference`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from shelfwatch.cli.common import DbOption, console, settings_for, show

REASONS_SHOWN = 20  # quarantined rows listed per file (all are counted, and kept in quarantine)


def migrate(db: str | None = DbOption) -> None:
    """Create or upgrade the database schema (Alembic)."""
    from shelfwatch import steps

    show(steps.migrate_database(settings_for(db)))


def load_reference(
    world: Path = typer.Argument(
        ..., exists=True, file_okay=False, metavar="FOLDER", help="Folder of reference files (stores.csv, ...)."
    ),
    db: str | None = DbOption,
    as_json: bool = typer.Option(False, "--json", help="Print the whole summary as JSON."),
) -> None:
    """Load stores, products, members, sensors, deliveries, inventory records, promotions and
    stock-out days from FOLDER. Bad rows go to quarantine and do not stop the load (exit 0); a refused
    file or an unknown file name exits 2, the other files still load. The files, their columns and
    rules: docs/data-contract.md (`shelfwatch check FOLDER` checks without loading)."""
    from shelfwatch import steps

    settings = settings_for(db)
    steps.migrate_database(settings)
    summary = steps.load_reference(settings, world)
    if as_json:
        show(summary)
    failed = print_load_summary(summary)
    if failed:
        raise typer.Exit(2)


def print_load_summary(summary: dict) -> bool:
    """Per file: loaded, quarantined (reasons verbatim), refused (why); unknown files. True if any
    file was refused or unknown, or no reference file was found."""

    def say(markup: str) -> None:
        console.print(markup, soft_wrap=True, highlight=False)

    files = summary.get("files", {})
    for name, f in files.items():
        if f["refused"]:
            say(f"[red]refused[/red] {escape(name)}: {escape(f['refused'].removeprefix(name + ': '))}")
            continue
        skipped = ", ".join(f"{n} {escape(what)}" for what, n in f["skipped"].items())
        say(
            f"{escape(name)}: {f['rows']} rows, {f['loaded']} loaded, {f['quarantined']} quarantined"
            + (f" ({skipped} skipped)" if skipped else "")
        )
        for reason in f["quarantine_reasons"]:
            say(f"  quarantined: {escape(reason)}")
        if f["quarantined"] > len(f["quarantine_reasons"]):
            say(f"  ... and {f['quarantined'] - len(f['quarantine_reasons'])} more; by reason:")
            for reason, n in f["reasons"].items():
                say(f"    {n} x {escape(reason)}")
        if f.get("consent_withdrawn"):
            say(
                f"  [yellow]{f['consent_withdrawn']} member(s) already loaded are no longer contacted[/yellow]: their "
                "new row was refused (consent is never assumed)"
            )
    for u in summary.get("unknown_files", []):
        say(f"[red]unknown file[/red] {escape(u['file'])}: not loaded; {escape(u['hint'])}")
    for name in summary.get("pos_files", []):
        say(f"{escape(name)}: a POS file, not loaded here (`shelfwatch ingest-sales`)")
    if summary.get("member_links_attached"):
        say(f"{summary['member_links_attached']} purchase line(s) got their member")
    refused = summary.get("files_refused", 0) + len(summary.get("unknown_files", []))
    say(
        f"{summary.get('rows_loaded', 0)} rows loaded, {summary.get('rows_quarantined', 0)} quarantined"
        + (
            " (quarantined rows are not a failure: `shelfwatch quarantine list --source reference`)"
            if summary.get("rows_quarantined")
            else ""
        )
    )
    if not any(f["kind"] == "reference" for f in files.values()) and not refused:
        say(
            f"[red]no reference file found[/red] in {escape(str(summary.get('folder', '')))} (expected stores.csv, "
            "products.csv, ...; see docs/data-contract.md)"
        )
        return True
    if refused:
        say(
            f"[red]{refused} file(s) refused or unknown[/red]: fix them and load again (docs/data-contract.md; "
            "`shelfwatch check FOLDER`)"
        )
    return bool(refused)


def mount(app: typer.Typer) -> None:
    app.command("migrate")(migrate)
    app.command("load-reference")(load_reference)
