"""`shelfwatch stack`: the production topology of docker-compose.yml as local processes under
supervisord, for machines without Docker (and for CI).

docker-compose.yml is the one source of truth: each long-running service's command, environment and
health check are read from it, and only what differs between containers and processes on one machine
is replaced: the compose host names (postgres, redis, mosquitto, airflow-apiserver) by this machine's
services, container paths by folders under the stack's directory, fixed ports by the configured ones,
and each container's own host name by `<machine>-<program>` (so several Celery workers on one machine
are told apart: `SHELFWATCH_PROCESS_NAME` feeds Airflow's hostname_callable).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from core.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
POOLS_FILE = ROOT / "deploy" / "airflow" / "pools.json"
# compose services run as processes here; the others (postgres, redis, mosquitto) are the machine's own
PROGRAMS = [
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "ingest",
    "web",
]
INFRASTRUCTURE = ["postgres", "redis", "mosquitto"]
STOP_SECONDS = {"airflow-worker": 60, "ingest": 30}  # compose's stop_grace_period


@dataclass(frozen=True)
class StackSettings:
    """Where the process stack finds the machine's services and which ports it takes; build it with
    `StackSettings.from_env()`. Shelfwatch's own settings (SHELFWATCH_DATABASE_URL, _MQTT_URL,
    _SMTP_URL, _WEBHOOK_URL, _FORECAST_SHARDS, _WEB_SECRET) apply as in compose's .env."""

    dir: Path = field(
        default=Path(".stack"),
        metadata={"env": "SHELFWATCH_STACK_DIR", "doc": "Logs, pids, Airflow home, data and landing folders."},
    )
    airflow_db_url: str = field(
        default="postgresql+psycopg2://postgres@127.0.0.1:5432/airflow",
        metadata={
            "env": "SHELFWATCH_STACK_AIRFLOW_DB_URL",
            "doc": "Airflow's metadata database (created if missing); also the Celery result backend.",
        },
    )
    redis_url: str = field(
        default="redis://127.0.0.1:6379/0", metadata={"env": "SHELFWATCH_STACK_REDIS_URL", "doc": "The Celery broker."}
    )
    api_port: int = field(
        default=8080, metadata={"env": "SHELFWATCH_STACK_API_PORT", "doc": "Airflow UI and API (api-server)."}
    )
    web_port: int = field(default=8000, metadata={"env": "SHELFWATCH_STACK_WEB_PORT", "doc": "Shelfwatch web views."})
    scheduler_health_port: int = field(
        default=8974,
        metadata={"env": "SHELFWATCH_STACK_SCHEDULER_HEALTH_PORT", "doc": "The scheduler's /health endpoint."},
    )
    log_port: int = field(
        default=8793,
        metadata={
            "env": "SHELFWATCH_STACK_LOG_PORT",
            "doc": "First of the log-server ports: worker i takes +i, the triggerer the next.",
        },
    )
    workers: int = field(
        default=2,
        metadata={"env": "SHELFWATCH_STACK_WORKERS", "doc": "Celery workers (compose: --scale airflow-worker=N)."},
    )

    @classmethod
    def from_env(cls, **overrides) -> StackSettings:
        values = {}
        for f in fields(cls):
            raw = overrides.get(f.name)
            if raw is None:
                raw = os.environ.get(f.metadata["env"])
            if raw is not None:
                values[f.name] = Path(raw) if f.type in ("Path", Path) else int(raw) if f.type in ("int", int) else raw
        return cls(**values)

    @property
    def home(self) -> Path:
        return self.dir.resolve()

    def worker_names(self) -> list[str]:
        return [f"airflow-worker-{i}" for i in range(1, self.workers + 1)]


def stack_settings_table() -> str:
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    rows += [f"| `{f.metadata['env']}` | `{f.default}` | {f.metadata['doc']} |" for f in fields(StackSettings)]
    return "\n".join(rows)


# ------------------------------------------------------------------------------------- environment


@lru_cache(maxsize=1)
def compose() -> dict:
    """docker-compose.yml, parsed once per process (callers read it, never change it)."""
    return yaml.safe_load(COMPOSE_FILE.read_text())


def machine_name() -> str:
    return socket.getfqdn()


def container_hostname(program: str) -> str:
    """What `$HOSTNAME` is in the container a program stands for (and what Airflow records for it)."""
    return f"{machine_name()}-{program}"


