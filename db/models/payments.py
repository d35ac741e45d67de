"""Payments (deposits and withdrawals through a processor), internal transfers, and what comes
with them: processor webhooks, approvals, FX rates and client notifications.

Amounts are integer minor units beside their currency. The books themselves are the ledger
(`db/models/ledger.py`); these rows say what was asked, by whom, and where each request stands.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from db.base import Base, RecordModel


class ClientRequest(RecordModel):
    """What every client money request shares: its owner, the idempotency key it came with and
    a fingerprint of its body (the same key with another body is refused), and its workflow."""

    __abstract__ = True

    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clients.id"), index=True)
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    status: Mapped[str] = mapped_column(String(32), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    idempotency_key: Mapped[str] = mapped_column(String(200))
    request_hash: Mapped[str] = mapped_column(String(64))
    workflow_id: Mapped[str] = mapped_column(String(200))
    failure_reason: Mapped[str | None] = mapped_column(Text)


class Payment(ClientRequest):
    __tablename__ = "payments"
    __table_args__ = (UniqueConstraint("client_id", "idempotency_key"),)

    direction: Mapped[str] = mapped_column(String(16))
    provider: Mapped[str] = mapped_column(String(32))
    # What the client announced; `amount_minor` is what the processor actually collected.
    requested_minor: Mapped[int] = mapped_column(BigInteger)
    compliance_status: Mapped[str] = mapped_column(String(16), default="not_checked")
    risk_flags: Mapped[list[str]] = mapped_column(ARRAY(String(32)), default=list)
    # The client's side: a wallet (currency) or an MT5 account.
    mt5_server: Mapped[str | None] = mapped_column(String(64))
    mt5_login: Mapped[int | None] = mapped_column(BigInteger)
    mt5_ticket: Mapped[int | None] = mapped_column(BigInteger)
    # The processor's side: its payment/payout id, the hosted page or the transfer reference.
    provider_ref: Mapped[str | None] = mapped_column(String(64), index=True)
    transfer_reference: Mapped[str | None] = mapped_column(String(64), index=True)
    redirect_url: Mapped[str | None] = mapped_column(Text)
    payer_name: Mapped[str | None] = mapped_column(String(200))
    beneficiary_name: Mapped[str | None] = mapped_column(String(200))
    beneficiary_account: Mapped[str | None] = mapped_column(String(64))
    completed_at: Mapped[datetime | None]


class Transfer(ClientRequest):
    """Between a client's own wallet and MT5 accounts, converted when the currencies differ.
    `currency`/`amount_minor` are the source side."""

    __tablename__ = "transfers"
    __table_args__ = (UniqueConstraint("client_id", "idempotency_key"),)

    source_server: Mapped[str | None] = mapped_column(String(64))
    source_login: Mapped[int | None] = mapped_column(BigInteger)
    destination_currency: Mapped[str] = mapped_column(String(3))
    destination_server: Mapped[str | None] = mapped_column(String(64))
    destination_login: Mapped[int | None] = mapped_column(BigInteger)
    credited_minor: Mapped[int | None] = mapped_column(BigInteger)
    completed_at: Mapped[datetime | None]


class PaymentDecision(Base):
    """A compliance officer's decision on a held deposit, or a finance officer's on a withdrawal."""

    __tablename__ = "payment_decisions"
    __table_args__ = (UniqueConstraint("payment_id", "staff_id", "role"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    payment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("payments.id"), index=True)
    staff_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff_users.id"))
    role: Mapped[str] = mapped_column(String(32))
    approve: Mapped[bool]
    reason: Mapped[str] = mapped_column(Text)
    decided_at: Mapped[datetime] = mapped_column(server_default=func.now())


class WebhookEvent(Base):
    """Every webhook that reached BrokerFlow, kept whatever became of it (duplicates and forged
    ones too): processors' claims are evidence. `event_id` is unique per processor, so a replay
    is recognised and acted upon once."""

    __tablename__ = "webhook_events"
    __table_args__ = (UniqueConstraint("provider", "event_id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    provider: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[str | None] = mapped_column(String(128))
    kind: Mapped[str | None] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    payment_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("payments.id"), index=True)
    payload: Mapped[dict[str, object] | None] = mapped_column(JSONB)
    received_at: Mapped[datetime] = mapped_column(server_default=func.now())
    # Rejected ones are aggregated: one row per processor, address and reason an hour, counted.
    source_ip: Mapped[str | None] = mapped_column(String(64))
    repeats: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    last_received_at: Mapped[datetime | None]


class FxRateRow(Base):
    """A stored quote; conversions use the newest one for the pair and say which."""

    __tablename__ = "fx_rates"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    base: Mapped[str] = mapped_column(String(3))
    quote: Mapped[str] = mapped_column(String(3))
    bid: Mapped[Decimal] = mapped_column(Numeric(20, 10))
    ask: Mapped[Decimal] = mapped_column(Numeric(20, 10))
    as_of: Mapped[datetime] = mapped_column(index=True)
    # Where the rate came from: `staff` (finance entered it) or `mt5:<server>:<symbol>` (the
    # FX feed). A feed's quote is stored once per source and time (migration 0031), so a
    # retried read stores it once; staff entries are each their own decision.
    source: Mapped[str] = mapped_column(String(64), default="staff", server_default="staff")

    __table_args__ = (
        Index(
            "uq_fx_rates_feed_quote",
            "base",
            "quote",
            "source",
            "as_of",
            unique=True,
            postgresql_where=text("source <> 'staff'"),
        ),
    )


class FinanceCase(RecordModel):
    """A movement finance has to put right by hand: its undoing stopped short. Says what was
    undone and what was not (each with its amount, the latter with its error); one case per
    movement and kind, so a retried step opens it once."""

    __tablename__ = "finance_cases"
    __table_args__ = (UniqueConstraint("movement_kind", "movement_id", "kind"),)

    movement_kind: Mapped[str] = mapped_column(String(16))
    movement_id: Mapped[uuid.UUID]
    reference: Mapped[str] = mapped_column(String(32), index=True)
    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clients.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), index=True)
    # What the movement moved (null when no step had named an amount).
    currency: Mapped[str | None] = mapped_column(String(3))
    amount_minor: Mapped[int | None] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(Text)
    # [{"step", "what", "amount", "currency"}], and for not_undone also "error".
    undone: Mapped[list[dict[str, object]]] = mapped_column(JSONB)
    not_undone: Mapped[list[dict[str, object]]] = mapped_column(JSONB)


class UnmatchedFunds(RecordModel):
    """Money a processor collected that no deposit booked: a second payment on a reference, a
    payment for a deposit that had expired, failed or been cancelled, or for no known reference.
    One row per processor event (a replayed webhook queues once); finance credits it to a
    client's wallet or returns it to the payer (`docs/unmatched-funds.md`)."""

    __tablename__ = "unmatched_funds"
    __table_args__ = (UniqueConstraint("provider", "event_id"),)

    # The item's own reference (`UF…`): the key of its journal entries and of a return.
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    # The verified event, as the processor reported it.
    provider: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[str] = mapped_column(String(128))
    event_kind: Mapped[str] = mapped_column(String(32))
    provider_ref: Mapped[str] = mapped_column(String(64))
    event_reference: Mapped[str] = mapped_column(String(64), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    payer_name: Mapped[str | None] = mapped_column(String(200))
    # The deposit the reference named, if any (and whose client it probably is).
    payment_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("payments.id"), index=True)
    reason: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), index=True)
    # The resolution: who asked for it, what, for whom, and how it ended.
    resolution: Mapped[str | None] = mapped_column(String(16))
    resolved_by: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("staff_users.id"))
    credited_client_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("clients.id"))
    resolution_note: Mapped[str | None] = mapped_column(Text)
    # The processor's id of the return, when it was returned through the processor.
    return_ref: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    resolved_at: Mapped[datetime | None]


class Notification(Base):
    """A message to a client, written once per business event (the key)."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    client_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("clients.id"), index=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(64))
    message: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
