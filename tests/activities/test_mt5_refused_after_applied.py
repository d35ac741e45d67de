"""A balance write MT5 applied and then answered with a refusal (the simulator's
`refuse_after_commit` fault), with the real adapter and the real MT5 steps: BrokerFlow never
credits the money twice, and never loses it.

A final refusal is not believed on its word: the step looks the deal up by its comment and,
finding it, takes the write as applied, so the deposit completes on MT5 (MT5 + wallet = paid,
no take-back, no second credit). A transient code is retried, and the retry finds the deal
instead of writing it again. A take-back (a compensation) refused after it was applied is found
the same way: done, no finance case. Ground truth is the simulator's own `/_sim/state/deals`.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.mt5_balance import apply_balance_once
from activities.mt5_funds import Mt5FundsSteps
from contracts import mt5_task_queue
from contracts.deposit import deposit_workflow_id
from contracts.funds import BalanceChange, MovementResult, ReverseBalanceChange
from contracts.steps import Mt5Step, implementations
from domain.money_flows import Mt5AccountRef, Pocket
from domain.mt5 import BalanceOperation
from domain.payments import PaymentStatus
from mt5_adapter.errors import Mt5Error
from mt5_adapter.webapi import WebApiGateway
from tests.activities import test_mt5_outcome_unknown as outcome_unknown
from tests.activities.test_mt5_outcome_unknown import (
    attempt,
    deals,
    failure_of,
    new_account,
    retried,
)
from tests.support.processes import Simulator
from tests.workflows.money_fakes import MoneyFakes
from tests.workflows.test_deposit import AMOUNT, deposit_request, pay
from workflows.deposit import DepositWorkflow

# The module's own simulator (module scope: its faults reach no other module) and a gateway.
simulator = outcome_unknown.simulator
gateway = outcome_unknown.gateway


def refused_after_applied(retcode: int, times: int = 1) -> dict[str, object]:
    return {
        "path": "/api/trade/balance",
        "mode": "refuse_after_commit",
        "retcode": retcode,
        "times": times,
    }


async def test_a_transient_answer_after_the_write_is_found_on_the_retry_not_written_again(
    simulator: Simulator, gateway: WebApiGateway
) -> None:
    login = await new_account(gateway)
    comment = f"dep {uuid.uuid4().hex[:12]}"
    operation = BalanceOperation(login=login, amount=Decimal("100.00"), comment=comment)
    since = datetime.now(UTC)

    simulator.inject_faults(refused_after_applied(10))  # 10: transient, retried
    refused = await failure_of(attempt(1), apply_balance_once, gateway, operation, since)
    assert isinstance(refused, Mt5Error) and retried(refused)
    assert deals(simulator, login) == [(comment, Decimal("100.00"))], "applied all the same"

    ticket = await attempt(2).run(apply_balance_once, gateway, operation, since)
    assert deals(simulator, login) == [(comment, Decimal("100.00"))], "not written twice"
    assert (await gateway.get_user(login)).balance == Decimal("100.00")
    assert ticket > 0


async def run_deposit(
    simulator: Simulator,
    gateway: WebApiGateway,
    temporal_env: WorkflowEnvironment,
    *faults: dict[str, object],
) -> tuple[int, MoneyFakes, MovementResult, str]:
    """The real deposit workflow and the real MT5 steps against the simulator; the database and
    processor steps are the workflow tests' fakes (they record what would be booked)."""
    login = await new_account(gateway)
    fakes = MoneyFakes()
    request = deposit_request(
        Pocket(currency="USD", mt5=Mt5AccountRef(server=fakes.server, login=login))
    )
    main, _ = fakes.activities()
    mt5_steps = list(implementations(Mt5Step, Mt5FundsSteps(gateway)).values())
    queue = f"test-{uuid.uuid4()}"
    client = temporal_env.client
    simulator.inject_faults(*faults)
    async with (
        Worker(client, task_queue=queue, workflows=[DepositWorkflow], activities=main),
        Worker(client, task_queue=mt5_task_queue(fakes.server), activities=mt5_steps),
    ):
        handle: WorkflowHandle[DepositWorkflow, MovementResult] = await client.start_workflow(
            DepositWorkflow.run,
            request,
            id=deposit_workflow_id(request.payment_id),
            task_queue=queue,
        )
        await pay(handle, request)
        result = await handle.result()
    return login, fakes, result, request.reference


# 10006 Request rejected, 2 Common error: both final, both after MT5 booked the deal.
@pytest.mark.parametrize("retcode", [10006, 2])
async def test_a_deposit_credit_refused_after_it_was_applied_is_credited_once(
    simulator: Simulator,
    gateway: WebApiGateway,
    temporal_env: WorkflowEnvironment,
    retcode: int,
) -> None:
    login, fakes, result, ref = await run_deposit(
        simulator, gateway, temporal_env, refused_after_applied(retcode)
    )
    assert simulator.fault_hits() == 1, "the fault did not fire: the test proved nothing"

    # The refusal is checked against MT5: the credit is there, so it is the deposit's credit.
    assert deals(simulator, login) == [(f"dep {ref}", Decimal("100.00"))]
    assert (await gateway.get_user(login)).balance == AMOUNT.amount
    assert f"{ref}:to-wallet" not in fakes.bookings(), "paid once, credited once"
    assert result.status is PaymentStatus.COMPLETED and result.credited == AMOUNT


async def test_a_take_back_refused_after_it_was_applied_is_done_not_a_case(
    simulator: Simulator, gateway: WebApiGateway
) -> None:
    """A compensation's write booked and answered 10006: the take-back is found by its comment,
    so the step ends as done (MT5 at zero, one reversal), not as a failure for finance."""
    login = await new_account(gateway)
    key = uuid.uuid4().hex[:12]
    change = BalanceChange(
        account=Mt5AccountRef(server="demo", login=login),
        amount=Decimal("100.00"),
        comment=f"dep {key}",
        requested_at=datetime.now(UTC),
    )
    steps = Mt5FundsSteps(gateway)
    await attempt(1).run(steps.mt5_credit_balance, change)

    simulator.inject_faults(refused_after_applied(10006))
    undo = ReverseBalanceChange(change=change, comment=f"rev {key}")
    await attempt(1).run(steps.mt5_reverse_if_applied, undo)

    assert simulator.fault_hits() == 1, "the fault did not fire: the test proved nothing"
    assert deals(simulator, login) == [
        (f"dep {key}", Decimal("100.00")),
        (f"rev {key}", Decimal("-100.00")),
    ]
    assert (await gateway.get_user(login)).balance == 0
