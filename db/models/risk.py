"""The risk desk (issue 15): each account's book as staff set it, the exposure series (one
point per MT5 server per run, bounded retention), the alert thresholds staff configure and the
alerts they raise (one open alert per threshold and server)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Identity,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, RecordModel


class AccountBook(Base):
    """Where an account's flow goes: `A` (routed), `B` (kept), `hybrid` (`a_share` routed) or
    `coverage` (the broker's own account at a liquidity provider). No row: `B`."""

    __tablename__ = "account_books"
    __table_args__ = (
        CheckConstraint(
            "book IN ('A', 'B', 'hybrid', 'coverage')"
            " AND (book = 'hybrid') = (a_share IS NOT NULL)"
            " AND (a_share IS NULL OR (a_share > 0 AND a_share < 1))",
            name="book",
        ),
    )

    server: Mapped[str] = mapped_column(String(64), primary_key=True)
    login: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    book: Mapped[str] = mapped_column(String(16))
    a_share: Mapped[Decimal | None] = mapped_column(Numeric(7, 6))
    set_by: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column()


class ExposurePointRow(Base):
    """One point of a server's exposure series: headline figures as columns (the chart and the
    alerts read them), every bucket in `figures` (`domain.exposure.alerts.summarise`)."""

    __tablename__ = "exposure_points"
    __table_args__ = (Index("ix_exposure_points_server_at", "server", "at"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    server: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column()
    currency: Mapped[str] = mapped_column(String(3))
    net_notional: Mapped[Decimal] = mapped_column(Numeric)
    gross_notional: Mapped[Decimal] = mapped_column(Numeric)
    pending_notional: Mapped[Decimal] = mapped_column(Numeric)
    house_net_notional: Mapped[Decimal] = mapped_column(Numeric)
    margin_utilisation: Mapped[Decimal | None] = mapped_column(Numeric)
    positions: Mapped[int] = mapped_column(Integer)
    orders: Mapped[int] = mapped_column(Integer)
    figures: Mapped[dict[str, Any]] = mapped_column(JSONB)


class RiskThreshold(RecordModel):
    """Raise an alert when `metric` of the `scope` bucket `key` goes above `raise_above`; clear
    it when it falls below `clear_below` (hysteresis). `server` None: every server."""

    __tablename__ = "risk_thresholds"
    __table_args__ = (CheckConstraint("clear_below <= raise_above", name="hysteresis"),)

    server: Mapped[str | None] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(128))
    metric: Mapped[str] = mapped_column(String(32))
    raise_above: Mapped[Decimal] = mapped_column(Numeric)
    clear_below: Mapped[Decimal] = mapped_column(Numeric)
    window_seconds: Mapped[int | None] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(default=True, server_default=text("true"))
    created_by: Mapped[str] = mapped_column(String(64))


class RiskAlert(RecordModel):
    """An alert of one threshold on one server. `status`: open -> acknowledged -> resolved
    (staff); `cleared_at`: the figure fell below the threshold's `clear_below` (the alert stays
    until staff resolve it). At most one unresolved alert per (threshold, server)."""

    __tablename__ = "risk_alerts"
    __table_args__ = (
        Index(
            "uq_risk_alerts_one_open",
            "threshold_id",
            "server",
            unique=True,
            postgresql_where=text("status <> 'resolved'"),
        ),
        Index("ix_risk_alerts_status", "status"),
    )

    threshold_id: Mapped[uuid.UUID] = mapped_column()
    server: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(128))
    metric: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="open", server_default="open")
    value: Mapped[Decimal] = mapped_column(Numeric)  # when raised
    last_value: Mapped[Decimal] = mapped_column(Numeric)
    peak_value: Mapped[Decimal] = mapped_column(Numeric)
    raise_above: Mapped[Decimal] = mapped_column(Numeric)
    raised_at: Mapped[datetime] = mapped_column()
    raised_count: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    cleared_at: Mapped[datetime | None] = mapped_column()
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))
    acknowledged_at: Mapped[datetime | None] = mapped_column()
    resolved_by: Mapped[str | None] = mapped_column(String(64))
    resolved_at: Mapped[datetime | None] = mapped_column()
    note: Mapped[str | None] = mapped_column(Text)
