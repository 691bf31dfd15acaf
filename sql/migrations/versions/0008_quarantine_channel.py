"""quarantine.channel: how a quarantined row came in (sales file, MQTT, reference file)

Existing rows are classified by their source: a POS file path ends in .csv or .parquet, anything else
was an MQTT topic (reference files were not quarantined before this revision).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 05:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("quarantine", sa.Column("channel", sa.String(length=16), nullable=True))
    op.execute(
        "UPDATE quarantine SET channel = CASE WHEN lower(source) LIKE '%.csv' OR lower(source) LIKE '%.parquet' "
        "THEN 'sales_file' ELSE 'mqtt' END"
    )
    with op.batch_alter_table("quarantine") as batch:
        batch.alter_column("channel", existing_type=sa.String(length=16), nullable=False)
    op.create_index("ix_quarantine_channel_at", "quarantine", ["channel", "quarantined_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_quarantine_channel_at", table_name="quarantine")
    with op.batch_alter_table("quarantine") as batch:
        batch.drop_column("channel")
