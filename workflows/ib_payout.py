"""IB payouts, in two workflows.

`IbPayoutCycle` (one Temporal Schedule per payout frequency starts it):
1. accrue the commission ledger from the deals, the period and the week before it read again
   (late deals get their rows, corrected ones their adjustments);
2. open one payout per IB of the frequency and currency over its unpaid rows;
3. start each payout's own workflow, which outlives the cycle (approvals take days).

`IbPayout`, one per payout:
1. render the statement PDF and store it (the payout is `statement_ready`);
2. wait for finance (update `decide`): above the threshold two different finance officers
   approve; one rejection ends it;
3. credit the IB's wallet through the ledger (balanced, keyed by the payout): paid.
The compensation of step 2 of the cycle for this payout (`release_ib_payout`: its rows go back
to the next cycle) runs when the payout is rejected or stops before it is credited.
"""

from __future__ import annotations

import asyncio

from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from contracts import ib_payout
    from contracts.funds import StaffDecision
    from contracts.ib_payout import (
        DECIDE,
        HISTORY_SECONDS,
        IB_PAYOUT,
        IB_PAYOUT_CYCLE,
        RECHECK_SECONDS,
        AccrualRequest,
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
        ib_payout_workflow_id,
        last_full_period,
    )

from workflows.funds import finish_first, unstoppable

FINANCE = "finance"


@workflow.defn(name=IB_PAYOUT_CYCLE.name)
class IbPayoutCycleWorkflow:
    @workflow.run
    async def run(self, request: PayoutCycleInput) -> PayoutCycleResult:
        if request.period_start is None or request.period_end is None:
            now = int(workflow.now().timestamp()) + request.server_clock_offset
            start, end = last_full_period(request.frequency, now)
        else:
            start, end = request.period_start, request.period_end
        accrued = await ib_payout.accrue_ib_commissions(
            AccrualRequest(
                start=start - RECHECK_SECONDS,
                end=end,
                history_from=start - RECHECK_SECONDS - HISTORY_SECONDS,
            )
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
        payout = PayoutRef(payout_id=request.payout_id)
        try:
            statement = await ib_payout.render_ib_statement(payout)
            self._needed = 2 if statement.amount > request.four_eyes_above else 1
            self._status = PayoutStatus.STATEMENT_READY
            await workflow.wait_condition(self._decided)
            await workflow.wait_condition(workflow.all_handlers_finished)
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
            if isinstance(stop, _Rejected):
                self._status = PayoutStatus.REJECTED
                return PayoutResult(status=PayoutStatus.REJECTED)
            raise
        # Approved: from here the credit must land, whatever cancellation is asked for.
        key = await unstoppable(ib_payout.credit_ib_payout(payout))
        self._status = PayoutStatus.PAID
        return PayoutResult(status=PayoutStatus.PAID, ledger_key=key)

    def _decided(self) -> bool:
        return self._rejection is not None or len(self._approvers) >= self._needed
