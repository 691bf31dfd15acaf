"""Alembic environment: migrations target `sql.schema.metadata` on the configured connection."""

from typing import cast

from alembic import context
from sqlalchemy import Connection

from sql.partitions import autogenerate_includes
from sql.schema import metadata

config = context.config


def run_migrations() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        from sqlalchemy import create_engine

        # sql.migrate.alembic_config always sets the URL (and SQLAlchemy refuses a None one itself)
        engine = create_engine(cast(str, config.get_main_option("sqlalchemy.url")))
        with engine.begin() as conn:
            _run(conn)
        return
    _run(connection)


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite needs table copies for ALTER
        compare_type=True,
        include_name=autogenerate_includes,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
