"""Unmatched funds (docs/unmatched-funds.md): money a processor collected that no deposit
booked — a second payment on a deposit's reference, one that arrives after the deposit expired,
failed or was cancelled, or one quoting no reference BrokerFlow knows. It is queued for finance
(by the webhook service, or by the deposit workflow's `queue_unmatched_funds` step), and finance
resolves each item with the `ResolveUnmatchedFunds` workflow: credited to a client's wallet, or
returned to the payer through its processor.
"""

from __future__ import annotations

import uuid

from contracts import policies
from contracts.process import Process
from contracts.steps import Step
from domain.frozen import Frozen as Contract
from domain.payments import PaymentEvent, UnmatchedAction, UnmatchedReason, UnmatchedStatus


class QueueUnmatchedFunds(Contract):
    """A verified payment no deposit books: queued for finance, once per processor event."""

    event: PaymentEvent
    reason: UnmatchedReason
    # The deposit the event's reference named, if any.
    payment_id: uuid.UUID | None = None
    detail: str | None = None


class ResolveUnmatched(Contract):
    """Finance's resolution of a queued payment: credit a client's wallet, or return it to the
    payer through its processor. The API has moved the item to crediting/returning."""

    item_id: uuid.UUID
    action: UnmatchedAction
    staff_id: uuid.UUID
    roles: tuple[str, ...] = ()
    client_id: uuid.UUID | None = None  # whom to credit (a credit only)
    note: str
    ip: str | None = None
    request_id: str | None = None


class UnmatchedOutcome(Contract):
    """How a resolution ended: credited or returned, or back to open with the error."""

    item_id: uuid.UUID
    status: UnmatchedStatus
    error: str | None = None


class ReopenUnmatched(Contract):
    item_id: uuid.UUID
    error: str


# Finance credits or returns one queued unmatched payment.
RESOLVE_UNMATCHED = Process("ResolveUnmatchedFunds", ResolveUnmatched, UnmatchedOutcome)


def resolve_unmatched_workflow_id(item_id: uuid.UUID, attempt: uuid.UUID) -> str:
    # One workflow per resolution attempt: an attempt the processor refused reopens the item,
    # and finance may try again.
    return f"unmatched-funds-{item_id}-{attempt.hex[:12]}"


# Money a deposit does not take (a second payment on its reference, or one arriving after it
# expired, failed or was cancelled): queued for finance with its audit row and an alert.
queue_unmatched_funds = Step(
    "queue_unmatched_funds", QueueUnmatchedFunds, type(None), policies.DATABASE
)
# A queued payment credited to a client's wallet (books: psp → suspense → wallet) or returned
# to the payer through the processor; marked with its audit row.
resolve_unmatched_funds = Step(
    "resolve_unmatched_funds", ResolveUnmatched, UnmatchedOutcome, policies.DATABASE
)
# A resolution the processor or the books refused for good: the item is open again, with why.
reopen_unmatched_funds = Step(
    "reopen_unmatched_funds", ReopenUnmatched, type(None), policies.DATABASE
)
