"""Reporting aggregates, maintained incrementally (issue 16)

Revision ID: 0034_analytics
Revises: 0033_reconciliation_cases
Create Date: 2026-12-07 00:00:00

* `analytics_daily`: one row per (server, UTC day, login, symbol) of the trade deals' volume,
  count, commission, swap, fee and the client's realised P&L, in the account's currency;
  replaced day by day from `deals` by the `Analytics` step (docs/reporting.md).
* `analytics_state`: per server, the deal time the aggregates are complete up to.
* `ix_deals_server_time` on `deals (server, time)`: a day of one server is read by the index,
  not by scanning its month's partition.
"""

import sqlalchemy as sa
from alembic import op

revision = "0034_analytics"
down_revision = "0033_reconciliation_cases"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "analytics_daily",
        sa.Column("server", sa.String(64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("login", sa.BigInteger(), nullable=False),
        sa.Column("symbol", sa.Text(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("deals", sa.Integer(), nullable=False),
        sa.Column("volume_lots", sa.Numeric(), nullable=False),
        sa.Column("volume_units", sa.Numeric(), nullable=False),
        sa.Column("commission", sa.Numeric(), nullable=False),
        sa.Column("swap", sa.Numeric(), nullable=False),
        sa.Column("fee", sa.Numeric(), nullable=False),
        sa.Column("client_pnl", sa.Numeric(), nullable=False),
        sa.PrimaryKeyConstraint("server", "day", "login", "symbol", name="pk_analytics_daily"),
    )
    op.create_index("ix_analytics_daily_day", "analytics_daily", ["day"])
    op.create_index("ix_analytics_daily_login", "analytics_daily", ["server", "login"])
    op.create_table(
        "analytics_state",
        sa.Column("server", sa.String(64), primary_key=True),
        sa.Column("through", sa.DateTime(timezone=True), nullable=True),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("days_refreshed", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_index("ix_deals_server_time", "deals", ["server", "time"])
    role = op.get_context().config.attributes.get("app_role", "brokerflow_app")
    op.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON analytics_daily TO "{role}"')
    op.execute(f'GRANT SELECT, INSERT, UPDATE ON analytics_state TO "{role}"')


def downgrade() -> None:
    op.drop_index("ix_deals_server_time", table_name="deals")
    op.drop_table("analytics_state")
    op.drop_index("ix_analytics_daily_login", table_name="analytics_daily")
    op.drop_index("ix_analytics_daily_day", table_name="analytics_daily")
    op.drop_table("analytics_daily")
