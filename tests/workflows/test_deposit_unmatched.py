"""Money a deposit does not take is queued for finance (issue 11, defect 2): a second payment on
its reference, or a payment arriving after it expired, failed or was cancelled. And a take-back
MT5 refuses for good ends the deposit needs_attention with a finance case (defect 1, leftover)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from temporalio.testing import WorkflowEnvironment

from contracts import deposit, funds
from contracts import unmatched_funds as unmatched
from contracts.funds import MovementResult, OpenFinanceCase
from contracts.unmatched_funds import (
    RESOLVE_UNMATCHED,
    QueueUnmatchedFunds,
    ResolveUnmatched,
    UnmatchedOutcome,
)
from domain.payment_checks import RiskFlag
from domain.payments import (
    FinanceCaseKind,
    PaymentEventKind,
    PaymentStatus,
    UnmatchedAction,
    UnmatchedReason,
    UnmatchedStatus,
)
from tests.workflows.money_fakes import MoneyFakes, blocked_after, start_environment, usd, workers
from tests.workflows.refusal_fakes import RefusedAfterApplied
from tests.workflows.test_deposit import (
    decide,
    decision,
    deposit_request,
    finish,
    mt5_pocket,
    pay,
    start,
    wallet_pocket,
)
from workflows.deposit import DepositWorkflow
from workflows.unmatched_funds import ResolveUnmatchedFundsWorkflow

ANNOUNCED = usd("1000.00")
HALF = usd("500.00")


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    environment = await start_environment()
    yield environment
    await environment.shutdown()


def queued(fakes: MoneyFakes) -> list[QueueUnmatchedFunds]:
    return list(fakes.inputs[unmatched.queue_unmatched_funds.name])


class TestTwoPaymentsOnOneReference:
    async def test_both_at_once_one_is_booked_the_other_queued(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = MoneyFakes()
        request = deposit_request(wallet_pocket(), ANNOUNCED)
        async with workers(env, fakes, DepositWorkflow) as queue:
            handle = await start(env, queue, request)
            first = await pay(handle, request, PaymentEventKind.TRANSFER_RECEIVED, "bk_1")
            second = await pay(handle, request, PaymentEventKind.TRANSFER_RECEIVED, "bk_2")
            await pay(handle, request, PaymentEventKind.TRANSFER_RECEIVED, second)  # replayed
            result = await finish(handle)

        assert result.status is PaymentStatus.COMPLETED
        received = fakes.received()
        assert received.event.event_id == first
        [item] = queued(fakes)
        assert (item.event.event_id, item.reason) == (second, UnmatchedReason.SECOND_PAYMENT)
        assert item.payment_id == request.payment_id
        assert item.event.reference == request.reference
        assert request.reference in (item.detail or "") and first in (item.detail or "")

    async def test_one_arriving_while_the_first_is_held_is_queued_at_once(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = MoneyFakes(deposit_flags=(RiskFlag.AMOUNT_DIFFERS,))
        request = deposit_request(wallet_pocket(), ANNOUNCED)
        async with workers(env, fakes, DepositWorkflow) as queue:
            handle = await start(env, queue, request)
            await pay(handle, request, PaymentEventKind.TRANSFER_RECEIVED, "bk_1")
            await blocked_after(handle, deposit.receive_deposit.name)
            await pay(handle, request, PaymentEventKind.TRANSFER_RECEIVED, "bk_2")
            await blocked_after(handle, unmatched.queue_unmatched_funds.name)
            assert [(i.event.event_id, i.reason) for i in queued(fakes)] == [
                ("bk_2", UnmatchedReason.SECOND_PAYMENT)
            ]
            await decide(handle, decision("compliance", approve=True))
            result = await finish(handle)

        assert result.status is PaymentStatus.COMPLETED
        assert len(queued(fakes)) == 1
        assert fakes.steps().count(deposit.receive_deposit.name) == 1


class TestPaymentsAfterTheDepositEnded:
    async def test_a_payment_arriving_as_the_deposit_expires_is_queued(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = MoneyFakes()
        marking = fakes.pause(funds.mark_movement.name)
        request = deposit_request(wallet_pocket())
        async with workers(env, fakes, DepositWorkflow) as queue:
            handle = await start(env, queue, request)
            result_task = asyncio.ensure_future(handle.result())  # time skips to the expiry
            await fakes.called(funds.mark_movement.name)
            late = await pay(handle, request)
            marking.set()
            await result_task
            result = await finish(handle)

        assert result == MovementResult(
            status=PaymentStatus.EXPIRED, reason="no payment arrived in time"
        )
        assert [(i.event.event_id, i.reason) for i in queued(fakes)] == [
            (late, UnmatchedReason.DEPOSIT_EXPIRED)
        ]
        assert deposit.receive_deposit.name not in fakes.steps()

    async def test_a_payment_after_a_decline_is_queued(self, env: WorkflowEnvironment) -> None:
        fakes = MoneyFakes()
        marking = fakes.pause(funds.mark_movement.name)
        request = deposit_request(wallet_pocket())
        async with workers(env, fakes, DepositWorkflow) as queue:
            handle = await start(env, queue, request)
            await pay(handle, request, PaymentEventKind.PAYMENT_FAILED)
            await fakes.called(funds.mark_movement.name)
            late = await pay(handle, request)
            marking.set()
            result = await finish(handle)

        assert result.status is PaymentStatus.FAILED
        assert [(i.event.event_id, i.reason) for i in queued(fakes)] == [
            (late, UnmatchedReason.DEPOSIT_FAILED)
        ]
        assert not fakes.booked


class TestTakeBackFailedForGood:
    async def test_the_deposit_ends_needs_attention_with_a_case_and_no_wallet_credit(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = RefusedAfterApplied(
            applied_then_refused={funds.mt5_credit_balance.name: "Mt5Error"}
        )
        request = deposit_request(mt5_pocket(fakes))
        ref = request.reference
        fakes.fail_for_good[f"rev {ref}"] = "Mt5AccountDisabled"
        async with workers(env, fakes, DepositWorkflow) as queue:
            handle = await start(env, queue, request)
            await pay(handle, request)
            result = await finish(handle)

        assert result.status is PaymentStatus.NEEDS_ATTENTION
        assert "taking it back from MT5 failed" in (result.reason or "")
        assert fakes.after(deposit.receive_deposit.name) == [
            (funds.mt5_credit_balance.name, f"dep {ref}"),
            (funds.mt5_reverse_if_applied.name, (f"rev {ref}", True)),
            (funds.open_finance_case.name, FinanceCaseKind.COMPENSATION_INCOMPLETE),
            (funds.notify_client.name, "deposit_needs_attention"),
        ]
        assert f"{ref}:to-wallet" not in fakes.booked
        [case] = fakes.inputs[funds.open_finance_case.name]
        assert isinstance(case, OpenFinanceCase)
        assert case.amount == request.amount and case.reference == ref
        [not_undone] = case.not_undone
        assert f"dep {ref}" in not_undone.what and "Mt5AccountDisabled" in (not_undone.error or "")
        assert case.then is not None and case.then.status is PaymentStatus.NEEDS_ATTENTION


class TestFinanceResolvesAnItem:
    async def resolve(
        self, env: WorkflowEnvironment, fakes: MoneyFakes, action: UnmatchedAction
    ) -> UnmatchedOutcome:
        request = ResolveUnmatched(
            item_id=uuid.uuid4(),
            action=action,
            staff_id=uuid.uuid4(),
            client_id=uuid.uuid4() if action is UnmatchedAction.CREDIT else None,
            note="finance decided",
        )
        async with workers(env, fakes, ResolveUnmatchedFundsWorkflow) as queue:
            outcome: UnmatchedOutcome = await env.client.execute_workflow(
                RESOLVE_UNMATCHED.name,
                request,
                id=f"unmatched-funds-{request.item_id}",
                task_queue=queue,
                result_type=UnmatchedOutcome,
            )
        return outcome

    @pytest.mark.parametrize(
        ("action", "status"),
        [
            (UnmatchedAction.CREDIT, UnmatchedStatus.CREDITED),
            (UnmatchedAction.RETURN, UnmatchedStatus.RETURNED),
        ],
    )
    async def test_credited_or_returned(
        self, env: WorkflowEnvironment, action: UnmatchedAction, status: UnmatchedStatus
    ) -> None:
        fakes = MoneyFakes()
        outcome = await self.resolve(env, fakes, action)
        assert outcome.status is status
        assert fakes.steps() == [unmatched.resolve_unmatched_funds.name]

    async def test_a_refused_return_reopens_the_item(self, env: WorkflowEnvironment) -> None:
        fakes = MoneyFakes(refuse={unmatched.resolve_unmatched_funds.name: "ProcessorRefused"})
        outcome = await self.resolve(env, fakes, UnmatchedAction.RETURN)
        assert outcome.status is UnmatchedStatus.OPEN
        assert "ProcessorRefused" in (outcome.error or "")
        assert fakes.steps() == [
            unmatched.resolve_unmatched_funds.name,
            unmatched.reopen_unmatched_funds.name,
        ]
