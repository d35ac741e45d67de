"""Reporting aggregates (docs/reporting.md): trade deals summed per server, UTC day, login and
symbol, replaced a day at a time from `deals` by the `Analytics` step, and how far each
server's aggregates are complete. Amounts are in the account's currency, signed as MT5 gives
them (from the client's side: a commission charged is negative)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Date, Index, Integer, Numeric, PrimaryKeyConstraint, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base


class AnalyticsDaily(Base):
    __tablename__ = "analytics_daily"
    __table_args__ = (
        PrimaryKeyConstraint("server", "day", "login", "symbol", name="pk_analytics_daily"),
        Index("ix_analytics_daily_day", "day"),
        Index("ix_analytics_daily_login", "server", "login"),
    )

    server: Mapped[str] = mapped_column(String(64))
    day: Mapped[date] = mapped_column(Date)  # UTC day of the deal's `time`
    login: Mapped[int] = mapped_column(BigInteger)
    symbol: Mapped[str] = mapped_column(Text)
    # The account's currency (`mt5_accounts`), `XXX` for a login BrokerFlow did not open.
    currency: Mapped[str] = mapped_column(String(3))
    deals: Mapped[int] = mapped_column(Integer)  # buy and sell deals
    volume_lots: Mapped[Decimal] = mapped_column(Numeric)
    volume_units: Mapped[Decimal] = mapped_column(Numeric)  # lots x the deal's contract size
    commission: Mapped[Decimal] = mapped_column(Numeric)  # incl. commission deals (7, 8, 9)
    swap: Mapped[Decimal] = mapped_column(Numeric)  # `Storage`
    fee: Mapped[Decimal] = mapped_column(Numeric)
    client_pnl: Mapped[Decimal] = mapped_column(Numeric)  # `Profit` of buy and sell deals


class AnalyticsState(Base):
    __tablename__ = "analytics_state"

    server: Mapped[str] = mapped_column(String(64), primary_key=True)
    # The newest deal time aggregated; the next run recomputes from this time's day on.
    through: Mapped[datetime | None] = mapped_column()
    refreshed_at: Mapped[datetime] = mapped_column()
    days_refreshed: Mapped[int] = mapped_column(Integer, server_default="0")
