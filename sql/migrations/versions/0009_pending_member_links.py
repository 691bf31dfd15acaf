"""pending_member_links: the member link of a purchase line whose loyalty card is not yet a member

The sale is stored (member_id NULL); only its link to the member waits here until the member file
names the card.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 05:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pending_member_links",
        sa.Column("store_id", sa.String(length=32), nullable=False),
        sa.Column("receipt_id", sa.String(length=64), nullable=False),
        sa.Column("line_no", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=500), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["store_id", "receipt_id", "line_no"],
            ["purchase_lines.store_id", "purchase_lines.receipt_id", "purchase_lines.line_no"],
            name=op.f("fk_pending_member_links_store_id_purchase_lines"),
        ),
        sa.PrimaryKeyConstraint("store_id", "receipt_id", "line_no", name=op.f("pk_pending_member_links")),
    )
    op.create_index("ix_pending_member_links_member", "pending_member_links", ["member_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_pending_member_links_member", table_name="pending_member_links")
    op.drop_table("pending_member_links")
