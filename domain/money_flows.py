"""The contracts of the deposit, withdrawal and transfer sagas: their inputs, each step's input
and output, and the step names workers register. One pydantic model per call, so fields can be
added later (with defaults) without breaking running workflows.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from domain.ledger import JournalEntry
from domain.money import Money
from domain.payment_checks import RiskFlag
from domain.payments import PaymentEvent, PaymentStatus


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class Step(StrEnum):
    # processors and payment records (main task queue)
    START_PROCESSOR_DEPOSIT = "start_processor_deposit"
    RECORD_PAYMENT_RECEIVED = "record_payment_received"
    ASSESS_DEPOSIT = "assess_deposit"
    RECORD_DECISION = "record_decision"
    ASSESS_WITHDRAWAL = "assess_withdrawal"
    SEND_PAYOUT = "send_payout"
    RETURN_PAYMENT_TO_PAYER = "return_payment_to_payer"
    MARK_MOVEMENT = "mark_movement"
    NOTIFY_CLIENT = "notify_client"
    # the ledger (main task queue)
    BOOK_ENTRY = "book_entry"
    REVERSE_ENTRY_IF_BOOKED = "reverse_entry_if_booked"
    RESERVE_FROM_WALLET = "reserve_from_wallet"
    CONVERT_HELD = "convert_held"
    # MT5 (the account's server's task queue)
    MT5_FREE_MARGIN = "mt5_free_margin"
    MT5_CREDIT_BALANCE = "mt5_credit_balance"
    MT5_DEBIT_BALANCE = "mt5_debit_balance"
    MT5_REVERSE_IF_APPLIED = "mt5_reverse_if_applied"


class MovementKind(StrEnum):
    PAYMENT = "payment"
    TRANSFER = "transfer"


class MovementRef(Frozen):
    """A payment or a transfer row, whose status the steps move."""

    kind: MovementKind
    id: uuid.UUID


class Mt5AccountRef(Frozen):
    server: str
    login: int = Field(gt=0)


class Pocket(Frozen):
    """One side of a movement: the client's wallet in a currency, or one of its MT5 accounts."""

    currency: str
    mt5: Mt5AccountRef | None = None


def reference_for(kind: MovementKind, movement_id: uuid.UUID) -> str:
    """The reference processors, MT5 comments and statements show: `BF…` or `TR…`, 22 chars."""
    prefix = "BF" if kind is MovementKind.PAYMENT else "TR"
    return f"{prefix}{movement_id.hex[:20].upper()}"


# Workflow ids come from business keys, so a second start of the same movement is refused.
def deposit_workflow_id(payment_id: uuid.UUID) -> str:
    return f"deposit-{payment_id}"


def withdrawal_workflow_id(payment_id: uuid.UUID) -> str:
    return f"withdrawal-{payment_id}"


def transfer_workflow_id(transfer_id: uuid.UUID) -> str:
    return f"transfer-{transfer_id}"


StaffId = uuid.UUID


def mt5_comment(purpose: str, reference: str) -> str:
    """A balance deal's comment: its purpose and the movement's reference. It is also the
    deal's idempotency key on MT5, so each purpose is used once per movement (max 31 chars)."""
    return f"{purpose} {reference}"


# -- workflow inputs ----------------------------------------------------------------------------


class DepositInput(Frozen):
    payment_id: uuid.UUID
    client_id: uuid.UUID
    reference: str
    provider: str
    amount: Money
    destination: Pocket


class WithdrawalInput(Frozen):
    payment_id: uuid.UUID
    client_id: uuid.UUID
    reference: str
    provider: str
    amount: Money
    source: Pocket


class TransferInput(Frozen):
    transfer_id: uuid.UUID
    client_id: uuid.UUID
    reference: str
    amount: Money  # in the source's currency
    source: Pocket
    destination: Pocket


class MovementResult(Frozen):
    status: PaymentStatus
    credited: Money | None = None
    reason: str | None = None


# -- messages from outside ----------------------------------------------------------------------


class StaffDecision(Frozen):
    """A compliance officer on a held deposit, or a finance officer on a withdrawal."""

    staff_id: StaffId
    roles: tuple[str, ...]
    approve: bool
    reason: str = Field(min_length=1, max_length=1000)
    ip: str | None = None
    request_id: str | None = None


class DecisionOutcome(Frozen):
    status: PaymentStatus
    approvals: int


# -- step inputs and outputs --------------------------------------------------------------------


class PaymentRef(Frozen):
    payment_id: uuid.UUID


class PaymentReceived(Frozen):
    payment_id: uuid.UUID
    event: PaymentEvent


class DepositAssessment(Frozen):
    flags: tuple[RiskFlag, ...]
    amount: Money  # what the processor collected: what the client gets


class WithdrawalAssessment(Frozen):
    flags: tuple[RiskFlag, ...]  # any flag sends the withdrawal to four-eyes approval


class RecordDecision(Frozen):
    payment_id: uuid.UUID
    decision: StaffDecision
    # Whether this decision settles the payment's compliance status (a deposit's only decision,
    # a withdrawal's rejection or second approval).
    final: bool
    # The status the payment moves to once this decision is stored (None: it stays).
    new_status: PaymentStatus | None = None


class MarkMovement(Frozen):
    movement: MovementRef
    status: PaymentStatus
    reason: str | None = None
    credited: Money | None = None
    mt5_ticket: int | None = None


class Booking(Frozen):
    """One journal entry, and optionally the status its movement reaches with it (one
    transaction: the books and the status never disagree)."""

    entry: JournalEntry
    then: MarkMovement | None = None


class ReverseEntry(Frozen):
    """Undo the entry booked under `key`, if it was booked at all (a compensation)."""

    key: str
    reason: str
    then: MarkMovement | None = None


class ReserveFromWallet(Frozen):
    """Move money from the wallet into the hold, refused beyond what the wallet has."""

    key: str
    client_id: uuid.UUID
    amount: Money
    then: MarkMovement | None = None


class ConvertHeld(Frozen):
    key: str
    client_id: uuid.UUID
    sell: Money
    into: str


class Notify(Frozen):
    client_id: uuid.UUID
    key: str
    kind: str
    message: str


class BalanceChange(Frozen):
    """A credit (positive) or debit (negative) on an MT5 account, once: `comment` is its key."""

    account: Mt5AccountRef
    amount: Decimal
    comment: str = Field(min_length=1, max_length=31)
    # When the movement started: an earlier attempt's deal is looked for from here on.
    requested_at: datetime


class ReverseBalanceChange(Frozen):
    """Compensation: undo `change` on MT5 with the opposite amount, if MT5 holds it at all."""

    change: BalanceChange
    comment: str = Field(min_length=1, max_length=31)
