"""What the money processes (deposit, withdrawal, transfer) share: the movement they move, their
result, a staff decision on a payment, and the steps of the books, of MT5 balances and of the
client's notices, with each step's argument, result, policy and queue.

One pydantic model per call, so fields can be added later (with defaults) without breaking
running workflows. Step names are activity names in Temporal's history: never renamed.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import Field
from temporalio.common import SearchAttributeIndexedValueType, SearchAttributeKey

from contracts import policies
from contracts.process import Signal, Update
from contracts.steps import Mt5Step, Step
from domain.frozen import Frozen as Contract
from domain.ledger import JournalEntry
from domain.money import Money
from domain.money_flows import MovementKind, Mt5AccountRef
from domain.payments import FinanceCaseKind, PaymentEvent, PaymentStatus

ClientId = uuid.UUID
StaffId = uuid.UUID


class MovementRef(Contract):
    """A payment or a transfer row, whose status the steps move."""

    kind: MovementKind
    id: uuid.UUID


class MovementResult(Contract):
    """How a deposit, a withdrawal or a transfer ended."""

    status: PaymentStatus
    credited: Money | None = None
    reason: str | None = None


# -- what operations search for in the Temporal UI (custom search attributes) -------------------

# Set by every deposit, withdrawal and transfer at its start and upserted as its status changes
# (`workflows.funds.show_movement` / `show_status`); so are finance's resolutions of unmatched
# funds and IB payouts (each behind its own `workflow.patched`). Registered where a Temporal
# server is started (`search_attribute_flags`: ops/stack.py, tests/conftest.py) or, on a
# production cluster, by docker-compose.yml's `temporal-search-attributes` step.
CLIENT_ID = SearchAttributeKey.for_keyword("BrokerflowClientId")
# The movement's reference (BF... for a payment, the transfer's own for a transfer, UF... for an
# unmatched item, the payout's id for an IB payout).
PAYMENT_REFERENCE = SearchAttributeKey.for_keyword("BrokerflowPaymentReference")
# The status the row the workflow moves holds: a `PaymentStatus` value (deposit, withdrawal,
# transfer), an `UnmatchedStatus` (an unmatched item's resolution), a `PayoutStatus` (an IB
# payout). The vocabularies share words (`crediting`, `rejected`): filter by `WorkflowType` too.
MOVEMENT_STATUS = SearchAttributeKey.for_keyword("BrokerflowMovementStatus")
# When the movement entered `MOVEMENT_STATUS` (workflow time): "stuck for a day" is this < now - 1d.
STATUS_SINCE = SearchAttributeKey.for_datetime("BrokerflowStatusSince")
SEARCH_ATTRIBUTES: tuple[SearchAttributeKey[Any], ...] = (
    CLIENT_ID,
    PAYMENT_REFERENCE,
    MOVEMENT_STATUS,
    STATUS_SINCE,
)
# The type names the Temporal CLI takes (`--search-attribute Name=Type`, `--type Type`).
_CLI_TYPES = {
    SearchAttributeIndexedValueType.KEYWORD: "Keyword",
    SearchAttributeIndexedValueType.DATETIME: "Datetime",
}


def search_attribute_types() -> dict[str, str]:
    """Each search attribute's name and its type as the Temporal CLI names it."""
    return {key.name: _CLI_TYPES[key.indexed_value_type] for key in SEARCH_ATTRIBUTES}


def search_attribute_flags() -> list[str]:
    """`temporal server start-dev` arguments registering them (in every `--namespace` it makes)."""
    return [
        flag
        for name, kind in search_attribute_types().items()
        for flag in ("--search-attribute", f"{name}={kind}")
    ]


def stuck_since(workflow_type: str, status: StrEnum, entered_before: datetime) -> str:
    """The visibility list filter (Temporal UI, `temporal workflow list --query`) of the running
    `workflow_type` movements that have been in `status` since before `entered_before` (UTC)."""
    when = entered_before.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        f"WorkflowType = '{workflow_type}' AND ExecutionStatus = 'Running' AND "
        f"{MOVEMENT_STATUS.name} = '{status.value}' AND {STATUS_SINCE.name} < '{when}'"
    )


# -- a staff decision on a payment (the `decide` update of a deposit or a withdrawal) -----------


class StaffDecision(Contract):
    """A compliance officer on a held deposit, or a finance officer on a withdrawal."""

    staff_id: StaffId
    roles: tuple[str, ...]
    approve: bool
    reason: str = Field(min_length=1, max_length=1000)
    ip: str | None = None
    request_id: str | None = None


class DecisionOutcome(Contract):
    status: PaymentStatus
    approvals: int


# What every payment workflow (a deposit, a withdrawal) hears: its processor's verified webhook
# (redeliveries count once), and a staff decision on it.
PAYMENT_EVENT = Signal("payment_event", PaymentEvent)
DECIDE = Update("decide", StaffDecision, DecisionOutcome)


