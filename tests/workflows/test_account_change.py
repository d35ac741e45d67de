"""The account-change workflow's logic, with its steps replaced by fakes of the same name."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal

import pytest
from temporalio.client import WorkflowFailureError, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from contracts import account_change as changes
from contracts import client_mail
from contracts.account_change import (
    ACCOUNT_CHANGE_DECIDE,
    AccountChangeInput,
    AccountChangeResult,
    AccountChangeView,
    ApplyChangeInput,
    RecordChangeAppliedInput,
    RecordChangeDecisionInput,
    account_change_workflow_id,
)
from contracts.client_mail import ClientMailInput
from contracts.kyc import OfficerDecision
from domain.accounts import AccountChangeKind, AccountChangeStatus, AccountStatus
from domain.kyc import KycSla, ReviewAction
from domain.mt5 import UserRights, with_trading_disabled
from tests.workflows.kyc_fakes import KycFakes, decision, kyc_workers, officer, until_status
from tests.workflows.money_fakes import replay, start_environment
from workflows.account_change import AccountChangeWorkflow

Handle = WorkflowHandle[AccountChangeWorkflow, AccountChangeResult]


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    environment = await start_environment()
    yield environment
    await environment.shutdown()


def change(kind: AccountChangeKind, **fields: object) -> AccountChangeInput:
    return AccountChangeInput.model_validate(
        {"change_id": uuid.uuid4(), "account_id": uuid.uuid4(), "kind": kind, **fields}
    )


async def start(env: WorkflowEnvironment, queue: str, request: AccountChangeInput) -> Handle:
    return await env.client.start_workflow(
        AccountChangeWorkflow.run,
        request,
        id=account_change_workflow_id(request.change_id),
        task_queue=queue,
    )


async def decide(handle: Handle, request: OfficerDecision) -> AccountChangeView:
    view: AccountChangeView = await handle.execute_update(
        ACCOUNT_CHANGE_DECIDE.name, request, result_type=AccountChangeView
    )
    return view


async def finish(handle: Handle) -> AccountChangeResult:
    result = await handle.result()
    await replay(handle, AccountChangeWorkflow)
    return result


async def pending(handle: Handle) -> None:
    await until_status(handle, AccountChangeStatus.PENDING_APPROVAL, view=AccountChangeView)


class TestLeverage:
    async def test_a_leverage_within_the_cap_is_applied_at_once(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = KycFakes()
        request = change(AccountChangeKind.LEVERAGE, leverage=20)
        async with kyc_workers(env, fakes, AccountChangeWorkflow) as queue:
            result = await finish(await start(env, queue, request))

        assert result.status is AccountChangeStatus.APPLIED
        assert (result.before, result.after) == (
            fakes.account.model_copy(update={"leverage": 30}),
            fakes.account,
        )
        assert fakes.steps() == [
            changes.load_account_change.name,
            changes.read_mt5_account.name,
            changes.apply_account_change.name,
            changes.record_account_change_applied.name,
            client_mail.send_client_mail.name,
        ]
        [applied] = fakes.inputs[changes.apply_account_change.name]
        assert applied == ApplyChangeInput(change_id=request.change_id, login=7001, leverage=20)
        [recorded] = fakes.inputs[changes.record_account_change_applied.name]
        assert recorded.actor is None  # the client who asked, named by the change's row
        assert (recorded.before.leverage, recorded.after.leverage) == (30, 20)
        [mail] = fakes.inputs[client_mail.send_client_mail.name]
        assert mail.context == {"login": "7001", "leverage": "20", "approved": "true"}

    async def test_a_leverage_above_the_cap_waits_for_compliance_and_is_applied(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = KycFakes()
        approver = officer()
        request = change(AccountChangeKind.LEVERAGE, leverage=100, needs_approval=True)
        async with kyc_workers(env, fakes, AccountChangeWorkflow) as queue:
            handle = await start(env, queue, request)
            await pending(handle)
            assert changes.read_mt5_account.name not in fakes.steps()
            with pytest.raises(WorkflowUpdateFailedError) as asking:
                await decide(handle, decision(approver, ReviewAction.REQUEST_INFO, "why"))
            assert "approved or rejected" in str(asking.value.cause)
            view = await decide(handle, decision(approver, ReviewAction.APPROVE))
            assert (view.status, view.decided_by) == (
                AccountChangeStatus.APPLYING,
                approver.staff_id,
            )
            result = await finish(handle)

        assert result.status is AccountChangeStatus.APPLIED
        assert fakes.steps()[:3] == [
            changes.load_account_change.name,
            changes.record_account_change_decision.name,
            changes.read_mt5_account.name,
        ]
        [approval] = fakes.inputs[changes.record_account_change_decision.name]
        assert isinstance(approval, RecordChangeDecisionInput)
        assert (approval.actor, approval.approve) == (approver, True)
        assert fakes.account.leverage == 100

    async def test_a_rejected_leverage_is_not_applied_and_the_client_is_told(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = KycFakes()
        request = change(AccountChangeKind.LEVERAGE, leverage=100, needs_approval=True)
        async with kyc_workers(env, fakes, AccountChangeWorkflow) as queue:
            handle = await start(env, queue, request)
            await pending(handle)
            view = await decide(handle, decision(officer(), ReviewAction.REJECT))
            assert view.status is AccountChangeStatus.REJECTED
            with pytest.raises(WorkflowUpdateFailedError) as again:
                await decide(handle, decision(officer(), ReviewAction.APPROVE))
            assert "nothing to decide" in str(again.value.cause)
            result = await finish(handle)

        assert result.status is AccountChangeStatus.REJECTED
        assert fakes.steps() == [
            changes.load_account_change.name,
            changes.record_account_change_decision.name,
            client_mail.send_client_mail.name,
        ]
        [mail] = fakes.inputs[client_mail.send_client_mail.name]
        assert isinstance(mail, ClientMailInput)
        assert mail.context["approved"] == "false"
        assert mail.context["reason"] == "reject: documents reviewed"

    async def test_a_request_nobody_decides_is_escalated_once(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = KycFakes()
        request = change(
            AccountChangeKind.LEVERAGE,
            leverage=100,
            needs_approval=True,
            sla=KycSla(review=timedelta(hours=4)),
        )
        async with kyc_workers(env, fakes, AccountChangeWorkflow) as queue:
            handle = await start(env, queue, request)
            await pending(handle)
            await env.sleep(timedelta(hours=5))
            await fakes.called(changes.escalate_account_change.name)
            await env.sleep(timedelta(days=3))
            view = await until_status(
                handle, AccountChangeStatus.PENDING_APPROVAL, view=AccountChangeView
            )
            assert view.escalated
            await decide(handle, decision(officer(), ReviewAction.APPROVE))
            await finish(handle)

        assert fakes.count(changes.escalate_account_change.name) == 1


class TestStaffChanges:
    async def test_disabling_trading_sets_the_bit_and_the_account_status(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = KycFakes()
        dealer = officer("dealer")
        request = change(AccountChangeKind.DISABLE_TRADING, requested_by=dealer)
        async with kyc_workers(env, fakes, AccountChangeWorkflow) as queue:
            result = await finish(await start(env, queue, request))

        assert result.status is AccountChangeStatus.APPLIED
        [applied] = fakes.inputs[changes.apply_account_change.name]
        assert applied.rights == int(with_trading_disabled(0x163))
        assert applied.rights & UserRights.ENABLED
        [recorded] = fakes.inputs[changes.record_account_change_applied.name]
        assert isinstance(recorded, RecordChangeAppliedInput)
        assert (recorded.actor, recorded.account_status) == (
            dealer,
            AccountStatus.TRADING_DISABLED,
        )
        assert client_mail.send_client_mail.name not in fakes.steps()

    async def test_closing_an_empty_account_disables_login_and_trading(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = KycFakes()
        request = change(AccountChangeKind.CLOSE, requested_by=officer("support"))
        async with kyc_workers(env, fakes, AccountChangeWorkflow) as queue:
            result = await finish(await start(env, queue, request))

        assert result.status is AccountChangeStatus.APPLIED
        [applied] = fakes.inputs[changes.apply_account_change.name]
        assert applied.require_empty
        assert applied.rights is not None
        assert not applied.rights & UserRights.ENABLED
        assert applied.rights & UserRights.TRADE_DISABLED
        [recorded] = fakes.inputs[changes.record_account_change_applied.name]
        assert recorded.account_status is AccountStatus.CLOSED

    async def test_closing_is_refused_while_positions_are_open(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = KycFakes(positions=2)
        request = change(AccountChangeKind.CLOSE, requested_by=officer("support"))
        async with kyc_workers(env, fakes, AccountChangeWorkflow) as queue:
            handle = await start(env, queue, request)
            with pytest.raises(WorkflowFailureError) as refused:
                await handle.result()
            await replay(handle, AccountChangeWorkflow)

        cause = refused.value.cause
        assert isinstance(cause, ApplicationError)
        assert (cause.type, cause.non_retryable) == ("AccountNotEmpty", True)
        assert fakes.steps()[-2:] == [
            changes.apply_account_change.name,
            changes.mark_account_change_failed.name,
        ]
        [failed] = fakes.inputs[changes.mark_account_change_failed.name]
        assert failed.error_type == "AccountNotEmpty"
        assert "2 open position" in failed.reason
        assert changes.record_account_change_applied.name not in fakes.steps()

    async def test_closing_is_refused_while_money_is_on_the_account(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = KycFakes()
        fakes.account = fakes.account.model_copy(update={"balance": Decimal("12.50")})
        request = change(AccountChangeKind.CLOSE, requested_by=officer("support"))
        async with kyc_workers(env, fakes, AccountChangeWorkflow) as queue:
            with pytest.raises(WorkflowFailureError):
                await (await start(env, queue, request)).result()

        assert fakes.count(changes.mark_account_change_failed.name) == 1

    async def test_a_group_of_another_currency_fails_for_good(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = KycFakes(fail_apply="Mt5GroupCurrencyMismatch")
        request = change(
            AccountChangeKind.GROUP, group="real\\uk\\standard", requested_by=officer("dealer")
        )
        async with kyc_workers(env, fakes, AccountChangeWorkflow) as queue:
            handle = await start(env, queue, request)
            with pytest.raises(WorkflowFailureError) as refused:
                await handle.result()

        cause = refused.value.cause
        assert isinstance(cause, ApplicationError)
        assert cause.type == "Mt5GroupCurrencyMismatch"
        [failed] = fakes.inputs[changes.mark_account_change_failed.name]
        assert failed.error_type == "Mt5GroupCurrencyMismatch"
        [applied] = fakes.inputs[changes.apply_account_change.name]
        assert applied.group == "real\\uk\\standard"

    async def test_a_closed_account_is_not_changed(self, env: WorkflowEnvironment) -> None:
        fakes = KycFakes(account_status=AccountStatus.CLOSED)
        request = change(AccountChangeKind.ENABLE_TRADING, requested_by=officer("dealer"))
        async with kyc_workers(env, fakes, AccountChangeWorkflow) as queue:
            with pytest.raises(WorkflowFailureError):
                await (await start(env, queue, request)).result()

        assert fakes.steps() == [
            changes.load_account_change.name,
            changes.mark_account_change_failed.name,
        ]
