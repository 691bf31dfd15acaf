"""forecast_models.level_dispersion: the level error a forecast's days share

A forecast's level error is shared by every day of its horizon, so the demand over a lead time varies
more than a sum of independent days (forecasting/distribution.py). Runs before this migration had no
such term: 0 keeps their meaning (days independent).

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 12:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("forecast_models") as batch:
        batch.add_column(sa.Column("level_dispersion", sa.Float(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("forecast_models") as batch:
        batch.drop_column("level_dispersion")
