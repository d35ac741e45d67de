"""A deposit whose MT5 credit is refused after MT5 applied it (issue 11, defect 1): the credit is
taken back from MT5 before the money goes to the wallet, so the client has it once. Deposits
that reached that point before the change still replay (`workflow.patched`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from contracts import deposit, funds
from contracts.funds import ReverseBalanceChange
from domain.payments import PaymentStatus
from tests.workflows.money_fakes import MoneyFakes, start_environment, workers
from tests.workflows.refusal_fakes import RefusedAfterApplied
from tests.workflows.test_deposit import AMOUNT, deposit_request, finish, mt5_pocket, pay, start
from workflows.deposit import DepositWorkflow

# Recorded with the deposit workflow as it was before the take-back step: MT5 refuses the credit
# (nothing applied) and the money goes to the wallet.
BEFORE_TAKE_BACK = Path(__file__).parent / "histories" / "deposit_mt5_refused_before_take_back.json"


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    environment = await start_environment()
    yield environment
    await environment.shutdown()


async def test_a_credit_refused_after_mt5_applied_it_is_taken_back_before_the_wallet(
    env: WorkflowEnvironment,
) -> None:
    fakes = RefusedAfterApplied(applied_then_refused={funds.mt5_credit_balance.name: "Mt5Error"})
    request = deposit_request(mt5_pocket(fakes))
    ref = request.reference
    async with workers(env, fakes, DepositWorkflow) as queue:
        handle = await start(env, queue, request)
        await pay(handle, request)
        result = await finish(handle)

    assert result.status is PaymentStatus.COMPLETED
    assert result.credited == AMOUNT
    assert (result.reason or "").startswith("to the wallet: MT5 refused the credit")
    # MT5 gives the credit back before the wallet gets the money.
    assert fakes.after(deposit.receive_deposit.name) == [
        (funds.mt5_credit_balance.name, f"dep {ref}"),
        (funds.mt5_reverse_if_applied.name, (f"rev {ref}", True)),
        (funds.book_entry.name, f"{ref}:to-wallet"),
        (funds.notify_client.name, "deposit_completed"),
    ]
    [credit] = fakes.inputs[funds.mt5_credit_balance.name]
    [reversal] = fakes.inputs[funds.mt5_reverse_if_applied.name]
    assert isinstance(reversal, ReverseBalanceChange)
    assert reversal.change == credit
    # Paid 100 once: MT5 holds the credit and its reversal (net 0), the wallet the 100.
    on_mt5 = credit.amount * ((f"dep {ref}" in fakes.deals) - (f"rev {ref}" in fakes.deals))
    to_wallet = fakes.bookings()[f"{ref}:to-wallet"]
    assert to_wallet.then is not None and to_wallet.then.credited == AMOUNT
    assert on_mt5 + to_wallet.then.credited.amount == AMOUNT.amount


async def test_a_credit_mt5_refused_outright_is_looked_for_and_not_reversed(
    env: WorkflowEnvironment,
) -> None:
    fakes = MoneyFakes(refuse={funds.mt5_credit_balance.name: "Mt5Refused"})
    request = deposit_request(mt5_pocket(fakes))
    ref = request.reference
    async with workers(env, fakes, DepositWorkflow) as queue:
        handle = await start(env, queue, request)
        await pay(handle, request)
        result = await finish(handle)

    assert result.status is PaymentStatus.COMPLETED
    assert fakes.after(funds.mt5_credit_balance.name) == [
        (funds.mt5_reverse_if_applied.name, (f"rev {ref}", False)),
        (funds.book_entry.name, f"{ref}:to-wallet"),
        (funds.notify_client.name, "deposit_completed"),
    ]
    assert not fakes.deals


async def test_a_deposit_refused_by_mt5_before_the_take_back_step_still_replays() -> None:
    history = WorkflowHistory.from_json("deposit-before-take-back", BEFORE_TAKE_BACK.read_text())
    await Replayer(
        workflows=[DepositWorkflow], data_converter=pydantic_data_converter
    ).replay_workflow(history)
