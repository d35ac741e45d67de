"""The transfer workflow's logic, with its steps replaced by fakes of the same name."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import suppress
from pathlib import Path

import pytest
from temporalio.client import WorkflowFailureError, WorkflowHandle, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from contracts import funds
from contracts.funds import MovementResult
from contracts.transfer import TransferInput, transfer_workflow_id
from domain.money_flows import MovementKind, Pocket, reference_for
from domain.payments import FinanceCaseKind, PaymentStatus
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

# Recorded with the code before compensations ran to their end: the credit's take-back failed for
# good and the workflow failed at once (the conversion and the hold never reversed).
BEFORE_RUN_TO_END = (
    Path(__file__).parent / "histories" / "transfer_compensation_failed_before_run_to_end.json"
)

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


class TestCompensationsRunToTheirEnd:
    async def test_mt5_keeping_the_credit_for_good_still_undoes_the_rest_and_opens_a_case(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = MoneyFakes()
        request = wallet_usd_to_mt5_eur(fakes)
        ref = request.reference
        fakes.refuse[f"{ref}:to-mt5"] = "Conflict"  # a fault after MT5 credited
        fakes.fail_for_good[f"rev {ref}"] = "Mt5AccountDisabled"  # and MT5 won't take it back
        handle = await transfer(env, fakes, request)
        result = await handle.result()  # finishes: not a failed workflow

        assert result.status is PaymentStatus.NEEDS_ATTENTION
        assert fakes.after(funds.mt5_credit_balance.name) == [
            (funds.book_entry.name, f"{ref}:to-mt5"),
            (funds.mt5_reverse_if_applied.name, (f"rev {ref}", True)),  # fails for good
            (funds.reverse_entry_if_booked.name, (f"{ref}:fx", True)),
            (funds.reverse_entry_if_booked.name, (f"{ref}:hold", True)),
            (funds.open_finance_case.name, FinanceCaseKind.COMPENSATION_INCOMPLETE),
            (funds.notify_client.name, "transfer_needs_attention"),
        ]
        assert fakes.deals == {f"tri {ref}"}  # MT5 keeps the credit ...
        assert fakes.booked == {  # ... and the hold and the conversion are reversed
            f"{ref}:hold",
            f"{ref}:hold:reversal",
            f"{ref}:fx",
            f"{ref}:fx:reversal",
        }
        [case] = fakes.inputs[funds.open_finance_case.name]
        assert case.movement.id == request.transfer_id
        assert case.amount == AMOUNT
        assert case.reason.startswith("failed: undone after a fault")
        assert [(c.step, c.what, c.amount) for c in case.undone] == [
            (funds.reverse_entry_if_booked.name, f"reverse the entry {ref}:fx", AMOUNT),
            (funds.reverse_entry_if_booked.name, f"reverse the entry {ref}:hold", AMOUNT),
        ]
        [kept] = case.not_undone
        assert (kept.step, kept.amount) == (funds.mt5_reverse_if_applied.name, CONVERTED)
        assert f"tri {ref}" in kept.what and str(fakes.account().login) in kept.what
        assert kept.error == "Mt5AccountDisabled: Mt5AccountDisabled (fake)"
        assert case.then is not None and case.then.status is PaymentStatus.NEEDS_ATTENTION
        [notice] = fakes.inputs[funds.notify_client.name]
        assert "not back where it came from" in notice.message

    async def test_a_refused_transfer_whose_conversion_cannot_be_reversed_still_releases_the_hold(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = MoneyFakes(refuse={funds.mt5_credit_balance.name: "Mt5Refused"})
        request = wallet_usd_to_mt5_eur(fakes)
        ref = request.reference
        fakes.fail_for_good[f"{ref}:fx:reversal"] = "NoFxRate"
        result = await (await transfer(env, fakes, request)).result()

        assert result.status is PaymentStatus.NEEDS_ATTENTION
        assert fakes.after(funds.mt5_credit_balance.name) == [
            (funds.mt5_reverse_if_applied.name, (f"rev {ref}", False)),
            (funds.reverse_entry_if_booked.name, (f"{ref}:fx", True)),  # fails for good
            (funds.reverse_entry_if_booked.name, (f"{ref}:hold", True)),
            (funds.open_finance_case.name, FinanceCaseKind.COMPENSATION_INCOMPLETE),
            (funds.notify_client.name, "transfer_needs_attention"),
        ]
        assert f"{ref}:hold:reversal" in fakes.booked
        [case] = fakes.inputs[funds.open_finance_case.name]
        assert case.reason == "rejected: Mt5Refused (fake)"
        assert [c.what for c in case.undone] == [
            f"undo 'tri {ref}' on MT5 {fakes.server} 7001 with 'rev {ref}'",
            f"reverse the entry {ref}:hold",
        ]
        assert [(c.what, c.error) for c in case.not_undone] == [
            (f"reverse the entry {ref}:fx", "NoFxRate: NoFxRate (fake)")
        ]

    async def test_a_history_from_before_the_change_replays_the_old_way(self) -> None:
        history = WorkflowHistory.from_json("transfer-before", BEFORE_RUN_TO_END.read_text())
        replayer = Replayer(workflows=[TransferWorkflow], data_converter=pydantic_data_converter)
        result = await replayer.replay_workflow(history)
        assert result.replay_failure is None
