"""prices: shelf prices per store (or every store) and SKU from a date on

The forecast's global model reads price changes, past and planned (issue 16).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 08:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "prices",
        sa.Column("store_id", sa.String(length=32), nullable=False),
        sa.Column("sku", sa.String(length=32), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("price", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["sku"], ["products.sku"], name=op.f("fk_prices_sku_products")),
        sa.PrimaryKeyConstraint("store_id", "sku", "date", name=op.f("pk_prices")),
    )


def downgrade() -> None:
    op.drop_table("prices")
