"""Shelfwatch's tables, as SQLAlchemy Core: the single definition used by the code and by Alembic.

Types are chosen to behave the same on SQLite and PostgreSQL: timestamps are stored timezone-aware
in UTC, dates as DATE, identifiers as short strings. Personal data is kept to the minimum.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)
TS = DateTime(timezone=True)

stores = Table(
    "stores",
    metadata,
    Column("store_id", String(32), primary_key=True),
    Column("name", String(120), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("manager_email", String(200), nullable=False),
    # optional (migration 0016): transfers come from stores of the same chain, nearest first
    Column("chain", String(64), nullable=True),
    Column("latitude", Float, nullable=True),
    Column("longitude", Float, nullable=True),
)

products = Table(
    "products",
    metadata,
    Column("sku", String(32), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("category", String(64), nullable=False),
    Column("unit_price", Float, nullable=False),
    Column("unit_weight_g", Float, nullable=False),
    Column("shelf_capacity", Integer, nullable=False),
    Column("vegetarian", Boolean, nullable=True),  # optional (0016): substitutes keep it; None = unknown
)

members = Table(
    "members",
    metadata,
    Column("member_id", String(32), primary_key=True),
    Column("home_store_id", String(32), ForeignKey("stores.store_id"), nullable=False),
    Column("marketing_consent", Boolean, nullable=False),
    Column("opted_out", Boolean, nullable=False),
    Column("contact_channel", String(16), nullable=False),  # email | sms | app
    Column("contact_address", String(200), nullable=False),
)

sensors = Table(
    "sensors",
    metadata,
    Column("sensor_id", String(64), primary_key=True),
    Column("store_id", String(32), ForeignKey("stores.store_id"), nullable=False),
    Column("sku", String(32), ForeignKey("products.sku"), nullable=False),
    Column("kind", String(32), nullable=False),  # shelf_units | shelf_weight_g | backroom_units
    Column("tare_g", Float, nullable=False, server_default=text("0")),
)

sales_daily = Table(
    "sales_daily",
    metadata,
    Column("store_id", String(32), ForeignKey("stores.store_id"), primary_key=True),
    Column("sku", String(32), ForeignKey("products.sku"), primary_key=True),
    Column("date", Date, primary_key=True),
    Column("units", Float, nullable=False),
)

purchase_lines = Table(
    "purchase_lines",
    metadata,
    Column("store_id", String(32), ForeignKey("stores.store_id"), primary_key=True),
    Column("receipt_id", String(64), primary_key=True),
    Column("line_no", Integer, primary_key=True),
    Column("sku", String(32), ForeignKey("products.sku"), nullable=False),
    Column("date", Date, nullable=False),
    Column("member_id", String(32), ForeignKey("members.member_id"), nullable=True),
    Column("units", Float, nullable=False),
    Index("ix_purchase_lines_member", "member_id", "store_id", "sku", "date"),
)

pending_member_links = Table(
    "pending_member_links",
    metadata,
    # A purchase line whose loyalty card was not (yet) in the member file is stored with member_id NULL;
    # its member link waits here, and is attached (and the row deleted) when the member arrives. The
    # quarantine of the link, not of the sale; retention drops links whose member never came.
    Column("store_id", String(32), primary_key=True),
    Column("receipt_id", String(64), primary_key=True),
    Column("line_no", Integer, primary_key=True),
    Column("member_id", String(32), nullable=False),  # not a foreign key: the member is unknown so far
    Column("source", String(500), nullable=False),  # the file the line came from
    Column("first_seen_at", TS, nullable=False),
    ForeignKeyConstraint(
        ["store_id", "receipt_id", "line_no"],
        ["purchase_lines.store_id", "purchase_lines.receipt_id", "purchase_lines.line_no"],
    ),
    Index("ix_pending_member_links_member", "member_id"),
)

inventory_records = Table(
    "inventory_records",
    metadata,
    Column("store_id", String(32), ForeignKey("stores.store_id"), primary_key=True),
    Column("sku", String(32), ForeignKey("products.sku"), primary_key=True),
    Column("as_of", TS, primary_key=True),
    Column("book_units", Float, nullable=False),
)

# On PostgreSQL, migration 0007 partitions this table by device day (sql/partitions.py says why); its
# primary key there is (reading_id, device_ts), as a partitioned table's keys must hold the partition key.
sensor_readings = Table(
    "sensor_readings",
    metadata,
    # 64-bit on PostgreSQL (billions of readings); SQLite's INTEGER primary key is 64-bit already
    Column("reading_id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("sensor_id", String(64), nullable=False),
    Column("store_id", String(32), nullable=False),
    Column("sku", String(32), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("value", Float, nullable=False),
    Column("units", Float, nullable=False),  # value converted to units (weight / unit weight)
    Column("seq", Integer, nullable=False),
    Column("battery", Float, nullable=True),
    Column("device_ts", TS, nullable=False),
    Column("received_at", TS, nullable=False),
    # device time far ahead of the receive time: stored, but not trusted as the latest stock
    Column("clock_skew", Boolean, nullable=False, server_default=text("false")),
    UniqueConstraint("sensor_id", "device_ts", "seq", name="uq_sensor_readings_key"),
    Index("ix_sensor_readings_store_sku_ts", "store_id", "sku", "device_ts"),
)

latest_sensor_readings = Table(
    "latest_sensor_readings",
    metadata,
    # One row per sensor (per store x SKU x kind it reports for), kept by database triggers on
    # sensor_readings (migration 0007) in the transaction that inserts or deletes readings, so detection,
    # the on-arrival alerts and the stale-sensor check read one row per sensor, not the raw readings.
    Column("store_id", String(32), primary_key=True),
    Column("sku", String(32), primary_key=True),
    Column("sensor_id", String(64), primary_key=True),
    Column("kind", String(32), primary_key=True),
    # the newest reading whose clock is trusted (by device time, then seq); NULL if every one was skewed
    Column("units", Float, nullable=True),
    Column("seq", Integer, nullable=True),
    Column("device_ts", TS, nullable=True),
    Column("last_device_ts", TS, nullable=False),  # newest device time of any reading, skewed or not
    Column("last_received_at", TS, nullable=False),  # newest arrival
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("delivery_id", String(64), primary_key=True),
    Column("store_id", String(32), ForeignKey("stores.store_id"), nullable=False),
    Column("sku", String(32), ForeignKey("products.sku"), nullable=False),
    Column("expected_at", TS, nullable=False),
    Column("expected_units", Float, nullable=False),
    Column("received_at", TS, nullable=True),
    Column("received_units", Float, nullable=True),
    Index("ix_deliveries_store_sku_expected", "store_id", "sku", "expected_at"),
)

forecasts = Table(
    "forecasts",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("store_id", String(32), primary_key=True),
    Column("sku", String(32), primary_key=True),
    Column("date", Date, primary_key=True),
    Column("mean", Float, nullable=False),
    Column("p10", Float, nullable=False),
    Column("p50", Float, nullable=False),
    Column("p90", Float, nullable=False),
    Column("model", String(200), nullable=False),  # a combination lists its members (migration 0010)
)

forecast_models = Table(
    "forecast_models",
    metadata,
    # per series and run: the model the backtest chose, its error, and what the distribution rests on
    Column("run_id", String(64), primary_key=True),
    Column("store_id", String(32), primary_key=True),
    Column("sku", String(32), primary_key=True),
    Column("model", String(200), nullable=False),  # a combination lists its members (migration 0010)
    Column("backtest_rmsse", Float, nullable=True),
    Column("backtest_windows", Integer, nullable=False),
    Column("dispersion", Float, nullable=False),  # negative-binomial 1/k of daily demand
    # the part of it that is level error, shared by every day of the horizon (migration 0012)
    Column("level_dispersion", Float, nullable=False, server_default=text("0")),
    Column("promotion_lift", Float, nullable=False),
    Column("censored_days", Integer, nullable=False),
    Column("demand_class", String(16), nullable=False),
    Column("adi", Float, nullable=True),
    Column("cv2", Float, nullable=True),
    Column("history_days", Integer, nullable=False),
    Column("mean_units", Float, nullable=False),
)

promotions = Table(
    "promotions",
    metadata,
    # planned and past promotions; an empty store_id means every store
    Column("store_id", String(32), primary_key=True),
    Column("sku", String(32), ForeignKey("products.sku"), primary_key=True),
    Column("start_date", Date, primary_key=True),
    Column("end_date", Date, nullable=False),
)

prices = Table(
    "prices",
    metadata,
    # shelf prices, past and planned: each row sets the price from its date on, until the next row for
    # the same store and SKU; an empty store_id means every store (a store's own row wins on a date)
    Column("store_id", String(32), primary_key=True),
    Column("sku", String(32), ForeignKey("products.sku"), primary_key=True),
    Column("date", Date, primary_key=True),
    Column("price", Float, nullable=False),
)

stockout_days = Table(
    "stockout_days",
    metadata,
    # days a shelf was empty before closing: censored demand, masked when forecasting
    Column("store_id", String(32), ForeignKey("stores.store_id"), primary_key=True),
    Column("sku", String(32), ForeignKey("products.sku"), primary_key=True),
    Column("date", Date, primary_key=True),
    Column("empty_from_hour", Float, nullable=True),
)

forecast_runs = Table(
    "forecast_runs",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("created_at", TS, nullable=False),
    Column("last_history_date", Date, nullable=False),
    Column("horizon_days", Integer, nullable=False),
    Column("series", Integer, nullable=False),
)

alerts = Table(
    "alerts",
    metadata,
    Column("alert_id", Integer, primary_key=True, autoincrement=True),
    Column("store_id", String(32), ForeignKey("stores.store_id"), nullable=False),
    Column("sku", String(32), ForeignKey("products.sku"), nullable=False),
    Column("alert_type", String(32), nullable=False),  # shelf_empty | predicted_stockout | phantom_stockout
    Column("status", String(16), nullable=False),  # open | acknowledged | resolved | expired
    Column("probability", Float, nullable=False),
    Column("expected_empty_at", TS, nullable=True),
    Column("severity", Float, nullable=False),
    Column("evidence", Text, nullable=False),  # JSON
    Column("opened_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    Column("resolved_at", TS, nullable=True),
    Column("acknowledged_at", TS, nullable=True),
    Column("acknowledged_by", String(64), nullable=True),
    Column("resolved_by", String(64), nullable=True),
    Column("escalated_at", TS, nullable=True),  # not acknowledged in time: routed to the next level
    # One active (open or acknowledged) alert per store x SKU x type, on both databases.
    Index(
        "uq_alerts_active_store_sku_type",
        "store_id",
        "sku",
        "alert_type",
        unique=True,
        sqlite_where=text("status IN ('open', 'acknowledged')"),
        postgresql_where=text("status IN ('open', 'acknowledged')"),
    ),
    # the inbox's "closed in the last 7 days", newest first, per store: no scan of every alert ever
    Index("ix_alerts_store_resolved_at", "store_id", "resolved_at"),
)

alert_events = Table(
    "alert_events",
    metadata,
    # every change of an alert: who (a user, or "detector"), when, from which status to which
    Column("event_id", Integer, primary_key=True, autoincrement=True),
    Column("alert_id", Integer, ForeignKey("alerts.alert_id"), nullable=False),
    Column("at", TS, nullable=False),
    Column("actor", String(64), nullable=False),
    Column("event", String(16), nullable=False),  # opened | updated | acknowledged | resolved | expired | escalated
    Column("from_status", String(16), nullable=True),
    Column("to_status", String(16), nullable=False),
    Column("note", Text, nullable=True),
    Index("ix_alert_events_alert", "alert_id", "event_id"),
)

alert_members = Table(
    "alert_members",
    metadata,
    Column("alert_id", Integer, ForeignKey("alerts.alert_id"), primary_key=True),
    Column("member_id", String(32), ForeignKey("members.member_id"), primary_key=True),
    Column("score", Float, nullable=False),
)

outbox = Table(
    "outbox",
    metadata,
    # messages to deliver; the idempotency key makes queueing twice a no-op, and a message is claimed
    # (status sending) before delivery so a re-run never sends it again. Addresses are looked up at
    # send time, so no contact detail is copied here.
    Column("message_id", Integer, primary_key=True, autoincrement=True),
    Column("idempotency_key", String(200), nullable=False, unique=True),
    Column("kind", String(32), nullable=False),  # store_email | store_webhook | back_in_stock
    Column("alert_id", Integer, ForeignKey("alerts.alert_id"), nullable=False),
    Column("member_id", String(32), ForeignKey("members.member_id"), nullable=True),
    Column("status", String(16), nullable=False),  # pending | sending | sent | failed | cancelled | handed_to_cx
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", TS, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("created_at", TS, nullable=False),
    Column("sent_at", TS, nullable=True),
    Index("ix_outbox_status_next", "status", "next_attempt_at"),
)

member_contacts = Table(
    "member_contacts",
    metadata,
    # every time a member is put on a contact list or sent a notice: the frequency cap reads it
    Column("member_id", String(32), ForeignKey("members.member_id"), primary_key=True),
    Column("alert_id", Integer, ForeignKey("alerts.alert_id"), primary_key=True),
    Column("kind", String(32), primary_key=True),  # stockout_notice | back_in_stock
    Column("at", TS, nullable=False),
)

alert_substitutes = Table(
    "alert_substitutes",
    metadata,
    # up to three in-stock products per member linked to an alert (alerts.substitutes), refreshed by
    # each detection run while the alert is active (migration 0016)
    Column("alert_id", Integer, ForeignKey("alerts.alert_id"), primary_key=True),
    Column("member_id", String(32), ForeignKey("members.member_id"), primary_key=True),
    Column("rank", Integer, primary_key=True),
    Column("sku", String(32), ForeignKey("products.sku"), nullable=False),
    Column("score", Float, nullable=False),
    Column("reason", Text, nullable=False),
)

member_risk = Table(
    "member_risk",
    metadata,
    # the ranked "members at risk" list (alerts.at_risk), replaced whole by each refresh (migration 0016):
    # counts and a reason in words, never contact details
    Column("member_id", String(32), ForeignKey("members.member_id"), primary_key=True),
    Column("as_of", TS, nullable=False),
    Column("rank", Integer, nullable=False),
    Column("score", Float, nullable=False),
    Column("favourites", Integer, nullable=False),
    Column("favourites_out_30", Integer, nullable=False),
    Column("out_days_30", Float, nullable=False),
    Column("favourites_out_90", Integer, nullable=False),
    Column("out_days_90", Float, nullable=False),
    Column("missed_visits_30", Float, nullable=False),
    Column("days_since_last_visit", Integer, nullable=True),
    Column("usual_interval_days", Float, nullable=True),
    Column("reason", Text, nullable=False),
    Index("ix_member_risk_rank", "rank"),
)

cx_exports = Table(
    "cx_exports",
    metadata,
    # every export of an alert's contact list (CX page or `members export`): who, when, how many
    # members. Never which members or their contact details: those stay in members (migration 0014)
    Column("export_id", Integer, primary_key=True, autoincrement=True),
    Column("alert_id", Integer, ForeignKey("alerts.alert_id"), nullable=False),
    Column("exported_by", String(64), nullable=False),  # a web user's name, or "cli:<os user>"
    Column("exported_at", TS, nullable=False),
    Column("member_count", Integer, nullable=False),
    Index("ix_cx_exports_alert_at", "alert_id", "exported_at"),
    Index("ix_cx_exports_at", "exported_at"),
)

quarantine = Table(
    "quarantine",
    metadata,
    Column("quarantine_id", Integer, primary_key=True, autoincrement=True),
    Column("channel", String(16), nullable=False),  # how it came in: core.domain.QUARANTINE_CHANNELS
    Column("source", String(300), nullable=False),  # file path / MQTT topic
    Column("raw_content", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("quarantined_at", TS, nullable=False),
    UniqueConstraint("source", "content_hash", name="uq_quarantine_source_hash"),
    Index("ix_quarantine_channel_at", "channel", "quarantined_at"),
)

ingest_stats = Table(
    "ingest_stats",
    metadata,
    Column("client_id", String(128), primary_key=True),
    Column("received", Integer, nullable=False),
    Column("stored", Integer, nullable=False),
    Column("duplicates", Integer, nullable=False),
    Column("quarantined", Integer, nullable=False),
    Column("batches", Integer, nullable=False),
    Column("reconnects", Integer, nullable=False),
    Column("db_errors", Integer, nullable=False),
    Column("commit_seconds_total", Float, nullable=False),
    Column("commit_seconds_max", Float, nullable=False),
    Column("readings_per_second", Float, nullable=False),
    Column("updated_at", TS, nullable=False),
)

ingested_files = Table(
    "ingested_files",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("path", String(500), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("rows_loaded", Integer, nullable=False),
    Column("rows_quarantined", Integer, nullable=False),
    Column("ingested_at", TS, nullable=False),
)

users = Table(
    "users",
    metadata,
    # people who use the web views; passwords as argon2 hashes only. role: planner | store_manager | cx | admin
    Column("username", String(64), primary_key=True),
    Column("password_hash", String(200), nullable=False),
    Column("role", String(16), nullable=False),
    Column("store_id", String(32), ForeignKey("stores.store_id"), nullable=True),  # a store manager's store
    Column("created_at", TS, nullable=False),
    Column("disabled_at", TS, nullable=True),  # set: the user can't sign in and their sessions are gone (0013)
)

web_sessions = Table(
    "web_sessions",
    metadata,
    # one row per signed-in browser: the signed cookie carries only the id, so logging out, a new
    # password or disabling the user ends the session on the server at once (migration 0013)
    Column("session_id", String(64), primary_key=True),
    Column("username", String(64), ForeignKey("users.username", ondelete="CASCADE"), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("expires_at", TS, nullable=False),
    Index("ix_web_sessions_username", "username"),
)

login_attempts = Table(
    "login_attempts",
    metadata,
    # every sign-in attempt, the audit trail the throttle counts on: the name as typed (it may not
    # exist), the client address, and whether it succeeded (never the password) (migration 0013)
    Column("attempt_id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False),
    Column("client", String(64), nullable=False),
    Column("attempted_at", TS, nullable=False),
    Column("succeeded", Boolean, nullable=False),
    Column("throttled", Boolean, nullable=False, server_default=text("false")),
    Index("ix_login_attempts_username_at", "username", "attempted_at"),
    Index("ix_login_attempts_client_at", "client", "attempted_at"),
)
