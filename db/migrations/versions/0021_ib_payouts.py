"""IB payouts: the IB tree and payout account, commission plans with versions, client
attribution with effective dates, the commission ledger and payouts

Revision ID: 0021_ib_payouts
Revises: 0012
Create Date: 2026-12-06 22:00:00

Times the commission calculation compares with deals are server-clock Unix seconds (bigint), as
MT5 stamps deals. Commission rows are append-only for the app role (a correction is a new
revision row); payouts change status; attributions are closed (effective_to) on reassignment.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0021_ib_payouts"
down_revision = "0012"
branch_labels = None
depends_on = None

NOW = sa.text("now()")


def upgrade() -> None:
    op.create_table(
        "ib_plans",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_ib_plans"),
    )
    op.create_table(
        "ib_plan_versions",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("plan_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("effective_from", sa.BigInteger(), nullable=False),
        sa.Column("terms", postgresql.JSONB(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.ForeignKeyConstraint(
            ["plan_id"], ["ib_plans.id"], name="fk_ib_plan_versions_plan_id_ib_plans"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_ib_plan_versions"),
        sa.UniqueConstraint("plan_id", "version", name="uq_ib_plan_versions_plan_id"),
        sa.UniqueConstraint("plan_id", "effective_from", name="uq_ib_plan_versions_plan_from"),
    )
    op.add_column(
        "introducing_brokers",
        sa.Column("parent_id", sa.Uuid(), nullable=True),
    )
    op.add_column("introducing_brokers", sa.Column("plan_id", sa.String(64), nullable=True))
    op.add_column(
        "introducing_brokers",
        sa.Column("payout_frequency", sa.String(8), server_default="monthly", nullable=False),
    )
    op.add_column(
        "introducing_brokers", sa.Column("payout_mt5_server", sa.String(64), nullable=True)
    )
    op.add_column(
        "introducing_brokers", sa.Column("payout_mt5_login", sa.BigInteger(), nullable=True)
    )
    op.create_foreign_key(
        "fk_introducing_brokers_parent_id_introducing_brokers",
        "introducing_brokers",
        "introducing_brokers",
        ["parent_id"],
        ["id"],
    )
    op.create_foreign_key(
        "fk_introducing_brokers_plan_id_ib_plans",
        "introducing_brokers",
        "ib_plans",
        ["plan_id"],
        ["id"],
    )
    op.create_index("ix_introducing_brokers_parent_id", "introducing_brokers", ["parent_id"])
    op.create_table(
        "ib_attributions",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("server", sa.String(64), nullable=False),
        sa.Column("login", sa.BigInteger(), nullable=False),
        sa.Column("ib_id", sa.Uuid(), nullable=False),
        sa.Column("effective_from", sa.BigInteger(), nullable=False),
        sa.Column("effective_to", sa.BigInteger(), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.CheckConstraint(
            "effective_to IS NULL OR effective_to > effective_from",
            name="ck_ib_attributions_ordered",
        ),
        sa.ForeignKeyConstraint(
            ["ib_id"],
            ["introducing_brokers.id"],
            name="fk_ib_attributions_ib_id_introducing_brokers",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_ib_attributions"),
    )
    op.create_index(
        "ix_ib_attributions_login", "ib_attributions", ["server", "login", "effective_from"]
    )
    op.create_index("ix_ib_attributions_ib_id", "ib_attributions", ["ib_id"])
    op.create_index(
        "uq_ib_attributions_open",
        "ib_attributions",
        ["server", "login"],
        unique=True,
        postgresql_where=sa.text("effective_to IS NULL"),
    )
    op.create_table(
        "ib_payouts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("ib_id", sa.Uuid(), nullable=False),
        sa.Column("period_start", sa.BigInteger(), nullable=False),
        sa.Column("period_end", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.Numeric(20, 8), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("statement_key", sa.String(512), nullable=True),
        sa.Column("approved_by", postgresql.JSONB(), server_default="[]", nullable=False),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column("ledger_key", sa.String(200), nullable=True),
        sa.ForeignKeyConstraint(
            ["ib_id"], ["introducing_brokers.id"], name="fk_ib_payouts_ib_id_introducing_brokers"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_ib_payouts"),
        sa.UniqueConstraint(
            "ib_id", "period_start", "period_end", "currency", name="uq_ib_payouts"
        ),
    )
    op.create_index("ix_ib_payouts_ib_id", "ib_payouts", ["ib_id"])
    op.create_index("ix_ib_payouts_status", "ib_payouts", ["status"])
    op.create_table(
        "ib_commissions",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("server", sa.String(64), nullable=False),
        sa.Column("deal", sa.BigInteger(), nullable=False),
        sa.Column("ib_id", sa.Uuid(), nullable=False),
        sa.Column("plan_id", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), server_default="0", nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("login", sa.BigInteger(), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("deal_time", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.Numeric(20, 8), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("trace", postgresql.JSONB(), nullable=False),
        sa.Column("payout_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.ForeignKeyConstraint(
            ["ib_id"],
            ["introducing_brokers.id"],
            name="fk_ib_commissions_ib_id_introducing_brokers",
        ),
        sa.ForeignKeyConstraint(
            ["payout_id"], ["ib_payouts.id"], name="fk_ib_commissions_payout_id_ib_payouts"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_ib_commissions"),
        sa.UniqueConstraint(
            "server", "deal", "ib_id", "plan_id", "version", "revision", name="uq_ib_commissions"
        ),
    )
    op.create_index("ix_ib_commissions_ib_time", "ib_commissions", ["ib_id", "deal_time"])
    op.create_index("ix_ib_commissions_payout", "ib_commissions", ["payout_id"])
    role = op.get_context().config.attributes.get("app_role", "brokerflow_app")
    op.execute(f'GRANT SELECT, INSERT ON ib_plans, ib_plan_versions TO "{role}"')
    op.execute(f'GRANT SELECT, INSERT, UPDATE ON ib_attributions, ib_payouts TO "{role}"')
    # A row's amount and trace never change; only the payout it is paid in is set (or released).
    op.execute(f'GRANT SELECT, INSERT ON ib_commissions TO "{role}"')
    op.execute(f'GRANT UPDATE (payout_id) ON ib_commissions TO "{role}"')
    op.execute(
        f"GRANT USAGE ON SEQUENCE ib_plan_versions_id_seq, ib_attributions_id_seq,"
        f' ib_commissions_id_seq TO "{role}"'
    )


def downgrade() -> None:
    op.drop_table("ib_commissions")
    op.drop_table("ib_payouts")
    op.drop_table("ib_attributions")
    op.drop_constraint(
        "fk_introducing_brokers_plan_id_ib_plans", "introducing_brokers", type_="foreignkey"
    )
    op.drop_constraint(
        "fk_introducing_brokers_parent_id_introducing_brokers",
        "introducing_brokers",
        type_="foreignkey",
    )
    op.drop_index("ix_introducing_brokers_parent_id", "introducing_brokers")
    for column in (
        "payout_mt5_login",
        "payout_mt5_server",
        "payout_frequency",
        "plan_id",
        "parent_id",
    ):
        op.drop_column("introducing_brokers", column)
    op.drop_table("ib_plan_versions")
    op.drop_table("ib_plans")
