"""Trades as MT5 booked them: deals ingested from each trade server, and each server's
ingestion progress. The deals table is partitioned by month of `time` (partitions are created on
demand by `db.trade_store`), and written only by `db.trade_store`'s bulk upsert."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Integer, Numeric, PrimaryKeyConstraint, Text, func
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
