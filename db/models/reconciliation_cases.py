"""Break cases (one per break key and MT5 server while open), their comments, the adjusting
entries proposed on them, and each run's sign-off by finance (docs/reconciliation.md, "Break
cases"). Migrations `0033`, `0038`, `0039`."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
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
    # Who resolved it: the officer who explained it (0038), or who approved its entry (0039).
    resolved_by: Mapped[uuid.UUID | None]
    # The last reopening of the case once closed (0039); earlier closings are in its audit rows.
    reopened_at: Mapped[datetime | None]
    reopened_by: Mapped[uuid.UUID | None]
    reopen_reason: Mapped[str | None] = mapped_column(Text)


class ReconciliationCaseProposal(Base):
    """An adjusting entry proposed on a case (its `number`-th), and what became of it:
    `proposed` (waiting for a second finance officer, at most one per case), `approved`
    (posted as `entry_key`), `rejected` (withdrawn when by its proposer), `replaced` (by a later
    proposal) or `lapsed` (the case closed first). A decided proposal is final (a trigger);
    the approver is never the proposer (a check). Migration `0039`."""

    __tablename__ = "reconciliation_case_proposals"
    __table_args__ = (
        UniqueConstraint("case_id", "number", name="uq_reconciliation_case_proposals_case_id"),
        Index(
            "uq_reconciliation_case_proposals_waiting",
            "case_id",
            unique=True,
            postgresql_where=text("status = 'proposed'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("reconciliation_cases.id"))
    number: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    debit_account: Mapped[str] = mapped_column(Text)
    credit_account: Mapped[str] = mapped_column(Text)
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(Text)
    proposed_by: Mapped[uuid.UUID]
    proposed_at: Mapped[datetime]
    decided_by: Mapped[uuid.UUID | None]
    decided_at: Mapped[datetime | None]
    decision_note: Mapped[str | None] = mapped_column(Text)  # why rejected, or lapsed
    entry_key: Mapped[str | None] = mapped_column(Text)


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
