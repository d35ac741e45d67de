"""Dealer-plugin revenue (docs/revenue.md): the dealer plugin's configuration as BrokerFlow
mirrors it (MT5's Web API does not expose it), each trade deal's revenue figures computed from
the ingested deals (`domain.revenue`), and how far each server's computation has got."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Boolean, Index, Integer, Numeric, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base


class DealerRuleRow(Base):
    """One rule of a server's mirrored dealer-plugin configuration; `position` orders the rules
    (the first whose masks match a deal's group and symbol applies)."""

    __tablename__ = "dealer_rules"

    server: Mapped[str] = mapped_column(String(64), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_mask: Mapped[str] = mapped_column(String(128))
    symbol_mask: Mapped[str] = mapped_column(String(64))
    markup_points: Mapped[int] = mapped_column(Integer)
    a_book: Mapped[bool] = mapped_column(Boolean)
    gateway: Mapped[str] = mapped_column(String(64))
    set_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column()


class DealRevenueRow(Base):
    """A trade deal's revenue figures (amounts in `currency`, the account's deposit currency or
    XXX when BrokerFlow does not know the login; points in the symbol's points; NULL: not
    computable from what the deal carries). `group_name` is the account's MT5 group when the
    deal was computed (NULL: not a BrokerFlow login)."""

    __tablename__ = "deal_revenue"
    __table_args__ = (
        Index("ix_deal_revenue_server_time", "server", "time"),
        Index("ix_deal_revenue_server_position", "server", "position_id"),
    )

    server: Mapped[str] = mapped_column(String(64), primary_key=True)
    deal: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    time: Mapped[datetime] = mapped_column()
    login: Mapped[int] = mapped_column(BigInteger)
    symbol: Mapped[str] = mapped_column(Text)
    group_name: Mapped[str | None] = mapped_column(String(128))
    currency: Mapped[str] = mapped_column(String(3))
    action: Mapped[int] = mapped_column(Integer)
    entry: Mapped[int] = mapped_column(Integer)
    order_ticket: Mapped[int] = mapped_column(BigInteger)
    order_type: Mapped[int | None] = mapped_column(Integer)
    position_id: Mapped[int] = mapped_column(BigInteger)
    gateway: Mapped[str] = mapped_column(Text)
    a_book: Mapped[bool] = mapped_column(Boolean)
    comparable: Mapped[bool] = mapped_column(Boolean)
    lots: Mapped[Decimal] = mapped_column(Numeric)
    spread_points: Mapped[Decimal | None] = mapped_column(Numeric)
    markup_points: Mapped[Decimal | None] = mapped_column(Numeric)
    slippage_points: Mapped[Decimal | None] = mapped_column(Numeric)
    gateway_slippage_points: Mapped[Decimal | None] = mapped_column(Numeric)
    spread_captured: Mapped[Decimal | None] = mapped_column(Numeric)
    markup: Mapped[Decimal | None] = mapped_column(Numeric)
    commission_revenue: Mapped[Decimal] = mapped_column(Numeric)
    fee_revenue: Mapped[Decimal] = mapped_column(Numeric)
    b_book_pnl: Mapped[Decimal] = mapped_column(Numeric)
    a_book_cost: Mapped[Decimal | None] = mapped_column(Numeric)
    computed_at: Mapped[datetime] = mapped_column()


class DealRevenueState(Base):
    """How far a server's deal revenue is computed: every trade deal up to (`through`,
    `through_deal`) in (UTC deal time, ticket) order; each run also reads the deals of the
    `OVERLAP` before it again (deals committed late, history orders ingested late)."""

    __tablename__ = "deal_revenue_state"

    server: Mapped[str] = mapped_column(String(64), primary_key=True)
    through: Mapped[datetime | None] = mapped_column()
    through_deal: Mapped[int] = mapped_column(BigInteger, server_default="0")
    computed_at: Mapped[datetime | None] = mapped_column()
    deals: Mapped[int] = mapped_column(BigInteger, server_default="0")
