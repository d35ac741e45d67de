"""The payout cycle end to end on a real Temporal (time-skipping) and a real database: accrual,
one payout per IB and currency, statements stored, finance's decisions (four-eyes above the
threshold), the wallet credit through the ledger and a rejection's rows released."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import WorkflowFailureError, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.ib_payout import IbPayoutSteps, ib_wallet
from contracts.funds import StaffDecision
from contracts.ib_payout import (
    DECIDE,
    IB_PAYOUT_CYCLE,
    PayoutCycleInput,
    PayoutCycleResult,
    PayoutFrequency,
    PayoutResult,
    PayoutStatus,
    ib_payout_workflow_id,
)
from contracts.steps import Step, implementations
from db.ledger import balance
from db.models.ib import IbCommission, IbPayout
from storage.documents import LocalFileStore
from tests.ib_payout.scene import T0, example_scene
from tests.support.waiting import eventually
from tests.workflows.money_fakes import start_environment
from workflows.ib_payout import IbPayoutCycleWorkflow, IbPayoutWorkflow

WEEK = 7 * 86400
QUEUE = "ib-payout-test"


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    environment = await start_environment()
    yield environment
    await environment.shutdown()


def officer(approve: bool = True, staff: uuid.UUID | None = None) -> StaffDecision:
    return StaffDecision(
        staff_id=staff or uuid.uuid4(),
        roles=("finance",),
        approve=approve,
        reason="statement checked" if approve else "disputed by the IB",
    )


async def refusal(handle: WorkflowHandle[Any, Any], decision: StaffDecision) -> str:
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(DECIDE.name, decision, result_type=DECIDE.result)
    return str(refused.value.cause)


async def test_a_cycle_pays_approves_with_four_eyes_and_releases_a_rejection(
    env: WorkflowEnvironment, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    ibs = await example_scene(sessions)
    store = LocalFileStore(tmp_path)
    steps = implementations(Step, IbPayoutSteps(sessions, store))
    async with Worker(
        env.client,
        task_queue=QUEUE,
        workflows=[IbPayoutCycleWorkflow, IbPayoutWorkflow],
        activities=list(steps.values()),
    ):
        result = await env.client.execute_workflow(
            IB_PAYOUT_CYCLE.name,
            # Above 50 two officers approve: S's 54.00 USD does, D's 106.50 USD does, M's 49.05
            # EUR does not.
            PayoutCycleInput(
                frequency=PayoutFrequency.WEEKLY,
                period_start=T0,
                period_end=T0 + WEEK,
                four_eyes_above=Decimal("50"),
            ),
            id=f"cycle-{uuid.uuid4()}",
            task_queue=QUEUE,
            result_type=PayoutCycleResult,
        )
        assert result.rows == 15
        async with sessions() as session:
            payouts = {
                p.ib_id: p
                for p in await session.scalars(
                    select(IbPayout).where(IbPayout.id.in_(result.payouts))
                )
            }
        # Totals of docs/ib-commissions.md's example: D 100 + 1.60 + 2.40 + 0 + 2.50,
        # S 50 + 1.20 + 1.80 + 0 + 1.00, M 45.00 + 1.08 + 1.62 + 0 + 1.35 EUR.
        assert {k: (p.amount, p.currency) for k, p in payouts.items()} == {
            ibs["D"]: (Decimal("106.50"), "USD"),
            ibs["S"]: (Decimal("54.00"), "USD"),
            ibs["M"]: (Decimal("49.05"), "EUR"),
        }

        async def ready() -> bool:
            async with sessions() as session:
                statuses = await session.scalars(
                    select(IbPayout.status).where(IbPayout.id.in_(result.payouts))
                )
                return set(statuses) == {PayoutStatus.STATEMENT_READY.value}

        await eventually(ready, "every statement rendered", timeout=60)
        for payout in payouts.values():
            assert (tmp_path / f"ib/statements/{payout.id}.pdf").read_bytes()[:5] == b"%PDF-"

        d, s, m = (
            env.client.get_workflow_handle(
                ib_payout_workflow_id(payouts[ibs[k]].id), result_type=PayoutResult
            )
            for k in "DSM"
        )
        first = uuid.uuid4()
        outcome = await d.execute_update(
            DECIDE.name, officer(staff=first), result_type=DECIDE.result
        )
        assert (outcome.status, outcome.approvals, outcome.needed) == (
            PayoutStatus.STATEMENT_READY,
            1,
            2,
        )
        assert "a second officer must" in await refusal(d, officer(staff=first))
        not_finance = officer().model_copy(update={"roles": ("compliance",)})
        assert "only a finance officer" in await refusal(d, not_finance)
        outcome = await d.execute_update(DECIDE.name, officer(), result_type=DECIDE.result)
        assert outcome.status is PayoutStatus.APPROVED
        assert (await d.result()).status is PayoutStatus.PAID

        outcome = await m.execute_update(DECIDE.name, officer(), result_type=DECIDE.result)
        assert (outcome.status, outcome.needed) == (PayoutStatus.APPROVED, 1)
        assert (await m.result()).status is PayoutStatus.PAID

        await s.execute_update(DECIDE.name, officer(approve=False), result_type=DECIDE.result)
        assert (await s.result()).status is PayoutStatus.REJECTED

    async with sessions() as session:
        # The wallets are liabilities: credited, their balance (debit positive) is negative.
        assert (await balance(session, ib_wallet(ibs["D"], "USD"), "USD")).amount == Decimal(
            "-106.50"
        )
        assert (await balance(session, ib_wallet(ibs["M"], "EUR"), "EUR")).amount == Decimal(
            "-49.05"
        )
        assert (await balance(session, ib_wallet(ibs["S"], "USD"), "USD")).amount == 0
        released = await session.scalars(
            select(IbCommission.payout_id).where(IbCommission.ib_id == ibs["S"])
        )
        assert set(released) == {None}
        rejected = await session.get(IbPayout, payouts[ibs["S"]].id)
        assert rejected is not None
        assert (rejected.status, rejected.decision_reason) == ("rejected", "disputed by the IB")


async def test_a_payout_cancelled_before_its_credit_releases_its_rows(
    env: WorkflowEnvironment, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    ibs = await example_scene(sessions)
    steps = implementations(Step, IbPayoutSteps(sessions, LocalFileStore(tmp_path)))
    async with Worker(
        env.client,
        task_queue=QUEUE,
        workflows=[IbPayoutCycleWorkflow, IbPayoutWorkflow],
        activities=list(steps.values()),
    ):
        result = await env.client.execute_workflow(
            IB_PAYOUT_CYCLE.name,
            PayoutCycleInput(
                frequency=PayoutFrequency.WEEKLY, period_start=T0, period_end=T0 + WEEK
            ),
            id=f"cycle-{uuid.uuid4()}",
            task_queue=QUEUE,
            result_type=PayoutCycleResult,
        )
        async with sessions() as session:
            d_payout = await session.scalar(
                select(IbPayout.id).where(
                    IbPayout.id.in_(result.payouts), IbPayout.ib_id == ibs["D"]
                )
            )
        assert d_payout is not None

        async def ready() -> bool:
            async with sessions() as session:
                payout = await session.get(IbPayout, d_payout)
                return payout is not None and payout.status == "statement_ready"

        await eventually(ready, "D's statement rendered", timeout=60)
        handle = env.client.get_workflow_handle(ib_payout_workflow_id(d_payout))
        await handle.cancel()
        with pytest.raises(WorkflowFailureError):
            await handle.result()
    async with sessions() as session:
        payout = await session.get(IbPayout, d_payout)
        assert payout is not None and payout.status == "rejected"
        rows = await session.scalars(
            select(IbCommission.payout_id).where(IbCommission.ib_id == ibs["D"])
        )
        assert set(rows) == {None}
        assert (await balance(session, ib_wallet(ibs["D"], "USD"), "USD")).amount == 0