def new_fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def stack_secrets(cfg: StackSettings) -> dict[str, str]:
    """compose's ${VAR}s: from the environment when set, else generated once and kept in the stack's
    folder (mode 600), so a restart keeps the Fernet key that encrypted the connections."""
    path = cfg.home / "secrets.env"
    kept = dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line) if path.exists() else {}
    generated = {
        "AIRFLOW_FERNET_KEY": new_fernet_key,
        "AIRFLOW_JWT_SECRET": lambda: secrets.token_urlsafe(48),
        "SHELFWATCH_WEB_SECRET": lambda: secrets.token_urlsafe(48),
    }
    missing = {name: make() for name, make in generated.items() if name not in kept}
    if missing:
        kept.update(missing)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{k}={v}\n" for k, v in sorted(kept.items())))
        path.chmod(0o600)
    values = {"SHELFWATCH_FORECAST_SHARDS": str(Settings.__dataclass_fields__["forecast_shards"].default), **kept}
    values.update({k: os.environ[k] for k in values if os.environ.get(k)})
    return values


def substitute(value: str, variables: dict[str, str]) -> str:
    """compose's `${VAR}` interpolation (unknown names become empty, as compose does with a warning)."""
    return re.sub(r"(?<!\$)\$\{(\w+)\}", lambda m: variables.get(m.group(1), ""), str(value))


def connection_uri(sqlalchemy_url: str) -> str:
    """An AIRFLOW_CONN_* URI for a SQLAlchemy URL (Airflow spells the scheme `postgresql://`)."""
    scheme, _, rest = sqlalchemy_url.partition("://")
    return f"{scheme.split('+')[0]}://{rest}"


def local_values(cfg: StackSettings, settings) -> dict[str, str]:
    """The compose values that name containers, volumes or fixed ports, as they are on this machine."""
    data = cfg.home / "data"
    airflow_db_psycopg = cfg.airflow_db_url.replace("+psycopg2://", "+psycopg://")
    return {
        "SHELFWATCH_DATA_DIR": str(data),
        "SHELFWATCH_OUTPUT_DIR": str(data / "out"),
        "SHELFWATCH_LANDING_DIR": str(data / "landing"),
        "SHELFWATCH_DATABASE_URL": settings.database_url,
        "SHELFWATCH_MQTT_URL": settings.mqtt_url,
        "SHELFWATCH_SMTP_URL": settings.smtp_url,
        "SHELFWATCH_WEBHOOK_URL": settings.webhook_url,
        "SHELFWATCH_AIRFLOW_DB_URL": airflow_db_psycopg,
        "AIRFLOW_CONN_SHELFWATCH_DB": connection_uri(settings.database_url),
        "AIRFLOW_CONN_SHELFWATCH_MQTT": settings.mqtt_url,
        "AIRFLOW_CONN_SHELFWATCH_SMTP": settings.smtp_url,
        "AIRFLOW_CONN_SHELFWATCH_WEBHOOK": settings.webhook_url,
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{cfg.api_port}/execution/",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(cfg.home / "airflow" / "passwords.json"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": cfg.airflow_db_url,
        "AIRFLOW__CELERY__BROKER_URL": cfg.redis_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{cfg.airflow_db_url}",
    }


def machine_values(cfg: StackSettings) -> dict[str, str]:
    """What one machine needs on top of compose: one Airflow home, and ports that don't collide."""
    return {
        "AIRFLOW_HOME": str(cfg.home / "airflow"),
        "AIRFLOW__API__PORT": str(cfg.api_port),
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(cfg.scheduler_health_port),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(cfg.log_port + cfg.workers),
    }


def service_environment(service: str, cfg: StackSettings, settings, variables: dict[str, str]) -> dict[str, str]:
    """A compose service's environment as this machine runs it: compose's values (interpolated),
    local addresses for containers and volumes, the machine-wide additions."""
    declared = compose()["services"][service].get("environment", {})
    env = {k: substitute(v, variables) for k, v in declared.items()}
    local = local_values(cfg, settings)
    env.update({k: local[k] for k in env if k in local})
    if service.startswith("airflow-"):
        env.update(machine_values(cfg))
        env.update(operator_overrides())
    return env


