"""A balance write MT5 applied whose answer was lost, then a look-up MT5 answers with an error
(issue 11, defect 1), on the MT5 simulator with the real adapter and the real MT5 steps.

The look-up's error is about the look-up, not the write: the step is retried until MT5 says
whether the deal is there, never ended as a refusal. Before the rule the deposit took such an
error for MT5 refusing the credit and paid the money into the wallet as well: paid 100, 200
credited. Ground truth is the simulator's own `/_sim/state/deals`.
"""

from __future__ import annotations

import dataclasses
import itertools
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment, WorkflowEnvironment
from temporalio.worker import Worker

from activities.mt5_balance import apply_balance_once
from activities.mt5_errors import OUTCOME_UNKNOWN
from activities.mt5_funds import Mt5FundsSteps
from contracts import funds, mt5_task_queue
from contracts.deposit import deposit_workflow_id
from contracts.funds import BalanceChange, MovementResult, ReverseBalanceChange
from contracts.steps import Mt5Step, implementations
from domain.money_flows import Mt5AccountRef, Pocket
from domain.mt5 import BalanceOperation, NewMt5User
from domain.payments import PaymentStatus
from mt5_adapter.errors import Mt5Error
from mt5_adapter.webapi import WebApiGateway, gateway_for
from tests.conftest import mt5_settings_for
from tests.e2e.helpers import simulator_deals
from tests.support.processes import Simulator, start_simulator
from tests.workflows.money_fakes import MoneyFakes
from tests.workflows.test_deposit import AMOUNT, deposit_request, pay
from workflows.deposit import DepositWorkflow

LOST_ANSWER = {"path": "/api/trade/balance", "mode": "drop_after_commit", "times": 1}
LOGINS = itertools.count(8_300_000)


def lookup_answers(retcode: int) -> dict[str, object]:
    return {"path": "/api/deal/get_batch", "mode": "retcode", "retcode": retcode, "times": 1}


@pytest.fixture(scope="module")
def simulator(artifacts_dir: Path) -> Iterator[Simulator]:
    """A simulator of this module's own: its faults reach no other test."""
    child = start_simulator(artifacts_dir / "logs", tls=False)
    yield child
    child.child.stop()


@pytest.fixture
async def gateway(simulator: Simulator) -> AsyncIterator[WebApiGateway]:
    mt5 = gateway_for(mt5_settings_for(simulator))
    yield mt5
    await mt5.aclose()
    simulator.clear_faults()


async def new_account(gateway: WebApiGateway) -> int:
    login = next(LOGINS)
    await gateway.add_user(
        NewMt5User(
            login=login,
            group="demo\\standard",
            name="Outcome Unknown",
            leverage=100,
            password_main="Main#Pass1",
            password_investor="Inv#Pass1",
        )
    )
    return login


def attempt(number: int) -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=number)
    return env


def deals(simulator: Simulator, login: int) -> list[tuple[str, Decimal]]:
    """(comment, amount) of every deal MT5 holds for `login`."""
    return [
        (deal["Comment"], Decimal(str(deal["Profit"])))
        for deal in simulator_deals(simulator.base_url, login)
    ]


async def failure_of(env: ActivityEnvironment, step: Any, *args: Any) -> BaseException:
    try:
        await env.run(step, *args)
    except BaseException as raised:
        return raised
    raise AssertionError("the step succeeded")


def retried(failure: BaseException) -> bool:
    """Temporal retries everything but a non-retryable ApplicationError."""
    return not (isinstance(failure, ApplicationError) and failure.non_retryable)


