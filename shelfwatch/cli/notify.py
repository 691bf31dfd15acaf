"""The `notify` group: deliver the outbox."""

from __future__ import annotations

import typer

from shelfwatch.cli.common import DbOption, settings_for, show

notify_app = typer.Typer(
    no_args_is_help=True, help="Notifications: the outbox of e-mails, webhooks and members' notices."
)


@notify_app.command("send")
def notify_send(
    db: str | None = DbOption, limit: int = typer.Option(1000, min=1, help="Most messages to deliver in this run.")
) -> None:
    """Deliver due outbox messages (SMTP, webhook); safe to re-run: nothing is sent twice."""
    from alerts.notify import outbox_counts
    from core.db import get_engine
    from shelfwatch import steps

    settings = settings_for(db)
    show({**steps.send_notifications(settings, limit), "outbox": outbox_counts(get_engine(settings.db_url))})


def mount(app: typer.Typer) -> None:
    app.add_typer(notify_app, name="notify")
