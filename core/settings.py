"""One settings object, read from environment variables with documented defaults.

Every tunable of the pipeline lives here so the CLI, the DAGs and the tests read the same values.
The README's configuration table is generated from the same field list (`settings_table`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


@dataclass(frozen=True)
class Settings:
    """Pipeline configuration; build it with `Settings.from_env()`."""

    data_dir: Path = field(
        default=Path("data"),
        metadata={"env": "SHELFWATCH_DATA_DIR", "doc": "Folder for the SQLite file and simulated worlds."},
    )
    database_url: str = field(
        default="",
        metadata={
            "env": "SHELFWATCH_DATABASE_URL",
            "doc": "SQLAlchemy URL; default sqlite:///<data_dir>/shelfwatch.db. Production: postgresql+psycopg://...",
        },
    )
    mqtt_url: str = field(
        default="",
        metadata={
            "env": "SHELFWATCH_MQTT_URL",
            "doc": "Broker, mqtt://user:pass@host:port. Empty: the demo starts an embedded broker in-process.",
        },
    )
    mqtt_topic_prefix: str = field(
        default="shelfwatch/v1", metadata={"env": "SHELFWATCH_MQTT_TOPIC_PREFIX", "doc": "Root of the sensor topics."}
    )
    mqtt_client_id: str = field(
        default="shelfwatch-ingest",
        metadata={
            "env": "SHELFWATCH_MQTT_CLIENT_ID",
            "doc": "Fixed client id of the ingest's persistent MQTT session.",
        },
    )
    output_dir: Path = field(
        default=Path("out"),
        metadata={"env": "SHELFWATCH_OUTPUT_DIR", "doc": "Where reports, plots and CX exports are written."},
    )
    forecast_horizon_days: int = field(
        default=28, metadata={"env": "SHELFWATCH_FORECAST_HORIZON_DAYS", "doc": "Days forecast per store x SKU."}
    )
    forecast_workers: int = field(
        default=0, metadata={"env": "SHELFWATCH_FORECAST_WORKERS", "doc": "Processes for forecasting; 0 = all cores."}
    )
    forecast_backtest_windows: int = field(
        default=3,
        metadata={
            "env": "SHELFWATCH_FORECAST_BACKTEST_WINDOWS",
            "doc": "Rolling-origin windows (of the horizon's length) that choose the model per series.",
        },
    )
    forecast_prophet_min_units: float = field(
        default=40.0,
        metadata={
            "env": "SHELFWATCH_FORECAST_PROPHET_MIN_UNITS",
            "doc": "Prophet is a candidate only for series selling at least this many units a day over the last year "
            "(it costs ~30x a fast model).",
        },
    )
    forecast_prophet_min_history_days: int = field(
        default=180,
        metadata={
            "env": "SHELFWATCH_FORECAST_PROPHET_MIN_HISTORY_DAYS",
            "doc": "... and with at least this many days since the first sale.",
        },
    )
    forecast_combination: str = field(
        default="shrink_top2_p6",
        metadata={
            "env": "SHELFWATCH_FORECAST_COMBINATION",
            "doc": "How a series' forecast is made from its backtested candidates: select (the best one), topK (mean "
            "of the K best), class_topK (the K best of its demand class in the store), shrink_topK[_pN] (K best by "
            "its own score shrunk toward its class's, the class counting as N windows).",
        },
    )
    forecast_global_model: bool = field(
        default=True,
        metadata={
            "env": "SHELFWATCH_FORECAST_GLOBAL_MODEL",
            "doc": "Also learn one LightGBM model across each store's series (at least 20) as a candidate.",
        },
    )
    forecast_holiday_country: str = field(
        default="",
        metadata={
            "env": "SHELFWATCH_FORECAST_HOLIDAY_COUNTRY",
            "doc": "Country code whose public holidays Prophet and the global model know (e.g. GB, NL); empty = none.",
        },
    )
    smtp_url: str = field(
        default="smtp://127.0.0.1:25",
        metadata={
            "env": "SHELFWATCH_SMTP_URL",
            "doc": "Mail server for store-manager alerts and members' notices, smtp://[user:pass@]host:port.",
        },
    )
    mail_from: str = field(
        default="shelfwatch@localhost",
        metadata={"env": "SHELFWATCH_MAIL_FROM", "doc": "Sender address of Shelfwatch's e-mails."},
    )
    webhook_url: str = field(
        default="",
        metadata={
            "env": "SHELFWATCH_WEBHOOK_URL",
            "doc": "Slack/Teams-style JSON webhook for new and escalated alerts; empty = none.",
        },
    )
    notify_max_attempts: int = field(
        default=5,
        metadata={
            "env": "SHELFWATCH_NOTIFY_MAX_ATTEMPTS",
            "doc": "Delivery attempts per message (backoff 1, 2, 4, ... minutes) before it is marked failed.",
        },
    )
    member_contact_cap_days: int = field(
        default=7,
        metadata={
            "env": "SHELFWATCH_MEMBER_CONTACT_CAP_DAYS",
            "doc": "A member is put on at most one stock-out contact list per this many days.",
        },
    )
    alert_probability_threshold: float = field(
        default=0.4,
        metadata={
            "env": "SHELFWATCH_ALERT_THRESHOLD",
            "doc": "Raise predicted_stockout when P(empty before next delivery) is at least this (0.4: the lowest with "
            "precision >= 0.6 and recall >= 0.9 x the perfect forecaster's at that precision in `shelfwatch bench "
            "alerts`).",
        },
    )
    alert_keep_ratio: float = field(
        default=0.5,
        metadata={
            "env": "SHELFWATCH_ALERT_KEEP_RATIO",
            "doc": "An open predicted_stockout stays open while its probability is at least this share of the "
            "threshold (hysteresis: no flapping between runs).",
        },
    )
    alert_escalation_minutes: int = field(
        default=120,
        metadata={
            "env": "SHELFWATCH_ALERT_ESCALATION_MINUTES",
            "doc": "An alert still open (not acknowledged) this long after it opened is escalated.",
        },
    )
    alert_expiry_hours: int = field(
        default=72,
        metadata={
            "env": "SHELFWATCH_ALERT_EXPIRY_HOURS",
            "doc": "A predicted stock-out whose expected empty time passed this long ago without other evidence "
            "expires.",
        },
    )
    as_of: str = field(
        default="",
        metadata={
            "env": "SHELFWATCH_AS_OF",
            "doc": '"Now" for every step that depends on it (detection, forecasting), ISO time, UTC unless it has an '
            "offset; empty: the wall clock. Set it to replay history or run a simulated world; `--as-of` overrides it "
            "per command.",
        },
    )
    service_level: float = field(
        default=0.95,
        metadata={
            "env": "SHELFWATCH_SERVICE_LEVEL",
            "doc": "Target chance that the shelf lasts until the next regular delivery: a recommended transfer or "
            "emergency order covers the demand's quantile at this level, and a donor store keeps its own.",
        },
    )
    sensor_stale_hours: float = field(
        default=12.0,
        metadata={
            "env": "SHELFWATCH_SENSOR_STALE_HOURS",
            "doc": "A sensor with no reading (device time) for this long raises sensor_stale (routed to operations).",
        },
    )
    empty_shelf_units: float = field(
        default=0.5,
        metadata={
            "env": "SHELFWATCH_EMPTY_SHELF_UNITS",
            "doc": "A sensor reading at or below this many units means an empty shelf.",
        },
    )
    phantom_probability_threshold: float = field(
        default=0.01,
        metadata={
            "env": "SHELFWATCH_PHANTOM_THRESHOLD",
            "doc": "Raise phantom_stockout when a zero-sales run this unlikely coincides with stock on record.",
        },
    )
    landing_dir: str = field(
        default="",
        metadata={
            "env": "SHELFWATCH_LANDING_DIR",
            "doc": "Folder the POS exports land in (the sales_ingest DAG loads each new file once); empty = "
            "<SHELFWATCH_DATA_DIR>/landing.",
        },
    )
    quarantine_max_share: float = field(
        default=0.05,
        metadata={
            "env": "SHELFWATCH_QUARANTINE_MAX_SHARE",
            "doc": "A sales load with a larger share of rows quarantined (or an unreadable file) fails the DAG and "
            "notifies.",
        },
    )
    ingest_max_silence_minutes: int = field(
        default=10,
        metadata={
            "env": "SHELFWATCH_INGEST_MAX_SILENCE_MINUTES",
            "doc": "The iot_ingest DAG fails when no ingest consumer reported for this long.",
        },
    )
    ingest_max_lag_seconds: float = field(
        default=300.0,
        metadata={
            "env": "SHELFWATCH_INGEST_MAX_LAG_SECONDS",
            "doc": "... or when the p95 of arrival minus device time over the last hour exceeds this.",
        },
    )
    forecast_shards: int = field(
        default=4,
        metadata={
            "env": "SHELFWATCH_FORECAST_SHARDS",
            "doc": "Store shards the demand_forecast DAG maps over (one task, on its own worker, per shard).",
        },
    )
    readings_retention_days: int = field(
        default=90,
        metadata={
            "env": "SHELFWATCH_READINGS_RETENTION_DAYS",
            "doc": "Raw sensor readings older than this (by arrival) are deleted by housekeeping; on PostgreSQL, whole "
            "device-day partitions older than this are dropped.",
        },
    )
    readings_partition_days_ahead: int = field(
        default=7,
        metadata={
            "env": "SHELFWATCH_READINGS_PARTITION_DAYS_AHEAD",
            "doc": "PostgreSQL: housekeeping keeps day partitions of sensor_readings ready for today and this many "
            "days ahead (a missed night costs nothing).",
        },
    )
    quarantine_retention_days: int = field(
        default=180,
        metadata={
            "env": "SHELFWATCH_QUARANTINE_RETENTION_DAYS",
            "doc": "Quarantined rows and payloads older than this are deleted by housekeeping.",
        },
    )
    airflow_db_url: str = field(
        default="",
        metadata={
            "env": "SHELFWATCH_AIRFLOW_DB_URL",
            "doc": "Airflow's metadata database (read-only use: the health page lists the last DAG runs); empty = not "
            "shown.",
        },
    )
    web_secret: str = field(
        default="",
        metadata={
            "env": "SHELFWATCH_WEB_SECRET",
            "doc": "Key that signs the web session cookies; set it in production (empty: a random key per start, so "
            "sessions end on restart).",
        },
    )
    web_secure_cookies: bool = field(
        default=True,
        metadata={
            "env": "SHELFWATCH_WEB_SECURE_COOKIES",
            "doc": "Session cookies are Secure (HTTPS only; browsers also accept them from localhost) and HttpOnly, "
            "SameSite=Lax.",
        },
    )
    favourite_window_days: int = field(
        default=90,
        metadata={"env": "SHELFWATCH_FAVOURITE_WINDOW_DAYS", "doc": "Purchase history window for favourites."},
    )
    favourite_min_purchase_days: int = field(
        default=3,
        metadata={
            "env": "SHELFWATCH_FAVOURITE_MIN_DAYS",
            "doc": "Distinct purchase days in the window to call a SKU a favourite.",
        },
    )
    favourite_max_days_since: int = field(
        default=45,
        metadata={"env": "SHELFWATCH_FAVOURITE_MAX_DAYS_SINCE", "doc": "Last purchase at most this many days ago."},
    )

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Read every field from its environment variable, falling back to the default."""
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = os.environ.get(f.metadata["env"])
            if raw is None or raw == "":
                continue
            default = f.default
            if isinstance(default, Path):
                values[f.name] = Path(raw)
            elif isinstance(default, bool):
                values[f.name] = raw.lower() in {"1", "true", "yes"}
            elif isinstance(default, int):
                values[f.name] = int(raw)
            elif isinstance(default, float):
                values[f.name] = float(raw)
            else:
                values[f.name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]

    def clock(self) -> datetime:
        """The moment the steps treat as now: SHELFWATCH_AS_OF (UTC when it names no offset), else
        the wall clock. Never derived from the data, so a store whose data lag cannot move it."""
        if not self.as_of:
            return datetime.now(UTC)
        moment = datetime.fromisoformat(self.as_of)
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)

    @property
    def landing_path(self) -> Path:
        return Path(self.landing_dir) if self.landing_dir else self.data_dir / "landing"

    @property
    def db_url(self) -> str:
        """The effective database URL (the SQLite default lives under data_dir)."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'shelfwatch.db').resolve()}"


def settings_table() -> str:
    """Markdown table of the variables, for the README."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for f in fields(Settings):
        default = f"`{f.default}`" if f.default != "" else "(empty)"
        rows.append(f"| `{f.metadata['env']}` | {default} | {f.metadata['doc']} |")
    return "\n".join(rows)


# Airflow connections (AIRFLOW_CONN_<ID>) that, when defined, override the matching setting: the
# Airflow way to hand the DAGs their secrets. Outside Airflow the SHELFWATCH_* variables apply.
AIRFLOW_CONNECTIONS = {
    "shelfwatch_db": "database_url",
    "shelfwatch_mqtt": "mqtt_url",
    "shelfwatch_smtp": "smtp_url",
    "shelfwatch_webhook": "webhook_url",
}
SQLALCHEMY_SCHEMES = {"postgres": "postgresql+psycopg", "postgresql": "postgresql+psycopg"}


def url_from_connection_uri(setting: str, uri: str) -> str:
    """An Airflow connection's URI as the setting expects it (Airflow spells PostgreSQL `postgres://`)."""
    scheme, sep, rest = uri.partition("://")
    if not sep:
        raise ValueError(f"connection for {setting} is not a URI: expected scheme://...")
    if setting == "database_url":
        scheme = SQLALCHEMY_SCHEMES.get(scheme, scheme)
    return f"{scheme}://{rest}"
