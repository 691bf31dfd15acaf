"""The `quarantine` group: what the gates held back, with reasons printed verbatim."""

from __future__ import annotations

import typer


def mount(app: typer.Typer) -> None:
    pass
