"""forecasts.model and forecast_models.model: room for a combination's name

A forecast may be the mean of the few best candidates (forecasting/combine.py); its model name lists
them ("mean:lgbm_global,croston_sba+weekday,seasonal_es"), which can pass 64 characters.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 08:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

TABLES = ("forecasts", "forecast_models")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.alter_column(
                "model", existing_type=sa.String(length=64), type_=sa.String(length=200), existing_nullable=False
            )


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.alter_column(
                "model", existing_type=sa.String(length=200), type_=sa.String(length=64), existing_nullable=False
            )
