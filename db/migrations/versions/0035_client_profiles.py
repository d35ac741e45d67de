"""Client profiles (toxic-flow classification) and dealer book decisions (issue 15)

Revision ID: 0035_client_profiles
Revises: 0034_analytics
Create Date: 2026-12-07 00:00:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0035_client_profiles"
down_revision = "0034_analytics"
branch_labels = None
depends_on = None


STAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "client_profiles",
        sa.Column("server", sa.String(64), nullable=False),
        sa.Column("login", sa.BigInteger(), nullable=False),
        sa.Column("profile", sa.String(32), nullable=False),
        sa.Column("suggested_book", sa.String(16), nullable=False),
        sa.Column("suggested_a_share", sa.Numeric(7, 6), nullable=False),
        sa.Column("book_reason", sa.Text(), nullable=False),
        sa.Column("explanation", sa.Text(), nullable=False),
        sa.Column("conditions", JSONB(), nullable=False),
        sa.Column("metrics", JSONB(), nullable=False),
        sa.Column("trades", sa.Integer(), nullable=False),
        sa.Column("net_profit", sa.Numeric(), nullable=False),
        sa.Column("window_from", STAMP, nullable=False),
        sa.Column("window_to", STAMP, nullable=False),
        sa.Column("computed_at", STAMP, nullable=False),
        sa.PrimaryKeyConstraint("server", "login", name="pk_client_profiles"),
    )
    op.create_index("ix_client_profiles_profile", "client_profiles", ["profile"])
    op.create_table(
        "book_decisions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", STAMP, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", STAMP, server_default=sa.func.now(), nullable=False),
        sa.Column("server", sa.String(64), nullable=False),
        sa.Column("login", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("book", sa.String(16), nullable=False),
        sa.Column("a_share", sa.Numeric(7, 6), nullable=True),
        sa.Column("target_group", sa.String(128), nullable=False),
        sa.Column("profile", sa.String(32), nullable=False),
        sa.Column("suggested_book", sa.String(16), nullable=False),
        sa.Column("profile_computed_at", STAMP, nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("status", sa.String(16), server_default="moving", nullable=False),
        sa.Column("decided_by", sa.Uuid(), nullable=False),
        sa.Column("decided_by_roles", JSONB(), nullable=False),
        sa.Column("before", JSONB(), nullable=True),
        sa.Column("after", JSONB(), nullable=True),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("finished_at", STAMP, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_book_decisions"),
        sa.CheckConstraint(
            "book IN ('A', 'B', 'hybrid') AND (book = 'hybrid') = (a_share IS NOT NULL)",
            name="ck_book_decisions_book",
        ),
        sa.CheckConstraint("kind IN ('accept', 'override')", name="ck_book_decisions_kind"),
        sa.CheckConstraint(
            "status IN ('moving', 'applied', 'failed')", name="ck_book_decisions_status"
        ),
    )
    op.create_index("ix_book_decisions_account", "book_decisions", ["server", "login"])
    config = op.get_context().config
    role = config.attributes.get("app_role", "brokerflow_app") if config else "brokerflow_app"
    op.execute(f'GRANT SELECT, INSERT, UPDATE ON client_profiles, book_decisions TO "{role}"')


def downgrade() -> None:
    op.drop_table("book_decisions")
    op.drop_table("client_profiles")
