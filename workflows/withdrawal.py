"""A withdrawal: the money leaves the client's wallet or MT5 account, is approved, and is paid
out by the processor. Each step's compensation is registered where the step is taken.

1. take the money into the hold: from the wallet (refused beyond its balance) or from MT5
   (free margin checked, then `trade/balance` debit; undone by a re-credit);
2. checks; a flagged or large withdrawal waits for two different finance officers (update
   `decide`, four-eyes); one rejection ends it;
3. payout through the processor, keyed by the payment's reference;
4. wait for the processor's verdict (signal `payment_event`): settled → the hold is paid out in
   the books; failed → every step above is undone (MT5 re-credited, hold released).

Nothing waits without a timer (`WithdrawalInput.timers`): a verdict that does not come is asked
of the processor (`poll_payout_status`, whose answer is taken as its webhook would be) and, still
pending, escalated to finance once while the polling goes on; an approval nobody gives within
its SLA is escalated once.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from contracts import funds, withdrawal
    from contracts.funds import (
        DECIDE,
        PAYMENT_EVENT,
        DecisionOutcome,
        MarkMovement,
        MovementRef,
        MovementResult,
        PaymentRef,
        RecordDecision,
        StaffDecision,
        StaffId,
    )
    from contracts.withdrawal import WITHDRAWAL, WithdrawalInput
    from domain.money_flows import MovementKind
    from domain.payment_checks import APPROVALS_NEEDED
    from domain.payments import FinanceCaseKind, PaymentEvent, PaymentEventKind, PaymentStatus
    from domain.wallets import capture_hold

# Checked by the workflow sandbox like this module (not passed through): workflow code.
from workflows.funds import (
    Refused,
    Saga,
    book,
    escalate,
    failure_text,
    finish_first,
    hours,
    notify,
    show_movement,
    show_status,
    unstoppable,
    wait_or_escalate,
)

PAYOUT_OUTCOMES = (PaymentEventKind.PAYOUT_SETTLED, PaymentEventKind.PAYOUT_FAILED)
# `workflow.patched` ids. Since this change a payout without a verdict is asked of the processor
# after `payout_poll_after` (then every `payout_poll_every`) and escalated after
# `payout_escalate_after`; before, the workflow waited for the webhook alone.
POLL_PAYOUT_VERDICT = "withdrawal-poll-payout-verdict"
# Since this change a withdrawal awaiting four-eyes approval longer than `held_decision_sla` is
# escalated once (a `decision_overdue` case); before, it waited without a timer.
FOUR_EYES_SLA = "withdrawal-four-eyes-sla"


@workflow.defn(name=WITHDRAWAL.name)
class WithdrawalWorkflow:
    @workflow.init
    def __init__(self, request: WithdrawalInput) -> None:
        self._request = request
        self._events: dict[str, PaymentEvent] = {}
        self._status = PaymentStatus.INITIATED
        self._approvers: list[StaffId] = []
        self._rejection: StaffDecision | None = None

    @workflow.signal(name=PAYMENT_EVENT.name)
    def payment_event(self, event: PaymentEvent) -> None:
        self._events.setdefault(event.event_id, event)

    @workflow.update(name=DECIDE.name)
    async def decide(self, decision: StaffDecision) -> DecisionOutcome:
        if decision.approve:
            self._approvers.append(decision.staff_id)
        else:
            self._rejection = decision
        await finish_first(
            funds.record_decision(
                RecordDecision(
                    payment_id=self._request.payment_id,
                    decision=decision,
                    final=not decision.approve or len(self._approvers) >= APPROVALS_NEEDED,
                )
            )
        )
        # The state this decision led to, not the one it met: a final decision is answered once
        # the run has moved on from waiting (released for payout, or rejected). A wait on the
        # workflow's own state: it issues no command, so a running history replays unchanged.
        await workflow.wait_condition(
            lambda: not self._decided() or self._status is not PaymentStatus.PENDING_APPROVAL
        )
        return DecisionOutcome(status=self._status, approvals=len(self._approvers))

    @decide.validator
    def _four_eyes(self, decision: StaffDecision) -> None:
        if self._status is not PaymentStatus.PENDING_APPROVAL or self._decided():
            raise ValueError(f"the withdrawal is {self._status.value}: there is nothing to decide")
        if "finance" not in decision.roles:
            raise ValueError("only a finance officer decides on a withdrawal")
        if decision.staff_id in self._approvers:
            raise ValueError("you have approved this withdrawal already: a second officer must")

    @workflow.run
    async def run(self, request: WithdrawalInput) -> MovementResult:
        show_movement(request.client_id, request.reference, PaymentStatus.INITIATED)
        movement = MovementRef(kind=MovementKind.PAYMENT, id=request.payment_id)
        saga = Saga("withdrawal", request.client_id, request.reference, movement)
        return await saga.run(lambda: self._withdraw(saga))

    async def _withdraw(self, saga: Saga) -> MovementResult:
        request = self._request
        payment = PaymentRef(payment_id=request.payment_id)
        await saga.take_from(
            request.source, request.amount, then=PaymentStatus.FUNDS_RESERVED, purpose="wd"
        )

        assessment = await finish_first(withdrawal.assess_withdrawal(payment))
        if assessment.flags:
            self._status = PaymentStatus.PENDING_APPROVAL
            show_status(self._status)
            if workflow.patched(FOUR_EYES_SLA):
                await wait_or_escalate(
                    self._decided, request.timers.held_decision_sla, self._approval_overdue
                )
            else:
                await workflow.wait_condition(self._decided)
            # The state the decision reached, before its update's handler answers with it (the
            # payout is sent next; a rejection is undone and ends the run).
            self._status = (
                PaymentStatus.REJECTED if self._rejection is not None else PaymentStatus.PAYOUT_SENT
            )
            await workflow.wait_condition(workflow.all_handlers_finished)
            if self._rejection is not None:
                raise Refused(
                    PaymentStatus.REJECTED, f"rejected by finance: {self._rejection.reason}"
                )

        # Point of no return: the money is with the processor; a cancellation is refused.
        return await unstoppable(self._pay_out(saga))

    async def _pay_out(self, saga: Saga) -> MovementResult:
        request = self._request
        self._status = PaymentStatus.PAYOUT_SENT
        await saga.refusable(withdrawal.send_payout(PaymentRef(payment_id=request.payment_id)))
        show_status(PaymentStatus.PAYOUT_SENT)
        if workflow.patched(POLL_PAYOUT_VERDICT):
            await self._await_verdict(saga)
        else:
            await workflow.wait_condition(lambda: self._payout_outcome() is not None)
        outcome = self._payout_outcome()
        if outcome is None:
            raise ApplicationError(
                f"withdrawal {request.reference}: no payout outcome after waiting for one",
                type="PayoutOutcomeMissing",
                non_retryable=True,
            )
        if outcome.kind is PaymentEventKind.PAYOUT_FAILED:
            raise Refused(PaymentStatus.FAILED, "the processor could not pay it out")
        # The processor has paid: from here nothing is given back, whatever fails (a failing
        # booking leaves the money in the hold and the workflow failed, for operations).
        saga.complete()
        await book(
            capture_hold(saga.key("paid-out"), saga.client, request.provider, request.amount),
            MarkMovement(movement=saga.movement, status=PaymentStatus.COMPLETED),
        )
        self._status = PaymentStatus.COMPLETED
        await notify(
            request.client_id,
            saga.key("notice"),
            "withdrawal_completed",
            f"{request.amount.amount} {request.amount.currency} paid out ({request.reference})",
        )
        return MovementResult(status=PaymentStatus.COMPLETED, credited=request.amount)

    async def _await_verdict(self, saga: Saga) -> None:
        """Wait for the payout's verdict. Without one, ask the processor `payout_poll_after`
        after sending and then every `payout_poll_every`; an answer is taken as the webhook
        would be. Still pending `payout_escalate_after` after sending (asked once more then):
        a finance case, once, and the asking goes on."""
        timers = self._request.timers
        sent = workflow.now()
        escalate_at = sent + timers.payout_escalate_after
        next_poll = sent + timers.payout_poll_after
        escalated = False
        while self._payout_outcome() is None:
            due = next_poll if escalated else min(next_poll, escalate_at)
            remaining = due - workflow.now()
            if remaining > timedelta(0):
                try:
                    await workflow.wait_condition(
                        lambda: self._payout_outcome() is not None, timeout=remaining
                    )
                    return
                except TimeoutError:
                    pass
            await self._poll_processor()
            if self._payout_outcome() is not None:
                return
            now = workflow.now()
            if now >= next_poll:
                next_poll = now + timers.payout_poll_every
            if not escalated and now >= escalate_at:
                escalated = True
                await escalate(
                    saga.movement,
                    saga.client_id,
                    saga.reference,
                    FinanceCaseKind.PAYOUT_VERDICT_OVERDUE,
                    self._request.amount,
                    f"payout via {self._request.provider} without a verdict "
                    f"{hours(timers.payout_escalate_after)} after it was sent: no webhook, and "
                    "the processor still says pending (or could not be asked); BrokerFlow keeps "
                    f"asking every {hours(timers.payout_poll_every)}",
                )

    async def _poll_processor(self) -> None:
        """Ask the processor; a verdict goes through the webhook's own handler."""
        try:
            verdict = await withdrawal.poll_payout_status(
                PaymentRef(payment_id=self._request.payment_id)
            )
        except ActivityError as failure:
            workflow.logger.warning(
                "withdrawal %s: asking %s about the payout failed (%s); asking again later",
                self._request.reference,
                self._request.provider,
                failure_text(failure),
            )
            return
        if verdict.event is not None:
            self.payment_event(verdict.event)

    async def _approval_overdue(self) -> None:
        request = self._request
        await escalate(
            MovementRef(kind=MovementKind.PAYMENT, id=request.payment_id),
            request.client_id,
            request.reference,
            FinanceCaseKind.DECISION_OVERDUE,
            request.amount,
            f"withdrawal awaiting four-eyes approval for more than "
            f"{hours(request.timers.held_decision_sla)} ({len(self._approvers)} of "
            f"{APPROVALS_NEEDED} approvals): finance must decide",
        )

    def _decided(self) -> bool:
        return self._rejection is not None or len(self._approvers) >= APPROVALS_NEEDED

    def _payout_outcome(self) -> PaymentEvent | None:
        settled = [e for e in self._events.values() if e.kind in PAYOUT_OUTCOMES]
        return settled[0] if settled else None
