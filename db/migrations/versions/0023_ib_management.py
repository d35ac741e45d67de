"""IB management: fraud flags on IBs, and the MT5 deal of a payout paid to an MT5 account

Revision ID: 0023_ib_management
Revises: 0022_trade_state

`ib_fraud_flags`: one row per IB, rule and evidence key (`domain.ib.fraud`); the app role may
insert flags and clear them (only the clearing columns), never rewrite what was detected or
delete a flag. `ib_payouts.mt5_ticket`: the `trade/balance` deal of a payout paid to MT5.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0023_ib_management"
down_revision = "0022_trade_state"
branch_labels = None
depends_on = None

NOW = sa.text("now()")


def upgrade() -> None:
    op.add_column("ib_payouts", sa.Column("mt5_ticket", sa.BigInteger(), nullable=True))
    op.create_table(
        "ib_fraud_flags",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("ib_id", sa.Uuid(), nullable=False),
        sa.Column("rule", sa.String(32), nullable=False),
        sa.Column("evidence_key", sa.String(200), nullable=False),
        sa.Column("server", sa.String(64), nullable=True),
        sa.Column("login", sa.BigInteger(), nullable=True),
        sa.Column("client_id", sa.Uuid(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("evidence", postgresql.JSONB(), nullable=False),
        sa.Column("detected_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cleared_by", sa.Uuid(), nullable=True),
        sa.Column("cleared_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["ib_id"],
            ["introducing_brokers.id"],
            name="fk_ib_fraud_flags_ib_id_introducing_brokers",
        ),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.id"], name="fk_ib_fraud_flags_client_id_clients"
        ),
        sa.ForeignKeyConstraint(
            ["cleared_by"], ["staff_users.id"], name="fk_ib_fraud_flags_cleared_by_staff_users"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_ib_fraud_flags"),
        sa.UniqueConstraint("ib_id", "rule", "evidence_key", name="uq_ib_fraud_flags"),
    )
    op.create_index(
        "ix_ib_fraud_flags_open",
        "ib_fraud_flags",
        ["ib_id"],
        postgresql_where=sa.text("cleared_at IS NULL"),
    )
    role = op.get_context().config.attributes.get("app_role", "brokerflow_app")
    op.execute(f'GRANT SELECT, INSERT ON ib_fraud_flags TO "{role}"')
    op.execute(
        f'GRANT UPDATE (cleared_at, cleared_by, cleared_reason) ON ib_fraud_flags TO "{role}"'
    )
    op.execute(f'GRANT USAGE ON SEQUENCE ib_fraud_flags_id_seq TO "{role}"')


def downgrade() -> None:
    op.drop_table("ib_fraud_flags")
    op.drop_column("ib_payouts", "mt5_ticket")
