"""Fakes of the steps of finance's resolution of an unmatched payment on its MT5 path, and of an
IB payout's steps, registered under the real step names: the workflows run on the time-skipping
test server without a database (tests/workflows/test_resolution_search_attributes.py)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from contracts import ib_payout
from contracts import unmatched_funds as unmatched
from contracts.ib_payout import (
    Mt5PayoutBooking,
    PayoutAttention,
    PayoutDecisionRecord,
    PayoutDestination,
    PayoutRef,
    ReleasePayout,
    RenderedStatement,
)
from contracts.steps import implements
from contracts.unmatched_funds import (
    FinishUnmatchedCredit,
    ResolveUnmatched,
    UnmatchedInTransit,
    UnmatchedTakeBackFailed,
)
from domain.money import Money
from domain.payments import unmatched_reference
from tests.support.waiting import eventually
from tests.workflows.money_fakes import MoneyFakes, usd


@dataclass
class UnmatchedToMt5Fakes(MoneyFakes):
    """`MoneyFakes` with the steps of an unmatched payment credited to an MT5 account."""

    amount: Money = field(default_factory=lambda: usd("500.00"))

    def activities(self) -> tuple[list[Callable[..., Any]], list[Callable[..., Any]]]:
        main, mt5 = super().activities()

        @implements(unmatched.unmatched_funds_in_transit)
        async def unmatched_funds_in_transit(request: ResolveUnmatched) -> UnmatchedInTransit:
            await self._call(unmatched.unmatched_funds_in_transit.name, request.item_id, request)
            reference = unmatched_reference(str(request.item_id))
            self.booked.add(f"{reference}:transit")
            return UnmatchedInTransit(reference=reference, amount=self.amount)

        @implements(unmatched.finish_unmatched_credit)
        async def finish_unmatched_credit(request: FinishUnmatchedCredit) -> None:
            await self._call(unmatched.finish_unmatched_credit.name, request.ticket, request)

        @implements(unmatched.unmatched_take_back_failed)
        async def unmatched_take_back_failed(request: UnmatchedTakeBackFailed) -> None:
            await self._call(unmatched.unmatched_take_back_failed.name, request.refusal, request)

        return [
            *main,
            unmatched_funds_in_transit,
            finish_unmatched_credit,
            unmatched_take_back_failed,
        ], mt5


@dataclass
class IbPayoutFakes:
    """An IB payout's steps: the statement of `amount` USD, decisions recorded, paid to the
    wallet (or, with `problem`, needing attention instead). Calls are recorded in `calls`;
    `paused` steps wait until their event is set."""

    amount: Decimal = Decimal("40.00")
    problem: str | None = None
    calls: list[str] = field(default_factory=list)
    paused: dict[str, asyncio.Event] = field(default_factory=dict)

    def pause(self, step: str) -> asyncio.Event:
        self.paused[step] = asyncio.Event()
        return self.paused[step]

    async def called(self, step: str) -> None:
        await eventually(lambda: step in self.calls, f"{step} called", timeout=10)

    async def _call(self, step: str) -> None:
        self.calls.append(step)
        if step in self.paused:
            await self.paused[step].wait()

    def activities(self) -> list[Callable[..., Any]]:
        @implements(ib_payout.render_ib_statement)
        async def render_ib_statement(request: PayoutRef) -> RenderedStatement:
            await self._call(ib_payout.render_ib_statement.name)
            return RenderedStatement(
                key=f"ib/statements/{request.payout_id}.pdf", amount=self.amount, currency="USD"
            )

        @implements(ib_payout.record_ib_payout_decision)
        async def record_ib_payout_decision(request: PayoutDecisionRecord) -> None:
            await self._call(ib_payout.record_ib_payout_decision.name)

        @implements(ib_payout.release_ib_payout)
        async def release_ib_payout(request: ReleasePayout) -> None:
            await self._call(ib_payout.release_ib_payout.name)

        @implements(ib_payout.ib_payout_destination)
        async def ib_payout_destination(request: PayoutRef) -> PayoutDestination:
            await self._call(ib_payout.ib_payout_destination.name)
            return PayoutDestination(amount=self.amount, currency="USD", problem=self.problem)

        @implements(ib_payout.credit_ib_payout)
        async def credit_ib_payout(request: PayoutRef) -> str:
            await self._call(ib_payout.credit_ib_payout.name)
            return f"ib-payout:{request.payout_id}"

        @implements(ib_payout.mark_ib_payout_needs_attention)
        async def mark_ib_payout_needs_attention(request: PayoutAttention) -> None:
            await self._call(ib_payout.mark_ib_payout_needs_attention.name)

        @implements(ib_payout.book_ib_mt5_payout)
        async def book_ib_mt5_payout(request: Mt5PayoutBooking) -> str:
            await self._call(ib_payout.book_ib_mt5_payout.name)
            return f"ib-payout:{request.payout_id}"

        return [
            render_ib_statement,
            record_ib_payout_decision,
            release_ib_payout,
            ib_payout_destination,
            credit_ib_payout,
            mark_ib_payout_needs_attention,
            book_ib_mt5_payout,
        ]


@asynccontextmanager
async def ib_payout_worker(
    env: WorkflowEnvironment, fakes: IbPayoutFakes, workflow: type
) -> AsyncIterator[str]:
    """A worker for `workflow` and the faked payout steps on a fresh queue; yields the queue."""
    queue = f"test-{uuid.uuid4()}"
    async with Worker(
        env.client, task_queue=queue, workflows=[workflow], activities=fakes.activities()
    ):
        yield queue
