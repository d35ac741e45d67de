"""trade ingestion: orders, positions and account states

Revision ID: 0022_trade_state
Revises: 0021_ib_payouts
Create Date: 2026-12-07 00:00:00

Beside the deals (0020), each server's
* open positions: a current snapshot keyed by (server, position); a position missing from a
  complete snapshot is closed and its row deleted;
* history orders (closed, filled, cancelled): upserted by (server, order ticket), read by
  watermark like the deals;
* account states (balance, credit, equity, margin, free margin, margin level): the current
  state per (server, login), and a history row each time a state changed, partitioned by month
  of `taken_at` (partitions made on demand by `create_account_states_month`, as for deals).
Numbers stay as MT5 wrote them (numeric read from its strings); times are UTC instants with the
server's own millisecond stamps beside them.
"""

import sqlalchemy as sa
from alembic import op

revision = "0022_trade_state"
down_revision = "0021_ib_payouts"
branch_labels = None
depends_on = None

NOW = sa.text("now()")


def _money(*names: str) -> list[sa.Column]:  # type: ignore[type-arg]
    return [sa.Column(name, sa.Numeric(), nullable=False) for name in names]


def _big(*names: str) -> list[sa.Column]:  # type: ignore[type-arg]
    return [sa.Column(name, sa.BigInteger(), nullable=False) for name in names]


def _int(*names: str) -> list[sa.Column]:  # type: ignore[type-arg]
    return [sa.Column(name, sa.Integer(), nullable=False) for name in names]


def _text(*names: str) -> list[sa.Column]:  # type: ignore[type-arg]
    return [sa.Column(name, sa.Text(), nullable=False) for name in names]


def _stamps() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
    ]


ACCOUNT_MONEY = (
    "balance", "credit", "equity", "margin", "margin_free", "margin_level", "profit", "storage",
    "floating",
)  # fmt: skip


def upgrade() -> None:
    op.create_table(
        "positions",
        sa.Column("server", sa.Text(), nullable=False),
        *_big("position", "login"),
        *_text("symbol"),
        *_int("action", "reason", "digits", "digits_currency"),
        sa.Column("time_create", sa.DateTime(timezone=True), nullable=False),
        sa.Column("time_update", sa.DateTime(timezone=True), nullable=False),
        *_big("time_create_msc", "time_update_msc"),
        *_money("contract_size", "price_open", "price_current", "price_sl", "price_tp"),
        *_big("volume", "volume_ext"),
        *_money("profit", "storage", "rate_profit", "rate_margin"),
        *_big("dealer", "expert_id"),
        *_text("external_id", "comment"),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        *_stamps(),
        sa.PrimaryKeyConstraint("server", "position", name="pk_positions"),
    )
    op.create_index("ix_positions_server_login", "positions", ["server", "login"])
    op.create_table(
        "history_orders",
        sa.Column("server", sa.Text(), nullable=False),
        *_big("order_ticket", "login"),
        *_text("symbol"),
        *_int("type", "state", "reason", "type_fill", "type_time", "digits", "digits_currency"),
        sa.Column("time_setup", sa.DateTime(timezone=True), nullable=False),
        sa.Column("time_done", sa.DateTime(timezone=True), nullable=True),
        *_big("time_setup_msc", "time_done_msc", "time_expiration"),
        *_money("price_order", "price_trigger", "price_sl", "price_tp"),
        *_big("volume_initial", "volume_initial_ext", "volume_current", "volume_current_ext"),
        *_big("position_id", "position_by_id", "dealer", "expert_id"),
        *_text("external_id", "comment"),
        *_stamps(),
        sa.PrimaryKeyConstraint("server", "order_ticket", name="pk_history_orders"),
    )
    op.create_index(
        "ix_history_orders_server_time_setup", "history_orders", ["server", "time_setup"]
    )
    op.create_table(
        "account_states",
        sa.Column("server", sa.Text(), nullable=False),
        sa.Column("login", sa.BigInteger(), nullable=False),
        sa.Column("currency_digits", sa.Integer(), nullable=False),
        *_money(*ACCOUNT_MONEY),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        *_stamps(),
        sa.PrimaryKeyConstraint("server", "login", name="pk_account_states"),
    )
    op.create_table(
        "account_state_history",
        sa.Column("server", sa.Text(), nullable=False),
        sa.Column("login", sa.BigInteger(), nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("currency_digits", sa.Integer(), nullable=False),
        *_money(*ACCOUNT_MONEY),
        sa.PrimaryKeyConstraint("server", "login", "taken_at", name="pk_account_state_history"),
        postgresql_partition_by="RANGE (taken_at)",
    )
    # Where the other reads stand, beside the deals' watermark.
    op.add_column(
        "ingestion_state",
        sa.Column("orders_watermark", sa.DateTime(timezone=True), nullable=True),
    )
    op.add_column(
        "ingestion_state", sa.Column("positions_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "ingestion_state", sa.Column("accounts_at", sa.DateTime(timezone=True), nullable=True)
    )
    role = op.get_context().config.attributes.get("app_role", "brokerflow_app")
    op.execute(
        """
        CREATE FUNCTION create_account_states_month(month date) RETURNS void
        LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
        DECLARE
            first date := date_trunc('month', month)::date;
            name text := format('account_state_history_%s', to_char(first, 'YYYY_MM'));
        BEGIN
            PERFORM pg_advisory_xact_lock(hashtext('create_account_states_month'));
            IF to_regclass(name) IS NULL THEN
                EXECUTE format(
                    'CREATE TABLE %I PARTITION OF account_state_history'
                    ' FOR VALUES FROM (%L) TO (%L)',
                    name, first::timestamptz, (first + interval '1 month')::timestamptz
                );
            END IF;
        END $$
        """
    )
    op.execute("REVOKE ALL ON FUNCTION create_account_states_month(date) FROM PUBLIC")
    op.execute(f'GRANT EXECUTE ON FUNCTION create_account_states_month(date) TO "{role}"')
    # A closed position leaves the snapshot (deleted); history is append-only for the app.
    op.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON positions TO "{role}"')
    op.execute(f'GRANT SELECT, INSERT, UPDATE ON history_orders TO "{role}"')
    op.execute(f'GRANT SELECT, INSERT, UPDATE ON account_states TO "{role}"')
    op.execute(f'GRANT SELECT, INSERT ON account_state_history TO "{role}"')


def downgrade() -> None:
    op.execute("DROP FUNCTION create_account_states_month(date)")
    op.drop_column("ingestion_state", "accounts_at")
    op.drop_column("ingestion_state", "positions_at")
    op.drop_column("ingestion_state", "orders_watermark")
    op.drop_table("account_state_history")
    op.drop_table("account_states")
    op.drop_index("ix_history_orders_server_time_setup", table_name="history_orders")
    op.drop_table("history_orders")
    op.drop_index("ix_positions_server_login", table_name="positions")
    op.drop_table("positions")
