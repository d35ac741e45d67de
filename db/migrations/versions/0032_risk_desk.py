"""Risk desk: account books, exposure series and risk alerts (issue 15)

Revision ID: 0032_risk_desk
Revises: 0031_fx_rates_feed
Create Date: 2026-12-07 00:00:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0032_risk_desk"
down_revision = "0031_fx_rates_feed"
branch_labels = None
depends_on = None


STAMP = sa.DateTime(timezone=True)


def _record_columns() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", STAMP, server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", STAMP, server_default=sa.func.now(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "account_books",
        sa.Column("server", sa.String(64), nullable=False),
        sa.Column("login", sa.BigInteger(), nullable=False),
        sa.Column("book", sa.String(16), nullable=False),
        sa.Column("a_share", sa.Numeric(7, 6), nullable=True),
        sa.Column("set_by", sa.String(64), nullable=False),
        sa.Column("updated_at", STAMP, nullable=False),
        sa.PrimaryKeyConstraint("server", "login", name="pk_account_books"),
        sa.CheckConstraint(
            "book IN ('A', 'B', 'hybrid', 'coverage')"
            " AND (book = 'hybrid') = (a_share IS NOT NULL)"
            " AND (a_share IS NULL OR (a_share > 0 AND a_share < 1))",
            name="ck_account_books_book",
        ),
    )
    op.create_table(
        "exposure_points",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("server", sa.String(64), nullable=False),
        sa.Column("at", STAMP, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("net_notional", sa.Numeric(), nullable=False),
        sa.Column("gross_notional", sa.Numeric(), nullable=False),
        sa.Column("pending_notional", sa.Numeric(), nullable=False),
        sa.Column("house_net_notional", sa.Numeric(), nullable=False),
        sa.Column("margin_utilisation", sa.Numeric(), nullable=True),
        sa.Column("positions", sa.Integer(), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("figures", JSONB(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_exposure_points"),
    )
    op.create_index("ix_exposure_points_server_at", "exposure_points", ["server", "at"])
    op.create_table(
        "risk_thresholds",
        *_record_columns(),
        sa.Column("server", sa.String(64), nullable=True),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("metric", sa.String(32), nullable=False),
        sa.Column("raise_above", sa.Numeric(), nullable=False),
        sa.Column("clear_below", sa.Numeric(), nullable=False),
        sa.Column("window_seconds", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_risk_thresholds"),
        sa.CheckConstraint("clear_below <= raise_above", name="ck_risk_thresholds_hysteresis"),
    )
    op.create_table(
        "risk_alerts",
        *_record_columns(),
        sa.Column("threshold_id", sa.Uuid(), nullable=False),
        sa.Column("server", sa.String(64), nullable=False),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("metric", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), server_default="open", nullable=False),
        sa.Column("value", sa.Numeric(), nullable=False),
        sa.Column("last_value", sa.Numeric(), nullable=False),
        sa.Column("peak_value", sa.Numeric(), nullable=False),
        sa.Column("raise_above", sa.Numeric(), nullable=False),
        sa.Column("raised_at", STAMP, nullable=False),
        sa.Column("raised_count", sa.Integer(), server_default="1", nullable=False),
        sa.Column("cleared_at", STAMP, nullable=True),
        sa.Column("acknowledged_by", sa.String(64), nullable=True),
        sa.Column("acknowledged_at", STAMP, nullable=True),
        sa.Column("resolved_by", sa.String(64), nullable=True),
        sa.Column("resolved_at", STAMP, nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_risk_alerts"),
    )
    # De-duplication: one unresolved alert per threshold and server.
    op.create_index(
        "uq_risk_alerts_one_open",
        "risk_alerts",
        ["threshold_id", "server"],
        unique=True,
        postgresql_where=sa.text("status <> 'resolved'"),
    )
    op.create_index("ix_risk_alerts_status", "risk_alerts", ["status"])
    role = op.get_context().config.attributes.get("app_role", "brokerflow_app")
    op.execute(
        f'GRANT SELECT, INSERT, UPDATE ON account_books, risk_thresholds, risk_alerts TO "{role}"'
    )
    # Points past their retention are deleted by the step that writes the next one.
    op.execute(f'GRANT SELECT, INSERT, DELETE ON exposure_points TO "{role}"')
    op.execute(f'GRANT USAGE ON SEQUENCE exposure_points_id_seq TO "{role}"')


def downgrade() -> None:
    op.drop_table("risk_alerts")
    op.drop_table("risk_thresholds")
    op.drop_table("exposure_points")
    op.drop_table("account_books")
