"""merge: the security revisions (0008-0010) and trade ingestion (0020), both on 0007

Revision ID: 0011
Revises: 0010, 0020_trade_ingestion
Create Date: 2026-12-06 22:10:00

Two branches written at the same time; they touch different tables, so the merge does nothing
but give `alembic upgrade head` one head again.
"""

revision = "0011"
down_revision = ("0010", "0020_trade_ingestion")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
