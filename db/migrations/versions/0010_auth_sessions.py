"""auth sessions: revocable log-ins with rotating refresh tokens

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 22:00:00

Every log-in opens a row; its access tokens carry the row's id (`sid`) and every request checks
that the row is not revoked. Logging out (here or everywhere), a change of roles, deactivation or
blocking revokes rows. The refresh token is kept as a SHA-256 hash, with the one before it to
recognise a replayed old token (which revokes the session).
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

NOW = sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "auth_sessions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("principal_kind", sa.String(length=16), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=False),
        sa.Column("refresh_hash", sa.String(length=64), nullable=False),
        sa.Column("previous_refresh_hash", sa.String(length=64), nullable=True),
        sa.Column("refresh_expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_reason", sa.String(length=64), nullable=True),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_auth_sessions"),
    )
    op.create_index("ix_auth_sessions_subject", "auth_sessions", ["principal_kind", "subject_id"])
    role = op.get_context().config.attributes.get("app_role", "brokerflow_app")
    op.execute(f'GRANT SELECT, INSERT, UPDATE ON auth_sessions TO "{role}"')


def downgrade() -> None:
    op.drop_table("auth_sessions")
