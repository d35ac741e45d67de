"""The withdrawal workflow's logic, with its steps replaced by fakes of the same name."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import suppress
from datetime import timedelta
from decimal import Decimal

import pytest
from temporalio.client import (
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.testing import WorkflowEnvironment

from contracts import funds, withdrawal
from contracts.funds import (
    CLIENT_ID,
    DECIDE,
    MOVEMENT_STATUS,
    PAYMENT_EVENT,
    PAYMENT_REFERENCE,
    STATUS_SINCE,
    Compensation,
    DecisionOutcome,
    MovementResult,
    StaffDecision,
)
from contracts.withdrawal import WithdrawalInput, withdrawal_workflow_id
from domain.money_flows import MovementKind, Pocket, reference_for
from domain.payment_checks import RiskFlag
from domain.payments import FinanceCaseKind, PaymentEventKind, PaymentStatus
from tests.workflows.money_fakes import (
    MoneyFakes,
    blocked_after,
    cancel,
    payment_event,
    replay,
    start_environment,
    usd,
    workers,
)
from workflows.withdrawal import WithdrawalWorkflow

AMOUNT = usd("100.00")
Handle = WorkflowHandle[WithdrawalWorkflow, MovementResult]


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    environment = await start_environment()
    yield environment
    await environment.shutdown()


def withdrawal_request(source: Pocket) -> WithdrawalInput:
    payment_id = uuid.uuid4()
    return WithdrawalInput(
        payment_id=payment_id,
        client_id=uuid.uuid4(),
        reference=reference_for(MovementKind.PAYMENT, payment_id),
        provider="cardco",
        amount=AMOUNT,
        source=source,
    )


def from_wallet() -> WithdrawalInput:
    return withdrawal_request(Pocket(currency="USD"))


def from_mt5(fakes: MoneyFakes) -> WithdrawalInput:
    return withdrawal_request(Pocket(currency="USD", mt5=fakes.account()))


async def start(env: WorkflowEnvironment, queue: str, request: WithdrawalInput) -> Handle:
    return await env.client.start_workflow(
        WithdrawalWorkflow.run,
        request,
        id=withdrawal_workflow_id(request.payment_id),
        task_queue=queue,
    )


async def processor_says(handle: Handle, request: WithdrawalInput, kind: PaymentEventKind) -> None:
    event = payment_event(kind, request.reference, request.amount)
    await handle.signal(PAYMENT_EVENT.name, event)


async def finish(handle: Handle) -> MovementResult:
    result = await handle.result()
    await replay(handle, WithdrawalWorkflow)
    return result


def officer(
    approve: bool, role: str = "finance", staff_id: uuid.UUID | None = None
) -> StaffDecision:
    return StaffDecision(
        staff_id=staff_id or uuid.uuid4(), roles=(role,), approve=approve, reason="checked"
    )


async def decide(handle: Handle, decision: StaffDecision) -> DecisionOutcome:
    outcome: DecisionOutcome = await handle.execute_update(
        DECIDE.name, decision, result_type=DECIDE.result
    )
    return outcome


def undone_mt5_debit(ref: str) -> list[tuple[str, object]]:
    """The compensations of a withdrawal from MT5, newest first."""
    return [
        (funds.reverse_entry_if_booked.name, (f"{ref}:from-mt5", True)),
        (funds.mt5_reverse_if_applied.name, (f"ret {ref}", True)),
    ]


class TestWithdrawal:
    async def test_a_small_withdrawal_from_the_wallet_is_paid_out(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = MoneyFakes()
        request = from_wallet()
        ref = request.reference
        async with workers(env, fakes, WithdrawalWorkflow) as queue:
            handle = await start(env, queue, request)
            await blocked_after(handle, withdrawal.send_payout.name)
            await processor_says(handle, request, PaymentEventKind.PAYOUT_SETTLED)
            result = await finish(handle)

        assert result == MovementResult(status=PaymentStatus.COMPLETED, credited=AMOUNT)
        assert fakes.calls == [
            (funds.reserve_from_wallet.name, f"{ref}:hold"),
            (withdrawal.assess_withdrawal.name, None),
            (withdrawal.send_payout.name, None),
            (funds.book_entry.name, f"{ref}:paid-out"),
            (funds.notify_client.name, "withdrawal_completed"),
        ]
        [reserve] = fakes.inputs[funds.reserve_from_wallet.name]
        assert reserve.amount == AMOUNT
        assert reserve.then is not None and reserve.then.status is PaymentStatus.FUNDS_RESERVED
        paid_out = fakes.bookings()[f"{ref}:paid-out"]
        assert paid_out.entry.description == "payout via cardco"
        assert paid_out.then is not None and paid_out.then.status is PaymentStatus.COMPLETED

    async def test_insufficient_funds_are_refused(self, env: WorkflowEnvironment) -> None:
        fakes = MoneyFakes(refuse={funds.reserve_from_wallet.name: "InsufficientFunds"})
        request = from_wallet()
        ref = request.reference
        async with workers(env, fakes, WithdrawalWorkflow) as queue:
            result = await finish(await start(env, queue, request))

        assert result.status is PaymentStatus.REJECTED
        assert result.reason == "InsufficientFunds (fake)"
        assert fakes.calls == [
            (funds.reserve_from_wallet.name, f"{ref}:hold"),
            (funds.reverse_entry_if_booked.name, (f"{ref}:hold", False)),  # nothing was booked
            (funds.mark_movement.name, PaymentStatus.REJECTED),
            (funds.notify_client.name, "withdrawal_rejected"),
        ]
        assert not fakes.booked

    async def test_free_margin_below_the_amount_is_refused_before_any_debit(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = MoneyFakes(free_margin=Decimal("99.99"))
        request = from_mt5(fakes)
        async with workers(env, fakes, WithdrawalWorkflow) as queue:
            result = await finish(await start(env, queue, request))

        assert result.status is PaymentStatus.REJECTED
        assert result.reason == "free margin on MT5 account 7001 is 99.99 USD"
        assert fakes.calls == [
            (funds.mt5_free_margin.name, 7001),
            (funds.mark_movement.name, PaymentStatus.REJECTED),
            (funds.notify_client.name, "withdrawal_rejected"),
        ]

    async def test_enough_free_margin_debits_mt5_with_the_reference(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = MoneyFakes(free_margin=Decimal("100.00"))
        request = from_mt5(fakes)
        ref = request.reference
        async with workers(env, fakes, WithdrawalWorkflow) as queue:
            handle = await start(env, queue, request)
            await processor_says(handle, request, PaymentEventKind.PAYOUT_SETTLED)
            result = await finish(handle)

        assert result.status is PaymentStatus.COMPLETED
        assert fakes.calls == [
            (funds.mt5_free_margin.name, 7001),
            (funds.mt5_debit_balance.name, f"wd {ref}"),
            (funds.book_entry.name, f"{ref}:from-mt5"),
            (withdrawal.assess_withdrawal.name, None),
            (withdrawal.send_payout.name, None),
            (funds.book_entry.name, f"{ref}:paid-out"),
            (funds.notify_client.name, "withdrawal_completed"),
        ]
        [debit] = fakes.inputs[funds.mt5_debit_balance.name]
        assert (debit.account, debit.amount) == (fakes.account(), -AMOUNT.amount)
        assert debit.requested_at == (await handle.describe()).start_time
        from_mt5_booking = fakes.bookings()[f"{ref}:from-mt5"]
        assert from_mt5_booking.entry.description.startswith("debited from MT5")
        assert from_mt5_booking.then is not None
        assert from_mt5_booking.then.status is PaymentStatus.FUNDS_RESERVED

    async def test_a_debit_mt5_refuses_is_not_reversed_on_mt5(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = MoneyFakes(refuse={funds.mt5_debit_balance.name: "Mt5NoMoney"})
        request = from_mt5(fakes)
        ref = request.reference
        async with workers(env, fakes, WithdrawalWorkflow) as queue:
            result = await finish(await start(env, queue, request))

        assert result == MovementResult(status=PaymentStatus.REJECTED, reason="Mt5NoMoney (fake)")
        assert fakes.calls == [
            (funds.mt5_free_margin.name, 7001),
            (funds.mt5_debit_balance.name, f"wd {ref}"),
            (funds.mt5_reverse_if_applied.name, (f"ret {ref}", False)),  # MT5 holds no such deal
            (funds.mark_movement.name, PaymentStatus.REJECTED),
            (funds.notify_client.name, "withdrawal_rejected"),
        ]
        assert not fakes.deals and not fakes.booked

    async def test_a_flagged_withdrawal_needs_two_different_finance_officers(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = MoneyFakes(withdrawal_flags=(RiskFlag.LARGE_AMOUNT,))
        request = from_wallet()
        ref = request.reference
        first = officer(approve=True)
        async with workers(env, fakes, WithdrawalWorkflow) as queue:
            handle = await start(env, queue, request)
            await blocked_after(handle, withdrawal.assess_withdrawal.name)

            with pytest.raises(WorkflowUpdateFailedError) as not_finance:
                await decide(handle, officer(approve=True, role="compliance"))
            assert "only a finance officer" in str(not_finance.value.cause)

            assert await decide(handle, first) == DecisionOutcome(
                status=PaymentStatus.PENDING_APPROVAL, approvals=1
            )
            with pytest.raises(WorkflowUpdateFailedError) as twice:
                await decide(handle, officer(approve=True, staff_id=first.staff_id))
            assert "a second officer must" in str(twice.value.cause)
            assert withdrawal.send_payout.name not in fakes.steps()

            second = await decide(handle, officer(approve=True))
            # The state the second approval reached, not the one it met.
            assert second == DecisionOutcome(status=PaymentStatus.PAYOUT_SENT, approvals=2)
            await blocked_after(handle, withdrawal.send_payout.name)
            await processor_says(handle, request, PaymentEventKind.PAYOUT_SETTLED)
            result = await finish(handle)

        assert result.status is PaymentStatus.COMPLETED
        assert fakes.after(withdrawal.assess_withdrawal.name) == [
            (funds.record_decision.name, True),
            (funds.record_decision.name, True),
            (withdrawal.send_payout.name, None),
            (funds.book_entry.name, f"{ref}:paid-out"),
            (funds.notify_client.name, "withdrawal_completed"),
        ]
        assert [d.final for d in fakes.inputs[funds.record_decision.name]] == [False, True]

    async def test_one_rejection_undoes_the_mt5_debit_newest_first(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = MoneyFakes(withdrawal_flags=(RiskFlag.PAYER_NAME_MISMATCH,))
        request = from_mt5(fakes)
        ref = request.reference
        async with workers(env, fakes, WithdrawalWorkflow) as queue:
            handle = await start(env, queue, request)
            await blocked_after(handle, withdrawal.assess_withdrawal.name)
            rejected = await decide(handle, officer(approve=False))
            assert rejected.status is PaymentStatus.REJECTED
            result = await finish(handle)

        assert result == MovementResult(
            status=PaymentStatus.REJECTED, reason="rejected by finance: checked"
        )
        assert fakes.after(withdrawal.assess_withdrawal.name) == [
            (funds.record_decision.name, False),
            *undone_mt5_debit(ref),
            (funds.mark_movement.name, PaymentStatus.REJECTED),
            (funds.notify_client.name, "withdrawal_rejected"),
        ]
        [returned] = fakes.inputs[funds.mt5_reverse_if_applied.name]
        assert returned.change == fakes.inputs[funds.mt5_debit_balance.name][0]
        assert returned.comment == f"ret {ref}"
        assert fakes.deals == {f"wd {ref}", f"ret {ref}"}
        assert fakes.inputs[funds.record_decision.name][0].final

    async def test_a_failed_payout_undoes_every_step(self, env: WorkflowEnvironment) -> None:
        fakes = MoneyFakes()
        request = from_mt5(fakes)
        ref = request.reference
        async with workers(env, fakes, WithdrawalWorkflow) as queue:
            handle = await start(env, queue, request)
            await blocked_after(handle, withdrawal.send_payout.name)
            await processor_says(handle, request, PaymentEventKind.PAYOUT_FAILED)
            result = await finish(handle)

        assert result.status is PaymentStatus.FAILED
        assert fakes.after(withdrawal.send_payout.name) == [
            *undone_mt5_debit(ref),
            (funds.mark_movement.name, PaymentStatus.FAILED),
            (funds.notify_client.name, "withdrawal_failed"),
        ]

    async def test_cancelling_a_withdrawal_pending_approval_puts_the_money_back(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = MoneyFakes(withdrawal_flags=(RiskFlag.LARGE_AMOUNT,))
        request = from_mt5(fakes)
        ref = request.reference
        async with workers(env, fakes, WithdrawalWorkflow) as queue:
            handle = await start(env, queue, request)
            await blocked_after(handle, withdrawal.assess_withdrawal.name)
            await cancel(handle)
            result = await finish(handle)

        assert result == MovementResult(status=PaymentStatus.CANCELLED, reason="cancelled by staff")
        assert fakes.after(withdrawal.assess_withdrawal.name) == [
            *undone_mt5_debit(ref),
            (funds.mark_movement.name, PaymentStatus.CANCELLED),
            (funds.notify_client.name, "withdrawal_cancelled"),
        ]
        [marked] = fakes.inputs[funds.mark_movement.name]
        assert marked.reason == "cancelled by staff"
        assert (await handle.describe()).status is WorkflowExecutionStatus.COMPLETED

    async def test_cancelling_after_the_payout_was_sent_does_not_give_the_money_back(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = MoneyFakes()
        request = from_mt5(fakes)
        ref = request.reference
        async with workers(env, fakes, WithdrawalWorkflow) as queue:
            handle = await start(env, queue, request)
            await blocked_after(handle, withdrawal.send_payout.name)
            await cancel(handle)  # refused: the processor is already paying it out
            assert funds.mark_movement.name not in fakes.steps()
            await processor_says(handle, request, PaymentEventKind.PAYOUT_SETTLED)
            result = await finish(handle)

        assert result == MovementResult(status=PaymentStatus.COMPLETED, credited=AMOUNT)
        assert fakes.after(withdrawal.send_payout.name) == [
            (funds.book_entry.name, f"{ref}:paid-out"),
            (funds.notify_client.name, "withdrawal_completed"),
        ]
        assert funds.reverse_entry_if_booked.name not in fakes.steps()
        assert funds.mt5_reverse_if_applied.name not in fakes.steps()
        assert (await handle.describe()).status is WorkflowExecutionStatus.COMPLETED

    async def test_a_failed_payout_after_a_refused_cancellation_still_undoes_every_step(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = MoneyFakes()
        request = from_mt5(fakes)
        ref = request.reference
        async with workers(env, fakes, WithdrawalWorkflow) as queue:
            handle = await start(env, queue, request)
            await blocked_after(handle, withdrawal.send_payout.name)
            await cancel(handle)
            await processor_says(handle, request, PaymentEventKind.PAYOUT_FAILED)
            result = await finish(handle)

        assert result == MovementResult(
            status=PaymentStatus.FAILED, reason="the processor could not pay it out"
        )
        assert fakes.after(withdrawal.send_payout.name) == [
            *undone_mt5_debit(ref),
            (funds.mark_movement.name, PaymentStatus.FAILED),
            (funds.notify_client.name, "withdrawal_failed"),
        ]

    async def test_cancelling_while_a_step_runs_still_ends_as_cancelled(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = MoneyFakes(withdrawal_flags=(RiskFlag.LARGE_AMOUNT,))
        assessing = fakes.pause(withdrawal.assess_withdrawal.name)
        request = from_mt5(fakes)
        ref = request.reference
        async with workers(env, fakes, WithdrawalWorkflow) as queue:
            handle = await start(env, queue, request)
            await fakes.called(withdrawal.assess_withdrawal.name)
            await cancel(handle)
            assessing.set()
            result = None
            with suppress(WorkflowFailureError):
                result = await handle.result()
            await replay(handle, WithdrawalWorkflow)

        assert fakes.after(withdrawal.assess_withdrawal.name)[:2] == undone_mt5_debit(ref)
        assert result == MovementResult(status=PaymentStatus.CANCELLED, reason="cancelled by staff")
        assert fakes.after(withdrawal.assess_withdrawal.name)[2:] == [
            (funds.mark_movement.name, PaymentStatus.CANCELLED),
            (funds.notify_client.name, "withdrawal_cancelled"),
        ]

    async def test_cancelling_while_mt5_debits_never_loses_the_debit(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = MoneyFakes()
        debiting = fakes.pause(funds.mt5_debit_balance.name)
        request = from_mt5(fakes)
        ref = request.reference
        async with workers(env, fakes, WithdrawalWorkflow) as queue:
            handle = await start(env, queue, request)
            await fakes.called(funds.mt5_debit_balance.name)
            await cancel(handle)
            debiting.set()  # MT5 applies the debit after all
            await fakes.landed(f"wd {ref}")
            with suppress(WorkflowFailureError):
                await handle.result()
            await replay(handle, WithdrawalWorkflow)

        off_mt5 = f"ret {ref}" not in fakes.deals  # the debit stands on MT5
        held = f"{ref}:from-mt5" in fakes.booked and f"{ref}:from-mt5:reversal" not in fakes.booked
        assert off_mt5 == held, f"MT5 deals {fakes.deals}, books {fakes.booked}"

    async def test_cancelling_during_the_compensations_still_runs_them_all(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = MoneyFakes(withdrawal_flags=(RiskFlag.LARGE_AMOUNT,))
        unbooking = fakes.pause(funds.reverse_entry_if_booked.name)
        request = from_mt5(fakes)
        ref = request.reference
        async with workers(env, fakes, WithdrawalWorkflow) as queue:
            handle = await start(env, queue, request)
            await blocked_after(handle, withdrawal.assess_withdrawal.name)
            await decide(handle, officer(approve=False))
            await fakes.called(funds.reverse_entry_if_booked.name)
            await cancel(handle)
            unbooking.set()
            with suppress(WorkflowFailureError):
                await handle.result()
            await replay(handle, WithdrawalWorkflow)

        assert fakes.after(funds.record_decision.name)[:2] == undone_mt5_debit(ref)
        assert fakes.deals == {f"wd {ref}", f"ret {ref}"}
        [marked] = fakes.inputs[funds.mark_movement.name]
        assert marked.status in (PaymentStatus.REJECTED, PaymentStatus.CANCELLED)


class TestCompensationsRunToTheirEnd:
    async def test_an_undo_failing_for_good_still_runs_the_older_ones_and_opens_a_case(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = MoneyFakes(withdrawal_flags=(RiskFlag.LARGE_AMOUNT,))
        request = from_mt5(fakes)
        ref = request.reference
        # The newest compensation (reversing the books' debit from MT5) fails for good.
        fakes.fail_for_good[f"{ref}:from-mt5:reversal"] = "LedgerRefused"
        async with workers(env, fakes, WithdrawalWorkflow) as queue:
            handle = await start(env, queue, request)
            await blocked_after(handle, withdrawal.assess_withdrawal.name)
            await decide(handle, officer(approve=False))
            result = await finish(handle)

        # Not a failed workflow: it ends, visibly, needing attention.
        assert (await handle.describe()).status is WorkflowExecutionStatus.COMPLETED
        assert result.status is PaymentStatus.NEEDS_ATTENTION
        assert fakes.after(funds.record_decision.name) == [
            *undone_mt5_debit(ref),  # the older one (MT5 credited back) still ran
            (funds.open_finance_case.name, FinanceCaseKind.COMPENSATION_INCOMPLETE),
            (funds.notify_client.name, "withdrawal_needs_attention"),
        ]
        assert fakes.deals == {f"wd {ref}", f"ret {ref}"}
        assert f"{ref}:from-mt5:reversal" not in fakes.booked

        [case] = fakes.inputs[funds.open_finance_case.name]
        assert case.movement.id == request.payment_id
        assert (case.client_id, case.reference, case.amount) == (request.client_id, ref, AMOUNT)
        assert case.reason == "rejected: rejected by finance: checked"
        assert [(c.step, c.amount, c.error) for c in case.undone] == [
            (funds.mt5_reverse_if_applied.name, AMOUNT, None)
        ]
        assert f"ret {ref}" in case.undone[0].what
        assert case.not_undone == (
            Compensation(
                step=funds.reverse_entry_if_booked.name,
                what=f"reverse the entry {ref}:from-mt5",
                amount=AMOUNT,
                error="LedgerRefused: LedgerRefused (fake)",
            ),
        )
        assert case.then is not None
        assert case.then.status is PaymentStatus.NEEDS_ATTENTION
        assert case.then.reason == result.reason
        assert result.reason is not None and f"{ref}:from-mt5" in result.reason
        # Marked once, needing attention (in the case's step), never "rejected".
        assert funds.mark_movement.name not in fakes.steps()
        [notice] = fakes.inputs[funds.notify_client.name]
        assert "could not yet be fully undone" in notice.message


class TestSearchAttributes:
    async def test_a_waiting_withdrawal_shows_its_client_reference_and_status_since_when(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = MoneyFakes(withdrawal_flags=(RiskFlag.LARGE_AMOUNT,))
        request = from_wallet()
        async with workers(env, fakes, WithdrawalWorkflow) as queue:
            handle = await start(env, queue, request)
            await blocked_after(handle, withdrawal.assess_withdrawal.name)
            entered = await env.get_current_time()
            # A day and more later nobody has decided: the status and its time stay as they were.
            await env.sleep(timedelta(hours=25))
            shown = (await handle.describe()).typed_search_attributes
            await decide(handle, officer(approve=True))
            await decide(handle, officer(approve=True))
            await blocked_after(handle, withdrawal.send_payout.name)
            await processor_says(handle, request, PaymentEventKind.PAYOUT_SETTLED)
            await finish(handle)

        assert shown.get(CLIENT_ID) == str(request.client_id)
        assert shown.get(PAYMENT_REFERENCE) == request.reference
        assert shown.get(MOVEMENT_STATUS) == PaymentStatus.PENDING_APPROVAL.value
        since = shown.get(STATUS_SINCE)
        assert since is not None and abs(since - entered) < timedelta(seconds=5)
        assert since < await env.get_current_time() - timedelta(days=1)

    async def test_each_status_the_movement_reaches_is_shown_as_it_moves(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = MoneyFakes()
        request = from_wallet()
        async with workers(env, fakes, WithdrawalWorkflow) as queue:
            handle = await start(env, queue, request)
            await blocked_after(handle, withdrawal.send_payout.name)
            sent = (await handle.describe()).typed_search_attributes.get(MOVEMENT_STATUS)
            await processor_says(handle, request, PaymentEventKind.PAYOUT_SETTLED)
            await finish(handle)
            done = (await handle.describe()).typed_search_attributes.get(MOVEMENT_STATUS)

        assert (sent, done) == (PaymentStatus.PAYOUT_SENT.value, PaymentStatus.COMPLETED.value)
