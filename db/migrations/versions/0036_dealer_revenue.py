"""Dealer-plugin revenue: the mirrored dealer rules, per-deal revenue figures and their
computation's watermark (issue 15, docs/revenue.md)

Revision ID: 0036_dealer_revenue
Revises: 0035_client_profiles
Create Date: 2026-12-07 00:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0036_dealer_revenue"
down_revision = "0035_client_profiles"
branch_labels = None
depends_on = None

STAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    # The LP's execution price of an A-book deal, kept as MT5 gives it (0 on the B-book).
    op.add_column(
        "deals", sa.Column("price_gateway", sa.Numeric(), server_default="0", nullable=False)
    )
    op.create_table(
        "dealer_rules",
        sa.Column("server", sa.String(64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("group_mask", sa.String(128), nullable=False),
        sa.Column("symbol_mask", sa.String(64), nullable=False),
        sa.Column("markup_points", sa.Integer(), nullable=False),
        sa.Column("a_book", sa.Boolean(), nullable=False),
        sa.Column("gateway", sa.String(64), nullable=False),
        sa.Column("set_by", sa.String(64), nullable=False),
        sa.Column("updated_at", STAMP, nullable=False),
        sa.PrimaryKeyConstraint("server", "position", name="pk_dealer_rules"),
    )
    op.create_table(
        "deal_revenue",
        sa.Column("server", sa.String(64), nullable=False),
        sa.Column("deal", sa.BigInteger(), nullable=False),
        sa.Column("time", STAMP, nullable=False),
        sa.Column("login", sa.BigInteger(), nullable=False),
        sa.Column("symbol", sa.Text(), nullable=False),
        sa.Column("group_name", sa.String(128), nullable=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("action", sa.Integer(), nullable=False),
        sa.Column("entry", sa.Integer(), nullable=False),
        sa.Column("order_ticket", sa.BigInteger(), nullable=False),
        sa.Column("order_type", sa.Integer(), nullable=True),
        sa.Column("position_id", sa.BigInteger(), nullable=False),
        sa.Column("gateway", sa.Text(), nullable=False),
        sa.Column("a_book", sa.Boolean(), nullable=False),
        sa.Column("comparable", sa.Boolean(), nullable=False),
        sa.Column("lots", sa.Numeric(), nullable=False),
        sa.Column("spread_points", sa.Numeric(), nullable=True),
        sa.Column("markup_points", sa.Numeric(), nullable=True),
        sa.Column("slippage_points", sa.Numeric(), nullable=True),
        sa.Column("gateway_slippage_points", sa.Numeric(), nullable=True),
        sa.Column("spread_captured", sa.Numeric(), nullable=True),
        sa.Column("markup", sa.Numeric(), nullable=True),
        sa.Column("commission_revenue", sa.Numeric(), nullable=False),
        sa.Column("fee_revenue", sa.Numeric(), nullable=False),
        sa.Column("b_book_pnl", sa.Numeric(), nullable=False),
        sa.Column("a_book_cost", sa.Numeric(), nullable=True),
        sa.Column("computed_at", STAMP, nullable=False),
        sa.PrimaryKeyConstraint("server", "deal", name="pk_deal_revenue"),
    )
    op.create_index("ix_deal_revenue_server_time", "deal_revenue", ["server", "time"])
    op.create_index("ix_deal_revenue_server_position", "deal_revenue", ["server", "position_id"])
    op.create_table(
        "deal_revenue_state",
        sa.Column("server", sa.String(64), nullable=False),
        sa.Column("through", STAMP, nullable=True),
        sa.Column("through_deal", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("computed_at", STAMP, nullable=True),
        sa.Column("deals", sa.BigInteger(), server_default="0", nullable=False),
        sa.PrimaryKeyConstraint("server", name="pk_deal_revenue_state"),
    )
    config = op.get_context().config
    role = config.attributes.get("app_role", "brokerflow_app") if config else "brokerflow_app"
    op.execute(
        "GRANT SELECT, INSERT, UPDATE, DELETE ON dealer_rules, deal_revenue, deal_revenue_state"
        f' TO "{role}"'
    )


def downgrade() -> None:
    op.drop_table("deal_revenue_state")
    op.drop_table("deal_revenue")
    op.drop_table("dealer_rules")
    op.drop_column("deals", "price_gateway")
