"""The `web` command: serve the web views."""

from __future__ import annotations

import typer

from shelfwatch.cli.common import DbOption, say, settings_for


def web(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, help="Port."),
    db: str | None = DbOption,
) -> None:
    """Serve the web views (forecast explorer, alert inbox, CX, pipeline health)."""
    import uvicorn

    from shelfwatch import steps
    from shelfwatch.web.app import create_app

    settings = settings_for(db)
    steps.migrate_database(settings)
    say(f"Shelfwatch web on http://{host}:{port}  (users: shelfwatch users add NAME --role ...)")
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")


def mount(app: typer.Typer) -> None:
    app.command("web")(web)
