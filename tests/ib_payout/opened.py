"""Where the payout API and console tests start: the example scene accrued over its first week
and its IB payouts opened; and a payout as `IbPayout` leaves it when MT5 refuses the credit for
good."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.ib_payout import IbPayoutSteps, accrue
from contracts.ib_payout import PayoutFrequency, PayoutPeriod
from db.models.ib import IbPayout
from settings import Settings
from tests.conftest import FLEET_NAMESPACE
from tests.ib_payout.scene import T0, example_scene
from tests.ib_payout.test_accrual import PERIOD, WEEK
from worker import document_store

REFUSED = "MT5 live/7700001 refused the credit: 4005 account disabled"


async def own_namespace(temporal_env: WorkflowEnvironment) -> Client:
    """A client on a namespace of the tests' own: the session's end-to-end stack runs a real
    worker on the main task queue of the default namespace, which would take this test's
    workflow and activity tasks (and run them against the stack's database)."""
    return await Client.connect(
        temporal_env.client.service_client.config.target_host,
        namespace=FLEET_NAMESPACE,
        data_converter=temporal_env.client.data_converter,
    )


@dataclass(frozen=True)
class OpenedPayouts:
    ibs: dict[str, uuid.UUID]  # the scene's IBs by name
    payouts: dict[uuid.UUID, uuid.UUID]  # each IB's payout
    steps: IbPayoutSteps

    def of(self, ib: str) -> uuid.UUID:
        return self.payouts[self.ibs[ib]]


async def first_week_payouts(
    sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> OpenedPayouts:
    ibs = await example_scene(sessions)
    steps = IbPayoutSteps(sessions, document_store(settings))
    await accrue(sessions, PERIOD)
    opened = await steps.open_ib_payouts(
        PayoutPeriod(frequency=PayoutFrequency.WEEKLY, start=T0, end=T0 + WEEK)
    )
    async with sessions() as session:
        rows = await session.scalars(select(IbPayout).where(IbPayout.id.in_(opened.payouts)))
        return OpenedPayouts(ibs, {p.ib_id: p.id for p in rows}, steps)


async def refused_by_mt5(sessions: async_sessionmaker[AsyncSession], payout_id: uuid.UUID) -> None:
    async with sessions.begin() as session:
        await session.execute(
            update(IbPayout)
            .where(IbPayout.id == payout_id)
            .values(status="needs_attention", decision_reason=REFUSED)
        )
