"""cx_exports: the history of contact-list exports

Who exported an alert's contact list, when, and how many members it held, so CX and admins can see
who has had which members' contact details. Counts only: no member ids or addresses are copied here.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 15:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cx_exports",
        sa.Column("export_id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("alert_id", sa.Integer(), sa.ForeignKey("alerts.alert_id"), nullable=False),
        sa.Column("exported_by", sa.String(length=64), nullable=False),
        sa.Column("exported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("member_count", sa.Integer(), nullable=False),
    )
    op.create_index("ix_cx_exports_alert_at", "cx_exports", ["alert_id", "exported_at"])
    op.create_index("ix_cx_exports_at", "cx_exports", ["exported_at"])


def downgrade() -> None:
    op.drop_table("cx_exports")