# 2 Common error, 3 invalid parameters, 8 no permission, 9999 a code nobody knows, 10 (transient).
@pytest.mark.parametrize("retcode", [2, 3, 8, 9999, 10])
async def test_a_lookup_error_after_a_lost_answer_is_retried_never_final(
    simulator: Simulator, gateway: WebApiGateway, retcode: int
) -> None:
    login = await new_account(gateway)
    comment = f"dep {uuid.uuid4().hex[:12]}"
    operation = BalanceOperation(login=login, amount=Decimal("100.00"), comment=comment)
    since = datetime.now(UTC)

    simulator.inject_faults(LOST_ANSWER)
    lost = await failure_of(attempt(1), apply_balance_once, gateway, operation, since)
    assert isinstance(lost, Mt5Error) and lost.ambiguous and retried(lost)
    assert deals(simulator, login) == [(comment, Decimal("100.00"))]

    simulator.inject_faults(lookup_answers(retcode))
    unknown = await failure_of(attempt(2), apply_balance_once, gateway, operation, since)
    assert retried(unknown), f"{unknown!r} ends the step as if MT5 refused the credit"
    assert isinstance(unknown, ApplicationError) and unknown.type == OUTCOME_UNKNOWN
    assert "may have applied" in unknown.message
    assert deals(simulator, login) == [(comment, Decimal("100.00"))]

    simulator.clear_faults()
    ticket = await attempt(3).run(apply_balance_once, gateway, operation, since)
    assert deals(simulator, login) == [(comment, Decimal("100.00"))]
    [deal] = simulator_deals(simulator.base_url, login)
    assert ticket == int(deal["Deal"])


async def test_a_reversal_whose_lookup_fails_is_retried_and_reverses_once(
    simulator: Simulator, gateway: WebApiGateway
) -> None:
    login = await new_account(gateway)
    steps = Mt5FundsSteps(gateway)
    credit = BalanceChange(
        account=Mt5AccountRef(server="demo", login=login),
        amount=Decimal("100.00"),
        comment=f"dep {uuid.uuid4().hex[:12]}",
        requested_at=datetime.now(UTC),
    )
    reverse = ReverseBalanceChange(change=credit, comment=f"rev {credit.comment[4:]}")
    await attempt(1).run(steps.mt5_credit_balance, credit)

    simulator.inject_faults(lookup_answers(2))
    unknown = await failure_of(attempt(1), steps.mt5_reverse_if_applied, reverse)
    assert retried(unknown) and isinstance(unknown, ApplicationError)
    assert unknown.type == OUTCOME_UNKNOWN
    simulator.clear_faults()

    await attempt(2).run(steps.mt5_reverse_if_applied, reverse)
    # Asked again (a second compensation, a replayed fallback): the reversal is found, not redone.
    await attempt(1).run(steps.mt5_reverse_if_applied, reverse)
    assert deals(simulator, login) == [
        (credit.comment, Decimal("100.00")),
        (reverse.comment, Decimal("-100.00")),
    ]
    assert (await gateway.get_user(login)).balance == 0


async def test_a_deposit_whose_credit_lookup_fails_is_credited_to_mt5_once(
    simulator: Simulator, gateway: WebApiGateway, temporal_env: WorkflowEnvironment
) -> None:
    """The real deposit workflow and the real MT5 steps against the simulator; the database and
    processor steps are the workflow tests' fakes (they record what would be booked)."""
    login = await new_account(gateway)
    fakes = MoneyFakes()
    account = Mt5AccountRef(server=fakes.server, login=login)
    request = deposit_request(Pocket(currency="USD", mt5=account))
    ref = request.reference
    main, _ = fakes.activities()
    mt5_steps = list(implementations(Mt5Step, Mt5FundsSteps(gateway)).values())
    queue = f"test-{uuid.uuid4()}"
    client = temporal_env.client

    simulator.inject_faults(LOST_ANSWER, lookup_answers(2))
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
    assert simulator.fault_hits() == 2, "the faults did not fire: the test proved nothing"

    on_mt5 = (await gateway.get_user(login)).balance
    bookings = fakes.bookings()
    to_wallet = AMOUNT.amount if f"{ref}:to-wallet" in bookings else Decimal(0)
    assert on_mt5 + to_wallet == AMOUNT.amount, "paid once, credited once"
    assert f"{ref}:to-mt5" in bookings
    assert result == MovementResult(status=PaymentStatus.COMPLETED, credited=AMOUNT)
    assert deals(simulator, login) == [(f"dep {ref}", Decimal("100.00"))]
    # The credit step was retried through the error answer, not ended by it.
    assert funds.mt5_reverse_if_applied.name not in fakes.steps()
