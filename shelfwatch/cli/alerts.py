"""The `alerts` group: detect, list, ack, resolve."""

from __future__ import annotations

import json

import typer

from shelfwatch.cli.common import AsOfOption, DbOption, console, error, escape, say, settings_for, show

alerts_app = typer.Typer(no_args_is_help=True, help="Stock-out alerts.")


@alerts_app.command("detect")
def alerts_detect(db: str | None = DbOption, as_of: str | None = AsOfOption) -> None:
    """Detect stock-out risks, empty shelves and phantom stock-outs at --as-of; link favourite members.
    Stores whose sales end more than a day before as-of are named under "warnings"."""
    from shelfwatch import steps

    result = steps.detect_alerts(settings_for(db, as_of=as_of))
    show(result)
    for warning in result.get("warnings", []):
        say(f"warning: {warning}", style="yellow", err=True)


@alerts_app.command("list")
def alerts_list(
    db: str | None = DbOption,
    store: str | None = typer.Option(None, help="Only this store's alerts."),
    status: str = typer.Option(
        "active", help="active (open + acknowledged), open, acknowledged, resolved, expired or all."
    ),
    format: str = typer.Option("table", "--format", help="table or json."),
) -> None:
    """Alerts, most severe first, with member counts (never member contact data) and what to do about
    each (refill, transfer, emergency order or nothing, with the numbers)."""
    from alerts.actions import action_text
    from core.db import get_engine, local_time
    from shelfwatch.report import list_alerts

    if format not in ("table", "json"):
        error(f"--format {format!r}: expected table or json")
        raise typer.Exit(2)
    try:
        frame = list_alerts(get_engine(settings_for(db).db_url), status=status, store=store)
    except ValueError as exc:
        error(exc)
        raise typer.Exit(2) from None
    if format == "json":
        cols = [
            "alert_id",
            "store_id",
            "timezone",
            "sku",
            "product",
            "alert_type",
            "status",
            "probability",
            "expected_empty_at",
            "severity",
            "members_affected",
            "opened_at",
            "acknowledged_at",
            "acknowledged_by",
            "escalated_at",
            "resolved_at",
            "resolved_by",
        ]
        records = json.loads(frame[cols].to_json(orient="records", date_format="iso"))
        for record, evidence in zip(records, frame["evidence"], strict=True):
            record["evidence"] = json.loads(evidence)
            action = record["evidence"].get("action")
            record["action"] = (
                action_text(action, local_time(action.get("until"), record["timezone"])) if action else None
            )
        typer.echo(json.dumps(records, indent=1))
        return
    import pandas as pd
    from rich.table import Table

    table = Table(
        "id",
        "store",
        "sku",
        "product",
        "type",
        "status",
        "P(empty)",
        "expected empty (store time)",
        "members",
        "escalated",
        "what to do (times: store)",
    )
    for r in frame.itertuples():
        when = local_time(r.expected_empty_at, r.timezone) or "-"
        action = json.loads(r.evidence).get("action")
        todo = action_text(action, local_time(action.get("until"), r.timezone)) if action else ""
        table.add_row(
            str(r.alert_id),
            escape(r.store_id),
            escape(r.sku),
            escape(r.product),
            escape(r.alert_type),
            escape(r.status),
            f"{r.probability:.2f}",
            when,
            str(r.members_affected),
            "yes" if pd.notna(r.escalated_at) else "",
            escape(todo),
        )
    console.print(table)


@alerts_app.command("ack")
def alerts_ack(
    alert_id: int,
    by: str = typer.Option(..., "--by", help="Who acknowledges (recorded in the alert's history)."),
    db: str | None = DbOption,
) -> None:
    """Acknowledge an open alert: someone is on it (stops escalation)."""
    alert_transition("acknowledge", alert_id, by, db)


@alerts_app.command("resolve")
def alerts_resolve(
    alert_id: int,
    by: str = typer.Option(..., "--by", help="Who resolves (recorded in the alert's history)."),
    note: str | None = typer.Option(None, help="What was done."),
    db: str | None = DbOption,
) -> None:
    """Resolve an open or acknowledged alert (e.g. the shelf was refilled)."""
    alert_transition("resolve", alert_id, by, db, note)


def alert_transition(action: str, alert_id: int, by: str, db: str | None, note: str | None = None) -> None:
    from alerts import lifecycle
    from core.db import get_engine

    engine = get_engine(settings_for(db).db_url)
    try:
        result = (
            lifecycle.acknowledge(engine, alert_id, by)
            if action == "acknowledge"
            else lifecycle.resolve(engine, alert_id, by, note=note)
        )
    except lifecycle.AlertStateError as exc:
        error(exc)
        raise typer.Exit(2) from None
    show(result)


def mount(app: typer.Typer) -> None:
    app.add_typer(alerts_app, name="alerts")
