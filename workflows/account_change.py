"""One change to a live MT5 account: leverage, group, trading rights, or closure.

1. a leverage above the client's own cap (but within the regulatory one) waits for a
   compliance decision (update `decide`: approve or reject, one decision); an untouched request
   is escalated after `sla.review`;
2. the MT5 user is read (the change's `before`);
3. the change is applied with `user/update`, with absolute values so a retry is harmless; a
   closure is refused while positions are open or money is on the account;
4. the change, the account row and the audit entry (before/after) are written together; the
   client is told of a leverage decision.

A refusal by MT5 or by the closure rule fails the workflow with that error's type (e.g.
`AccountNotEmpty`, `Mt5GroupCurrencyMismatch`) once the change is marked failed with its reason.
"""

from __future__ import annotations

from typing import NoReturn

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from contracts import account_change as change_steps
    from contracts.account_change import (
        ACCOUNT_CHANGE,
        ACCOUNT_CHANGE_DECIDE,
        ACCOUNT_CHANGE_STATE,
        AccountChangeFacts,
        AccountChangeInput,
        AccountChangeResult,
        AccountChangeView,
        ApplyChangeInput,
        ChangeRef,
        EscalateChangeInput,
        MarkChangeFailedInput,
        Mt5AccountRead,
        ReadMt5AccountInput,
        RecordChangeAppliedInput,
        RecordChangeDecisionInput,
        account_change_workflow_id,
    )
    from contracts.client_mail import ClientMailInput, MailTemplate
    from contracts.kyc import OfficerDecision
    from domain.accounts import AccountChangeKind, AccountChangeStatus, AccountStatus
    from domain.kyc import ReviewAction
    from domain.mt5 import with_login_disabled, with_trading_disabled, with_trading_enabled
    from domain.roles import StaffRole

# Checked by the workflow sandbox like this module (not passed through): workflow code.
from workflows.client_mail import send_mail

__all__ = ["AccountChangeWorkflow"]

FINISHED = frozenset(
    {AccountChangeStatus.APPLIED, AccountChangeStatus.REJECTED, AccountChangeStatus.FAILED}
)


