"""`shelfwatch` command line: every pipeline step, the web views, the local stack, and the lab's
simulator, demo and benchmarks.

One module per command group; `common` holds what they share. Options override the environment (see
`core.settings.Settings`); each command prints a short summary and exits non-zero with a
clear message on bad input. Heavy imports happen inside the commands, so start-up stays fast.
"""

from __future__ import annotations

import logging
from importlib.metadata import entry_points

import typer

from shelfwatch.cli import alerts, data, forecast, ingest, members, notify, quarantine, report, setup, stack, users, web

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Shelfwatch: keep shelves full.")


@app.callback()
def main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log at INFO level.")) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


for group in (setup, data, ingest, forecast, report, web, alerts, notify, members, users, quarantine, stack):
    group.mount(app)
# Plug-ins mount themselves by the `shelfwatch.cli` entry point (pyproject.toml): the lab adds
# `simulate`, `demo` and `bench ...` (lab/cli.py) without a product module importing it.
for plugin in entry_points(group="shelfwatch.cli"):
    plugin.load()(app)

# The order `shelfwatch --help` lists commands in, then groups (anything not named here goes last).
HELP_ORDER = [
    "simulate",
    "templates",
    "check",
    "migrate",
    "load-reference",
    "ingest-sales",
    "ingest-iot",
    "stale-sensors",
    "forecast",
    "report",
    "demo",
    "web",
    "alerts",
    "notify",
    "members",
    "users",
    "quarantine",
    "bench",
    "stack",
]
app.registered_commands.sort(key=lambda c: HELP_ORDER.index(c.name) if c.name in HELP_ORDER else len(HELP_ORDER))
app.registered_groups.sort(key=lambda g: HELP_ORDER.index(g.name) if g.name in HELP_ORDER else len(HELP_ORDER))

__all__ = ["app"]
