"""MT5 symbols (path, spread, calculation mode) and open orders, ingested (issues 14, 15)

Revision ID: 0027_trade_symbols
Revises: 0026_ib_attribution
Create Date: 2026-12-07 00:00:00

Beside positions and history orders (0022), each server's
* symbols: the symbol configuration (`symbol/next`), keyed by (server, symbol), the numbers as
  MT5 wrote them (numeric from its strings; the per-order-type margin rates as numeric arrays)
  and the whole record in `raw`; a symbol gone from a complete listing is deleted;
* open orders: a current snapshot of the pending orders keyed by (server, order ticket), like
  positions; an order missing from a complete snapshot (filled, cancelled, expired) is deleted.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0027_trade_symbols"
down_revision = "0026_ib_attribution"
branch_labels = None
depends_on = None

NOW = sa.text("now()")


def _columns(  # type: ignore[type-arg]
    kind: sa.types.TypeEngine, *names: str, nullable: bool = False
) -> list[sa.Column]:
    return [sa.Column(name, kind, nullable=nullable) for name in names]


def _stamps() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "symbols",
        *_columns(sa.Text(), "server", "symbol", "path"),
        *_columns(sa.Integer(), "calc_mode", "digits", "spread"),
        *_columns(sa.Integer(), "trade_mode", "spread_balance", "spread_diff", nullable=True),
        *_columns(sa.Numeric(), "contract_size", "point"),
        *_columns(sa.Text(), "currency_base", "currency_profit", "currency_margin"),
        *_columns(
            sa.Numeric(),
            "margin_initial",
            "margin_maintenance",
            "margin_hedged",
            "margin_rate_liquidity",
            "margin_rate_currency",
            "tick_size",
            "tick_value",
            nullable=True,
        ),
        *_columns(
            postgresql.ARRAY(sa.Numeric()),
            "margin_rate_initial",
            "margin_rate_maintenance",
            nullable=True,
        ),
        sa.Column("margin_flags", sa.BigInteger(), nullable=True),
        sa.Column("raw", postgresql.JSONB(), nullable=False),
        *_stamps(),
        sa.PrimaryKeyConstraint("server", "symbol", name="pk_symbols"),
    )
    op.create_table(
        "open_orders",
        *_columns(sa.Text(), "server"),
        *_columns(sa.BigInteger(), "order_ticket", "login"),
        *_columns(sa.Text(), "symbol"),
        *_columns(sa.Integer(), "type", "state", "reason", "type_fill", "type_time"),
        *_columns(sa.Integer(), "digits", "digits_currency"),
        *_columns(sa.BigInteger(), "time_setup_msc", "time_expiration"),
        sa.Column("time_setup", sa.DateTime(timezone=True), nullable=False),
        *_columns(sa.Numeric(), "price_order", "price_trigger", "price_sl", "price_tp"),
        # Not in every build's order record (the simulator's has neither): NULL when absent.
        *_columns(sa.Numeric(), "price_current", "contract_size", nullable=True),
        *_columns(sa.BigInteger(), "volume_initial", "volume_initial_ext"),
        *_columns(sa.BigInteger(), "volume_current", "volume_current_ext"),
        *_columns(sa.BigInteger(), "position_id", "position_by_id", "dealer", "expert_id"),
        *_columns(sa.Text(), "external_id", "comment"),
        *_stamps(),
        sa.PrimaryKeyConstraint("server", "order_ticket", name="pk_open_orders"),
    )
    op.create_index("ix_open_orders_server_login", "open_orders", ["server", "login"])
    op.add_column(
        "ingestion_state", sa.Column("symbols_at", sa.DateTime(timezone=True), nullable=True)
    )
    role = op.get_context().config.attributes.get("app_role", "brokerflow_app")
    # Both are current states: a symbol removed from MT5, an order no longer open, is deleted.
    op.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON symbols TO "{role}"')
    op.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON open_orders TO "{role}"')


def downgrade() -> None:
    op.drop_column("ingestion_state", "symbols_at")
    op.drop_index("ix_open_orders_server_login", table_name="open_orders")
    op.drop_table("open_orders")
    op.drop_table("symbols")
