"""The transfer workflow's logic, with its steps replaced by fakes of the same name."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import suppress

import pytest
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.testing import WorkflowEnvironment

from contracts import funds
from contracts.funds import MovementResult
from contracts.transfer import TransferInput, transfer_workflow_id
from domain.money_flows import MovementKind, Pocket, reference_for
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
from workflows.transfer import TransferWorkflow

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
            (funds.reserve_from_wallet.name, f"{ref}:hold"),
            (funds.convert_held.name, f"{ref}:fx"),
            (funds.mt5_credit_balance.name, f"tri {ref}"),
            (funds.book_entry.name, f"{ref}:to-mt5"),
            (funds.notify_client.name, "transfer_completed"),
        ]
        [conversion] = fakes.inputs[funds.convert_held.name]
        assert (conversion.sell, conversion.into) == (AMOUNT, "EUR")
        [credit] = fakes.inputs[funds.mt5_credit_balance.name]
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
        fakes = MoneyFakes(refuse={funds.mt5_credit_balance.name: "Mt5Refused"})
        request = wallet_usd_to_mt5_eur(fakes)
        ref = request.reference
        result = await (await transfer(env, fakes, request)).result()

        assert result == MovementResult(status=PaymentStatus.REJECTED, reason="Mt5Refused (fake)")
        assert fakes.after(funds.mt5_credit_balance.name) == [
            (funds.mt5_reverse_if_applied.name, (f"rev {ref}", False)),  # MT5 never credited it
            (funds.reverse_entry_if_booked.name, (f"{ref}:fx", True)),
            (funds.reverse_entry_if_booked.name, (f"{ref}:hold", True)),
            (funds.mark_movement.name, PaymentStatus.REJECTED),
            (funds.notify_client.name, "transfer_rejected"),
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
            (funds.mt5_free_margin.name, 7001),
            (funds.mt5_debit_balance.name, f"tro {ref}"),
            (funds.book_entry.name, f"{ref}:from-mt5"),
            (funds.book_entry.name, f"{ref}:to-wallet"),
            (funds.notify_client.name, "transfer_completed"),
        ]
        [debit] = fakes.inputs[funds.mt5_debit_balance.name]
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
        assert fakes.after(funds.mt5_credit_balance.name) == [
            (funds.book_entry.name, f"{ref}:to-mt5"),
            (funds.mt5_reverse_if_applied.name, (f"rev {ref}", True)),
            (funds.reverse_entry_if_booked.name, (f"{ref}:fx", True)),
            (funds.reverse_entry_if_booked.name, (f"{ref}:hold", True)),
            (funds.mark_movement.name, PaymentStatus.FAILED),
            (funds.notify_client.name, "transfer_failed"),
        ]
        [taken_back] = fakes.inputs[funds.mt5_reverse_if_applied.name]
        assert taken_back.change == fakes.inputs[funds.mt5_credit_balance.name][0]
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
        crediting = fakes.pause(funds.mt5_credit_balance.name)
        request = wallet_usd_to_mt5_eur(fakes)
        ref = request.reference
        async with workers(env, fakes, TransferWorkflow) as queue:
            handle = await start(env, queue, request)
            await fakes.called(funds.mt5_credit_balance.name)
            await cancel(handle)
            crediting.set()  # MT5 applies the credit after all
            await fakes.landed(f"tri {ref}")
            with suppress(WorkflowFailureError):
                await handle.result()
            await replay(handle, TransferWorkflow)

        on_mt5 = f"rev {ref}" not in fakes.deals  # the credit stands on MT5
        back_in_wallet = f"{ref}:hold:reversal" in fakes.booked
        assert on_mt5 != back_in_wallet, f"MT5 deals {fakes.deals}, books {fakes.booked}"