# -- step arguments ------------------------------------------------------------------------------


class PaymentRef(Contract):
    payment_id: uuid.UUID


class RecordDecision(Contract):
    payment_id: uuid.UUID
    decision: StaffDecision
    # Whether this decision settles the payment's compliance status (a deposit's only decision,
    # a withdrawal's rejection or second approval).
    final: bool
    # The status the payment moves to once this decision is stored (None: it stays).
    new_status: PaymentStatus | None = None


class MarkMovement(Contract):
    movement: MovementRef
    status: PaymentStatus
    reason: str | None = None
    credited: Money | None = None
    mt5_ticket: int | None = None


class Notify(Contract):
    client_id: ClientId
    key: str
    kind: str
    message: str


class Booking(Contract):
    """One journal entry, and optionally the status its movement reaches with it (one
    transaction: the books and the status never disagree)."""

    entry: JournalEntry
    then: MarkMovement | None = None
    # The client's notice of it, in the same transaction (once per its key, as `notify_client`).
    notice: Notify | None = None


class ReverseEntry(Contract):
    """Undo the entry booked under `key`, if it was booked at all (a compensation)."""

    key: str
    reason: str
    then: MarkMovement | None = None


class ReserveFromWallet(Contract):
    """Move money from the wallet into the hold, refused beyond what the wallet has."""

    key: str
    client_id: ClientId
    amount: Money
    then: MarkMovement | None = None


class ConvertHeld(Contract):
    key: str
    client_id: ClientId
    sell: Money
    into: str


class BalanceChange(Contract):
    """A credit (positive) or debit (negative) on an MT5 account, once: `comment` is its key."""

    account: Mt5AccountRef
    amount: Decimal
    comment: str = Field(min_length=1, max_length=31)
    # When the movement started: an earlier attempt's deal is looked for from here on.
    requested_at: datetime


class ReverseBalanceChange(Contract):
    """Compensation: undo `change` on MT5 with the opposite amount, if MT5 holds it at all."""

    change: BalanceChange
    comment: str = Field(min_length=1, max_length=31)


class Compensation(Contract):
    """One undo step of a saga, as a finance case lists it: the step, what it undoes, the
    amount it moves back, and, when it failed for good, why."""

    step: str
    what: str
    amount: Money | None = None
    error: str | None = None


class OpenFinanceCase(Contract):
    """A movement finance has to look at (`kind`): its undoing stopped short (what was undone,
    what was not, with the error, the amounts), or it waits past its service level (a payout
    without a verdict, a decision nobody took; `reason` says which). One case per movement and
    kind; `then` moves the movement's status in the same transaction."""

    movement: MovementRef
    client_id: ClientId
    reference: str
    kind: FinanceCaseKind = FinanceCaseKind.COMPENSATION_INCOMPLETE
    # What the movement moved (None when no step had named an amount yet).
    amount: Money | None = None
    # Why the movement was being undone (a refusal, a cancellation, a fault), or what is late.
    reason: str
    undone: tuple[Compensation, ...] = ()
    not_undone: tuple[Compensation, ...] = ()
    then: MarkMovement | None = None


# -- steps: payment records (main task queue) ---------------------------------------------------

# A staff decision with its audit row (a deposit's or a withdrawal's `decide` update).
record_decision = Step("record_decision", RecordDecision, type(None), policies.DATABASE)

# -- steps: the books and the movement's status (main task queue) -------------------------------

# A case for finance (with its audit row and the movement's status), once per movement and kind.
open_finance_case = Step("open_finance_case", OpenFinanceCase, type(None), policies.DATABASE)

book_entry = Step("book_entry", Booking, type(None), policies.DATABASE)
mark_movement = Step("mark_movement", MarkMovement, type(None), policies.DATABASE)
notify_client = Step("notify_client", Notify, type(None), policies.DATABASE)
reserve_from_wallet = Step("reserve_from_wallet", ReserveFromWallet, type(None), policies.DATABASE)
# What the client gets in the other currency.
convert_held = Step("convert_held", ConvertHeld, Money, policies.DATABASE)
reverse_entry_if_booked = Step(
    "reverse_entry_if_booked", ReverseEntry, type(None), policies.DATABASE_COMPENSATION
)

# -- steps: MT5 balances (the account's server's task queue) ------------------------------------

mt5_free_margin = Mt5Step("mt5_free_margin", Mt5AccountRef, Decimal, policies.MT5_WRITE)
# Each answers the ticket of the balance deal.
mt5_credit_balance = Mt5Step("mt5_credit_balance", BalanceChange, int, policies.MT5_WRITE)
mt5_debit_balance = Mt5Step("mt5_debit_balance", BalanceChange, int, policies.MT5_WRITE)
mt5_reverse_if_applied = Mt5Step(
    "mt5_reverse_if_applied", ReverseBalanceChange, type(None), policies.MT5_COMPENSATION
)
