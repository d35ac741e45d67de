"""trade ingestion: MT5 deals partitioned by month, and each server's ingestion state

Revision ID: 0020_trade_ingestion
Revises: 0007
Create Date: 2026-12-06 21:30:00

`deals` is partitioned by RANGE (time); no partition is created here: `db.trade_store` creates
the month a batch needs before writing it. The primary key is (server, deal, time) because a
partitioned table's unique keys must hold its partition key; the bulk merge keeps (server, deal)
unique by first deleting a deal whose time a correction moved.
"""

import sqlalchemy as sa
from alembic import op

revision = "0020_trade_ingestion"
down_revision = "0007"
branch_labels = None
depends_on = None

NOW = sa.text("now()")


def upgrade() -> None:
    money = [
        "contract_size",
        "price",
        "price_position",
        "profit",
        "profit_raw",
        "storage",
        "commission",
        "fee",
        "rate_profit",
        "rate_margin",
        "market_bid",
        "market_ask",
    ]
    op.create_table(
        "deals",
        sa.Column("server", sa.Text(), nullable=False),
        sa.Column("deal", sa.BigInteger(), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("time_server", sa.BigInteger(), nullable=False),
        sa.Column("time_msc", sa.BigInteger(), nullable=False),
        sa.Column("login", sa.BigInteger(), nullable=False),
        sa.Column("order_ticket", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.Integer(), nullable=False),
        sa.Column("entry", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Integer(), nullable=False),
        sa.Column("symbol", sa.Text(), nullable=False),
        sa.Column("digits", sa.Integer(), nullable=False),
        sa.Column("digits_currency", sa.Integer(), nullable=False),
        *(sa.Column(name, sa.Numeric(), nullable=False) for name in money[:3]),
        sa.Column("volume", sa.BigInteger(), nullable=False),
        sa.Column("volume_ext", sa.BigInteger(), nullable=False),
        sa.Column("volume_closed", sa.BigInteger(), nullable=False),
        sa.Column("volume_closed_ext", sa.BigInteger(), nullable=False),
        *(sa.Column(name, sa.Numeric(), nullable=False) for name in money[3:]),
        sa.Column("position_id", sa.BigInteger(), nullable=False),
        sa.Column("position_by_id", sa.BigInteger(), nullable=False),
        sa.Column("dealer", sa.BigInteger(), nullable=False),
        sa.Column("expert_id", sa.BigInteger(), nullable=False),
        sa.Column("flags", sa.BigInteger(), nullable=False),
        sa.Column("external_id", sa.Text(), nullable=False),
        sa.Column("gateway", sa.Text(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("server", "deal", "time", name="pk_deals"),
        postgresql_partition_by="RANGE (time)",
    )
    op.create_table(
        "ingestion_state",
        sa.Column("server", sa.Text(), nullable=False),
        sa.Column("watermark", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lag_seconds", sa.Numeric(), nullable=True),
        sa.Column("rows_per_second", sa.Numeric(), nullable=True),
        sa.Column("deals_ingested", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("last_poll_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.PrimaryKeyConstraint("server", name="pk_ingestion_state"),
    )
    role = op.get_context().config.attributes.get("app_role", "brokerflow_app")
    # The app creates a month's partition when a deal needs it: it owns no table, so a
    # partition is made by a SECURITY DEFINER function that only does that.
    op.execute(
        """
        CREATE FUNCTION create_deals_month(month date) RETURNS void
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
        DECLARE
            first date := date_trunc('month', month)::date;
            name text := format('deals_%s', to_char(first, 'YYYY_MM'));
        BEGIN
            PERFORM pg_advisory_xact_lock(hashtext('create_deals_month'));
            IF to_regclass(name) IS NULL THEN
                EXECUTE format(
                    'CREATE TABLE %I PARTITION OF deals FOR VALUES FROM (%L) TO (%L)',
                    name, first::timestamptz, (first + interval '1 month')::timestamptz
                );
            END IF;
        END $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION create_deals_month(date) FROM PUBLIC")
    op.execute(f'GRANT EXECUTE ON FUNCTION create_deals_month(date) TO "{role}"')
    # Corrections overwrite deals, and a correction that moves a deal's time deletes the old row.
    op.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON deals TO "{role}"')
    op.execute(f'GRANT SELECT, INSERT, UPDATE ON ingestion_state TO "{role}"')


def downgrade() -> None:
    op.execute("DROP FUNCTION create_deals_month(date)")
    op.drop_table("ingestion_state")
    op.drop_table("deals")
