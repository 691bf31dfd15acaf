"""The `users` group: users of the web views."""

from __future__ import annotations

import typer

from shelfwatch.cli.common import DbOption, error, say, settings_for

users_app = typer.Typer(no_args_is_help=True, help="Users of the web views (planner, store_manager, cx, admin).")


@users_app.command("add")
def users_add(
    username: str = typer.Argument(..., help="Login name."),
    role: str = typer.Option(..., help="planner | store_manager | cx | admin"),
    store: str | None = typer.Option(None, help="The store a store_manager manages."),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from standard input (else: prompt)."
    ),
    db: str | None = DbOption,
) -> None:
    """Create a user (or reset their password and role, which ends their sessions); the password is
    stored as an argon2 hash."""
    import sys

    from core.db import get_engine
    from shelfwatch import steps
    from shelfwatch.web.auth import UserError, add_user

    password = (
        sys.stdin.readline().rstrip("\n")
        if password_stdin
        else typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    )
    settings = settings_for(db)
    steps.migrate_database(settings)
    try:
        user = add_user(get_engine(settings.db_url), username, password, role, store)
    except UserError as exc:
        error(exc)
        raise typer.Exit(2) from None
    say(f"user {user.username}: {user.role}{' of ' + user.store_id if user.store_id else ''}")


@users_app.command("disable")
def users_disable(
    username: str = typer.Argument(..., help="Login name."),
    db: str | None = DbOption,
) -> None:
    """Disable a user: they can't sign in, and their open sessions end now (`users add` enables again)."""
    from core.db import get_engine
    from shelfwatch import steps
    from shelfwatch.web.auth import disable_user

    settings = settings_for(db)
    steps.migrate_database(settings)
    if not disable_user(get_engine(settings.db_url), username):
        error(f"unknown user {username}")
        raise typer.Exit(2)
    say(f"user {username}: disabled; their sessions have ended")


def mount(app: typer.Typer) -> None:
    app.add_typer(users_app, name="users")
