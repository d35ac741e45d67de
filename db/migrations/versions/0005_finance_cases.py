"""finance cases: movements whose undoing stopped short, for finance to put right

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 18:45:00

A withdrawal or transfer whose compensations could not all be carried out ends as
`needs_attention` with one case here: what was undone, what was not (with the error), the
amounts. Payment and transfer statuses are free text (no check constraint), so the new status
needs no change to them.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

NOW = sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "finance_cases",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("movement_kind", sa.String(length=16), nullable=False),
        sa.Column("movement_id", sa.Uuid(), nullable=False),
        sa.Column("reference", sa.String(length=32), nullable=False),
        sa.Column("client_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("amount_minor", sa.BigInteger(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("undone", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("not_undone", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.id"], name="fk_finance_cases_client_id_clients"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_finance_cases"),
        sa.UniqueConstraint(
            "movement_kind", "movement_id", "kind", name="uq_finance_cases_movement_kind"
        ),
    )
    op.create_index("ix_finance_cases_reference", "finance_cases", ["reference"])
    op.create_index("ix_finance_cases_client_id", "finance_cases", ["client_id"])
    op.create_index("ix_finance_cases_status", "finance_cases", ["status"])
    role = op.get_context().config.attributes.get("app_role", "brokerflow_app")
    # A case is resolved later (its status changes); it is never deleted.
    op.execute(f'GRANT SELECT, INSERT, UPDATE ON finance_cases TO "{role}"')


def downgrade() -> None:
    op.drop_table("finance_cases")
