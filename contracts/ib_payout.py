"""IB payouts: the payout cycle (`IbPayoutCycle`, started by one Temporal Schedule per payout
frequency) accrues a period's commissions and opens one payout per IB and currency; each payout
(`IbPayout`) renders its statement, waits for finance (update `decide`, four-eyes above a
threshold) and is credited to the IB's wallet through the ledger, or to its MT5 account through
`trade/balance` (the MT5 balance step the deposits use) and then the ledger.

Periods are [start, end) in trade-server-clock Unix seconds, the clock MT5 stamps deals with.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from pydantic import Field
from temporalio.common import RetryPolicy

from contracts import policies
from contracts.funds import StaffDecision
from contracts.process import Process, Update
from contracts.steps import Step
from domain.frozen import Frozen as Contract
from domain.money_flows import Mt5AccountRef, mt5_comment

DAY = 86400
# A payout above this (in its own currency) needs two different finance officers.
FOUR_EYES_ABOVE = Decimal("1000")
# Deals this far before the period are read again: a late or corrected deal gets its row or its
# adjustment in the next cycle.
RECHECK_SECONDS = 7 * DAY
# Deals this far before what is computed are read as history (openings a close needs).
HISTORY_SECONDS = 30 * DAY


class PayoutFrequency(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


def payout_schedule_id(frequency: PayoutFrequency) -> str:
    return f"ib-payouts-{frequency.value}"


def last_full_period(frequency: PayoutFrequency, now: int) -> tuple[int, int]:
    """The last whole day, week (Monday to Monday) or calendar month that ended by `now`."""
    today = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if frequency is PayoutFrequency.DAILY:
        end = today
        start = end - timedelta(days=1)
    elif frequency is PayoutFrequency.WEEKLY:
        end = today - timedelta(days=today.weekday())
        start = end - timedelta(days=7)
    else:
        end = today.replace(day=1)
        start = (end - timedelta(days=1)).replace(day=1)
    return int(start.timestamp()), int(end.timestamp())


class PayoutCycleInput(Contract):
    frequency: PayoutFrequency
    # The period; by default the last full one before the run, on the servers' clocks.
    period_start: int | None = None
    period_end: int | None = None
    # Trade-server clock minus UTC, in seconds (MT5 servers often run at UTC+2/+3): the one
    # every server shared before `server_clock_offsets`, used when that is empty.
    server_clock_offset: int = 0
    four_eyes_above: Decimal = FOUR_EYES_ABOVE
    # Each MT5 server's clock minus UTC (`Settings.server_clock_offset_of`), by server name.
    server_clock_offsets: dict[str, int] = Field(default_factory=dict)

    def period_clock_offset(self) -> int:
        """The clock the default period is read on: the westmost server's (the smallest
        offset), so the period has ended on every server's own clock when it is paid. Its
        bounds are server-clock seconds, the same numbers on every server (a broker day is
        00:00 to 24:00 on each server's clock), and each server's deals are compared with
        them on the clock they were stamped with."""
        return min(self.server_clock_offsets.values(), default=self.server_clock_offset)


def cycle_period(request: PayoutCycleInput, utc_now: int) -> tuple[int, int]:
    """The period a cycle pays: the one given, else the last full one at `utc_now` on the
    westmost server's clock (`PayoutCycleInput.period_clock_offset`)."""
    if request.period_start is not None and request.period_end is not None:
        return request.period_start, request.period_end
    return last_full_period(request.frequency, utc_now + request.period_clock_offset())


class PayoutCycleResult(Contract):
    rows: int
    adjustments: int
    payouts: tuple[uuid.UUID, ...]


IB_PAYOUT_CYCLE = Process("IbPayoutCycle", PayoutCycleInput, PayoutCycleResult)


def payout_cycle_workflow_id(frequency: PayoutFrequency, start: int, end: int) -> str:
    return f"ib-payout-cycle-{frequency.value}-{start}-{end}"


class PayoutStatus(StrEnum):
    ACCRUED = "accrued"
    STATEMENT_READY = "statement_ready"
    APPROVED = "approved"
    PAID = "paid"
    REJECTED = "rejected"
    # Approved, but the IB's MT5 account refused the credit for good (or cannot take it): nothing
    # was paid, the rows stay with the payout, finance has to act (`decision_reason` says why).
    NEEDS_ATTENTION = "needs_attention"


class PayoutInput(Contract):
    payout_id: uuid.UUID
    four_eyes_above: Decimal = FOUR_EYES_ABOVE


class PayoutResult(Contract):
    status: PayoutStatus
    ledger_key: str | None = None
    # Why the payout needs attention (an MT5 refusal), when it does.
    reason: str | None = None


IB_PAYOUT = Process("IbPayout", PayoutInput, PayoutResult)


def ib_payout_workflow_id(payout_id: uuid.UUID) -> str:
    return f"ib-payout-{payout_id}"


class PayoutDecisionOutcome(Contract):
    status: PayoutStatus
    approvals: int
    needed: int


# A finance officer approves or rejects a payout; above the threshold two different ones approve.
DECIDE = Update("decide", StaffDecision, PayoutDecisionOutcome)


class PayAgainInput(Contract):
    """Pay again a payout left `needs_attention` (MT5 refused it, or its destination could not
    take it), where the IB is paid now. `amount` is the payout's, read when it is asked for."""

    payout_id: uuid.UUID
    amount: Decimal
    four_eyes_above: Decimal = FOUR_EYES_ABOVE


# One run at a time per payout (the API starts it with its first approval, or joins the one
# running); a payout that needs attention again later gets a new run under the same id.
IB_PAYOUT_AGAIN = Process("IbPayoutAgain", PayAgainInput, PayoutResult)


def ib_payout_again_workflow_id(payout_id: uuid.UUID) -> str:
    return f"ib-payout-again-{payout_id}"


# A finance officer asks for (or seconds) paying it again; above the threshold two different
# officers, as for the first approval. `approve` must be true: giving up is the release.
APPROVE_PAY_AGAIN = Update("approve_pay_again", StaffDecision, PayoutDecisionOutcome)
# How long a request to pay again waits for its second officer before it lapses (nothing paid).
PAY_AGAIN_WAIT = timedelta(days=7)


# -- step arguments ------------------------------------------------------------------------------


class AccrualRequest(Contract):
    """Rows for the deals in [start, end) (and adjustments for those already rowed), on every
    server with attributed clients; deals from `history_from` on are read as history."""

    start: int
    end: int
    history_from: int
    logins_per_batch: int = Field(default=100, ge=1)


class AccrualSummary(Contract):
    rows: int
    adjustments: int
    unattributed: int
    without_account: int


class PayoutPeriod(Contract):
    frequency: PayoutFrequency
    start: int
    end: int


class OpenedPayouts(Contract):
    payouts: tuple[uuid.UUID, ...]


class PayoutRef(Contract):
    payout_id: uuid.UUID


def ib_statement_copy_key(payout_id: uuid.UUID) -> str:
    """Where the IB's copy of a payout's statement is stored (the document store): the
    statement's pages without the section for finance, rendered with finance's copy."""
    return f"ib/statements/{payout_id}.ib-copy.pdf"


class RenderedStatement(Contract):
    key: str  # where finance's PDF is stored (the document store)
    amount: Decimal
    currency: str


class PayoutDecisionRecord(Contract):
    payout_id: uuid.UUID
    decision: StaffDecision
    # The status the payout reaches with this decision (None: it waits for a second officer).
    new_status: PayoutStatus | None = None


class PayAgainRecord(Contract):
    """An officer's approval of paying a payout again, `approvers` so far (this one last);
    `approved`: enough of them, the payout goes from needs_attention to approved."""

    payout_id: uuid.UUID
    decision: StaffDecision
    approvers: tuple[str, ...]
    needed: int
    approved: bool


class ReleasePayout(Contract):
    payout_id: uuid.UUID
    reason: str


class PayoutDestination(Contract):
    """Where an approved payout is paid: the IB's wallet (`mt5` None) or its MT5 account.
    `problem` says why it cannot be paid where it is configured (a currency the MT5 account
    does not hold): the payout then needs attention instead of a wrong credit."""

    amount: Decimal
    currency: str
    mt5: Mt5AccountRef | None = None
    problem: str | None = None


class Mt5PayoutBooking(Contract):
    """MT5 has credited the payout (deal `ticket`): the books and the status follow."""

    payout_id: uuid.UUID
    account: Mt5AccountRef
    ticket: int


class PayoutAttention(Contract):
    payout_id: uuid.UUID
    reason: str = Field(min_length=1, max_length=1000)


def mt5_payout_comment(payout_id: uuid.UUID) -> str:
    """The MT5 deal comment of a payout's credit, its idempotency key on MT5 (≤ 31 chars): 96
    bits of the payout id, unique enough on one IB's login."""
    return mt5_comment("ibp", payout_id.hex[:24])


class FraudCheck(Contract):
    """Look for fraud signals among attributed clients' deals in [start, end) (server clock)."""

    start: int
    end: int


class FraudCheckSummary(Contract):
    flags: int  # new flags stored by this run
    ibs: int  # IBs with at least one open flag after it


# -- steps (main task queue) ---------------------------------------------------------------------

accrue_ib_commissions = Step("accrue_ib_commissions", AccrualRequest, AccrualSummary, policies.BULK)
# One payout per IB (of the frequency) and currency with unpaid rows up to the period's end.
open_ib_payouts = Step("open_ib_payouts", PayoutPeriod, OpenedPayouts, policies.DATABASE)
# The statement PDF, stored once under the payout's key, and the IB's copy (without the section
# for finance) beside it, both from one rendering.
render_ib_statement = Step("render_ib_statement", PayoutRef, RenderedStatement, policies.BULK)
record_ib_payout_decision = Step(
    "record_ib_payout_decision", PayoutDecisionRecord, type(None), policies.DATABASE
)
# An approval of paying a needs_attention payout again, audited; with enough approvals the
# payout is approved again. Refuses (non-retryable `PayoutNotNeedingAttention`) a payout no
# longer in needs_attention (released, or paid meanwhile).
record_ib_payout_pay_again = Step(
    "record_ib_payout_pay_again", PayAgainRecord, type(None), policies.DATABASE
)
# The balanced credit of the IB's wallet, keyed by the payout; answers the entry's key.
credit_ib_payout = Step("credit_ib_payout", PayoutRef, str, policies.DATABASE)
# Compensation of `open_ib_payouts` for one payout: rejected, its rows free for the next cycle.
release_ib_payout = Step(
    "release_ib_payout", ReleasePayout, type(None), policies.DATABASE_COMPENSATION
)

# Where an approved payout goes, read when it is paid (the IB's setting then, not at accrual).
ib_payout_destination = Step(
    "ib_payout_destination", PayoutRef, PayoutDestination, policies.DATABASE
)
# Commission expense against the MT5 account's mirror, keyed by the payout; the payout is paid
# with the deal's ticket in the same transaction. Answers the entry's key.
book_ib_mt5_payout = Step("book_ib_mt5_payout", Mt5PayoutBooking, str, policies.DATABASE)
# The payout could not be paid: needs_attention with the reason and its audit row.
mark_ib_payout_needs_attention = Step(
    "mark_ib_payout_needs_attention", PayoutAttention, type(None), policies.DATABASE
)
# Fraud signals (domain.ib.fraud) stored as flags, once per IB, rule and evidence key. Flags
# inform finance and never hold payouts back, so this step gives up after a few attempts (the
# cycle logs it and opens the payouts; the next cycle looks again) instead of retrying forever
# in front of them.
FRAUD_CHECK = policies.Policy(
    timeout=policies.BULK.timeout,
    retry=RetryPolicy(
        initial_interval=timedelta(seconds=1),
        maximum_interval=timedelta(seconds=30),
        maximum_attempts=5,
    ),
    heartbeat=policies.BULK.heartbeat,
)
flag_ib_fraud = Step("flag_ib_fraud", FraudCheck, FraudCheckSummary, FRAUD_CHECK)
