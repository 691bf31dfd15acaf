"""alerts: index (store_id, resolved_at) for the inbox's recently closed list

The store manager's inbox lists the store's alerts closed in the last 7 days, newest first. Without
this index that reads every alert the store ever had, which grows with history.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30 16:00:00
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_alerts_store_resolved_at", "alerts", ["store_id", "resolved_at"])


def downgrade() -> None:
    op.drop_index("ix_alerts_store_resolved_at", table_name="alerts")
