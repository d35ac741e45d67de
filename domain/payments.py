"""What BrokerFlow understands of payment processors, whatever their API looks like."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from domain.errors import BackOfficeError
from domain.frozen import Frozen
from domain.money import Money


class WebhookRejected(BackOfficeError):
    """A webhook that is forged, stale or malformed: ignored and logged, never acted upon."""

    status_code = 400
    title = "Webhook rejected"


class UnsupportedByProvider(BackOfficeError):
    status_code = 422
    title = "Not offered by this payment processor"


class PaymentEventKind(StrEnum):
    PAYMENT_SUCCEEDED = "payment_succeeded"
    PAYMENT_FAILED = "payment_failed"
    REFUNDED = "refunded"
    CHARGEBACK = "chargeback"
    TRANSFER_RECEIVED = "transfer_received"
    PAYOUT_SETTLED = "payout_settled"
    PAYOUT_FAILED = "payout_failed"


class PaymentEvent(Frozen):
    """A verified webhook, in BrokerFlow's words. `event_id` de-duplicates replays."""

    provider: str
    event_id: str
    kind: PaymentEventKind
    provider_ref: str  # the processor's id of the payment or payout
    reference: str  # BrokerFlow's reference it was created with
    amount: Money
    payer_name: str = ""
    sent_at: datetime


class PaymentSession(Frozen):
    """What a client needs to pay: a hosted page, or a reference for a bank transfer."""

    provider: str
    provider_ref: str
    redirect_url: str | None = None
    transfer_reference: str | None = None


class SettlementLine(Frozen):
    day: date
    provider_ref: str
    reference: str
    kind: str
    gross: Money
    fee: Money
    net: Money


class PaymentDirection(StrEnum):
    DEPOSIT = "deposit"
    WITHDRAWAL = "withdrawal"


class PaymentStatus(StrEnum):
    """Where a payment or transfer stands. Terminal: completed, rejected, failed, expired,
    cancelled, needs_attention (a person takes it from there)."""

    INITIATED = "initiated"  # recorded, the processor not yet asked
    AWAITING_FUNDS = "awaiting_funds"  # hosted page or transfer reference handed to the client
    RECEIVED = "received"  # the processor collected it; checks running
    HELD = "held"  # a check flagged it: waits for a compliance decision
    CREDITING = "crediting"  # checks passed; on its way to the wallet or MT5 account
    FUNDS_RESERVED = "funds_reserved"  # withdrawal: taken from its source into the hold
    PENDING_APPROVAL = "pending_approval"  # withdrawal: waits for finance (four-eyes)
    PAYOUT_SENT = "payout_sent"  # withdrawal: the processor is paying it out
    COMPLETED = "completed"
    REJECTED = "rejected"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"  # stopped by staff before the point of no return
    # Undoing it stopped short (a compensation failed for good): a finance case says what was
    # undone and what was not, with the amounts; finance puts the money right by hand.
    NEEDS_ATTENTION = "needs_attention"


class ComplianceStatus(StrEnum):
    NOT_CHECKED = "not_checked"
    CLEARED = "cleared"  # every check passed
    PENDING = "pending"  # held for an officer
    APPROVED = "approved"  # an officer let it through
    REJECTED = "rejected"


class Provider(StrEnum):
    CARDCO = "cardco"
    BANKCO = "bankco"


class FinanceCaseKind(StrEnum):
    """Why finance has to look at a movement."""

    # The movement was being undone and at least one undo step failed for good.
    COMPENSATION_INCOMPLETE = "compensation_incomplete"


class FinanceCaseStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"
