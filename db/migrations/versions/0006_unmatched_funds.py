"""unmatched funds: money a processor collected that no deposit booked, for finance to credit
to a client or return to the payer

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 19:00:00

One row per verified processor event (unique provider, event_id): a second payment on a
reference whose deposit already took its money, a payment for a deposit that had expired,
failed or been cancelled, or one for no known reference. Resolved rows change status; none is
ever deleted.
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

NOW = sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "unmatched_funds",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("reference", sa.String(length=32), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("event_kind", sa.String(length=32), nullable=False),
        sa.Column("provider_ref", sa.String(length=64), nullable=False),
        sa.Column("event_reference", sa.String(length=64), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("payer_name", sa.String(length=200), nullable=True),
        sa.Column("payment_id", sa.Uuid(), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("resolution", sa.String(length=16), nullable=True),
        sa.Column("resolved_by", sa.Uuid(), nullable=True),
        sa.Column("credited_client_id", sa.Uuid(), nullable=True),
        sa.Column("resolution_note", sa.Text(), nullable=True),
        sa.Column("return_ref", sa.String(length=64), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["payment_id"], ["payments.id"], name="fk_unmatched_funds_payment_id_payments"
        ),
        sa.ForeignKeyConstraint(
            ["resolved_by"], ["staff_users.id"], name="fk_unmatched_funds_resolved_by_staff_users"
        ),
        sa.ForeignKeyConstraint(
            ["credited_client_id"],
            ["clients.id"],
            name="fk_unmatched_funds_credited_client_id_clients",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_unmatched_funds"),
        sa.UniqueConstraint("reference", name="uq_unmatched_funds_reference"),
        sa.UniqueConstraint("provider", "event_id", name="uq_unmatched_funds_provider"),
    )
    op.create_index("ix_unmatched_funds_event_reference", "unmatched_funds", ["event_reference"])
    op.create_index("ix_unmatched_funds_payment_id", "unmatched_funds", ["payment_id"])
    op.create_index("ix_unmatched_funds_status", "unmatched_funds", ["status"])
    role = op.get_context().config.attributes.get("app_role", "brokerflow_app")
    # An item is resolved later (its status changes); it is never deleted.
    op.execute(f'GRANT SELECT, INSERT, UPDATE ON unmatched_funds TO "{role}"')


def downgrade() -> None:
    op.drop_table("unmatched_funds")
