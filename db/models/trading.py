"""Trades as MT5 booked them: deals ingested from each trade server, and each server's
ingestion progress. The deals table is partitioned by month of `time` (partitions are created on
demand by `db.trade_store`), and written only by `db.trade_store`'s bulk upsert."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Index, Integer, Numeric, PrimaryKeyConstraint, Text, func
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base


class DealRow(Base):
    """One MT5 deal, its fields as the server gives them (money and prices as exact decimals,
    volumes in MT5's integer units). The key holds `time` because a partitioned table's unique
    keys must hold the partition key; (server, deal) is unique all the same (see
    `db.trade_store.merge_deals`)."""

    __tablename__ = "deals"
    __table_args__ = (
        PrimaryKeyConstraint("server", "deal", "time", name="pk_deals"),
        # A server's day read by the reporting refresh without scanning the month's partition.
        Index("ix_deals_server_time", "server", "time"),
        {"postgresql_partition_by": "RANGE (time)"},
    )

    server: Mapped[str] = mapped_column(Text)
    deal: Mapped[int] = mapped_column(BigInteger)
    time: Mapped[datetime] = mapped_column()  # UTC, from TimeMsc
    time_server: Mapped[int] = mapped_column(BigInteger)  # `Time`: server-clock seconds
    time_msc: Mapped[int] = mapped_column(BigInteger)  # `TimeMsc`: server-clock milliseconds
    login: Mapped[int] = mapped_column(BigInteger)
    order_ticket: Mapped[int] = mapped_column(BigInteger)
    action: Mapped[int] = mapped_column(Integer)
    entry: Mapped[int] = mapped_column(Integer)
    reason: Mapped[int] = mapped_column(Integer)
    symbol: Mapped[str] = mapped_column(Text)
    digits: Mapped[int] = mapped_column(Integer)
    digits_currency: Mapped[int] = mapped_column(Integer)
    contract_size: Mapped[Decimal] = mapped_column(Numeric)
    price: Mapped[Decimal] = mapped_column(Numeric)
    price_position: Mapped[Decimal] = mapped_column(Numeric)
    volume: Mapped[int] = mapped_column(BigInteger)
    volume_ext: Mapped[int] = mapped_column(BigInteger)
    volume_closed: Mapped[int] = mapped_column(BigInteger)
    volume_closed_ext: Mapped[int] = mapped_column(BigInteger)
    profit: Mapped[Decimal] = mapped_column(Numeric)
    profit_raw: Mapped[Decimal] = mapped_column(Numeric)
    storage: Mapped[Decimal] = mapped_column(Numeric)
    commission: Mapped[Decimal] = mapped_column(Numeric)
    fee: Mapped[Decimal] = mapped_column(Numeric)
    rate_profit: Mapped[Decimal] = mapped_column(Numeric)
    rate_margin: Mapped[Decimal] = mapped_column(Numeric)
    market_bid: Mapped[Decimal] = mapped_column(Numeric)
    market_ask: Mapped[Decimal] = mapped_column(Numeric)
    # The LP's execution price of an A-book deal (docs/revenue.md); 0 on the B-book.
    price_gateway: Mapped[Decimal] = mapped_column(Numeric, server_default="0")
    position_id: Mapped[int] = mapped_column(BigInteger)
    position_by_id: Mapped[int] = mapped_column(BigInteger)
    dealer: Mapped[int] = mapped_column(BigInteger)
    expert_id: Mapped[int] = mapped_column(BigInteger)
    flags: Mapped[int] = mapped_column(BigInteger)
    external_id: Mapped[str] = mapped_column(Text)
    gateway: Mapped[str] = mapped_column(Text)
    comment: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    # Set when a re-read finds the deal changed (a dealer's correction), not on identical reads.
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class IngestionState(Base):
    """Where one server's live ingestion stands: what the console and the alerts read."""

    __tablename__ = "ingestion_state"

    server: Mapped[str] = mapped_column(Text, primary_key=True)
    # The newest deal time ingested (UTC); the next poll starts a little before it.
    watermark: Mapped[datetime | None] = mapped_column()
    lag_seconds: Mapped[Decimal | None] = mapped_column(Numeric)
    rows_per_second: Mapped[Decimal | None] = mapped_column(Numeric)
    deals_ingested: Mapped[int] = mapped_column(BigInteger, server_default="0")
    last_poll_at: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column()
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())
    # The other reads (0022): history orders by their own watermark (setup time), and when the
    # last complete snapshot of positions and of account states was taken.
    orders_watermark: Mapped[datetime | None] = mapped_column()
    positions_at: Mapped[datetime | None] = mapped_column()
    accounts_at: Mapped[datetime | None] = mapped_column()
    # When the symbols were last read whole (0027): they are read every few minutes.
    symbols_at: Mapped[datetime | None] = mapped_column()


