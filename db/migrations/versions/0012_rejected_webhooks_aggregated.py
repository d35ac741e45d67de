"""webhooks: rejected ones aggregated (address, repeats) instead of one row each

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 22:20:00

A badly signed webhook is still evidence, but a flood of them must not grow the table without
limit: one row per processor, source address and reason within an hour, its `repeats` counted
and `last_received_at` moved on; the API also throttles an address that keeps sending them.
The app role may update only those two columns: every other column of a stored event stays as
it arrived.
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("webhook_events", sa.Column("source_ip", sa.String(length=64), nullable=True))
    op.add_column(
        "webhook_events",
        sa.Column("repeats", sa.Integer(), server_default="1", nullable=False),
    )
    op.add_column(
        "webhook_events",
        sa.Column("last_received_at", sa.DateTime(timezone=True), nullable=True),
    )
    role = op.get_context().config.attributes.get("app_role", "brokerflow_app")
    op.execute(f'GRANT UPDATE (repeats, last_received_at) ON webhook_events TO "{role}"')


def downgrade() -> None:
    role = op.get_context().config.attributes.get("app_role", "brokerflow_app")
    op.execute(f'REVOKE UPDATE (repeats, last_received_at) ON webhook_events FROM "{role}"')
    op.drop_column("webhook_events", "last_received_at")
    op.drop_column("webhook_events", "repeats")
    op.drop_column("webhook_events", "source_ip")
