"""A withdrawal: the money leaves the client's wallet or MT5 account, is approved, and is paid
out by the processor. The workflow's input, its signal and update, and the steps only a
withdrawal takes (the shared ones are in `contracts.funds`).
"""

from __future__ import annotations

import uuid

from pydantic import Field

from contracts import policies
from contracts.funds import (
    ClientId,
    MovementResult,
    PaymentRef,
)
from contracts.process import Process
from contracts.steps import Step
from domain.frozen import Frozen as Contract
from domain.money import Money
from domain.money_flows import Pocket
from domain.payment_checks import RiskFlag
from domain.payments import PaymentEvent, PaymentTimers


# The id comes from the business key, so a second start of the same withdrawal is refused; it
# is how the API reaches a running withdrawal.
def withdrawal_workflow_id(payment_id: uuid.UUID) -> str:
    return f"withdrawal-{payment_id}"


class WithdrawalInput(Contract):
    payment_id: uuid.UUID
    client_id: ClientId
    reference: str
    provider: str
    amount: Money
    source: Pocket
    # When the payout's verdict is asked for and escalated, and the four-eyes approval's SLA
    # (from `PaymentRules.timers()`). A run started before these existed gets the defaults.
    timers: PaymentTimers = Field(default_factory=PaymentTimers)


class WithdrawalAssessment(Contract):
    flags: tuple[RiskFlag, ...]  # any flag sends the withdrawal to four-eyes approval


class PayoutVerdict(Contract):
    """The processor's answer when asked about the payout: its verdict as the payment event the
    webhook would have brought (so the workflow takes it the one way it takes a webhook), or
    None while it is pending."""

    event: PaymentEvent | None = None


WITHDRAWAL = Process("Withdrawal", WithdrawalInput, MovementResult)
# It hears `funds.PAYMENT_EVENT` (the processor's verdict on the payout) and `funds.DECIDE` (a
# finance officer; four-eyes: two different officers approve).

assess_withdrawal = Step("assess_withdrawal", PaymentRef, WithdrawalAssessment, policies.DATABASE)
# The payout through the processor, keyed by the payment's reference; answers its payout id.
send_payout = Step("send_payout", PaymentRef, str, policies.DATABASE)

# The payout's status, asked of the processor when its verdict webhook is late.
poll_payout_status = Step("poll_payout_status", PaymentRef, PayoutVerdict, policies.PROCESSOR_QUERY)
