"""The transfer workflow's logic, with its steps replaced by fakes of the same name."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import suppress

import pytest
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.testing import WorkflowEnvironment

from domain.money_flows import (
    MovementKind,
    MovementResult,
    Pocket,
    Step,
    TransferInput,
    reference_for,
)
from domain.payments import PaymentStatus
from tests.workflows.money_fakes import (
    MoneyFakes,
    cancel,
    eur,
    replay,
    start_environment,
    usd,
    workers,
)
from workflows.transfer import TransferWorkflow, transfer_workflow_id

AMOUNT = usd("100.00")
CONVERTED = eur("90.00")  # at the fakes' 0.90 EUR per USD
Handle = WorkflowHandle[TransferWorkflow, MovementResult]


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    environment = await start_environment()
    yield environment
    await environment.shutdown()


def wallet_usd_to_mt5_eur(fakes: MoneyFakes) -> TransferInput:
    transfer_id = uuid.uuid4()
    return TransferInput(
        transfer_id=transfer_id,
        client_id=uuid.uuid4(),
        reference=reference_for(MovementKind.TRANSFER, transfer_id),
        amount=AMOUNT,
        source=Pocket(currency="USD"),
        destination=Pocket(currency="EUR", mt5=fakes.account()),
    )


async def start(env: WorkflowEnvironment, queue: str, request: TransferInput) -> Handle:
    return await env.client.start_workflow(
        TransferWorkflow.run,
        request,
        id=transfer_workflow_id(request.transfer_id),
        task_queue=queue,
    )


async def transfer(env: WorkflowEnvironment, fakes: MoneyFakes, request: TransferInput) -> Handle:
    """Run the transfer to its end (whatever it is) and replay its history."""
    async with workers(env, fakes, TransferWorkflow) as queue:
        handle = await start(env, queue, request)
        with suppress(WorkflowFailureError):
            await handle.result()
        await replay(handle, TransferWorkflow)
    return handle


class TestTransfer:
    async def test_wallet_usd_to_mt5_eur_is_converted_then_credited(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = MoneyFakes()
        request = wallet_usd_to_mt5_eur(fakes)
        ref = request.reference
        handle = await transfer(env, fakes, request)
        result = await handle.result()

        assert result == MovementResult(status=PaymentStatus.COMPLETED, credited=CONVERTED)
        assert fakes.calls == [
            (Step.RESERVE_FROM_WALLET, f"{ref}:hold"),
            (Step.CONVERT_HELD, f"{ref}:fx"),
            (Step.MT5_CREDIT_BALANCE, f"tri {ref}"),
            (Step.BOOK_ENTRY, f"{ref}:to-mt5"),
            (Step.NOTIFY_CLIENT, "transfer_completed"),
        ]
        [conversion] = fakes.inputs[Step.CONVERT_HELD]
        assert (conversion.sell, conversion.into) == (AMOUNT, "EUR")
        [credit] = fakes.inputs[Step.MT5_CREDIT_BALANCE]
        assert (credit.account, credit.amount) == (fakes.account(), CONVERTED.amount)
        assert credit.requested_at == (await handle.describe()).start_time
        into_mt5 = fakes.bookings()[f"{ref}:to-mt5"]
        assert {p.amount.currency for p in into_mt5.entry.postings} == {"EUR"}
        assert into_mt5.then is not None
        assert into_mt5.then.status is PaymentStatus.COMPLETED
        assert (into_mt5.then.credited, into_mt5.then.mt5_ticket) == (CONVERTED, fakes.ticket)

    async def test_mt5_refusing_the_credit_undoes_the_conversion_then_the_hold(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = MoneyFakes(refuse={Step.MT5_CREDIT_BALANCE: "Mt5Refused"})
        request = wallet_usd_to_mt5_eur(fakes)
        ref = request.reference
        result = await (await transfer(env, fakes, request)).result()

        assert result == MovementResult(status=PaymentStatus.REJECTED, reason="Mt5Refused (fake)")
        assert fakes.after(Step.MT5_CREDIT_BALANCE) == [
            (Step.MT5_REVERSE_IF_APPLIED, (f"rev {ref}", False)),  # MT5 never credited it
            (Step.REVERSE_ENTRY_IF_BOOKED, (f"{ref}:fx", True)),
            (Step.REVERSE_ENTRY_IF_BOOKED, (f"{ref}:hold", True)),
            (Step.MARK_MOVEMENT, PaymentStatus.REJECTED),
            (Step.NOTIFY_CLIENT, "transfer_rejected"),
        ]
        assert not fakes.deals

    async def test_mt5_usd_to_the_wallet_is_debited_with_the_reference_then_released(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = MoneyFakes()
        transfer_id = uuid.uuid4()
        request = TransferInput(
            transfer_id=transfer_id,
            client_id=uuid.uuid4(),
            reference=reference_for(MovementKind.TRANSFER, transfer_id),
            amount=AMOUNT,
            source=Pocket(currency="USD", mt5=fakes.account()),
            destination=Pocket(currency="USD"),
        )
        ref = request.reference
        result = await (await transfer(env, fakes, request)).result()

        assert result == MovementResult(status=PaymentStatus.COMPLETED, credited=AMOUNT)
        assert fakes.calls == [
            (Step.MT5_FREE_MARGIN, 7001),
            (Step.MT5_DEBIT_BALANCE, f"tro {ref}"),
            (Step.BOOK_ENTRY, f"{ref}:from-mt5"),
            (Step.BOOK_ENTRY, f"{ref}:to-wallet"),
            (Step.NOTIFY_CLIENT, "transfer_completed"),
        ]
        [debit] = fakes.inputs[Step.MT5_DEBIT_BALANCE]
        assert (debit.account, debit.amount) == (fakes.account(), -AMOUNT.amount)
        to_wallet = fakes.bookings()[f"{ref}:to-wallet"]
        assert to_wallet.then is not None
        assert (to_wallet.then.status, to_wallet.then.credited) == (
            PaymentStatus.COMPLETED,
            AMOUNT,
        )

    async def test_a_failure_after_mt5_credited_takes_the_credit_back_then_undoes_the_rest(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = MoneyFakes()
        request = wallet_usd_to_mt5_eur(fakes)
        ref = request.reference
        fakes.refuse[f"{ref}:to-mt5"] = "Conflict"  # the booking is refused for good
        handle = await transfer(env, fakes, request)

        # Not a business refusal: compensated, marked failed, then the workflow fails for
        # operations to look at.
        with pytest.raises(WorkflowFailureError) as failure:
            await handle.result()
        cause = failure.value.cause
        assert isinstance(cause, ActivityError)
        assert isinstance(cause.cause, ApplicationError)
        assert cause.cause.type == "Conflict"
        assert fakes.after(Step.MT5_CREDIT_BALANCE) == [
            (Step.BOOK_ENTRY, f"{ref}:to-mt5"),
            (Step.MT5_REVERSE_IF_APPLIED, (f"rev {ref}", True)),
            (Step.REVERSE_ENTRY_IF_BOOKED, (f"{ref}:fx", True)),
            (Step.REVERSE_ENTRY_IF_BOOKED, (f"{ref}:hold", True)),
            (Step.MARK_MOVEMENT, PaymentStatus.FAILED),
            (Step.NOTIFY_CLIENT, "transfer_failed"),
        ]
        [taken_back] = fakes.inputs[Step.MT5_REVERSE_IF_APPLIED]
        assert taken_back.change == fakes.inputs[Step.MT5_CREDIT_BALANCE][0]
        assert taken_back.comment == f"rev {ref}"
        assert fakes.deals == {f"tri {ref}", f"rev {ref}"}
        assert fakes.booked == {
            f"{ref}:hold",
            f"{ref}:hold:reversal",
            f"{ref}:fx",
            f"{ref}:fx:reversal",
        }

    async def test_cancelling_while_mt5_credits_never_pays_twice(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = MoneyFakes()
        crediting = fakes.pause(Step.MT5_CREDIT_BALANCE)
        request = wallet_usd_to_mt5_eur(fakes)
        ref = request.reference
        async with workers(env, fakes, TransferWorkflow) as queue:
            handle = await start(env, queue, request)
            await fakes.called(Step.MT5_CREDIT_BALANCE)
            await cancel(handle)
            crediting.set()  # MT5 applies the credit after all
            await fakes.landed(f"tri {ref}")
            with suppress(WorkflowFailureError):
                await handle.result()
            await replay(handle, TransferWorkflow)

        on_mt5 = f"rev {ref}" not in fakes.deals  # the credit stands on MT5
        back_in_wallet = f"{ref}:hold:reversal" in fakes.booked
        assert on_mt5 != back_in_wallet, f"MT5 deals {fakes.deals}, books {fakes.booked}"
