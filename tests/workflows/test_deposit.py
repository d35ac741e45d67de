"""The deposit workflow's logic, with its steps replaced by fakes of the same name."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import (
    WithStartWorkflowOperation,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.testing import WorkflowEnvironment

from contracts import deposit, funds
from contracts.deposit import (
    PAYMENT_SESSION,
    DepositInput,
    InTransit,
    SessionWanted,
    deposit_workflow_id,
)
from contracts.funds import (
    CLIENT_ID,
    DECIDE,
    MOVEMENT_STATUS,
    PAYMENT_EVENT,
    DecisionOutcome,
    MovementResult,
    StaffDecision,
)
from domain.money import Money
from domain.money_flows import MovementKind, Pocket, reference_for
from domain.payment_checks import RiskFlag
from domain.payments import PaymentEventKind, PaymentSession, PaymentStatus
from tests.workflows.money_fakes import (
    MoneyFakes,
    blocked_after,
    payment_event,
    replay,
    start_environment,
    usd,
    workers,
)
from workflows.deposit import DepositWorkflow

AMOUNT = usd("100.00")
Handle = WorkflowHandle[DepositWorkflow, MovementResult]
TASK_STARTED = EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    environment = await start_environment()
    yield environment
    await environment.shutdown()


def deposit_request(destination: Pocket, amount: Money = AMOUNT) -> DepositInput:
    payment_id = uuid.uuid4()
    return DepositInput(
        payment_id=payment_id,
        client_id=uuid.uuid4(),
        reference=reference_for(MovementKind.PAYMENT, payment_id),
        provider="cardco",
        amount=amount,
        destination=destination,
    )


async def start(env: WorkflowEnvironment, queue: str, request: DepositInput) -> Handle:
    return await env.client.start_workflow(
        DepositWorkflow.run, request, id=deposit_workflow_id(request.payment_id), task_queue=queue
    )


async def pay(
    handle: Handle,
    request: DepositInput,
    kind: PaymentEventKind = PaymentEventKind.PAYMENT_SUCCEEDED,
    event_id: str | None = None,
) -> str:
    event = payment_event(kind, request.reference, request.amount, event_id)
    await handle.signal(PAYMENT_EVENT.name, event)
    return event.event_id


async def finish(handle: Handle) -> MovementResult:
    result = await handle.result()
    await replay(handle, DepositWorkflow)
    return result


def decision(role: str, approve: bool) -> StaffDecision:
    return StaffDecision(
        staff_id=uuid.uuid4(), roles=(role,), approve=approve, reason="looked at the documents"
    )


async def decide(handle: Handle, staff: StaffDecision) -> DecisionOutcome:
    outcome: DecisionOutcome = await handle.execute_update(
        DECIDE.name, staff, result_type=DECIDE.result
    )
    return outcome


def wallet_pocket() -> Pocket:
    return Pocket(currency="USD")


def mt5_pocket(fakes: MoneyFakes) -> Pocket:
    return Pocket(currency="USD", mt5=fakes.account())


class TestDeposit:
    async def test_a_card_payment_is_credited_to_the_wallet_once(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = MoneyFakes()
        request = deposit_request(wallet_pocket())
        ref = request.reference
        async with workers(env, fakes, DepositWorkflow) as queue:
            handle = await start(env, queue, request)
            event_id = await pay(handle, request)
            await pay(handle, request, event_id=event_id)  # the processor redelivers it
            await pay(handle, request, PaymentEventKind.PAYMENT_FAILED)  # late, out of order
            result = await finish(handle)

        assert result == MovementResult(status=PaymentStatus.COMPLETED, credited=AMOUNT)
        # The money arrived before the processor's answer was stored by a step of its own: the
        # step that receives it stores it (if the request did not).
        assert fakes.calls == [
            (deposit.open_payment_session.name, None),
            (deposit.receive_deposit.name, event_id),
            (funds.book_entry.name, f"{ref}:wallet"),
            (funds.notify_client.name, "deposit_completed"),
        ]
        received = fakes.received()
        assert received.session == PaymentSession(
            provider="cardco", provider_ref="pay_1", redirect_url="https://x"
        )
        assert received.in_transit is None  # to the wallet
        booking = fakes.bookings()[f"{ref}:wallet"]
        assert booking.entry.description == "deposit credited to wallet"
        assert booking.then is not None
        assert (booking.then.status, booking.then.credited) == (PaymentStatus.COMPLETED, AMOUNT)

    async def test_a_deposit_to_mt5_is_credited_with_the_reference_then_booked(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = MoneyFakes()
        request = deposit_request(mt5_pocket(fakes))
        ref = request.reference
        async with workers(env, fakes, DepositWorkflow) as queue:
            handle = await start(env, queue, request)
            await pay(handle, request)
            result = await finish(handle)

        assert result == MovementResult(status=PaymentStatus.COMPLETED, credited=AMOUNT)
        assert fakes.after(deposit.receive_deposit.name) == [
            (funds.mt5_credit_balance.name, f"dep {ref}"),
            (funds.book_entry.name, f"{ref}:to-mt5"),
            (funds.notify_client.name, "deposit_completed"),
        ]
        [credit] = fakes.inputs[funds.mt5_credit_balance.name]
        assert (credit.account, credit.amount) == (fakes.account(), AMOUNT.amount)
        started, first_task = await start_times(handle)
        assert started <= credit.requested_at <= first_task  # the movement's start
        assert credit.requested_at == (await handle.describe()).start_time
        # Booked in transit by the step that checked it, in its transaction.
        received = fakes.received()
        assert received.in_transit == InTransit(
            key=f"{ref}:transit", client_id=request.client_id, currency="USD"
        )
        assert f"{ref}:transit" in fakes.booked
        into_mt5 = fakes.bookings()[f"{ref}:to-mt5"]
        assert into_mt5.entry.description.startswith("credited to MT5")
        assert into_mt5.then is not None
        assert into_mt5.then.status is PaymentStatus.COMPLETED
        assert into_mt5.then.mt5_ticket == fakes.ticket

    async def test_money_mt5_refuses_goes_to_the_wallet(self, env: WorkflowEnvironment) -> None:
        fakes = MoneyFakes(refuse={funds.mt5_credit_balance.name: "Mt5Refused"})
        request = deposit_request(mt5_pocket(fakes))
        ref = request.reference
        async with workers(env, fakes, DepositWorkflow) as queue:
            handle = await start(env, queue, request)
            await pay(handle, request)
            result = await finish(handle)

        where = "to the wallet: MT5 refused the credit (Mt5Refused (fake))"
        assert result == MovementResult(
            status=PaymentStatus.COMPLETED, credited=AMOUNT, reason=where
        )
        # MT5 is asked whether the credit landed before the wallet gets the money: it did not,
        # so nothing is taken back there and the held money goes to the wallet.
        assert fakes.after(deposit.receive_deposit.name) == [
            (funds.mt5_credit_balance.name, f"dep {ref}"),
            (funds.mt5_reverse_if_applied.name, (f"rev {ref}", False)),
            (funds.book_entry.name, f"{ref}:to-wallet"),
            (funds.notify_client.name, "deposit_completed"),
        ]
        assert not fakes.deals
        to_wallet = fakes.bookings()[f"{ref}:to-wallet"]
        assert to_wallet.entry.description == "hold released"
        assert to_wallet.then is not None
        assert to_wallet.then.status is PaymentStatus.COMPLETED
        assert (to_wallet.then.credited, to_wallet.then.reason) == (AMOUNT, where)
        [notice] = fakes.inputs[funds.notify_client.name]
        assert notice.message == f"100.00 USD from {ref} are credited {where}"

    async def test_a_deposit_in_another_currency_than_the_mt5_account_goes_to_the_wallet(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = MoneyFakes()
        request = deposit_request(Pocket(currency="EUR", mt5=fakes.account()))
        ref = request.reference
        async with workers(env, fakes, DepositWorkflow) as queue:
            handle = await start(env, queue, request)
            await pay(handle, request)
            result = await finish(handle)

        assert result == MovementResult(
            status=PaymentStatus.COMPLETED,
            credited=AMOUNT,
            reason="to the wallet (other currency)",
        )
        assert fakes.after(deposit.receive_deposit.name) == [
            (funds.book_entry.name, f"{ref}:wallet"),
            (funds.notify_client.name, "deposit_completed"),
        ]

    async def test_a_held_deposit_rejected_by_compliance_goes_back_to_the_payer(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = MoneyFakes(deposit_flags=(RiskFlag.PAYER_NAME_MISMATCH,))
        returning = fakes.pause(deposit.return_payment_to_payer.name)
        request = deposit_request(wallet_pocket())
        async with workers(env, fakes, DepositWorkflow) as queue:
            handle = await start(env, queue, request)
            await pay(handle, request)
            await blocked_after(handle, deposit.receive_deposit.name)

            with pytest.raises(WorkflowUpdateFailedError) as not_compliance:
                await decide(handle, decision("finance", approve=False))
            assert "only a compliance officer" in str(not_compliance.value.cause)

            outcome = await decide(handle, decision("compliance", approve=False))
            assert outcome == DecisionOutcome(status=PaymentStatus.REJECTED, approvals=0)

            with pytest.raises(WorkflowUpdateFailedError) as again:
                await decide(handle, decision("compliance", approve=True))
            assert "nothing to decide" in str(again.value.cause)
            returning.set()
            result = await finish(handle)

        assert result == MovementResult(
            status=PaymentStatus.REJECTED, reason="looked at the documents"
        )
        assert fakes.after(deposit.receive_deposit.name) == [
            (funds.record_decision.name, False),
            (deposit.return_payment_to_payer.name, None),
            (funds.mark_movement.name, PaymentStatus.REJECTED),
            (funds.notify_client.name, "deposit_rejected"),
        ]
        [recorded] = fakes.inputs[funds.record_decision.name]
        assert recorded.final and recorded.new_status is None
        assert not fakes.booked

    async def test_a_held_deposit_approved_by_compliance_is_credited(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = MoneyFakes(deposit_flags=(RiskFlag.KYC_NOT_APPROVED, RiskFlag.LARGE_AMOUNT))
        request = deposit_request(wallet_pocket())
        ref = request.reference
        async with workers(env, fakes, DepositWorkflow) as queue:
            handle = await start(env, queue, request)
            await pay(handle, request)
            await blocked_after(handle, deposit.receive_deposit.name)
            outcome = await decide(handle, decision("compliance", approve=True))
            result = await finish(handle)

        assert outcome == DecisionOutcome(status=PaymentStatus.CREDITING, approvals=1)
        assert result == MovementResult(status=PaymentStatus.COMPLETED, credited=AMOUNT)
        assert fakes.after(deposit.receive_deposit.name) == [
            (funds.record_decision.name, True),
            (funds.book_entry.name, f"{ref}:wallet"),
            (funds.notify_client.name, "deposit_completed"),
        ]
        [recorded] = fakes.inputs[funds.record_decision.name]
        assert recorded.final and recorded.new_status is PaymentStatus.CREDITING

    async def test_a_held_deposit_to_mt5_is_booked_in_transit_once_approved(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = MoneyFakes(deposit_flags=(RiskFlag.LARGE_AMOUNT,))
        request = deposit_request(mt5_pocket(fakes))
        ref = request.reference
        async with workers(env, fakes, DepositWorkflow) as queue:
            handle = await start(env, queue, request)
            await pay(handle, request)
            await blocked_after(handle, deposit.receive_deposit.name)
            assert f"{ref}:transit" not in fakes.booked  # held: not in transit yet
            await decide(handle, decision("compliance", approve=True))
            result = await finish(handle)

        assert result == MovementResult(status=PaymentStatus.COMPLETED, credited=AMOUNT)
        assert fakes.after(deposit.receive_deposit.name) == [
            (funds.record_decision.name, True),
            (funds.book_entry.name, f"{ref}:transit"),
            (funds.mt5_credit_balance.name, f"dep {ref}"),
            (funds.book_entry.name, f"{ref}:to-mt5"),
            (funds.notify_client.name, "deposit_completed"),
        ]

    async def test_no_payment_within_the_window_expires(self, env: WorkflowEnvironment) -> None:
        fakes = MoneyFakes()
        request = deposit_request(wallet_pocket())
        async with workers(env, fakes, DepositWorkflow) as queue:
            handle = await start(env, queue, request)
            result = await finish(handle)  # time skips over the payment window

        assert result == MovementResult(
            status=PaymentStatus.EXPIRED, reason="no payment arrived in time"
        )
        asked = deposit.ask_processor_for_payment_events.name
        assert [call for call in fakes.calls if call[0] != asked] == [
            (deposit.open_payment_session.name, None),
            (deposit.record_payment_session.name, None),
            (funds.mark_movement.name, PaymentStatus.EXPIRED),
            (funds.notify_client.name, "deposit_expired"),
        ]
        assert fakes.steps()[-3] == asked  # once more as the window closed
        assert await elapsed(handle) >= timedelta(days=7)

    async def test_a_declined_payment_fails(self, env: WorkflowEnvironment) -> None:
        fakes = MoneyFakes()
        request = deposit_request(wallet_pocket())
        async with workers(env, fakes, DepositWorkflow) as queue:
            handle = await start(env, queue, request)
            await pay(handle, request, PaymentEventKind.PAYMENT_FAILED)
            result = await finish(handle)

        assert result.status is PaymentStatus.FAILED
        assert fakes.calls == [
            (deposit.open_payment_session.name, None),
            (deposit.record_payment_session.name, None),
            (funds.mark_movement.name, PaymentStatus.FAILED),
            (funds.notify_client.name, "deposit_failed"),
        ]
        assert not fakes.booked


async def start_times(handle: Handle) -> tuple[datetime, datetime]:
    """When the workflow started, and when its first task ran (before any step)."""
    events = [e async for e in handle.fetch_history_events()]
    started = events[0]
    [first_task, *_] = [e for e in events if e.event_type == TASK_STARTED]
    return started.event_time.ToDatetime(UTC), first_task.event_time.ToDatetime(UTC)


async def elapsed(handle: Handle) -> timedelta:
    description = await handle.describe()
    assert description.close_time is not None
    return description.close_time - description.start_time


async def start_with_session(
    env: WorkflowEnvironment, queue: str, request: DepositInput
) -> PaymentSession:
    """Start the deposit as the API does: with its `payment_session` update, for its answer."""
    session: PaymentSession = await env.client.execute_update_with_start_workflow(
        PAYMENT_SESSION.name,
        SessionWanted(),
        start_workflow_operation=WithStartWorkflowOperation(
            DepositWorkflow.run,
            request,
            id=deposit_workflow_id(request.payment_id),
            task_queue=queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        ),
        result_type=PAYMENT_SESSION.result,
    )
    return session


class TestPaymentSessionInTheAnswer:
    async def test_started_with_its_update_the_deposit_answers_with_the_payment_page(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = MoneyFakes()
        request = deposit_request(wallet_pocket())
        async with workers(env, fakes, DepositWorkflow) as queue:
            session = await start_with_session(env, queue, request)
            handle: Handle = env.client.get_workflow_handle(
                deposit_workflow_id(request.payment_id), result_type=MovementResult
            )
            # The page is answered before the step that stores it (if the request did not),
            # which runs at the deposit's next wake-up.
            await blocked_after(handle, deposit.open_payment_session.name)
            # Asked again (a repeated request), the running deposit gives the same answer. (After
            # the step: an update's events written last would keep `blocked_after` waiting.)
            again = await handle.execute_update(
                PAYMENT_SESSION.name, SessionWanted(), result_type=PAYMENT_SESSION.result
            )
            shown = (await handle.describe()).typed_search_attributes
            await pay(handle, request)
            result = await finish(handle)

        assert (
            session
            == again
            == PaymentSession(provider="cardco", provider_ref="pay_1", redirect_url="https://x")
        )
        [opened] = fakes.inputs[deposit.open_payment_session.name]
        assert (opened.reference, opened.amount, opened.client_id) == (
            request.reference,
            request.amount,
            request.client_id,
        )
        assert shown.get(MOVEMENT_STATUS) == PaymentStatus.AWAITING_FUNDS.value
        assert shown.get(CLIENT_ID) == str(request.client_id)
        assert result.status is PaymentStatus.COMPLETED

    async def test_a_processor_refusing_to_open_a_payment_fails_the_update_with_its_reason(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = MoneyFakes(refuse={deposit.open_payment_session.name: "ProcessorRefused"})
        request = deposit_request(wallet_pocket())
        async with workers(env, fakes, DepositWorkflow) as queue:
            with pytest.raises(WorkflowUpdateFailedError) as refused:
                await start_with_session(env, queue, request)
        assert "ProcessorRefused" in str(refused.value.cause)
