"""password resets: one-time, expiring reset tokens, kept as hashes

Revision ID: 0024_password_reset
Revises: 0023_ib_management
Create Date: 2026-12-07 00:00:00

A "forgot my password" request that finds an account stores a row; the mailed token (derived
from the row's id under the link key) is kept only as its SHA-256. A row works once and until
`expires_at`; a newer request or a completed reset closes the others of the same principal.
"""

import sqlalchemy as sa
from alembic import op

revision = "0024_password_reset"
down_revision = "0023_ib_management"
branch_labels = None
depends_on = None

NOW = sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "password_resets",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("principal_kind", sa.String(length=16), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("used_reason", sa.String(length=32), nullable=True),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_password_resets"),
    )
    op.create_index(
        "ix_password_resets_subject", "password_resets", ["principal_kind", "subject_id"]
    )
    role = op.get_context().config.attributes.get("app_role", "brokerflow_app")
    op.execute(f'GRANT SELECT, INSERT, UPDATE ON password_resets TO "{role}"')


def downgrade() -> None:
    op.drop_table("password_resets")