class PositionRow(Base):
    """An open position as the server's last complete snapshot showed it; a position closed
    since is deleted by the next snapshot."""

    __tablename__ = "positions"
    __table_args__ = (
        PrimaryKeyConstraint("server", "position", name="pk_positions"),
        Index("ix_positions_server_login", "server", "login"),
    )

    server: Mapped[str] = mapped_column(Text)
    position: Mapped[int] = mapped_column(BigInteger)
    login: Mapped[int] = mapped_column(BigInteger)
    symbol: Mapped[str] = mapped_column(Text)
    action: Mapped[int] = mapped_column(Integer)
    reason: Mapped[int] = mapped_column(Integer)
    digits: Mapped[int] = mapped_column(Integer)
    digits_currency: Mapped[int] = mapped_column(Integer)
    time_create: Mapped[datetime] = mapped_column()
    time_update: Mapped[datetime] = mapped_column()
    time_create_msc: Mapped[int] = mapped_column(BigInteger)
    time_update_msc: Mapped[int] = mapped_column(BigInteger)
    contract_size: Mapped[Decimal] = mapped_column(Numeric)
    price_open: Mapped[Decimal] = mapped_column(Numeric)
    price_current: Mapped[Decimal] = mapped_column(Numeric)
    price_sl: Mapped[Decimal] = mapped_column(Numeric)
    price_tp: Mapped[Decimal] = mapped_column(Numeric)
    volume: Mapped[int] = mapped_column(BigInteger)
    volume_ext: Mapped[int] = mapped_column(BigInteger)
    profit: Mapped[Decimal] = mapped_column(Numeric)
    storage: Mapped[Decimal] = mapped_column(Numeric)
    rate_profit: Mapped[Decimal] = mapped_column(Numeric)
    rate_margin: Mapped[Decimal] = mapped_column(Numeric)
    dealer: Mapped[int] = mapped_column(BigInteger)
    expert_id: Mapped[int] = mapped_column(BigInteger)
    external_id: Mapped[str] = mapped_column(Text)
    comment: Mapped[str] = mapped_column(Text)
    # The snapshot that found it as it is now (a snapshot finding it unchanged leaves it).
    seen_at: Mapped[datetime] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class HistoryOrderRow(Base):
    """A history order (filled, cancelled, expired...), upserted by ticket."""

    __tablename__ = "history_orders"
    __table_args__ = (
        PrimaryKeyConstraint("server", "order_ticket", name="pk_history_orders"),
        Index("ix_history_orders_server_time_setup", "server", "time_setup"),
    )

    server: Mapped[str] = mapped_column(Text)
    order_ticket: Mapped[int] = mapped_column(BigInteger)
    login: Mapped[int] = mapped_column(BigInteger)
    symbol: Mapped[str] = mapped_column(Text)
    type: Mapped[int] = mapped_column(Integer)
    state: Mapped[int] = mapped_column(Integer)
    reason: Mapped[int] = mapped_column(Integer)
    type_fill: Mapped[int] = mapped_column(Integer)
    type_time: Mapped[int] = mapped_column(Integer)
    digits: Mapped[int] = mapped_column(Integer)
    digits_currency: Mapped[int] = mapped_column(Integer)
    time_setup: Mapped[datetime] = mapped_column()
    time_done: Mapped[datetime | None] = mapped_column()
    time_setup_msc: Mapped[int] = mapped_column(BigInteger)
    time_done_msc: Mapped[int] = mapped_column(BigInteger)
    time_expiration: Mapped[int] = mapped_column(BigInteger)
    price_order: Mapped[Decimal] = mapped_column(Numeric)
    price_trigger: Mapped[Decimal] = mapped_column(Numeric)
    price_sl: Mapped[Decimal] = mapped_column(Numeric)
    price_tp: Mapped[Decimal] = mapped_column(Numeric)
    volume_initial: Mapped[int] = mapped_column(BigInteger)
    volume_initial_ext: Mapped[int] = mapped_column(BigInteger)
    volume_current: Mapped[int] = mapped_column(BigInteger)
    volume_current_ext: Mapped[int] = mapped_column(BigInteger)
    position_id: Mapped[int] = mapped_column(BigInteger)
    position_by_id: Mapped[int] = mapped_column(BigInteger)
    dealer: Mapped[int] = mapped_column(BigInteger)
    expert_id: Mapped[int] = mapped_column(BigInteger)
    external_id: Mapped[str] = mapped_column(Text)
    comment: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class AccountStateRow(Base):
    """An account's trade state as last read (`user/account/get_batch`)."""

    __tablename__ = "account_states"
    __table_args__ = (PrimaryKeyConstraint("server", "login", name="pk_account_states"),)

    server: Mapped[str] = mapped_column(Text)
    login: Mapped[int] = mapped_column(BigInteger)
    currency_digits: Mapped[int] = mapped_column(Integer)
    balance: Mapped[Decimal] = mapped_column(Numeric)
    credit: Mapped[Decimal] = mapped_column(Numeric)
    equity: Mapped[Decimal] = mapped_column(Numeric)
    margin: Mapped[Decimal] = mapped_column(Numeric)
    margin_free: Mapped[Decimal] = mapped_column(Numeric)
    margin_level: Mapped[Decimal] = mapped_column(Numeric)
    profit: Mapped[Decimal] = mapped_column(Numeric)
    storage: Mapped[Decimal] = mapped_column(Numeric)
    floating: Mapped[Decimal] = mapped_column(Numeric)
    taken_at: Mapped[datetime] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class AccountStateHistoryRow(Base):
    """An account's trade state each time a read found it changed (partitioned by month)."""

    __tablename__ = "account_state_history"
    __table_args__ = (
        PrimaryKeyConstraint("server", "login", "taken_at", name="pk_account_state_history"),
        {"postgresql_partition_by": "RANGE (taken_at)"},
    )

    server: Mapped[str] = mapped_column(Text)
    login: Mapped[int] = mapped_column(BigInteger)
    taken_at: Mapped[datetime] = mapped_column()
    currency_digits: Mapped[int] = mapped_column(Integer)
    balance: Mapped[Decimal] = mapped_column(Numeric)
    credit: Mapped[Decimal] = mapped_column(Numeric)
    equity: Mapped[Decimal] = mapped_column(Numeric)
    margin: Mapped[Decimal] = mapped_column(Numeric)
    margin_free: Mapped[Decimal] = mapped_column(Numeric)
    margin_level: Mapped[Decimal] = mapped_column(Numeric)
    profit: Mapped[Decimal] = mapped_column(Numeric)
    storage: Mapped[Decimal] = mapped_column(Numeric)
    floating: Mapped[Decimal] = mapped_column(Numeric)


