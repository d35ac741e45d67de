"""A deposit: the client pays through a processor, the money is checked, then credited once to
the wallet or the MT5 account. The workflow's input, its signal and update, and the steps only a
deposit takes (the shared ones are in `contracts.funds`).
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
from contracts.process import Process, Update
from contracts.steps import Step
from domain.frozen import Frozen as Contract
from domain.money import Money
from domain.money_flows import Pocket
from domain.payment_checks import RiskFlag
from domain.payments import PaymentEvent, PaymentSession, PaymentTimers


# The id comes from the business key, so a second start of the same deposit is refused; it is
# how the API reaches a running deposit.
def deposit_workflow_id(payment_id: uuid.UUID) -> str:
    return f"deposit-{payment_id}"


class DepositInput(Contract):
    payment_id: uuid.UUID
    client_id: ClientId
    reference: str
    provider: str
    amount: Money
    destination: Pocket
    # A held deposit's decision SLA (`PaymentTimers.held_decision_sla`, from
    # `PaymentRules.timers()`). A run started before this existed gets the defaults.
    timers: PaymentTimers = Field(default_factory=PaymentTimers)


class InTransit(Contract):
    """A deposit bound for an MT5 account in `currency`: `receive_deposit` books it in transit
    (`domain.funds.accept_in_transit`, under `key`) in its own transaction when the checks pass
    and the money came in that currency; else the workflow books it later, as before."""

    key: str
    client_id: ClientId
    currency: str


class PaymentReceived(Contract):
    payment_id: uuid.UUID
    event: PaymentEvent
    # Since `workflows.deposit.FEWER_ROUND_TRIPS`, for `receive_deposit`: the processor's answer
    # when the money arrived before the deposit stored it (`record_payment_session`), stored
    # first if the request did not (the webhook found the payment: its request has committed).
    session: PaymentSession | None = None
    in_transit: InTransit | None = None


class DepositAssessment(Contract):
    flags: tuple[RiskFlag, ...]
    amount: Money  # what the processor collected: what the client gets
    in_transit: bool = False  # booked in transit by the step (`PaymentReceived.in_transit`)


class ProcessorEvents(Contract):
    """What the processor says it sent about the deposit, with its events' own ids."""

    events: tuple[PaymentEvent, ...] = ()


class SessionWanted(Contract):
    """The argument of `PAYMENT_SESSION` (none yet; a model so fields can come later)."""


class OpenPaymentSession(Contract):
    """What the processor needs for the payment page or transfer reference, from the request
    itself: the payment's row is not committed yet while the request waits for the answer."""

    payment_id: uuid.UUID
    client_id: ClientId
    reference: str
    provider: str
    amount: Money


class RecordPaymentSession(Contract):
    payment_id: uuid.UUID
    session: PaymentSession


DEPOSIT = Process("Deposit", DepositInput, MovementResult)
# It hears `funds.PAYMENT_EVENT` (the processor's webhook) and `funds.DECIDE` (a compliance
# officer on a held deposit).

# The API sends it with the start (update-with-start) and answers the client with its result: the
# payment page (card) or the transfer reference (bank) in the request's own answer. Refused (the
# update fails) when the processor refused to open one.
PAYMENT_SESSION = Update("payment_session", SessionWanted, PaymentSession)

# A payment page (card) or a transfer reference (bank) from the processor.
start_processor_deposit = Step(
    "start_processor_deposit", PaymentRef, PaymentSession, policies.DATABASE
)
# Since `workflows.deposit.SESSION_IN_ANSWER`, the two halves of `start_processor_deposit`: the
# processor asked from the request's data (keyed by the reference, so asking again gives the same
# page or reference), then the answer on the payment once its row is committed: the API stores it
# in the request's own transaction when the update answered in time, and the step, which waits for
# that commit, finds it there (or stores it, when the request answered without it).
open_payment_session = Step(
    "open_payment_session", OpenPaymentSession, PaymentSession, policies.DATABASE
)
record_payment_session = Step(
    "record_payment_session", RecordPaymentSession, PaymentSession, policies.DATABASE
)
# The processor collected the money: booked into suspense until the checks pass.
record_payment_received = Step(
    "record_payment_received", PaymentReceived, type(None), policies.DATABASE
)
assess_deposit = Step("assess_deposit", PaymentRef, DepositAssessment, policies.DATABASE)
# Since `workflows.deposit.FEWER_LOCAL_STEPS`, the two above as one step in one transaction: the
# money booked into suspense and checked, the payment moved on to crediting or held (and, since
# `FEWER_ROUND_TRIPS`, a cleared deposit bound for MT5 booked in transit: `InTransit`).
receive_deposit = Step("receive_deposit", PaymentReceived, DepositAssessment, policies.DATABASE)
# A rejected deposit goes back where it came from, and out of the books' suspense.
return_payment_to_payer = Step("return_payment_to_payer", PaymentRef, type(None), policies.DATABASE)
# Asked when no webhook has settled the deposit for a while: a lost webhook loses no payment.
ask_processor_for_payment_events = Step(
    "ask_processor_for_payment_events", PaymentRef, ProcessorEvents, policies.PROCESSOR_QUERY
)