@workflow.defn(name=ACCOUNT_CHANGE.name)
class AccountChangeWorkflow:
    @workflow.init
    def __init__(self, request: AccountChangeInput) -> None:
        self._request = request
        self._id = account_change_workflow_id(request.change_id)
        self._status = (
            AccountChangeStatus.PENDING_APPROVAL
            if request.needs_approval
            else AccountChangeStatus.APPLYING
        )
        self._decided_by: OfficerDecision | None = None
        self._reason: str | None = None
        self._escalated = False
        self._busy = False

    @workflow.query(name=ACCOUNT_CHANGE_STATE.name)
    def state(self) -> AccountChangeView:
        return AccountChangeView(
            change_id=self._request.change_id,
            status=self._status,
            escalated=self._escalated,
            decided_by=None if self._decided_by is None else self._decided_by.actor.staff_id,
            reason=self._reason,
        )

    @workflow.update(name=ACCOUNT_CHANGE_DECIDE.name)
    async def decide(self, request: OfficerDecision) -> AccountChangeView:
        # Checked again, and taken, before the first await: of two updates accepted together
        # only the first one decides.
        self._check(request)
        self._busy = True
        try:
            approve = request.decision.action is ReviewAction.APPROVE
            await change_steps.record_account_change_decision(
                RecordChangeDecisionInput(
                    change_id=self._request.change_id,
                    actor=request.actor,
                    approve=approve,
                    reason=request.decision.reason,
                    at=workflow.now(),
                )
            )
            self._decided_by = request
            self._reason = request.decision.reason
            self._status = AccountChangeStatus.APPLYING if approve else AccountChangeStatus.REJECTED
        finally:
            self._busy = False
        return self.state()

    @decide.validator
    def _validate_decision(self, request: OfficerDecision) -> None:
        self._check(request)

    def _check(self, request: OfficerDecision) -> None:
        if self._busy:
            raise ApplicationError("a decision on this change is being recorded", type="Conflict")
        if self._status is not AccountChangeStatus.PENDING_APPROVAL or self._decided_by:
            raise ApplicationError(
                f"the change is {self._status.value}: there is nothing to decide", type="Conflict"
            )
        if request.decision.action is ReviewAction.REQUEST_INFO:
            raise ApplicationError("an account change is approved or rejected", type="InvalidInput")
        if StaffRole.COMPLIANCE.value not in request.actor.roles:
            raise ApplicationError(
                "only a compliance officer decides on an account change", type="Forbidden"
            )
        if request.decision.officer_id != str(request.actor.staff_id):
            raise ApplicationError(
                "the decision's officer is not the staff member sending it", type="InvalidInput"
            )

    @workflow.run
    async def run(self, request: AccountChangeInput) -> AccountChangeResult:
        facts = await change_steps.load_account_change(ChangeRef(change_id=request.change_id))
        if request.needs_approval:
            await self._wait_for_decision()
            if self._status is AccountChangeStatus.REJECTED:
                await self._tell_leverage(facts, approved=False)
                return AccountChangeResult(status=self._status, reason=self._reason)
        self._status = AccountChangeStatus.APPLYING
        if facts.account_status is AccountStatus.CLOSED:
            await self._fail("AccountClosed", f"account {facts.login} is closed")

        before = await change_steps.read_mt5_account(
            facts.server, ReadMt5AccountInput(change_id=request.change_id, login=facts.login)
        )
        change, account_status = await self._target(facts, before)
        try:
            after = await change_steps.apply_account_change(facts.server, change)
        except ActivityError as failure:
            cause = failure.cause
            if isinstance(cause, ApplicationError) and cause.non_retryable:
                await self._fail(cause.type or "Mt5Refused", cause.message)
            raise
        await change_steps.record_account_change_applied(
            RecordChangeAppliedInput(
                change_id=request.change_id,
                actor=request.requested_by,
                before=before,
                after=after,
                account_status=account_status,
            )
        )
        self._status = AccountChangeStatus.APPLIED
        await self._tell_leverage(facts, approved=True)
        return AccountChangeResult(status=self._status, before=before, after=after)

    async def _wait_for_decision(self) -> None:
        try:
            await workflow.wait_condition(
                lambda: self._status is not AccountChangeStatus.PENDING_APPROVAL,
                timeout=self._request.sla.review,
            )
        except TimeoutError:
            if not self._busy:
                self._escalated = True
                await change_steps.escalate_account_change(
                    EscalateChangeInput(change_id=self._request.change_id, at=workflow.now())
                )
            await workflow.wait_condition(
                lambda: self._status is not AccountChangeStatus.PENDING_APPROVAL
            )
        await workflow.wait_condition(workflow.all_handlers_finished)

    async def _target(
        self, facts: AccountChangeFacts, before: Mt5AccountRead
    ) -> tuple[ApplyChangeInput, AccountStatus]:
        """The `user/update` to send (absolute values) and the account's status after it."""
        request = self._request
        kind = request.kind
        base = {"change_id": request.change_id, "login": facts.login}
        if kind is AccountChangeKind.LEVERAGE and request.leverage:
            return ApplyChangeInput(**base, leverage=request.leverage), facts.account_status
        if kind is AccountChangeKind.GROUP and request.group:
            return ApplyChangeInput(**base, group=request.group), facts.account_status
        if kind is AccountChangeKind.DISABLE_TRADING:
            rights = int(with_trading_disabled(before.rights))
            return ApplyChangeInput(**base, rights=rights), AccountStatus.TRADING_DISABLED
        if kind is AccountChangeKind.ENABLE_TRADING:
            rights = int(with_trading_enabled(before.rights))
            return ApplyChangeInput(**base, rights=rights), AccountStatus.ACTIVE
        if kind is AccountChangeKind.CLOSE:
            rights = int(with_login_disabled(with_trading_disabled(before.rights)))
            closing = ApplyChangeInput(**base, rights=rights, require_empty=True)
            return closing, AccountStatus.CLOSED
        await self._fail("InvalidInput", f"a {kind.value} change needs its new value")

    async def _fail(self, error_type: str, reason: str) -> NoReturn:
        """Mark the change failed with its reason, then fail the workflow with that type."""
        await change_steps.mark_account_change_failed(
            MarkChangeFailedInput(
                change_id=self._request.change_id, reason=reason, error_type=error_type
            )
        )
        self._status = AccountChangeStatus.FAILED
        self._reason = reason
        raise ApplicationError(reason, type=error_type, non_retryable=True)

    async def _tell_leverage(self, facts: AccountChangeFacts, *, approved: bool) -> None:
        if self._request.kind is not AccountChangeKind.LEVERAGE:
            return
        context = {
            "login": str(facts.login),
            "leverage": str(self._request.leverage),
            "approved": "true" if approved else "false",
        }
        if not approved and self._reason:
            context["reason"] = self._reason
        await send_mail(
            ClientMailInput(
                key=f"{self._id}:leverage-decided",
                client_id=facts.client_id,
                template=MailTemplate.LEVERAGE_DECIDED,
                context=context,
            )
        )
