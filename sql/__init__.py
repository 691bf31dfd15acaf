"""The database schema (one source of truth) and its Alembic migrations."""
