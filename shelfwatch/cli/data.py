"""Commands about the retailer's own files: `templates` and `check` (docs/data-contract.md)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from shelfwatch.cli.common import DbOption, console, settings_for

DOC_HINT = "The files, their columns and rules: docs/data-contract.md."


def templates(
    directory: Path = typer.Argument(
        ..., metavar="DIR", file_okay=False, help="Folder to write the templates into (created if missing)."
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite template files that already exist."),
) -> None:
    """Write a header-plus-example-row CSV for every input file: the reference files in DIR, the POS
    files in DIR/sales. `shelfwatch load-reference DIR` then `shelfwatch ingest-sales DIR/sales` load
    them as they are. The files, their columns and rules: docs/data-contract.md."""
    from sales_ingest.reference_contract import ALL_FILES, template_csv, template_path

    targets = {directory / template_path(spec): template_csv(spec) for spec in ALL_FILES.values()}
    existing = [p for p in targets if p.exists()]
    if existing and not force:
        console.print(
            f"[red]refused:[/red] {len(existing)} template file(s) already exist, e.g. {escape(str(existing[0]))}; "
            "pass --force to overwrite them",
            soft_wrap=True,
        )
        raise typer.Exit(2)
    for path, text in targets.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        console.print(f"wrote {escape(str(path))}", soft_wrap=True, highlight=False)
    console.print(
        f"Fill them in, then `shelfwatch check {escape(str(directory))}`. {DOC_HINT}", soft_wrap=True, highlight=False
    )


def check(
    folder: Path = typer.Argument(
        ...,
        exists=True,
        file_okay=False,
        metavar="FOLDER",
        help="Folder of reference files (and POS files in FOLDER/sales).",
    ),
    db: str | None = DbOption,
    limit: int = typer.Option(500, "--limit", min=1, help="Most problems to list (all are counted)."),
) -> None:
    """Check every file of FOLDER (reference files, and POS files in FOLDER/sales or at its top)
    against the data contract and the ids already in the database, loading nothing. Lists each problem
    by file, row and column; exit 0 when clean, 1 when there are problems. The files, their columns
    and rules: docs/data-contract.md."""
    from rich.table import Table

    from sales_ingest.reference_files import check_folder

    known, note = database_ids(db)
    sales = folder / "sales"
    pos_paths = (
        sorted(p for p in sales.iterdir() if p.is_file() and p.suffix.lower() in (".csv", ".parquet"))
        if sales.is_dir()
        else []
    )
    result = check_folder(folder, known, pos_paths)
    console.print(escape(note), soft_wrap=True, highlight=False)
    if not result.files and not result.unknown:
        console.print(
            f"[red]no input file found[/red] in {escape(str(folder))}. {DOC_HINT} (`shelfwatch templates DIR` writes "
            "examples)",
            soft_wrap=True,
        )
        raise typer.Exit(1)
    problems = result.problems
    if problems:
        table = Table("file", "row", "column", "problem", title=f"{len(problems)} problem(s)")
        for p in problems[:limit]:
            table.add_row(
                escape(p.file), "" if p.row is None else str(p.row), escape(p.column or ""), escape(p.problem)
            )
        console.print(table)
        if len(problems) > limit:
            console.print(f"... and {len(problems) - limit} more (--limit)")
    for name, file_result in result.files.items():
        if file_result.refused:
            line = f"[red]refused[/red] {escape(name)}: the whole file (see above)"
        else:
            bad = f", [yellow]{file_result.quarantined} with problems[/yellow]" if file_result.quarantined else ", ok"
            line = f"{escape(name)} ({escape(file_result.kind)}): {file_result.rows} rows{bad}"
        console.print(line, soft_wrap=True, highlight=False)
    for name, _ in result.unknown:
        console.print(
            f"[red]unknown[/red] {escape(name)}: not an input file name (see above)", soft_wrap=True, highlight=False
        )
    if problems:
        console.print(f"Nothing was loaded. {DOC_HINT}", soft_wrap=True, highlight=False)
        raise typer.Exit(1)
    console.print("[green]clean:[/green] every file meets the contract (nothing was loaded)")


def database_ids(db: str | None):
    """The ids the database already knows, when it exists and answers; never creates a database."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from sales_ingest.contract import Known

    url = settings_for(db).db_url
    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - a malformed URL is a message, not a traceback
        return Known(), "database URL not understood: checked against the folder's own files only"
    shown = parsed.render_as_string(hide_password=True)
    if parsed.get_backend_name() == "sqlite" and (not parsed.database or not Path(parsed.database).exists()):
        return Known(), f"no database at {shown}: checked against the folder's own files only"
    engine = create_engine(url, hide_parameters=True)
    try:
        return Known.from_db(engine), f"checked against the folder's own files and the ids in {shown}"
    except SQLAlchemyError as exc:
        return (
            Known(),
            f"database {shown} not readable ({type(exc).__name__}; not migrated yet?): checked against the folder's "
            "own files only",
        )
    finally:
        engine.dispose()


def mount(app: typer.Typer) -> None:
    app.command("templates")(templates)
    app.command("check")(check)
