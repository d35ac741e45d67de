"""IB payouts, in two workflows.

`IbPayoutCycle` (one Temporal Schedule per payout frequency starts it):
1. accrue the commission ledger from the deals, the period and the week before it read again
   (late deals get their rows, corrected ones their adjustments);
2. look for fraud signals in the same deals and store them as flags on the IBs (finance sees
   them with the payouts; they never block a payout by themselves);
3. open one payout per IB of the frequency and currency over its unpaid rows;
4. start each payout's own workflow, which outlives the cycle (approvals take days).

`IbPayout`, one per payout:
1. render the statement PDF and store it (the payout is `statement_ready`);
2. wait for finance (update `decide`): above the threshold two different finance officers
   approve; one rejection ends it;
3. pay it where the IB is paid: its wallet through the ledger (balanced, keyed by the payout),
   or its MT5 account through `trade/balance` (the deposits' MT5 step, exactly once by its
   comment) and then the ledger: paid. MT5 refusing the credit for good leaves the payout
   `needs_attention` with MT5's reason (nothing paid, the rows stay with it).
The compensation of step 2 of the cycle for this payout (`release_ib_payout`: its rows go back
to the next cycle) runs when the payout is rejected or stops before it is credited.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ActivityError, ApplicationError, WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from contracts import funds, ib_payout
    from contracts.funds import BalanceChange, StaffDecision
    from contracts.ib_payout import (
        APPROVE_PAY_AGAIN,
        DECIDE,
        HISTORY_SECONDS,
        IB_PAYOUT,
        IB_PAYOUT_AGAIN,
        IB_PAYOUT_CYCLE,
        PAY_AGAIN_WAIT,
        RECHECK_SECONDS,
        AccrualRequest,
        FraudCheck,
        Mt5PayoutBooking,
        PayAgainInput,
        PayAgainRecord,
        PayoutAttention,
        PayoutCycleInput,
        PayoutCycleResult,
        PayoutDecisionOutcome,
        PayoutDecisionRecord,
        PayoutInput,
        PayoutPeriod,
        PayoutRef,
        PayoutResult,
        PayoutStatus,
        ReleasePayout,
        cycle_period,
        ib_payout_workflow_id,
        mt5_payout_comment,
    )

from workflows.funds import (
    failure_text,
    finish_first,
    refusal_of,
    show_movement,
    show_status,
    unstoppable,
)

FINANCE = "finance"
# Since this change an approved payout is paid where the IB is paid (its wallet or its MT5
# account); before it, always to the wallet. Histories recorded before it replay the old way.
PAY_WHERE_THE_IB_IS_PAID = "ib-payout-to-mt5-account"
# Since this change the cycle flags fraud signals before it opens the payouts.
CYCLE_FLAGS_FRAUD = "ib-payout-cycle-fraud-flags"
# Since this change a payout's run carries the search attributes of `contracts.funds`
# (docs/payments.md): the payout's id as its reference, its `PayoutStatus` and since when
# (no client: an IB is not one), upserted as the payout's row moves. A run started before it
# carries none to its end.
PAYOUT_SEARCH_ATTRIBUTES = "ib-payout-search-attributes"


@workflow.defn(name=IB_PAYOUT_CYCLE.name)
class IbPayoutCycleWorkflow:
    @workflow.run
    async def run(self, request: PayoutCycleInput) -> PayoutCycleResult:
        # Each server's clock (`server_clock_offsets`) since it was added; a run started before
        # carries none and reads its period on the one shared offset, as it did (same commands).
        start, end = cycle_period(request, int(workflow.now().timestamp()))
        accrued = await ib_payout.accrue_ib_commissions(
            AccrualRequest(
                start=start - RECHECK_SECONDS,
                end=end,
                history_from=start - RECHECK_SECONDS - HISTORY_SECONDS,
            )
        )
        if workflow.patched(CYCLE_FLAGS_FRAUD):
            try:
                await ib_payout.flag_ib_fraud(FraudCheck(start=start - RECHECK_SECONDS, end=end))
            except ActivityError as failure:
                # Flags inform finance, they never hold payouts back: the next cycle looks again.
                workflow.logger.error(
                    "IB fraud check failed, payouts opened without it: %s", failure
                )
        opened = await ib_payout.open_ib_payouts(
            PayoutPeriod(frequency=request.frequency, start=start, end=end)
        )
        for payout_id in opened.payouts:
            try:
                await IB_PAYOUT.start_as_child(
                    PayoutInput(payout_id=payout_id, four_eyes_above=request.four_eyes_above),
                    id=ib_payout_workflow_id(payout_id),
                    parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                )
            except WorkflowAlreadyStartedError:
                pass  # a cycle run again for the period: that payout is on its way already
        return PayoutCycleResult(
            rows=accrued.rows, adjustments=accrued.adjustments, payouts=opened.payouts
        )


class _Rejected(Exception):
    pass


@workflow.defn(name=IB_PAYOUT.name)
class IbPayoutWorkflow:
    @workflow.init
    def __init__(self, request: PayoutInput) -> None:
        self._request = request
        self._status = PayoutStatus.ACCRUED
        self._needed = 1
        self._approvers: list[str] = []
        self._rejection: StaffDecision | None = None

    @workflow.update(name=DECIDE.name)
    async def decide(self, decision: StaffDecision) -> PayoutDecisionOutcome:
        new_status: PayoutStatus | None = None
        if decision.approve:
            self._approvers.append(str(decision.staff_id))
            if len(self._approvers) >= self._needed:
                new_status = PayoutStatus.APPROVED
        else:
            self._rejection = decision
            new_status = PayoutStatus.REJECTED
        await finish_first(
            ib_payout.record_ib_payout_decision(
                PayoutDecisionRecord(
                    payout_id=self._request.payout_id, decision=decision, new_status=new_status
                )
            )
        )
        if new_status is not None:
            self._status = new_status
        return PayoutDecisionOutcome(
            status=self._status, approvals=len(self._approvers), needed=self._needed
        )

    @decide.validator
    def _four_eyes(self, decision: StaffDecision) -> None:
        if self._status is not PayoutStatus.STATEMENT_READY or self._decided():
            raise ValueError(f"the payout is {self._status.value}: there is nothing to decide")
        if FINANCE not in decision.roles:
            raise ValueError("only a finance officer decides on an IB payout")
        if str(decision.staff_id) in self._approvers:
            raise ValueError("you have approved this payout already: a second officer must")

    @workflow.run
    async def run(self, request: PayoutInput) -> PayoutResult:
        show_movement(
            None, str(request.payout_id), PayoutStatus.ACCRUED, patch=PAYOUT_SEARCH_ATTRIBUTES
        )
        payout = PayoutRef(payout_id=request.payout_id)
        try:
            statement = await ib_payout.render_ib_statement(payout)
            self._needed = 2 if statement.amount > request.four_eyes_above else 1
            self._status = PayoutStatus.STATEMENT_READY
            show_status(self._status)
            await workflow.wait_condition(self._decided)
            await workflow.wait_condition(workflow.all_handlers_finished)
            show_status(self._status)  # approved, or rejected
            if self._rejection is not None:
                raise _Rejected(self._rejection.reason)
        except (Exception, asyncio.CancelledError) as stop:
            # Undoes `open_ib_payouts` for this payout: rejected, its rows free again.
            reason = f"rejected by finance: {stop}" if isinstance(stop, _Rejected) else repr(stop)
            await unstoppable(
                ib_payout.release_ib_payout(
                    ReleasePayout(payout_id=request.payout_id, reason=reason[:1000])
                )
            )
            show_status(PayoutStatus.REJECTED)  # the release leaves the row rejected
            if isinstance(stop, _Rejected):
                self._status = PayoutStatus.REJECTED
                return PayoutResult(status=PayoutStatus.REJECTED)
            raise
        # Approved: from here the credit must land, whatever cancellation is asked for.
        if workflow.patched(PAY_WHERE_THE_IB_IS_PAID):
            result = await unstoppable(self._pay(payout))
            self._status = result.status
            show_status(result.status)
            return result
        key = await unstoppable(ib_payout.credit_ib_payout(payout))
        self._status = PayoutStatus.PAID
        show_status(self._status)
        return PayoutResult(status=PayoutStatus.PAID, ledger_key=key)

    async def _pay(self, payout: PayoutRef) -> PayoutResult:
        return await pay_where_the_ib_is_paid(payout)

    def _decided(self) -> bool:
        return self._rejection is not None or len(self._approvers) >= self._needed


async def pay_where_the_ib_is_paid(payout: PayoutRef) -> PayoutResult:
    """The approved payout to the IB's wallet, or to its MT5 account: `trade/balance` once
    (its comment is the key: an attempt whose answer was lost is found by the next one,
    never credited twice), then the books. A refusal by MT5 (or a currency the account
    does not hold) pays nothing and leaves the payout `needs_attention`, with the reason."""
    destination = await ib_payout.ib_payout_destination(payout)
    if destination.problem is not None:
        return await _needs_attention(payout, destination.problem)
    account = destination.mt5
    if account is None:
        key = await ib_payout.credit_ib_payout(payout)
        return PayoutResult(status=PayoutStatus.PAID, ledger_key=key)
    credit = BalanceChange(
        account=account,
        amount=destination.amount,
        comment=mt5_payout_comment(payout.payout_id),
        requested_at=workflow.now(),
    )
    try:
        ticket = await funds.mt5_credit_balance(account.server, credit)
    except ActivityError as failure:
        refusal = refusal_of(failure)
        if refusal is None:
            raise
        return await _needs_attention(
            payout, f"MT5 {account.server}/{account.login} refused the credit: {refusal}"
        )
    key = await ib_payout.book_ib_mt5_payout(
        Mt5PayoutBooking(payout_id=payout.payout_id, account=account, ticket=ticket)
    )
    return PayoutResult(status=PayoutStatus.PAID, ledger_key=key)


async def _needs_attention(payout: PayoutRef, reason: str) -> PayoutResult:
    workflow.logger.error("IB payout %s needs attention: %s", payout.payout_id, reason)
    reason = reason[:1000]
    await ib_payout.mark_ib_payout_needs_attention(
        PayoutAttention(payout_id=payout.payout_id, reason=reason)
    )
    return PayoutResult(status=PayoutStatus.NEEDS_ATTENTION, reason=reason)


@workflow.defn(name=IB_PAYOUT_AGAIN.name)
class IbPayoutAgainWorkflow:
    """A payout left `needs_attention` paid again, where the IB is paid now (finance corrected
    its destination, or MT5 takes the credit now): finance officers approve through
    `approve_pay_again` (the first one's request starts this run; above the threshold a second,
    different officer), each approval audited; then the payment of `IbPayout`, the same steps
    and keys (the MT5 comment, the ledger entry's key), so it pays once. Refused, it leaves the
    payout `needs_attention` again with the new reason. Without enough approvals within
    `PAY_AGAIN_WAIT` it lapses, nothing changed; a payout released meanwhile ends it."""

    @workflow.init
    def __init__(self, request: PayAgainInput) -> None:
        self._request = request
        self._needed = 2 if request.amount > request.four_eyes_above else 1
        self._approvers: list[str] = []
        self._status = PayoutStatus.NEEDS_ATTENTION
        self._stale: str | None = None
        self._lock = asyncio.Lock()  # approvals recorded one at a time

    @workflow.update(name=APPROVE_PAY_AGAIN.name)
    async def approve(self, decision: StaffDecision) -> PayoutDecisionOutcome:
        async with self._lock:
            self._check(decision)
            approvers = [*self._approvers, str(decision.staff_id)]
            approved = len(approvers) >= self._needed
            try:
                await finish_first(
                    ib_payout.record_ib_payout_pay_again(
                        PayAgainRecord(
                            payout_id=self._request.payout_id,
                            decision=decision,
                            approvers=tuple(approvers),
                            needed=self._needed,
                            approved=approved,
                        )
                    )
                )
            except ActivityError as failure:
                self._stale = failure_text(failure)
                raise ApplicationError(self._stale, type="PayoutNotNeedingAttention") from None
            self._approvers = approvers
            if approved:
                self._status = PayoutStatus.APPROVED
            return PayoutDecisionOutcome(
                status=self._status, approvals=len(approvers), needed=self._needed
            )

    @approve.validator
    def _valid(self, decision: StaffDecision) -> None:
        self._check(decision)

    def _check(self, decision: StaffDecision) -> None:
        if self._stale is not None or self._status is not PayoutStatus.NEEDS_ATTENTION:
            raise ValueError("the payout is being paid again already, or no longer needs it")
        if FINANCE not in decision.roles:
            raise ValueError("only a finance officer asks for an IB payout to be paid again")
        if not decision.approve:
            raise ValueError("to give up paying it again, release the payout")
        if str(decision.staff_id) in self._approvers:
            raise ValueError("you have approved paying it again already: a second officer must")

    @workflow.run
    async def run(self, request: PayAgainInput) -> PayoutResult:
        try:
            await workflow.wait_condition(
                lambda: self._stale is not None or self._status is PayoutStatus.APPROVED,
                timeout=PAY_AGAIN_WAIT,
            )
        except TimeoutError:
            await workflow.wait_condition(workflow.all_handlers_finished)
            if self._status is not PayoutStatus.APPROVED:
                return PayoutResult(
                    status=PayoutStatus.NEEDS_ATTENTION,
                    reason="paying it again was not approved in time: nothing was paid",
                )
        await workflow.wait_condition(workflow.all_handlers_finished)
        if self._status is not PayoutStatus.APPROVED:
            raise ApplicationError(
                f"nothing paid: {self._stale}", type="PayoutNotNeedingAttention", non_retryable=True
            )
        # Approved: from here the credit must land (or be refused), whatever is asked.
        result = await unstoppable(pay_where_the_ib_is_paid(PayoutRef(payout_id=request.payout_id)))
        self._status = result.status
        return result
