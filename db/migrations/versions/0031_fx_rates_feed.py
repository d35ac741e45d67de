"""FX rates taken from a feed (the MT5 quotes), with their source (issue 11)

Revision ID: 0031_fx_rates_feed
Revises: 0028_reconciliation
Create Date: 2026-12-07 00:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0031_fx_rates_feed"
down_revision = "0028_reconciliation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every rate stored so far was entered by finance (or seeded as if it were).
    op.add_column(
        "fx_rates",
        sa.Column("source", sa.String(64), nullable=False, server_default="staff"),
    )
    # A feed's quote is one row however often it is read (a retried activity, an unchanged
    # quote read again); staff entries are each a decision of their own, so they stay apart.
    op.create_index(
        "uq_fx_rates_feed_quote",
        "fx_rates",
        ["base", "quote", "source", "as_of"],
        unique=True,
        postgresql_where=sa.text("source <> 'staff'"),
    )


def downgrade() -> None:
    op.drop_index("uq_fx_rates_feed_quote", table_name="fx_rates")
    op.drop_column("fx_rates", "source")
