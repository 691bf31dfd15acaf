"""stores: chain and coordinates; products: vegetarian; alert_substitutes; member_risk

Issue 19: a recommended action per stock-out alert transfers from stores of the same chain, nearest
first (optional stores.chain, latitude, longitude); substitutes keep a product's attributes (optional
products.vegetarian); each linked member's substitutes (alert_substitutes) and the ranked members at
risk (member_risk) are kept for the CX views, exports and notices.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-30 19:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("stores") as batch:
        batch.add_column(sa.Column("chain", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("latitude", sa.Float(), nullable=True))
        batch.add_column(sa.Column("longitude", sa.Float(), nullable=True))
    with op.batch_alter_table("products") as batch:
        batch.add_column(sa.Column("vegetarian", sa.Boolean(), nullable=True))
    op.create_table(
        "alert_substitutes",
        sa.Column("alert_id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.String(length=32), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(length=32), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["alert_id"], ["alerts.alert_id"], name=op.f("fk_alert_substitutes_alert_id_alerts")),
        sa.ForeignKeyConstraint(
            ["member_id"], ["members.member_id"], name=op.f("fk_alert_substitutes_member_id_members")
        ),
        sa.ForeignKeyConstraint(["sku"], ["products.sku"], name=op.f("fk_alert_substitutes_sku_products")),
        sa.PrimaryKeyConstraint("alert_id", "member_id", "rank", name=op.f("pk_alert_substitutes")),
    )
    op.create_table(
        "member_risk",
        sa.Column("member_id", sa.String(length=32), nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("favourites", sa.Integer(), nullable=False),
        sa.Column("favourites_out_30", sa.Integer(), nullable=False),
        sa.Column("out_days_30", sa.Float(), nullable=False),
        sa.Column("favourites_out_90", sa.Integer(), nullable=False),
        sa.Column("out_days_90", sa.Float(), nullable=False),
        sa.Column("missed_visits_30", sa.Float(), nullable=False),
        sa.Column("days_since_last_visit", sa.Integer(), nullable=True),
        sa.Column("usual_interval_days", sa.Float(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["member_id"], ["members.member_id"], name=op.f("fk_member_risk_member_id_members")),
        sa.PrimaryKeyConstraint("member_id", name=op.f("pk_member_risk")),
    )
    op.create_index("ix_member_risk_rank", "member_risk", ["rank"])


def downgrade() -> None:
    op.drop_index("ix_member_risk_rank", table_name="member_risk")
    op.drop_table("member_risk")
    op.drop_table("alert_substitutes")
    with op.batch_alter_table("products") as batch:
        batch.drop_column("vegetarian")
    with op.batch_alter_table("stores") as batch:
        batch.drop_column("longitude")
        batch.drop_column("latitude")
        batch.drop_column("chain")
