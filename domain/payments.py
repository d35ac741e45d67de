"""What BrokerFlow understands of payment processors, whatever their API looks like."""

from __future__ import annotations

from datetime import date, datetime, timedelta
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


class PayoutState(StrEnum):
    """Where a payout stands when the processor is asked (not told by a webhook)."""

    PENDING = "pending"
    SETTLED = "settled"
    FAILED = "failed"


class PaymentTimers(Frozen):
    """The service levels a deposit or a withdrawal carries in its workflow input (workflows
    cannot read settings: whoever starts one puts these in, from `PaymentRules.timers()`).
    Nothing waits without one of these timers: a lost webhook or a forgotten decision is chased.
    """

    # A payout without a verdict is asked about this long after it was sent, then every
    # `payout_poll_every`, for as long as the processor says it is pending.
    payout_poll_after: timedelta = timedelta(minutes=30)
    payout_poll_every: timedelta = timedelta(hours=1)
    # Still pending this long after it was sent: escalated to finance (once); polling goes on.
    payout_escalate_after: timedelta = timedelta(hours=24)
    # A held deposit or a withdrawal awaiting four-eyes approval is escalated (once) when
    # nobody has decided this long after it started waiting; it keeps waiting for the decision.
    held_decision_sla: timedelta = timedelta(hours=24)
    # A deposit the processor has said nothing about (no webhook) asks it `deposit_poll_after`
    # after the payment page or reference was handed out, then at doubling intervals up to
    # `deposit_poll_every`, and once more as its payment window closes.
    deposit_poll_after: timedelta = timedelta(minutes=5)
    deposit_poll_every: timedelta = timedelta(hours=2)


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
    # A payout the processor has neither settled nor failed long after it was sent (no webhook,
    # and asking the processor still answers "pending"): finance chases the processor.
    PAYOUT_VERDICT_OVERDUE = "payout_verdict_overdue"
    # A held deposit (compliance) or a withdrawal awaiting four-eyes approval (finance) that
    # nobody has decided on within its service level.
    DECISION_OVERDUE = "decision_overdue"


class FinanceCaseStatus(StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"


# Processor events that bring money in: each one is either booked by its deposit or queued as
# unmatched funds, never only acknowledged.
FUNDS_ARRIVED = frozenset({PaymentEventKind.PAYMENT_SUCCEEDED, PaymentEventKind.TRANSFER_RECEIVED})


class UnmatchedReason(StrEnum):
    """Why money a processor collected was not booked by a deposit."""

    # Another payment on a reference whose deposit already took its money (two transfers of
    # 500 quoting a deposit of 1,000).
    SECOND_PAYMENT = "second_payment"
    DEPOSIT_EXPIRED = "deposit_expired"
    DEPOSIT_FAILED = "deposit_failed"  # the processor had declined it before
    DEPOSIT_CANCELLED = "deposit_cancelled"
    # The deposit's workflow has finished in another way, or the reference is a withdrawal's.
    DEPOSIT_CLOSED = "deposit_closed"
    # No payment of that processor has the reference (or several do).
    UNKNOWN_REFERENCE = "unknown_reference"
    # The reference is a withdrawal's: money coming in cannot be booked against it.
    NOT_A_DEPOSIT = "not_a_deposit"


# A deposit in one of these has taken a payment (its `provider_ref` is then the payment's own id).
TOOK_MONEY = frozenset(
    {
        PaymentStatus.RECEIVED,
        PaymentStatus.HELD,
        PaymentStatus.CREDITING,
        PaymentStatus.COMPLETED,
        PaymentStatus.REJECTED,
        PaymentStatus.NEEDS_ATTENTION,
    }
)


def unmatched_reason_for(status: str) -> UnmatchedReason:
    """Why money arriving for a deposit in `status`, whose workflow no longer takes it, is
    unmatched: after the deposit took a payment it is a second one; otherwise the deposit's end."""
    ended = {
        PaymentStatus.EXPIRED: UnmatchedReason.DEPOSIT_EXPIRED,
        PaymentStatus.FAILED: UnmatchedReason.DEPOSIT_FAILED,
        PaymentStatus.CANCELLED: UnmatchedReason.DEPOSIT_CANCELLED,
    }
    if status in ended:
        return ended[PaymentStatus(status)]
    if status in TOOK_MONEY:
        return UnmatchedReason.SECOND_PAYMENT
    return UnmatchedReason.DEPOSIT_CLOSED


class UnmatchedStatus(StrEnum):
    """open → crediting → credited (to a client's wallet), or open → returning → returned (to
    the payer through the processor). A resolution the processor or the books refuse goes back
    to open with the error."""

    OPEN = "open"
    CREDITING = "crediting"
    RETURNING = "returning"
    CREDITED = "credited"
    RETURNED = "returned"


class UnmatchedAction(StrEnum):
    CREDIT = "credit"
    RETURN = "return"


def unmatched_reference(item_id: str) -> str:
    """The queue item's own reference (`UF` + 20 hex, like a payment's): the key of its journal
    entries and of the processor's return."""
    return f"UF{item_id.replace('-', '')[:20].upper()}"