def operator_overrides() -> dict[str, str]:
    """Any AIRFLOW__SECTION__KEY set where `make stack` runs reaches every Airflow process (as a
    compose override file would): tuning without editing docker-compose.yml."""
    return {k: v for k, v in os.environ.items() if k.startswith("AIRFLOW__")}


def base_environment(cfg: StackSettings) -> dict[str, str]:
    """What every process inherits from supervisord: the venv first on PATH, and little else."""
    keep = ("HOME", "LANG", "LC_ALL", "TZ", "USER", "LOGNAME", "TMPDIR")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "/usr/bin:/bin")])
    env["PYTHONUNBUFFERED"] = "1"
    return env


# ------------------------------------------------------------------------------------- programs


def compose_command(service: str) -> list[str]:
    command = compose()["services"][service]["command"]
    return [part.replace("$$", "$") for part in command]


def program_commands(cfg: StackSettings) -> dict[str, list[str]]:
    """Each supervised program's command line: compose's, with local ports where compose publishes one,
    and one named Celery worker per replica."""
    commands = {}
    for service in PROGRAMS:
        command = compose_command(service)
        if service == "web":
            command = [{"0.0.0.0": "127.0.0.1", "8000": str(cfg.web_port)}.get(part, part) for part in command]
        if service == "airflow-worker":
            for name in cfg.worker_names():
                commands[name] = [*command, "--celery-hostname", f"celery@{container_hostname(name)}"]
            continue
        commands[service] = command
    return commands


def program_environment(program: str, cfg: StackSettings, settings, variables: dict[str, str]) -> dict[str, str]:
    service = "airflow-worker" if program.startswith("airflow-worker") else program
    env = service_environment(service, cfg, settings, variables)
    env["SHELFWATCH_PROCESS_NAME"] = program
    if service == "airflow-worker":
        env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] = str(cfg.log_port + cfg.worker_names().index(program))
    return env


