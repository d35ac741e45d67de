"""Client profiling (issue 15): the latest profile of each account (metrics, classification,
explanation, suggested book) and the dealer's decisions on it (accept or override), each
moving the account to its book's MT5 group through a `BookMove` workflow."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Index, Integer, Numeric, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, RecordModel


class ClientProfileRow(Base):
    """One account's latest profile: written again by every profiling run (one row per
    account, so a retried run writes the same row)."""

    __tablename__ = "client_profiles"
    __table_args__ = (Index("ix_client_profiles_profile", "profile"),)

    server: Mapped[str] = mapped_column(String(64), primary_key=True)
    login: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    profile: Mapped[str] = mapped_column(String(32))
    suggested_book: Mapped[str] = mapped_column(String(16))
    suggested_a_share: Mapped[Decimal] = mapped_column(Numeric(7, 6))
    book_reason: Mapped[str] = mapped_column(Text)
    explanation: Mapped[str] = mapped_column(Text)
    # [{metric, value, comparison, threshold, met}]
    conditions: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    # `AccountMetrics` as JSON (Decimals as strings).
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONB)
    trades: Mapped[int] = mapped_column(Integer)
    net_profit: Mapped[Decimal] = mapped_column(Numeric)
    window_from: Mapped[datetime] = mapped_column()
    window_to: Mapped[datetime] = mapped_column()
    computed_at: Mapped[datetime] = mapped_column()


class BookDecision(RecordModel):
    """A dealer's decision on a profile: `accept` the suggested book or `override` it with
    another. `status`: moving -> applied | failed (MT5 refused: `failure_reason`)."""

    __tablename__ = "book_decisions"
    __table_args__ = (
        CheckConstraint(
            "book IN ('A', 'B', 'hybrid') AND (book = 'hybrid') = (a_share IS NOT NULL)",
            name="book",
        ),
        CheckConstraint("kind IN ('accept', 'override')", name="kind"),
        CheckConstraint("status IN ('moving', 'applied', 'failed')", name="status"),
        Index("ix_book_decisions_account", "server", "login"),
    )

    server: Mapped[str] = mapped_column(String(64))
    login: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(16))
    book: Mapped[str] = mapped_column(String(16))
    a_share: Mapped[Decimal | None] = mapped_column(Numeric(7, 6))
    target_group: Mapped[str] = mapped_column(String(128))
    # The profile the decision was taken on.
    profile: Mapped[str] = mapped_column(String(32))
    suggested_book: Mapped[str] = mapped_column(String(16))
    profile_computed_at: Mapped[datetime] = mapped_column()
    reason: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="moving", server_default="moving")
    decided_by: Mapped[uuid.UUID] = mapped_column()
    decided_by_roles: Mapped[list[str]] = mapped_column(JSONB)
    # The MT5 user before and after the move (`user/get`), and the book before.
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    failure_reason: Mapped[str | None] = mapped_column(Text)
    finished_at: Mapped[datetime | None] = mapped_column()
