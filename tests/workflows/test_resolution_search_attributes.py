"""Finance's resolution of an unmatched payment and an IB payout carry the search attributes of
the money workflows (contracts.funds: client, reference, status, since when), set at the run's
start and upserted as the row's status moves: what operations filter on in the Temporal UI
(docs/unmatched-funds.md; docs/payments.md, "Finding movements in the Temporal UI")."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from temporalio.client import WorkflowHandle
from temporalio.common import TypedSearchAttributes
from temporalio.testing import WorkflowEnvironment

from contracts import funds
from contracts import unmatched_funds as unmatched
from contracts.funds import (
    CLIENT_ID,
    MOVEMENT_STATUS,
    PAYMENT_REFERENCE,
    STATUS_SINCE,
    StaffDecision,
)
from contracts.ib_payout import (
    DECIDE,
    IB_PAYOUT,
    PayoutInput,
    PayoutResult,
    PayoutStatus,
    ib_payout_workflow_id,
)
from contracts.unmatched_funds import RESOLVE_UNMATCHED, ResolveUnmatched, UnmatchedOutcome
from domain.payments import UnmatchedAction, UnmatchedStatus, unmatched_reference
from tests.workflows.money_fakes import MoneyFakes, blocked_after, start_environment, workers
from tests.workflows.resolution_fakes import IbPayoutFakes, UnmatchedToMt5Fakes, ib_payout_worker
from workflows.ib_payout import IbPayoutWorkflow
from workflows.unmatched_funds import ResolveUnmatchedFundsWorkflow


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    environment = await start_environment()
    yield environment
    await environment.shutdown()


async def shown(handle: WorkflowHandle[Any, Any]) -> TypedSearchAttributes:
    return (await handle.describe()).typed_search_attributes


def resolution(
    action: UnmatchedAction, fakes: MoneyFakes, *, to_mt5: bool = False
) -> ResolveUnmatched:
    return ResolveUnmatched(
        item_id=uuid.uuid4(),
        action=action,
        staff_id=uuid.uuid4(),
        client_id=uuid.uuid4() if action is UnmatchedAction.CREDIT else None,
        mt5=fakes.account() if to_mt5 else None,
        note="finance decided",
    )


async def start_resolution(
    env: WorkflowEnvironment, queue: str, request: ResolveUnmatched
) -> WorkflowHandle[Any, UnmatchedOutcome]:
    return await env.client.start_workflow(
        RESOLVE_UNMATCHED.name,
        request,
        id=f"unmatched-funds-{request.item_id}",
        task_queue=queue,
        result_type=UnmatchedOutcome,
    )


class TestAnUnmatchedItemsResolution:
    @pytest.mark.parametrize("to_mt5", [False, True], ids=["to-the-wallet", "to-mt5"])
    async def test_a_credit_shows_the_client_the_reference_and_crediting_then_credited(
        self, env: WorkflowEnvironment, to_mt5: bool
    ) -> None:
        fakes = UnmatchedToMt5Fakes()
        # The step in flight while the item is crediting: the books', or MT5's credit.
        step = funds.mt5_credit_balance.name if to_mt5 else unmatched.resolve_unmatched_funds.name
        release = fakes.pause(step)
        request = resolution(UnmatchedAction.CREDIT, fakes, to_mt5=to_mt5)
        async with workers(env, fakes, ResolveUnmatchedFundsWorkflow) as queue:
            started = await env.get_current_time()
            handle = await start_resolution(env, queue, request)
            await fakes.called(step)
            crediting = await shown(handle)
            release.set()
            outcome = await handle.result()
            credited = await shown(handle)

        assert outcome.status is UnmatchedStatus.CREDITED
        reference = unmatched_reference(str(request.item_id))
        assert crediting.get(CLIENT_ID) == str(request.client_id)
        assert crediting.get(PAYMENT_REFERENCE) == reference
        assert crediting.get(MOVEMENT_STATUS) == UnmatchedStatus.CREDITING.value
        since = crediting.get(STATUS_SINCE)
        assert since is not None and abs(since - started) < timedelta(seconds=5)
        assert credited.get(CLIENT_ID) == str(request.client_id)
        assert credited.get(PAYMENT_REFERENCE) == reference
        assert credited.get(MOVEMENT_STATUS) == UnmatchedStatus.CREDITED.value
        moved = credited.get(STATUS_SINCE)
        assert moved is not None and moved >= since

    @pytest.mark.parametrize(
        ("refused", "status"),
        [(False, UnmatchedStatus.RETURNED), (True, UnmatchedStatus.OPEN)],
        ids=["returned", "refused-open-again"],
    )
    async def test_a_return_shows_no_client_and_returning_then_where_it_ended(
        self, env: WorkflowEnvironment, refused: bool, status: UnmatchedStatus
    ) -> None:
        step = unmatched.resolve_unmatched_funds.name
        fakes = MoneyFakes(refuse={step: "ProcessorRefused"} if refused else {})
        release = fakes.pause(step)
        request = resolution(UnmatchedAction.RETURN, fakes)
        async with workers(env, fakes, ResolveUnmatchedFundsWorkflow) as queue:
            handle = await start_resolution(env, queue, request)
            await fakes.called(step)
            returning = await shown(handle)
            release.set()
            outcome = await handle.result()
            ended = await shown(handle)

        assert outcome.status is status
        assert returning.get(CLIENT_ID) is None and ended.get(CLIENT_ID) is None
        assert returning.get(PAYMENT_REFERENCE) == unmatched_reference(str(request.item_id))
        assert returning.get(MOVEMENT_STATUS) == UnmatchedStatus.RETURNING.value
        assert ended.get(MOVEMENT_STATUS) == status.value

    async def test_a_credit_mt5_refuses_and_will_not_give_back_stays_crediting_for_finance(
        self, env: WorkflowEnvironment
    ) -> None:
        """The workflow completes with the item still `crediting` (a finance case is open): a
        completed resolution showing `crediting` is one left for finance."""
        fakes = UnmatchedToMt5Fakes(refuse={funds.mt5_credit_balance.name: "Mt5AccountDisabled"})
        request = resolution(UnmatchedAction.CREDIT, fakes, to_mt5=True)
        reference = unmatched_reference(str(request.item_id))
        fakes.fail_for_good[f"rev {reference}"] = "Mt5Unreachable"
        async with workers(env, fakes, ResolveUnmatchedFundsWorkflow) as queue:
            started = await env.get_current_time()
            handle = await start_resolution(env, queue, request)
            outcome = await handle.result()
            ended = await shown(handle)

        assert outcome.status is UnmatchedStatus.CREDITING
        assert unmatched.unmatched_take_back_failed.name in fakes.steps()
        assert ended.get(MOVEMENT_STATUS) == UnmatchedStatus.CREDITING.value
        since = ended.get(STATUS_SINCE)
        assert since is not None and abs(since - started) < timedelta(seconds=5)


def finance_officer() -> StaffDecision:
    return StaffDecision(
        staff_id=uuid.uuid4(), roles=("finance",), approve=True, reason="statement checked"
    )


async def start_payout(
    env: WorkflowEnvironment, queue: str, payout_id: uuid.UUID
) -> WorkflowHandle[Any, PayoutResult]:
    return await env.client.start_workflow(
        IB_PAYOUT.name,
        PayoutInput(payout_id=payout_id, four_eyes_above=Decimal("1000")),
        id=ib_payout_workflow_id(payout_id),
        task_queue=queue,
        result_type=PayoutResult,
    )


class TestAnIbPayout:
    async def test_a_payout_waiting_for_finance_shows_statement_ready_since_then_moves_on(
        self, env: WorkflowEnvironment
    ) -> None:
        fakes = IbPayoutFakes()
        release = fakes.pause("ib_payout_destination")
        payout_id = uuid.uuid4()
        async with ib_payout_worker(env, fakes, IbPayoutWorkflow) as queue:
            handle = await start_payout(env, queue, payout_id)
            await blocked_after(handle, "render_ib_statement")
            entered = await env.get_current_time()
            # A day and more later nobody has decided: the status and its time stay as they were.
            await env.sleep(timedelta(hours=25))
            waiting = await shown(handle)
            await handle.execute_update(DECIDE.name, finance_officer(), result_type=DECIDE.result)
            await fakes.called("ib_payout_destination")
            approved = await shown(handle)
            release.set()
            result = await handle.result()
            paid = await shown(handle)

        assert result.status is PayoutStatus.PAID
        assert waiting.get(CLIENT_ID) is None  # an IB is not a client
        assert waiting.get(PAYMENT_REFERENCE) == str(payout_id)
        assert waiting.get(MOVEMENT_STATUS) == PayoutStatus.STATEMENT_READY.value
        since = waiting.get(STATUS_SINCE)
        assert since is not None and abs(since - entered) < timedelta(seconds=5)
        assert since < await env.get_current_time() - timedelta(days=1)
        assert approved.get(MOVEMENT_STATUS) == PayoutStatus.APPROVED.value
        assert paid.get(MOVEMENT_STATUS) == PayoutStatus.PAID.value

    @pytest.mark.parametrize(
        ("approve", "status"),
        [(False, PayoutStatus.REJECTED), (True, PayoutStatus.NEEDS_ATTENTION)],
        ids=["rejected", "needs-attention"],
    )
    async def test_a_payout_shows_where_it_ended(
        self, env: WorkflowEnvironment, approve: bool, status: PayoutStatus
    ) -> None:
        fakes = IbPayoutFakes(problem="the MT5 account holds EUR" if approve else None)
        payout_id = uuid.uuid4()
        async with ib_payout_worker(env, fakes, IbPayoutWorkflow) as queue:
            handle = await start_payout(env, queue, payout_id)
            await blocked_after(handle, "render_ib_statement")
            decision = finance_officer().model_copy(update={"approve": approve})
            await handle.execute_update(DECIDE.name, decision, result_type=DECIDE.result)
            result = await handle.result()
            ended = await shown(handle)

        assert result.status is status
        assert ended.get(PAYMENT_REFERENCE) == str(payout_id)
        assert ended.get(MOVEMENT_STATUS) == status.value