def supervisor_quote(value: str) -> str:
    """A value for supervisord's `environment=` (shell-like quoting; % doubled for its expansion)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%") + '"'


def supervisord_conf(cfg: StackSettings, settings, variables: dict[str, str]) -> str:
    """supervisord's configuration: one program per compose service (per worker replica), each with
    its own log, restarted when it dies (compose's `restart: unless-stopped`), stopped as a group."""
    logs = cfg.home / "logs"
    lines = [
        "[supervisord]",
        f"logfile={logs / 'supervisord.log'}",
        f"pidfile={cfg.home / 'supervisord.pid'}",
        f"directory={ROOT}",
        "",
        "[unix_http_server]",
        f"file={cfg.home / 'supervisor.sock'}",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl=unix://{cfg.home / 'supervisor.sock'}",
    ]
    for program, command in program_commands(cfg).items():
        env = program_environment(program, cfg, settings, variables)
        service = "airflow-worker" if program.startswith("airflow-worker") else program
        lines += [
            "",
            f"[program:{program}]",
            "command=" + " ".join(shlex.quote(part).replace("%", "%%") for part in command),
            "environment=" + ",".join(f"{k}={supervisor_quote(v)}" for k, v in sorted(env.items())),
            f"stdout_logfile={logs / (program + '.log')}",
            "redirect_stderr=true",
            "autorestart=true",
            "startsecs=5",
            "stopasgroup=true",
            "killasgroup=true",
            f"stopwaitsecs={STOP_SECONDS.get(service, 20)}",
            "stopsignal=TERM",
        ]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------- init


def ensure_postgres_database(url: str) -> bool:
    """Create the database a URL names, if missing (compose's postgres init script does this for its
    own). True when it was created."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    target = make_url(url.replace("+psycopg2://", "+psycopg://"))
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": target.database}).first():
                return False
            conn.execute(text(f'CREATE DATABASE "{target.database}"'))
            return True
    finally:
        admin.dispose()


def init_commands() -> list[list[str]]:
    """compose's airflow-init, step by step (the pools file from this checkout)."""
    init = compose()["services"]["airflow-init"]["command"][-1]
    steps = [shlex.split(step.strip()) for step in init.split("&&")]
    return [
        [str(POOLS_FILE) if part.endswith("deploy/airflow/pools.json") else part for part in step] for step in steps
    ]


def run_init(cfg: StackSettings, settings, variables: dict[str, str], log) -> None:
    """Databases, Airflow's metadata schema, the pools, Shelfwatch's schema; stops at the first failure
    with the tail of its output."""
    for url in (cfg.airflow_db_url, settings.database_url):
        if ensure_postgres_database(url):
            log(f"created database {url.rsplit('/', 1)[-1]}")
    env = {**base_environment(cfg), **service_environment("airflow-init", cfg, settings, variables)}
    for folder in ("logs", "airflow", "data/landing", "data/out"):
        (cfg.home / folder).mkdir(parents=True, exist_ok=True)
    with open(cfg.home / "logs" / "init.log", "a") as out:
        for step in init_commands():
            log("init: " + " ".join(step))
            proc = subprocess.run(step, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
            if proc.returncode != 0:
                raise StackError(
                    f"init step {' '.join(step)!r} failed (exit {proc.returncode}); see "
                    f"{cfg.home / 'logs' / 'init.log'}"
                )


class StackError(RuntimeError):
    """The process stack could not be brought up or down."""


def require_production_settings(settings) -> None:
    if not settings.database_url.startswith("postgresql"):
        raise StackError(
            "the stack runs on PostgreSQL, as in production: set SHELFWATCH_DATABASE_URL=postgresql+psycopg://..."
        )
    if not settings.mqtt_url:
        raise StackError("the ingest service needs a broker: set SHELFWATCH_MQTT_URL=mqtt://[user:pass@]host:port")


# ------------------------------------------------------------------------------------- up / down


def supervisord_pid(cfg: StackSettings) -> int | None:
    path = cfg.home / "supervisord.pid"
    if not path.exists():
        return None
    try:
        pid = int(path.read_text().strip())
        os.kill(pid, 0)
        return pid
    except (ValueError, ProcessLookupError):
        return None


SAVED_SETTINGS = ("database_url", "mqtt_url", "smtp_url", "webhook_url")


def save_state(cfg: StackSettings, settings) -> None:
    """What `up` ran with, so `status`, `exec` and `down` need no environment (mode 600: URLs hold
    passwords)."""
    state = {
        "stack": {f.name: str(getattr(cfg, f.name)) for f in fields(StackSettings)},
        "settings": {name: getattr(settings, name) for name in SAVED_SETTINGS},
    }
    path = cfg.home / "stack.json"
    path.write_text(json.dumps(state, indent=2))
    path.chmod(0o600)


def load_state(folder: Path):
    """(StackSettings, Settings) of the stack started from `folder`, or None."""
    path = Path(folder).resolve() / "stack.json"
    if not path.exists():
        return None
    state = json.loads(path.read_text())
    return StackSettings.from_env(**state["stack"]), Settings.from_env(**state["settings"])


def exec_environment(cfg: StackSettings, settings) -> dict[str, str]:
    """An operator's shell inside the stack (`docker compose exec`): the scheduler's Airflow
    environment plus Shelfwatch's settings, for `airflow ...` and `shelfwatch ...` commands."""
    variables = stack_secrets(cfg)
    env = {
        **os.environ,
        **base_environment(cfg),
        **service_environment("ingest", cfg, settings, variables),
        **service_environment("airflow-scheduler", cfg, settings, variables),
    }
    return env


def up(cfg: StackSettings, settings, log=print, wait_seconds: float = 240) -> dict:
    """Init (once per database), then start supervisord with every program, and wait until each
    health check from compose passes."""
    require_production_settings(settings)
    if supervisord_pid(cfg):
        raise StackError(
            f"a stack is already running from {cfg.home} (pid {supervisord_pid(cfg)}): `make stack-stop` first"
        )
    variables = stack_secrets(cfg)
    run_init(cfg, settings, variables, log)
    save_state(cfg, settings)
    conf = cfg.home / "supervisord.conf"
    conf.write_text(supervisord_conf(cfg, settings, variables))
    conf.chmod(0o600)  # it holds the connections' secrets
    subprocess.run(
        [sys.executable, "-m", "supervisor.supervisord", "-c", str(conf)],
        env=base_environment(cfg),
        cwd=ROOT,
        check=True,
    )
    log(f"supervisord started; logs in {cfg.home / 'logs'}")
    return wait_healthy(cfg, settings, wait_seconds, log)


def down(cfg: StackSettings, timeout: float = 120, log=print) -> bool:
    """Stop supervisord by its pid (it stops every program as a group, workers and ingest gracefully).
    False when no stack was running."""
    pid = supervisord_pid(cfg)
    if pid is None:
        log(f"no stack running from {cfg.home}")
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            log(f"stopped supervisord pid {pid}")
            return True
        time.sleep(0.5)
    raise StackError(f"supervisord pid {pid} did not stop within {timeout:.0f} s")


def supervisorctl(cfg: StackSettings, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "supervisor.supervisorctl", "-c", str(cfg.home / "supervisord.conf"), *args],
        capture_output=True,
        text=True,
        env=base_environment(cfg),
        cwd=ROOT,
    )


def program_pid(cfg: StackSettings, program: str) -> int:
    return int(supervisorctl(cfg, "pid", program).stdout.strip())


# ------------------------------------------------------------------------------------- health


def health_check_commands(
    cfg: StackSettings, settings, variables: dict[str, str]
) -> dict[str, tuple[str, dict[str, str]]]:
    """compose's health checks as shell commands against this machine's processes and services: the
    same command, with local addresses in place of container names and ports."""
    mqtt = urlsplit(settings.mqtt_url)
    redis = urlsplit(cfg.redis_url)
    replacements = {
        "localhost:8080": f"127.0.0.1:{cfg.api_port}",
        "localhost:8974": f"127.0.0.1:{cfg.scheduler_health_port}",
        "localhost:8000": f"127.0.0.1:{cfg.web_port}",
        "pg_isready -U shelfwatch -d shelfwatch": f"pg_isready -d {shlex.quote(connection_uri(settings.database_url))}",
        "redis-cli ping": f"redis-cli -h {redis.hostname} -p {redis.port or 6379} -n "
        f"{(redis.path or '/0').strip('/') or 0} ping",
        "mosquitto_sub -u shelfwatch-ingest": f"mosquitto_sub -h {mqtt.hostname} -p {mqtt.port or 1883} -u "
        f"{shlex.quote(mqtt.username or 'shelfwatch-ingest')}",
    }
    checks = {}
    for service, spec in compose()["services"].items():
        test = spec.get("healthcheck", {}).get("test")
        if not test or service not in PROGRAMS + INFRASTRUCTURE:
            continue
        command = test[1] if test[0] == "CMD-SHELL" else shlex.join(test[1:])
        for old, new in replacements.items():
            command = command.replace(old, new)
        command = command.replace("$$", "$")
        programs = cfg.worker_names() if service == "airflow-worker" else [service]
        for program in programs:
            env = {
                **base_environment(cfg),
                "HOSTNAME": container_hostname(program),
                "MQTT_INGEST_PASSWORD": mqtt.password or "",
            }
            if service.startswith("airflow-"):
                env.update(program_environment(program, cfg, settings, variables))
            checks[program] = (command, env)
    return checks


def run_health_checks(cfg: StackSettings, settings, timeout: float = 60) -> dict[str, tuple[bool, str]]:
    """Each compose health check once: program -> (passed, last output line)."""
    results = {}
    for program, (command, env) in health_check_commands(cfg, settings, stack_secrets(cfg)).items():
        try:
            proc = subprocess.run(
                ["sh", "-c", command], env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout
            )
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-1:] or [""]
            results[program] = (proc.returncode == 0, tail[0][:200])
        except subprocess.TimeoutExpired:
            results[program] = (False, f"timed out after {timeout:.0f} s")
    return results


def wait_healthy(cfg: StackSettings, settings, wait_seconds: float, log=print) -> dict[str, tuple[bool, str]]:
    """Re-run the failing health checks until all pass or time runs out."""
    deadline = time.monotonic() + wait_seconds
    results: dict[str, tuple[bool, str]] = {}
    while True:
        results = run_health_checks(cfg, settings)
        failing = sorted(p for p, (ok, _) in results.items() if not ok)
        if not failing:
            log("healthy: " + ", ".join(sorted(results)))
            return results
        if time.monotonic() > deadline:
            raise StackError(
                "not healthy after {:.0f} s: {}".format(
                    wait_seconds, "; ".join(f"{p}: {results[p][1]}" for p in failing)
                )
                + f" (logs in {cfg.home / 'logs'})"
            )
        time.sleep(3)
