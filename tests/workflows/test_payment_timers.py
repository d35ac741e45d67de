"""No wait without a timer (issue 11): a withdrawal whose payout verdict webhook is lost asks the
processor and escalates; a held deposit and a withdrawal awaiting four-eyes approval are
escalated once past their SLA and still take the decision. Time-skipping environment, fakes."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from contracts import deposit, funds, withdrawal
from contracts import unmatched_funds as unmatched
from contracts.deposit import DepositInput
from contracts.funds import MovementResult, OpenFinanceCase
from contracts.withdrawal import WithdrawalInput
from domain.payment_checks import RiskFlag
from domain.payments import FinanceCaseKind, PaymentEventKind, PaymentStatus, PayoutState
from tests.workflows import test_deposit as deposits
from tests.workflows import test_withdrawal as withdrawals
from tests.workflows.money_fakes import (
    MoneyFakes,
    blocked_after,
    payment_event,
    start_environment,
    workers,
)
from workflows.deposit import DepositWorkflow
from workflows.withdrawal import WithdrawalWorkflow

AMOUNT = withdrawals.AMOUNT


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    environment = await start_environment()
    yield environment
    await environment.shutdown()


def a_withdrawal(**timers: timedelta) -> WithdrawalInput:
    request = withdrawals.from_wallet()
    return request.model_copy(update={"timers": request.timers.model_copy(update=timers)})


def a_deposit(**timers: timedelta) -> DepositInput:
    request = deposits.deposit_request(deposits.wallet_pocket())
    return request.model_copy(update={"timers": request.timers.model_copy(update=timers)})


async def elapsed(handle: WorkflowHandle[Any, MovementResult]) -> timedelta:
    """Workflow time from its start to its last event."""
    events = list((await handle.fetch_history()).events)
    return events[-1].event_time.ToDatetime() - events[0].event_time.ToDatetime()


async def asked_at(handle: WorkflowHandle[Any, MovementResult]) -> list[timedelta]:
    """When the deposit asked the processor, in workflow time from its start (to the second)."""
    events = list((await handle.fetch_history()).events)
    started = events[0].event_time.ToDatetime()
    return [
        timedelta(seconds=round((e.event_time.ToDatetime() - started).total_seconds()))
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and e.activity_task_scheduled_event_attributes.activity_type.name
        == deposit.ask_processor_for_payment_events.name
    ]


async def timers_started(handle: WorkflowHandle[Any, MovementResult]) -> int:
    events = (await handle.fetch_history()).events
    return sum(1 for e in events if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED)


def cases(fakes: MoneyFakes) -> list[OpenFinanceCase]:
    return list(fakes.inputs[funds.open_finance_case.name])


async def running(handle: WorkflowHandle[Any, MovementResult]) -> bool:
    return (await handle.describe()).status is WorkflowExecutionStatus.RUNNING


class TestPayoutVerdict:
    async def test_a_lost_webhook_is_made_up_for_by_asking_the_processor(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = MoneyFakes(payout_states=[PayoutState.SETTLED])
        request = a_withdrawal(payout_poll_after=timedelta(minutes=20))
        ref = request.reference
        async with workers(env, fakes, WithdrawalWorkflow) as queue:
            handle = await withdrawals.start(env, queue, request)
            result = await withdrawals.finish(handle)  # time skips to the poll

        assert result == MovementResult(status=PaymentStatus.COMPLETED, credited=AMOUNT)
        # Taken exactly as the webhook would have been: paid out, completed, the client told.
        assert fakes.after(withdrawal.send_payout.name) == [
            (withdrawal.poll_payout_status.name, PayoutState.SETTLED),
            (funds.book_entry.name, f"{ref}:paid-out"),
            (funds.notify_client.name, "withdrawal_completed"),
        ]
        assert timedelta(minutes=20) <= await elapsed(handle) < timedelta(minutes=30)
        assert not cases(fakes)

    async def test_a_failed_payout_found_by_asking_is_undone_as_its_webhook_would_be(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = MoneyFakes(payout_states=[PayoutState.PENDING, PayoutState.FAILED])
        request = a_withdrawal()
        ref = request.reference
        async with workers(env, fakes, WithdrawalWorkflow) as queue:
            handle = await withdrawals.start(env, queue, request)
            result = await withdrawals.finish(handle)

        assert result == MovementResult(
            status=PaymentStatus.FAILED, reason="the processor could not pay it out"
        )
        assert fakes.after(withdrawal.send_payout.name) == [
            (withdrawal.poll_payout_status.name, PayoutState.PENDING),
            (withdrawal.poll_payout_status.name, PayoutState.FAILED),
            (funds.reverse_entry_if_booked.name, (f"{ref}:hold", True)),
            (funds.mark_movement.name, PaymentStatus.FAILED),
            (funds.notify_client.name, "withdrawal_failed"),
        ]
        # Asked 30 minutes after sending, then an hour later (the defaults).
        assert timedelta(minutes=90) <= await elapsed(handle) < timedelta(minutes=100)

    async def test_still_pending_is_escalated_once_and_the_withdrawal_keeps_waiting(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = MoneyFakes()  # the processor says "pending" every time
        request = a_withdrawal()
        ref = request.reference
        async with workers(env, fakes, WithdrawalWorkflow) as queue:
            handle = await withdrawals.start(env, queue, request)
            await blocked_after(handle, withdrawal.send_payout.name)
            await env.sleep(timedelta(hours=23))
            assert not cases(fakes)
            await env.sleep(timedelta(hours=2))
            [case] = cases(fakes)
            await env.sleep(timedelta(days=3))
            assert len(cases(fakes)) == 1  # once
            assert await running(handle)
            polls = fakes.steps().count(withdrawal.poll_payout_status.name)
            assert polls >= 24 * 4  # still asking, every hour
            # The webhook, late but there, still settles it.
            await withdrawals.processor_says(handle, request, PaymentEventKind.PAYOUT_SETTLED)
            result = await withdrawals.finish(handle)

        assert result.status is PaymentStatus.COMPLETED
        assert case.kind is FinanceCaseKind.PAYOUT_VERDICT_OVERDUE
        assert (case.reference, case.amount, case.client_id) == (ref, AMOUNT, request.client_id)
        assert case.then is None  # the withdrawal stays payout_sent
        assert "without a verdict 24 h after it was sent" in case.reason
        # Asked once more at the escalation time, then escalated.
        escalated_at = fakes.steps().index(funds.open_finance_case.name)
        assert fakes.calls[escalated_at - 1] == (
            withdrawal.poll_payout_status.name,
            PayoutState.PENDING,
        )
        assert fakes.after(funds.open_finance_case.name)[-2:] == [
            (funds.book_entry.name, f"{ref}:paid-out"),
            (funds.notify_client.name, "withdrawal_completed"),
        ]

    async def test_a_processor_that_cannot_be_asked_does_not_stop_the_wait_or_the_escalation(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = MoneyFakes(refuse={withdrawal.poll_payout_status.name: "ProcessorRefused"})
        request = a_withdrawal(
            payout_poll_after=timedelta(minutes=10),
            payout_poll_every=timedelta(minutes=10),
            payout_escalate_after=timedelta(hours=1),
        )
        async with workers(env, fakes, WithdrawalWorkflow) as queue:
            handle = await withdrawals.start(env, queue, request)
            await blocked_after(handle, withdrawal.send_payout.name)
            await env.sleep(timedelta(hours=2))
            assert await running(handle)
            [case] = cases(fakes)
            assert case.kind is FinanceCaseKind.PAYOUT_VERDICT_OVERDUE
            assert fakes.steps().count(withdrawal.poll_payout_status.name) >= 10
            await withdrawals.processor_says(handle, request, PaymentEventKind.PAYOUT_SETTLED)
            result = await withdrawals.finish(handle)

        assert result.status is PaymentStatus.COMPLETED

    async def test_a_verdict_before_the_poll_time_asks_nothing(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = MoneyFakes()
        request = a_withdrawal()
        async with workers(env, fakes, WithdrawalWorkflow) as queue:
            handle = await withdrawals.start(env, queue, request)
            await blocked_after(handle, withdrawal.send_payout.name)
            await withdrawals.processor_says(handle, request, PaymentEventKind.PAYOUT_SETTLED)
            result = await withdrawals.finish(handle)

        assert result.status is PaymentStatus.COMPLETED
        assert withdrawal.poll_payout_status.name not in fakes.steps()
        assert await timers_started(handle) == 1  # the poll's timer, cancelled by the webhook


class TestLostDepositWebhook:
    @pytest.mark.parametrize(
        ("poll_after", "asked"),
        [
            # The default: 5 minutes in, then 10 minutes later.
            (timedelta(minutes=5), [timedelta(minutes=5), timedelta(minutes=15)]),
            # Sooner than the session is stored (STORE_SESSION_AFTER, 15 s): not put off by it.
            (timedelta(seconds=2), [timedelta(seconds=2), timedelta(seconds=6)]),
        ],
        ids=["default", "sooner-than-storing-the-session"],
    )
    async def test_a_payment_whose_webhook_is_lost_is_found_by_asking_the_processor(
        self, env: WorkflowEnvironment, poll_after: timedelta, asked: list[timedelta]
    ) -> None:
        request = a_deposit(deposit_poll_after=poll_after)
        paid = payment_event(PaymentEventKind.PAYMENT_SUCCEEDED, request.reference, request.amount)
        # Nothing to say at the first question, the payment at the second.
        fakes = MoneyFakes(processor_events=[(), (paid,)])
        async with workers(env, fakes, DepositWorkflow) as queue:
            handle = await deposits.start(env, queue, request)
            result = await deposits.finish(handle)

        assert result.status is PaymentStatus.COMPLETED
        assert fakes.after(deposit.record_payment_session.name)[:3] == [
            (deposit.ask_processor_for_payment_events.name, ()),
            (deposit.ask_processor_for_payment_events.name, (paid.event_id,)),
            (deposit.receive_deposit.name, paid.event_id),
        ]
        assert fakes.steps().count(funds.book_entry.name) == len(set(fakes.bookings()))
        assert not fakes.inputs[unmatched.queue_unmatched_funds.name]
        assert await asked_at(handle) == asked

    async def test_a_webhook_and_the_answer_to_asking_bring_one_payment_once(
        self, env: WorkflowEnvironment
    ) -> None:
        request = a_deposit()
        paid = payment_event(PaymentEventKind.PAYMENT_SUCCEEDED, request.reference, request.amount)
        fakes = MoneyFakes(processor_events=[(paid,)])
        async with workers(env, fakes, DepositWorkflow) as queue:
            handle = await deposits.start(env, queue, request)
            await deposits.pay(handle, request, event_id=paid.event_id)
            result = await deposits.finish(handle)

        assert result.status is PaymentStatus.COMPLETED
        assert fakes.steps().count(deposit.receive_deposit.name) == 1
        assert not fakes.inputs[unmatched.queue_unmatched_funds.name]

    async def test_silence_to_the_end_of_the_window_expires_after_one_last_question(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = MoneyFakes()  # the processor has sent nothing, every time
        request = a_deposit(deposit_poll_every=timedelta(hours=12))
        async with workers(env, fakes, DepositWorkflow) as queue:
            handle = await deposits.start(env, queue, request)
            result = await deposits.finish(handle)

        assert result.status is PaymentStatus.EXPIRED
        asked = fakes.steps().count(deposit.ask_processor_for_payment_events.name)
        # 5, 10, 20, 40, 80, 160, 320, 640 min (~21 h), then every 12 h to day 7: 8 + 12 + 1.
        assert 20 <= asked <= 22
        assert fakes.steps()[-3] == deposit.ask_processor_for_payment_events.name
        assert await elapsed(handle) >= timedelta(days=7)

    async def test_a_processor_that_cannot_be_asked_leaves_the_webhook_to_settle_it(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = MoneyFakes(
            refuse={deposit.ask_processor_for_payment_events.name: "ProcessorRefused"}
        )
        request = a_deposit()
        async with workers(env, fakes, DepositWorkflow) as queue:
            handle = await deposits.start(env, queue, request)
            await blocked_after(handle, deposit.open_payment_session.name)
            await env.sleep(timedelta(hours=3))
            assert await running(handle)
            await deposits.pay(handle, request)
            result = await deposits.finish(handle)

        assert result.status is PaymentStatus.COMPLETED
        assert fakes.steps().count(deposit.ask_processor_for_payment_events.name) >= 3


class TestDecisionSla:
    async def test_a_held_deposit_past_its_sla_is_escalated_once_and_still_decided(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = MoneyFakes(deposit_flags=(RiskFlag.PAYER_NAME_MISMATCH,))
        request = a_deposit(held_decision_sla=timedelta(hours=8))
        ref = request.reference
        async with workers(env, fakes, DepositWorkflow) as queue:
            handle = await deposits.start(env, queue, request)
            await deposits.pay(handle, request)
            await blocked_after(handle, deposit.receive_deposit.name)
            await env.sleep(timedelta(hours=7))
            assert not cases(fakes)
            await env.sleep(timedelta(hours=2))
            [case] = cases(fakes)
            await env.sleep(timedelta(days=2))
            assert len(cases(fakes)) == 1
            assert await running(handle)
            outcome = await deposits.decide(handle, deposits.decision("compliance", approve=True))
            result = await deposits.finish(handle)

        assert outcome.status is PaymentStatus.CREDITING
        assert result == MovementResult(status=PaymentStatus.COMPLETED, credited=AMOUNT)
        assert case.kind is FinanceCaseKind.DECISION_OVERDUE
        assert (case.reference, case.amount, case.then) == (ref, AMOUNT, None)
        assert case.reason.startswith("deposit held (payer_name_mismatch) for more than 8 h")
        assert fakes.after(funds.open_finance_case.name) == [
            (funds.record_decision.name, True),
            (funds.book_entry.name, f"{ref}:wallet"),
            (funds.notify_client.name, "deposit_completed"),
        ]

    async def test_a_held_deposit_decided_in_time_is_not_escalated(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = MoneyFakes(deposit_flags=(RiskFlag.LARGE_AMOUNT,))
        request = a_deposit()
        async with workers(env, fakes, DepositWorkflow) as queue:
            handle = await deposits.start(env, queue, request)
            await deposits.pay(handle, request)
            await blocked_after(handle, deposit.receive_deposit.name)
            await env.sleep(timedelta(hours=23))
            await deposits.decide(handle, deposits.decision("compliance", approve=False))
            result = await deposits.finish(handle)

        assert result.status is PaymentStatus.REJECTED
        assert not cases(fakes)

    async def test_four_eyes_past_its_sla_is_escalated_once_and_still_approved(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = MoneyFakes(withdrawal_flags=(RiskFlag.LARGE_AMOUNT,))
        request = a_withdrawal()
        ref = request.reference
        async with workers(env, fakes, WithdrawalWorkflow) as queue:
            handle = await withdrawals.start(env, queue, request)
            await blocked_after(handle, withdrawal.assess_withdrawal.name)
            first = uuid.uuid4()
            await withdrawals.decide(handle, withdrawals.officer(True, staff_id=first))
            await env.sleep(timedelta(hours=25))
            [case] = cases(fakes)
            await env.sleep(timedelta(days=2))
            assert len(cases(fakes)) == 1
            assert await running(handle)
            outcome = await withdrawals.decide(handle, withdrawals.officer(True))
            assert outcome.approvals == 2
            await blocked_after(handle, withdrawal.send_payout.name)
            await withdrawals.processor_says(handle, request, PaymentEventKind.PAYOUT_SETTLED)
            result = await withdrawals.finish(handle)

        assert result.status is PaymentStatus.COMPLETED
        assert case.kind is FinanceCaseKind.DECISION_OVERDUE
        assert (case.reference, case.amount) == (ref, AMOUNT)
        assert "(1 of 2 approvals)" in case.reason
