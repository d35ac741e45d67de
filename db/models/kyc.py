"""Knowing the client: questionnaire answers, identity documents, sanctions lists and hits,
KYC cases with their decisions, and later changes to live MT5 accounts.

A case's state is driven by its Temporal workflow; these rows mirror it for the console and
the API, and each change is written in the same transaction as its audit entry.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Date,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, RecordModel


class QuestionnaireResponse(RecordModel):
    """One filled-in appropriateness questionnaire; the newest one counts."""

    __tablename__ = "questionnaire_responses"

    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clients.id"), index=True)
    version: Mapped[str] = mapped_column(String(16))
    answers: Mapped[dict[str, Any]] = mapped_column(JSONB)
    score: Mapped[int] = mapped_column(Integer)
    max_score: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(32))
    leverage_cap: Mapped[int | None] = mapped_column(Integer)
    category: Mapped[str] = mapped_column(String(16))
    requested_professional: Mapped[bool] = mapped_column(default=False)
    source_of_funds: Mapped[str] = mapped_column(String(32))


class ClientDocument(RecordModel):
    """An identity or address document; the file itself is encrypted in the document store."""

    __tablename__ = "client_documents"
    __table_args__ = (UniqueConstraint("client_id", "sha256"),)

    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clients.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="uploaded")
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    pages: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(200), unique=True)
    issued_on: Mapped[date | None] = mapped_column(Date)
    expires_on: Mapped[date | None] = mapped_column(Date)
    # When the document stops proving anything: its expiry, or a proof of address's age limit.
    valid_until: Mapped[date] = mapped_column(Date, index=True)


class ScreeningList(Base):
    """One loaded version of a sanctions or PEP list; the newest active one per source counts."""

    __tablename__ = "screening_lists"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    source: Mapped[str] = mapped_column(String(16), index=True)
    published_at: Mapped[datetime | None]
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    party_count: Mapped[int] = mapped_column(Integer)
    loaded_at: Mapped[datetime] = mapped_column(server_default=func.now())
    active: Mapped[bool] = mapped_column(default=False)


class ScreeningParty(Base):
    """A listed person or entity, as `domain.screening.ListedParty` JSON."""

    __tablename__ = "screening_parties"

    list_id: Mapped[int] = mapped_column(
        ForeignKey("screening_lists.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    primary_name: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)


class KycCase(RecordModel):
    __tablename__ = "kyc_cases"
    __table_args__ = (
        # A client has at most one case open at a time.
        Index(
            "uq_kyc_cases_open_per_client",
            "client_id",
            unique=True,
            postgresql_where=text("status NOT IN ('approved', 'rejected')"),
        ),
    )

    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clients.id"), index=True)
    reason: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32), index=True)
    workflow_id: Mapped[str] = mapped_column(String(200), unique=True)
    # Live account asked for at application; provisioning starts on approval.
    account_type: Mapped[str] = mapped_column(String(32))
    mt5_server: Mapped[str] = mapped_column(String(64))
    requires_four_eyes: Mapped[bool] = mapped_column(default=False)
    review_round: Mapped[int] = mapped_column(Integer, default=1)
    risk_score: Mapped[int | None] = mapped_column(Integer)
    risk_level: Mapped[str | None] = mapped_column(String(16))
    risk_factors: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    # When the case (or the client, for INFO_REQUESTED) started waiting, and when it is due.
    waiting_since: Mapped[datetime | None]
    due_at: Mapped[datetime | None] = mapped_column(index=True)
    escalated_at: Mapped[datetime | None]
    reminders_sent: Mapped[int] = mapped_column(Integer, default=0)
    info_needed: Mapped[str | None] = mapped_column(Text)
    client_note: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[datetime | None]
    decision_reason: Mapped[str | None] = mapped_column(Text)
    # Enhanced due diligence an officer recorded to approve a confirmed PEP (source of wealth,
    # source of funds, the public function, the purpose of the relationship).
    enhanced_due_diligence: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class KycDecision(Base):
    """Every officer action on a case: evidence, written once."""

    __tablename__ = "kyc_decisions"
    __table_args__ = (
        # Four-eyes, enforced a second time by the database: one approval per officer per round.
        Index(
            "uq_kyc_decisions_one_approval_per_officer",
            "case_id",
            "review_round",
            "officer_id",
            unique=True,
            postgresql_where=text("action = 'approve'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("kyc_cases.id"), index=True)
    review_round: Mapped[int] = mapped_column(Integer)
    officer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff_users.id"))
    action: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text)
    info_needed: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())


class ScreeningHit(RecordModel):
    """A potential match of a client against a listed party, with the evidence of its score."""

    __tablename__ = "screening_hits"
    __table_args__ = (UniqueConstraint("case_id", "source", "party_key"),)

    case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("kyc_cases.id"), index=True)
    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clients.id"), index=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("screening_lists.id"))
    source: Mapped[str] = mapped_column(String(16))
    party_key: Mapped[str] = mapped_column(String(64))
    listed_name: Mapped[str] = mapped_column(Text)
    primary_name: Mapped[str] = mapped_column(Text)
    score: Mapped[int] = mapped_column(Integer)
    name_score: Mapped[int] = mapped_column(Integer)
    is_pep: Mapped[bool] = mapped_column(default=False)
    factors: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="open")


class AccountChange(RecordModel):
    """A requested change to a live MT5 account, driven by its account-change workflow."""

    __tablename__ = "account_changes"
    __table_args__ = (UniqueConstraint("mt5_account_id", "idempotency_key"),)

    mt5_account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("mt5_accounts.id"), index=True)
    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clients.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32), index=True)
    requested: Mapped[dict[str, Any]] = mapped_column(JSONB)
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    requested_by_kind: Mapped[str] = mapped_column(String(16))
    requested_by_id: Mapped[uuid.UUID] = mapped_column()
    idempotency_key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    workflow_id: Mapped[str] = mapped_column(String(200), unique=True)
    reason: Mapped[str | None] = mapped_column(Text)
    decided_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_users.id"))
    decided_at: Mapped[datetime | None]
    failure_reason: Mapped[str | None] = mapped_column(Text)
