"""Commands about the retailer's own files: `templates` and `check` (docs/data-contract.md)."""

from __future__ import annotations

import typer


def mount(app: typer.Typer) -> None:
    pass