class SymbolRow(Base):
    """A symbol's configuration as the server's last complete listing showed it (`symbol/next`),
    numbers as MT5 wrote them. Optional fields are NULL when the server did not give them;
    `raw` is the whole record (every other field, e.g. swaps, sessions, volume limits)."""

    __tablename__ = "symbols"
    __table_args__ = (PrimaryKeyConstraint("server", "symbol", name="pk_symbols"),)

    server: Mapped[str] = mapped_column(Text)
    symbol: Mapped[str] = mapped_column(Text)
    path: Mapped[str] = mapped_column(Text)
    calc_mode: Mapped[int] = mapped_column(Integer)  # reference 4.7 (0 Forex, 2 CFD...)
    digits: Mapped[int] = mapped_column(Integer)
    spread: Mapped[int] = mapped_column(Integer)  # points; 0: floating
    trade_mode: Mapped[int | None] = mapped_column(Integer)
    spread_balance: Mapped[int | None] = mapped_column(Integer)
    spread_diff: Mapped[int | None] = mapped_column(Integer)
    contract_size: Mapped[Decimal] = mapped_column(Numeric)
    point: Mapped[Decimal] = mapped_column(Numeric)  # `Point`, or 10^-Digits when not given
    currency_base: Mapped[str] = mapped_column(Text)
    currency_profit: Mapped[str] = mapped_column(Text)
    currency_margin: Mapped[str] = mapped_column(Text)
    margin_initial: Mapped[Decimal | None] = mapped_column(Numeric)
    margin_maintenance: Mapped[Decimal | None] = mapped_column(Numeric)
    margin_hedged: Mapped[Decimal | None] = mapped_column(Numeric)
    margin_rate_liquidity: Mapped[Decimal | None] = mapped_column(Numeric)
    margin_rate_currency: Mapped[Decimal | None] = mapped_column(Numeric)
    tick_size: Mapped[Decimal | None] = mapped_column(Numeric)
    tick_value: Mapped[Decimal | None] = mapped_column(Numeric)
    # Per order type (index 0 buy, 1 sell, 2-7 the pending types, reference 4.4); a server
    # that gives one number gives it for every type: a one-element array.
    margin_rate_initial: Mapped[list[Decimal] | None] = mapped_column(ARRAY(Numeric))
    margin_rate_maintenance: Mapped[list[Decimal] | None] = mapped_column(ARRAY(Numeric))
    margin_flags: Mapped[int | None] = mapped_column(BigInteger)
    raw: Mapped[dict[str, Any]] = mapped_column(JSONB)
    # The listing that found it as it is now (one finding it unchanged leaves it).
    seen_at: Mapped[datetime] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class OpenOrderRow(Base):
    """A pending order open at the server's last complete snapshot (`order/get_batch`); one
    filled, cancelled or expired since is deleted by the next snapshot (its history order is
    in `history_orders`)."""

    __tablename__ = "open_orders"
    __table_args__ = (
        PrimaryKeyConstraint("server", "order_ticket", name="pk_open_orders"),
        Index("ix_open_orders_server_login", "server", "login"),
    )

    server: Mapped[str] = mapped_column(Text)
    order_ticket: Mapped[int] = mapped_column(BigInteger)
    login: Mapped[int] = mapped_column(BigInteger)
    symbol: Mapped[str] = mapped_column(Text)
    type: Mapped[int] = mapped_column(Integer)
    state: Mapped[int] = mapped_column(Integer)
    reason: Mapped[int] = mapped_column(Integer)
    type_fill: Mapped[int] = mapped_column(Integer)
    type_time: Mapped[int] = mapped_column(Integer)
    digits: Mapped[int] = mapped_column(Integer)
    digits_currency: Mapped[int] = mapped_column(Integer)
    time_setup: Mapped[datetime] = mapped_column()
    time_setup_msc: Mapped[int] = mapped_column(BigInteger)
    time_expiration: Mapped[int] = mapped_column(BigInteger)  # server-clock seconds, 0: none
    price_order: Mapped[Decimal] = mapped_column(Numeric)
    price_trigger: Mapped[Decimal] = mapped_column(Numeric)
    price_sl: Mapped[Decimal] = mapped_column(Numeric)
    price_tp: Mapped[Decimal] = mapped_column(Numeric)
    price_current: Mapped[Decimal | None] = mapped_column(Numeric)
    contract_size: Mapped[Decimal | None] = mapped_column(Numeric)
    volume_initial: Mapped[int] = mapped_column(BigInteger)
    volume_initial_ext: Mapped[int] = mapped_column(BigInteger)
    volume_current: Mapped[int] = mapped_column(BigInteger)
    volume_current_ext: Mapped[int] = mapped_column(BigInteger)
    position_id: Mapped[int] = mapped_column(BigInteger)
    position_by_id: Mapped[int] = mapped_column(BigInteger)
    dealer: Mapped[int] = mapped_column(BigInteger)
    expert_id: Mapped[int] = mapped_column(BigInteger)
    external_id: Mapped[str] = mapped_column(Text)
    comment: Mapped[str] = mapped_column(Text)
    seen_at: Mapped[datetime] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())
