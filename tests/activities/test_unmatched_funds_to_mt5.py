"""Unmatched funds credited straight to a client's MT5 account: the `ResolveUnmatchedFunds`
workflow with the real unmatched-funds steps on the real database and the real MT5 steps and
adapter against the MT5 simulator. A lost answer is looked up, not written twice; a credit MT5
refuses after applying it is found by its comment and stands: credited once, on MT5."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.mt5_funds import Mt5FundsSteps
from contracts import mt5_task_queue
from contracts.steps import Mt5Step, implementations
from contracts.unmatched_funds import (
    RESOLVE_UNMATCHED,
    ResolveUnmatched,
    UnmatchedOutcome,
    resolve_unmatched_workflow_id,
)
from db.ledger import balance
from db.models import AuditEntry, FinanceCase, UnmatchedFunds
from domain.funds import incoming_suspense, mt5_mirror
from domain.money_flows import Mt5AccountRef
from domain.payments import UnmatchedAction, UnmatchedStatus
from domain.wallets import hold_account, wallet
from mt5_adapter.webapi import WebApiGateway
from tests.activities import test_mt5_outcome_unknown as outcome_unknown
from tests.activities.kyc_rows import add_client
from tests.activities.test_mt5_outcome_unknown import LOST_ANSWER, deals, new_account
from tests.activities.test_mt5_refused_after_applied import refused_after_applied
from tests.activities.test_unmatched_funds_steps import FakeBank, Sessions, mark, queue_one, steps
from tests.support.processes import Simulator
from workflows.unmatched_funds import ResolveUnmatchedFundsWorkflow

# The module's own simulator (module scope: its faults reach no other module) and a gateway.
simulator = outcome_unknown.simulator
gateway = outcome_unknown.gateway


ZERO = Decimal(0)


async def credit_to_mt5(
    sessions: Sessions,
    gateway: WebApiGateway,
    temporal_env: WorkflowEnvironment,
) -> tuple[UnmatchedFunds, ResolveUnmatched, UnmatchedOutcome]:
    client = await add_client(sessions, questionnaire=False)
    item = await queue_one(sessions)  # 500.00 USD
    await mark(sessions, item, UnmatchedStatus.CREDITING)
    server = f"mt5{uuid.uuid4().hex[:8]}"
    request = ResolveUnmatched(
        item_id=item.id,
        action=UnmatchedAction.CREDIT,
        staff_id=uuid.uuid4(),
        client_id=client.id,
        mt5=Mt5AccountRef(server=server, login=await new_account(gateway)),
        note="the client's second transfer, to their trading account",
    )
    unmatched = steps(sessions, FakeBank())
    main: list[Callable[..., Any]] = [
        unmatched.resolve_unmatched_funds,
        unmatched.reopen_unmatched_funds,
        unmatched.unmatched_funds_in_transit,
        unmatched.finish_unmatched_credit,
        unmatched.unmatched_take_back_failed,
    ]
    mt5_steps = list(implementations(Mt5Step, Mt5FundsSteps(gateway)).values())
    queue = f"test-{uuid.uuid4()}"
    client_ = temporal_env.client
    async with (
        Worker(
            client_, task_queue=queue, workflows=[ResolveUnmatchedFundsWorkflow], activities=main
        ),
        Worker(client_, task_queue=mt5_task_queue(server), activities=mt5_steps),
    ):
        outcome: UnmatchedOutcome = await client_.execute_workflow(
            RESOLVE_UNMATCHED.name,
            request,
            id=resolve_unmatched_workflow_id(item.id, uuid.uuid4()),
            task_queue=queue,
            result_type=UnmatchedOutcome,
        )
    return item, request, outcome


async def money(sessions: Sessions, request: ResolveUnmatched) -> dict[str, Decimal]:
    """Where the books say the 500 are (liabilities as positive amounts)."""
    assert request.mt5 is not None and request.client_id is not None
    client = str(request.client_id)
    codes = {
        "wallet": wallet(client, "USD"),
        "hold": hold_account(client, "USD"),
        "mt5": mt5_mirror(request.mt5.server, request.mt5.login, "USD"),
        "suspense": incoming_suspense("USD"),
    }
    async with sessions() as session:
        return {k: -(await balance(session, code, "USD")).amount for k, code in codes.items()}


async def credited_audits(sessions: Sessions, item: UnmatchedFunds) -> list[AuditEntry]:
    async with sessions() as session:
        return list(
            await session.scalars(
                select(AuditEntry).where(
                    AuditEntry.entity_id == str(item.id),
                    AuditEntry.action == "unmatched_funds.credited",
                )
            )
        )


async def test_credited_to_mt5_once_although_the_answer_was_lost(
    sessions: Sessions,
    simulator: Simulator,
    gateway: WebApiGateway,
    temporal_env: WorkflowEnvironment,
) -> None:
    simulator.inject_faults(LOST_ANSWER)
    item, request, outcome = await credit_to_mt5(sessions, gateway, temporal_env)
    assert simulator.fault_hits() == 1
    assert request.mt5 is not None

    assert outcome.status is UnmatchedStatus.CREDITED and outcome.error is None
    assert deals(simulator, request.mt5.login) == [(f"dep {item.reference}", Decimal("500.00"))]
    assert (await gateway.get_user(request.mt5.login)).balance == Decimal("500.00")
    books = await money(sessions, request)
    assert (books["mt5"], books["wallet"], books["hold"]) == (Decimal("500.00"), ZERO, ZERO)
    async with sessions() as session:
        stored = await session.get(UnmatchedFunds, item.id)
    assert stored is not None and (stored.status, stored.credited_client_id) == (
        "credited",
        request.client_id,
    )
    [audit] = await credited_audits(sessions, item)
    assert audit.after is not None
    assert (audit.after["to"], audit.after["mt5"]) == (
        "mt5",
        f"{request.mt5.server}/{request.mt5.login}",
    )
    assert audit.after["mt5_ticket"] > 0


async def test_a_credit_refused_after_it_was_applied_stands_on_mt5_once(
    sessions: Sessions,
    simulator: Simulator,
    gateway: WebApiGateway,
    temporal_env: WorkflowEnvironment,
) -> None:
    simulator.inject_faults(refused_after_applied(10006))
    item, request, outcome = await credit_to_mt5(sessions, gateway, temporal_env)
    assert simulator.fault_hits() == 1
    assert request.mt5 is not None

    # MT5 applied it and answered a refusal; the look-up finds the deal: credited once, on MT5.
    assert outcome.status is UnmatchedStatus.CREDITED
    assert deals(simulator, request.mt5.login) == [(f"dep {item.reference}", Decimal("500.00"))]
    assert (await gateway.get_user(request.mt5.login)).balance == Decimal("500.00")
    books = await money(sessions, request)
    assert (books["mt5"], books["wallet"], books["hold"]) == (Decimal("500.00"), ZERO, ZERO)
    async with sessions() as session:
        cases = list(
            await session.scalars(select(FinanceCase).where(FinanceCase.movement_id == item.id))
        )
    assert cases == []
    [audit] = await credited_audits(sessions, item)
    assert audit.after is not None and audit.after["to"] == "mt5"
