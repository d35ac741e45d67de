"""Reconciliation runs, the MT5 and processor sides each run read (its snapshot), and the
breaks it found (docs/reconciliation.md). The ledger side is read from the postings."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base


class ReconciliationRun(Base):
    __tablename__ = "reconciliation_runs"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    server: Mapped[str] = mapped_column(Text)
    day: Mapped[date]
    period_start: Mapped[datetime]
    period_end: Mapped[datetime]
    window_seconds: Mapped[int] = mapped_column(Integer)
    match_window_seconds: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))  # loading, matched
    matched: Mapped[int | None] = mapped_column(BigInteger)
    breaks: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    finished_at: Mapped[datetime | None]
    # Why the account balances were not checked (0038), e.g. trade ingestion behind.
    balances_note: Mapped[str | None] = mapped_column(Text)
    # The report stored at the end of the run (and again at sign-off), document store keys.
    report_pdf_key: Mapped[str | None] = mapped_column(Text)
    report_csv_key: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_reconciliation_runs_server_day", "server", "day"),)


class ReconciliationMt5Deal(Base):
    """A balance deal as `deal/get_batch` gave it to the run, in the account's currency."""

    __tablename__ = "reconciliation_mt5_deals"

    run_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("reconciliation_runs.id", ondelete="CASCADE"), primary_key=True
    )
    deal: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    login: Mapped[int] = mapped_column(BigInteger)
    time: Mapped[datetime]
    action: Mapped[int] = mapped_column(Integer)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    comment: Mapped[str] = mapped_column(Text)


class ReconciliationPspRow(Base):
    """A settlement report row as `psp_adapter` read it for the run."""

    __tablename__ = "reconciliation_psp_rows"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    run_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("reconciliation_runs.id", ondelete="CASCADE"), index=True
    )
    provider: Mapped[str] = mapped_column(Text)
    provider_ref: Mapped[str] = mapped_column(Text)
    reference: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(32))
    day: Mapped[date]
    gross_minor: Mapped[int] = mapped_column(BigInteger)
    fee_minor: Mapped[int] = mapped_column(BigInteger)
    net_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))


class ReconciliationBreak(Base):
    __tablename__ = "reconciliation_breaks"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    run_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("reconciliation_runs.id", ondelete="CASCADE"), index=True
    )
    type: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(Text, index=True)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    reference: Mapped[str | None] = mapped_column(Text)
    deal: Mapped[int | None] = mapped_column(BigInteger)
    login: Mapped[int | None] = mapped_column(BigInteger)
    provider: Mapped[str | None] = mapped_column(Text)
    found_in: Mapped[str] = mapped_column(Text)
    missing_from: Mapped[str] = mapped_column(Text)
    expected_minor: Mapped[int | None] = mapped_column(BigInteger)
    actual_minor: Mapped[int | None] = mapped_column(BigInteger)
    expected_currency: Mapped[str | None] = mapped_column(String(3))
    detail: Mapped[str] = mapped_column(Text)


class ReconciliationBalance(Base):
    """An account of the run's server as of the period's end (0038): its MT5 balance then
    (the balance read, less every deal after the end) and what trading had changed by then,
    both in minor units of the account's currency."""

    __tablename__ = "reconciliation_balances"

    run_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("reconciliation_runs.id", ondelete="CASCADE"), primary_key=True
    )
    login: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    currency: Mapped[str] = mapped_column(String(3))
    mt5_minor: Mapped[int] = mapped_column(BigInteger)
    trading_minor: Mapped[int] = mapped_column(BigInteger)
    read_at: Mapped[datetime]


class ReconciliationWaiting(Base):
    """A payment BrokerFlow waited on its processor for when the run looked (0038)."""

    __tablename__ = "reconciliation_waiting"

    run_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("reconciliation_runs.id", ondelete="CASCADE"), primary_key=True
    )
    reference: Mapped[str] = mapped_column(Text, primary_key=True)
    provider: Mapped[str] = mapped_column(Text)
    direction: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(32))
    since: Mapped[datetime]
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
