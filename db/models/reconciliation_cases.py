"""Break cases (one per break key and MT5 server while open), their comments, and each run's
sign-off by finance (docs/reconciliation.md, "Break cases"). Migration `0033`."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, String, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, RecordModel


class ReconciliationCase(RecordModel):
    __tablename__ = "reconciliation_cases"
    __table_args__ = (
        # One open case per break key and server: a later run's same break updates it.
        Index(
            "uq_reconciliation_cases_open_key",
            "server",
            "key",
            unique=True,
            postgresql_where=text("status IN ('open', 'proposed')"),
        ),
        Index("ix_reconciliation_cases_status", "status"),
        Index("ix_reconciliation_cases_last_run_id", "last_run_id"),
    )

    server: Mapped[str] = mapped_column(Text)
    key: Mapped[str] = mapped_column(Text)
    type: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))  # open, proposed, resolved, auto_closed
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    reference: Mapped[str | None] = mapped_column(Text)
    login: Mapped[int | None] = mapped_column(BigInteger)
    deal: Mapped[int | None] = mapped_column(BigInteger)
    provider: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[str] = mapped_column(Text)
    first_run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("reconciliation_runs.id"))
    last_run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("reconciliation_runs.id"))
    first_day: Mapped[date]
    last_day: Mapped[date]
    alerted: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    assignee_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_users.id"))
    closed_at: Mapped[datetime | None]
    resolution: Mapped[str | None] = mapped_column(Text)
    adj_debit_account: Mapped[str | None] = mapped_column(Text)
    adj_credit_account: Mapped[str | None] = mapped_column(Text)
    adj_amount_minor: Mapped[int | None] = mapped_column(BigInteger)
    adj_currency: Mapped[str | None] = mapped_column(String(3))
    adj_reason: Mapped[str | None] = mapped_column(Text)
    adj_proposed_by: Mapped[uuid.UUID | None]
    adj_proposed_at: Mapped[datetime | None]
    adj_approved_by: Mapped[uuid.UUID | None]
    adj_entry_key: Mapped[str | None] = mapped_column(Text)
    # Resolved without an adjusting entry (explained, nothing to book): by whom (0038).
    resolved_by: Mapped[uuid.UUID | None]


class ReconciliationCaseComment(Base):
    __tablename__ = "reconciliation_case_comments"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("reconciliation_cases.id"), index=True)
    staff_id: Mapped[uuid.UUID]
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class ReconciliationSignoff(Base):
    __tablename__ = "reconciliation_signoffs"

    run_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("reconciliation_runs.id"), primary_key=True
    )
    staff_id: Mapped[uuid.UUID]
    note: Mapped[str] = mapped_column(Text)
    signed_at: Mapped[datetime] = mapped_column(server_default=func.now())
