"""auth throttles: failed log-ins and mail resends per account and per source address

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 21:30:00

One row per (scope, account or address). The API reads it before checking a password and
writes it, in a transaction of its own, after a failure: a growing delay, then a lock that an
administrator may lift (`POST /v1/security/locks/{lock_id}/unlock`, audited).
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

NOW = sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "auth_throttles",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("scope", sa.String(length=32), nullable=False),
        sa.Column("key_kind", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=254), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("blocked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("locked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("locks", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_auth_throttles"),
        sa.UniqueConstraint("scope", "key_kind", "key", name="uq_auth_throttles_key"),
    )
    op.create_index("ix_auth_throttles_blocked_until", "auth_throttles", ["blocked_until"])
    role = op.get_context().config.attributes.get("app_role", "brokerflow_app")
    op.execute(f'GRANT SELECT, INSERT, UPDATE ON auth_throttles TO "{role}"')


def downgrade() -> None:
    op.drop_table("auth_throttles")
