"""Unmatched funds (docs/unmatched-funds.md): money a processor collected that no deposit
booked — a second payment on a deposit's reference, one that arrives after the deposit expired,
failed or was cancelled, or one quoting no reference BrokerFlow knows. It is queued for finance
(by the webhook service, or by the deposit workflow's `queue_unmatched_funds` step), and finance
resolves each item with the `ResolveUnmatchedFunds` workflow: credited to a client's wallet or
straight to one of the client's live MT5 accounts (through the deposits' idempotent balance
step), or returned to the payer through its processor.
"""

from __future__ import annotations

import uuid

from contracts import policies
from contracts.process import Process
from contracts.steps import Step
from domain.frozen import Frozen as Contract
from domain.money import Money
from domain.money_flows import Mt5AccountRef
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
    # The client's live MT5 account to credit (in the item's currency); None: the wallet.
    mt5: Mt5AccountRef | None = None
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


class UnmatchedInTransit(Contract):
    """A credit to MT5 under way: the money booked into the client's hold (`<UF…>:transit`),
    or the item found already credited (a replayed request: nothing more to do)."""

    reference: str
    amount: Money
    credited: bool = False


class FinishUnmatchedCredit(Contract):
    """The held money's last entry and the item credited, with its audit row: onto the MT5
    account (`ticket` of the balance deal) or, MT5 having refused it and given back whatever it
    held of it, into the wallet (`refusal`: MT5's answer)."""

    request: ResolveUnmatched
    ticket: int | None = None
    refusal: str | None = None


class UnmatchedTakeBackFailed(Contract):
    """MT5 refused the credit and taking back what it may hold of it failed for good: the money
    stays in the client's hold, the item stays crediting with the error, and finance gets a
    case saying what is left to do."""

    request: ResolveUnmatched
    refusal: str
    error: str
    what: str


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
# A credit to an MT5 account, first step: the item's money booked psp → suspense → the
# client's hold (`<UF…>:received`, `<UF…>:transit`), in one transaction.
unmatched_funds_in_transit = Step(
    "unmatched_funds_in_transit", ResolveUnmatched, UnmatchedInTransit, policies.DATABASE
)
# Then, once MT5 answered: the hold onto the MT5 mirror (or into the wallet) and the item
# credited with its audit row, in one transaction.
finish_unmatched_credit = Step(
    "finish_unmatched_credit", FinishUnmatchedCredit, type(None), policies.DATABASE
)
# MT5 refused the credit and would not give back what it may hold: a finance case.
unmatched_take_back_failed = Step(
    "unmatched_take_back_failed", UnmatchedTakeBackFailed, type(None), policies.DATABASE
)
# A resolution the processor or the books refused for good: the item is open again, with why.
reopen_unmatched_funds = Step(
    "reopen_unmatched_funds", ReopenUnmatched, type(None), policies.DATABASE
)
