"""payments: deposits and withdrawals, transfers, decisions, webhooks, FX rates, notifications

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 16:30:00

Clients gain a KYC and a screening status, which the deposit checks read.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _record_columns() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("client_id", sa.Uuid(), nullable=False),
        sa.Column("reference", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("workflow_id", sa.String(length=200), nullable=False),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
    ]


def _request_constraints(table: str) -> list[sa.Constraint]:
    return [
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"], name=f"fk_{table}_client_id_clients"),
        sa.PrimaryKeyConstraint("id", name=f"pk_{table}"),
        sa.UniqueConstraint("reference", name=f"uq_{table}_reference"),
        sa.UniqueConstraint("client_id", "idempotency_key", name=f"uq_{table}_client_id"),
        sa.CheckConstraint("amount_minor > 0", name=f"ck_{table}_amount_positive"),
    ]


def upgrade() -> None:
    op.add_column("clients", sa.Column("kyc_status", sa.String(length=16), server_default="pending", nullable=False))
    op.add_column("clients", sa.Column("screening_status", sa.String(length=16), server_default="unscreened", nullable=False))
    op.create_table(
        "payments",
        *_record_columns(),
        sa.Column("direction", sa.String(length=16), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("requested_minor", sa.BigInteger(), nullable=False),
        sa.Column("compliance_status", sa.String(length=16), nullable=False),
        sa.Column("risk_flags", postgresql.ARRAY(sa.String(length=32)), nullable=False),
        sa.Column("mt5_server", sa.String(length=64), nullable=True),
        sa.Column("mt5_login", sa.BigInteger(), nullable=True),
        sa.Column("mt5_ticket", sa.BigInteger(), nullable=True),
        sa.Column("provider_ref", sa.String(length=64), nullable=True),
        sa.Column("transfer_reference", sa.String(length=64), nullable=True),
        sa.Column("redirect_url", sa.Text(), nullable=True),
        sa.Column("payer_name", sa.String(length=200), nullable=True),
        sa.Column("beneficiary_name", sa.String(length=200), nullable=True),
        sa.Column("beneficiary_account", sa.String(length=64), nullable=True),
        *_request_constraints("payments"),
    )
    op.create_index("ix_payments_client_id", "payments", ["client_id"])
    op.create_index("ix_payments_status", "payments", ["status"])
    op.create_index("ix_payments_provider_ref", "payments", ["provider_ref"])
    op.create_index("ix_payments_transfer_reference", "payments", ["transfer_reference"])
    op.create_table(
        "transfers",
        *_record_columns(),
        sa.Column("source_server", sa.String(length=64), nullable=True),
        sa.Column("source_login", sa.BigInteger(), nullable=True),
        sa.Column("destination_currency", sa.String(length=3), nullable=False),
        sa.Column("destination_server", sa.String(length=64), nullable=True),
        sa.Column("destination_login", sa.BigInteger(), nullable=True),
        sa.Column("credited_minor", sa.BigInteger(), nullable=True),
        *_request_constraints("transfers"),
    )
    op.create_index("ix_transfers_client_id", "transfers", ["client_id"])
    op.create_index("ix_transfers_status", "transfers", ["status"])
    op.create_table(
        "payment_decisions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("payment_id", sa.Uuid(), nullable=False),
        sa.Column("staff_id", sa.Uuid(), nullable=False),
        sa.Column("role", sa.String(length=32), nullable=False),
        sa.Column("approve", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["payment_id"], ["payments.id"], name="fk_payment_decisions_payment_id_payments"),
        sa.ForeignKeyConstraint(["staff_id"], ["staff_users.id"], name="fk_payment_decisions_staff_id_staff_users"),
        sa.PrimaryKeyConstraint("id", name="pk_payment_decisions"),
        sa.UniqueConstraint("payment_id", "staff_id", "role", name="uq_payment_decisions_payment_id"),
    )
    op.create_index("ix_payment_decisions_payment_id", "payment_decisions", ["payment_id"])
    op.create_table(
        "webhook_events",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("payment_id", sa.Uuid(), nullable=True),
        sa.Column("payload", postgresql.JSONB(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["payment_id"], ["payments.id"], name="fk_webhook_events_payment_id_payments"),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_events"),
        sa.UniqueConstraint("provider", "event_id", name="uq_webhook_events_provider"),
    )
    op.create_index("ix_webhook_events_outcome", "webhook_events", ["outcome"])
    op.create_index("ix_webhook_events_payment_id", "webhook_events", ["payment_id"])
    op.create_table(
        "fx_rates",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("base", sa.String(length=3), nullable=False),
        sa.Column("quote", sa.String(length=3), nullable=False),
        sa.Column("bid", sa.Numeric(20, 10), nullable=False),
        sa.Column("ask", sa.Numeric(20, 10), nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_fx_rates"),
        sa.CheckConstraint("bid > 0 AND ask >= bid", name="ck_fx_rates_ordered"),
    )
    op.create_index("ix_fx_rates_as_of", "fx_rates", ["as_of"])
    op.create_table(
        "notifications",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("client_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["client_id"], ["clients.id"], name="fk_notifications_client_id_clients"),
        sa.PrimaryKeyConstraint("id", name="pk_notifications"),
        sa.UniqueConstraint("key", name="uq_notifications_key"),
    )
    op.create_index("ix_notifications_client_id", "notifications", ["client_id"])
    role = op.get_context().config.attributes.get("app_role", "brokerflow_app")
    # Decisions, webhooks, rates and notifications are evidence: written once, never changed.
    op.execute(
        f"""
        GRANT SELECT, INSERT, UPDATE ON payments, transfers TO "{role}";
        GRANT SELECT, INSERT ON payment_decisions, webhook_events, fx_rates, notifications
            TO "{role}";
        """
    )


def downgrade() -> None:
    for table in ("notifications", "fx_rates", "webhook_events", "payment_decisions", "transfers", "payments"):
        op.drop_table(table)
    op.drop_column("clients", "screening_status")
    op.drop_column("clients", "kyc_status")
