"""The `stack` group: the production topology of docker-compose.yml as local supervised processes."""

from __future__ import annotations

from pathlib import Path

import typer

from core.settings import Settings
from shelfwatch.cli.common import console

stack_app = typer.Typer(
    no_args_is_help=True,
    help="The production topology of docker-compose.yml as local processes (no Docker): make stack / make stack-stop.",
)

StackDirOption = typer.Option(
    None, "--dir", help="The stack's folder: logs, pids, Airflow home, data (default SHELFWATCH_STACK_DIR or .stack)."
)


def stack_settings_for(folder: Path | None):
    from shelfwatch.stack import StackSettings

    return StackSettings.from_env(dir=folder)


def running_stack_for(folder: Path | None):
    """The settings a running stack was started with (saved by `stack up`)."""
    from shelfwatch.stack import load_state

    cfg = stack_settings_for(folder)
    state = load_state(cfg.dir)
    if state is None:
        console.print(f"no stack was started from {cfg.home}: `make stack` first", markup=False, style="red")
        raise typer.Exit(1)
    return state


@stack_app.command("up")
def stack_up(
    folder: Path | None = StackDirOption,
    wait: float = typer.Option(240.0, help="Seconds to wait for every compose health check to pass."),
) -> None:
    """Init the databases, start every compose service as a supervised process, wait until healthy.

    Reads the machine's PostgreSQL (SHELFWATCH_DATABASE_URL, SHELFWATCH_STACK_AIRFLOW_DB_URL), Redis
    (SHELFWATCH_STACK_REDIS_URL) and Mosquitto (SHELFWATCH_MQTT_URL); see README "Run without Docker".
    """
    from shelfwatch.stack import StackError, up

    try:
        up(
            stack_settings_for(folder),
            Settings.from_env(),
            log=lambda line: console.print(line, markup=False),
            wait_seconds=wait,
        )
    except StackError as exc:
        console.print(f"stack: {exc}", markup=False, style="red")
        raise typer.Exit(1) from None


@stack_app.command("down")
def stack_down(folder: Path | None = StackDirOption) -> None:
    """Stop the stack by supervisord's pid: every process stops as a group, gracefully."""
    from shelfwatch.stack import StackError, down

    try:
        down(stack_settings_for(folder), log=lambda line: console.print(line, markup=False))
    except StackError as exc:
        console.print(f"stack: {exc}", markup=False, style="red")
        raise typer.Exit(1) from None


@stack_app.command("status")
def stack_status(folder: Path | None = StackDirOption) -> None:
    """Each process's state (supervisorctl) and each compose health check's result."""
    from shelfwatch.stack import run_health_checks, supervisorctl, supervisord_pid

    cfg, settings = running_stack_for(folder)
    if supervisord_pid(cfg) is None:
        console.print(f"no stack running from {cfg.home}", markup=False)
        raise typer.Exit(1)
    console.print(supervisorctl(cfg, "status").stdout, markup=False)
    results = run_health_checks(cfg, settings)
    for program, (ok, tail) in sorted(results.items()):
        console.print(f"{'healthy  ' if ok else 'UNHEALTHY'} {program}  {tail}", markup=False)
    if not all(ok for ok, _ in results.values()):
        raise typer.Exit(1)


@stack_app.command("exec", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def stack_exec(ctx: typer.Context, folder: Path | None = StackDirOption) -> None:
    """Run a command in the stack's environment, e.g. `shelfwatch stack exec -- airflow dags trigger
    sales_ingest` (as `docker compose exec airflow-scheduler ...`)."""
    import subprocess

    from shelfwatch.stack import ROOT, exec_environment

    if not ctx.args:
        console.print("stack exec: name a command, e.g. -- airflow dags list", markup=False, style="red")
        raise typer.Exit(2)
    cfg, settings = running_stack_for(folder)
    raise typer.Exit(subprocess.run(ctx.args, env=exec_environment(cfg, settings), cwd=ROOT).returncode)


def mount(app: typer.Typer) -> None:
    app.add_typer(stack_app, name="stack")
