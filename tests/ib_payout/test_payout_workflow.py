"""The payout cycle end to end on a real Temporal (time-skipping) and a real database: accrual,
one payout per IB and currency, statements stored, finance's decisions (four-eyes above the
threshold), the wallet credit through the ledger and a rejection's rows released; a payout to
the IB's MT5 account through the real MT5 balance step (an answer lost after MT5 applied the
credit credits once), and MT5 refusing it (the payout needs attention, nothing booked)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import (
    WorkflowExecutionStatus,
    WorkflowFailureError,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.ib_management import IbManagementSteps
from activities.ib_payout import IbPayoutSteps, commission_expense, ib_wallet
from activities.mt5_funds import Mt5FundsSteps
from contracts import mt5_task_queue
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
    mt5_payout_comment,
)
from contracts.steps import Mt5Step, Step, implementations
from db.ledger import balance
from db.models import AuditEntry
from db.models.ib import IbCommission, IbPayout, IntroducingBroker
from domain.funds import mt5_mirror
from domain.mt5 import BalanceOperation, Mt5Deal
from mt5_adapter.errors import Mt5ConnectionError, Mt5Error
from mt5_adapter.gateway import Mt5Gateway
from storage.documents import LocalFileStore
from tests.ib_payout.scene import SERVER, T0, Scene, example_scene
from tests.support.waiting import eventually
from tests.workflows.money_fakes import replay, start_environment
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
    steps = implementations(Step, IbPayoutSteps(sessions, store), IbManagementSteps(sessions))
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
    steps = implementations(
        Step, IbPayoutSteps(sessions, LocalFileStore(tmp_path)), IbManagementSteps(sessions)
    )
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

        # Waiting for the close by asking, not by `result()`: a client waiting for a result
        # makes the time-skipping server skip time, and on a loaded machine it skipped past the
        # running release's timeout (the history then ended with "No completion event found").
        async def closed() -> bool:
            return (await handle.describe()).status != WorkflowExecutionStatus.RUNNING

        await eventually(closed, "the cancelled payout closed", timeout=60)
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


# -- paid to the IB's MT5 account ---------------------------------------------------------------

PAYOUT_LOGIN = 7_700_001


class FakeMt5:
    """`trade/balance` and the look-up by comment, as the MT5 balance step uses them: with
    `lose_answers`, the first write is applied and its answer lost (the connection drops after
    MT5 committed); with `refuse`, MT5 refuses every write (a final retcode)."""

    def __init__(self, *, lose_answers: int = 0, refuse: bool = False) -> None:
        self.deals: dict[str, tuple[int, BalanceOperation]] = {}
        self.writes = 0
        self._lose = lose_answers
        self._refuse = refuse

    async def apply_balance(self, operation: BalanceOperation) -> int:
        self.writes += 1
        if self._refuse:
            raise Mt5Error(4005, "account disabled", "trade/balance")
        ticket = 900_000 + len(self.deals)
        self.deals[operation.comment] = (ticket, operation)
        if self._lose > 0:
            self._lose -= 1
            raise Mt5ConnectionError("connection reset after send", "trade/balance", ambiguous=True)
        return ticket

    async def find_deal_by_comment(
        self, login: int, comment: str, since: datetime, until: datetime
    ) -> Mt5Deal | None:
        found = self.deals.get(comment)
        if found is None or found[1].login != login:
            return None
        ticket, operation = found
        return Mt5Deal(
            ticket=ticket,
            login=login,
            action=2,
            entry=0,
            profit=operation.amount,
            comment=comment,
            time=datetime.now(UTC),
        )


async def pay_to_mt5(
    sessions: async_sessionmaker[AsyncSession], ib_id: uuid.UUID, login: int, currency: str
) -> None:
    """The IB is paid to MT5 account `login` (a BrokerFlow-opened account in `currency`)."""
    await Scene(sessions).account(login, currency)
    async with sessions.begin() as session:
        await session.execute(
            update(IntroducingBroker)
            .where(IntroducingBroker.id == ib_id)
            .values(payout_mt5_server=SERVER, payout_mt5_login=login)
        )


async def approved(
    env: WorkflowEnvironment,
    sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    fake: FakeMt5,
) -> tuple[dict[str, uuid.UUID], dict[uuid.UUID, PayoutResult], dict[uuid.UUID, uuid.UUID]]:
    """The example's cycle, every payout approved once (no four-eyes at the default
    threshold), with the real MT5 balance step over `fake` on the MT5 server's queue."""
    ibs = await example_scene(sessions)
    await pay_to_mt5(sessions, ibs["D"], PAYOUT_LOGIN, "USD")
    # M is paid in EUR to a USD account: never credited, it needs attention.
    await pay_to_mt5(sessions, ibs["M"], PAYOUT_LOGIN + 1, "USD")
    steps = implementations(
        Step, IbPayoutSteps(sessions, LocalFileStore(tmp_path)), IbManagementSteps(sessions)
    )
    mt5 = implementations(Mt5Step, Mt5FundsSteps(cast(Mt5Gateway, fake)))
    results: dict[uuid.UUID, PayoutResult] = {}
    async with (
        Worker(
            env.client,
            task_queue=QUEUE,
            workflows=[IbPayoutCycleWorkflow, IbPayoutWorkflow],
            activities=list(steps.values()),
        ),
        Worker(env.client, task_queue=mt5_task_queue(SERVER), activities=list(mt5.values())),
    ):
        cycle = await env.client.execute_workflow(
            IB_PAYOUT_CYCLE.name,
            PayoutCycleInput(
                frequency=PayoutFrequency.WEEKLY, period_start=T0, period_end=T0 + WEEK
            ),
            id=f"cycle-{uuid.uuid4()}",
            task_queue=QUEUE,
            result_type=PayoutCycleResult,
        )
        async with sessions() as session:
            payouts = {
                ib_id: payout_id
                for ib_id, payout_id in await session.execute(
                    select(IbPayout.ib_id, IbPayout.id).where(IbPayout.id.in_(cycle.payouts))
                )
            }

        async def ready() -> bool:
            async with sessions() as session:
                statuses = await session.scalars(
                    select(IbPayout.status).where(IbPayout.id.in_(cycle.payouts))
                )
                return set(statuses) == {PayoutStatus.STATEMENT_READY.value}

        await eventually(ready, "every statement rendered", timeout=60)
        for payout_id in payouts.values():
            handle = env.client.get_workflow_handle(
                ib_payout_workflow_id(payout_id), result_type=PayoutResult
            )
            await handle.execute_update(DECIDE.name, officer(), result_type=DECIDE.result)
            results[payout_id] = await handle.result()
    return ibs, results, payouts


async def test_a_payout_to_mt5_whose_answer_was_lost_credits_once_and_books_it(
    env: WorkflowEnvironment, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    fake = FakeMt5(lose_answers=1)
    ibs, results, payouts = await approved(env, sessions, tmp_path, fake)
    d = payouts[ibs["D"]]
    comment = mt5_payout_comment(d)
    assert len(comment) <= 31
    # Written once, its answer lost, found by its comment on the retry: one deal on MT5.
    assert fake.writes == 1
    assert list(fake.deals) == [comment]
    ticket, operation = fake.deals[comment]
    assert (operation.login, operation.amount) == (PAYOUT_LOGIN, Decimal("106.50"))
    assert results[d] == PayoutResult(status=PayoutStatus.PAID, ledger_key=f"ib-payout:{d}")
    # Its history (the lost answer, the retry that found the deal) replays deterministically.
    await replay(env.client.get_workflow_handle(ib_payout_workflow_id(d)), IbPayoutWorkflow)
    # S is paid to its wallet as before.
    assert results[payouts[ibs["S"]]].status is PayoutStatus.PAID
    # M's account is in USD, its payout in EUR: nothing sent to MT5, it needs attention.
    m = results[payouts[ibs["M"]]]
    assert m.status is PayoutStatus.NEEDS_ATTENTION
    assert "is in USD, the payout in EUR" in (m.reason or "")
    async with sessions() as session:
        paid = await session.get(IbPayout, d)
        assert paid is not None
        assert (paid.status, paid.mt5_ticket, paid.ledger_key) == ("paid", ticket, f"ib-payout:{d}")
        mirror = mt5_mirror(SERVER, PAYOUT_LOGIN, "USD")
        # The MT5 mirror is a liability: credited, its balance is negative; D's wallet untouched.
        assert (await balance(session, mirror, "USD")).amount == Decimal("-106.50")
        assert (await balance(session, ib_wallet(ibs["D"], "USD"), "USD")).amount == 0
        assert (await balance(session, commission_expense("USD"), "USD")).amount == Decimal(
            "160.50"  # D's 106.50 to MT5 + S's 54.00 to its wallet
        )
        attention = await session.get(IbPayout, payouts[ibs["M"]])
        assert attention is not None and attention.status == "needs_attention"
        assert attention.ledger_key is None
        # Its rows stay with it: they are not paid, nor released to another payout.
        kept = await session.scalars(
            select(IbCommission.payout_id).where(IbCommission.ib_id == ibs["M"])
        )
        assert set(kept) == {attention.id}
        actions = set(
            await session.scalars(
                select(AuditEntry.action).where(
                    AuditEntry.entity_id.in_([str(d), str(attention.id)])
                )
            )
        )
        assert {"ib_payout.paid", "ib_payout.needs_attention"} <= actions


async def test_a_payout_mt5_refuses_needs_attention_and_books_nothing(
    env: WorkflowEnvironment, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    fake = FakeMt5(refuse=True)
    ibs, results, payouts = await approved(env, sessions, tmp_path, fake)
    d = payouts[ibs["D"]]
    result = results[d]
    assert result.status is PayoutStatus.NEEDS_ATTENTION
    assert "refused the credit" in (result.reason or "")
    assert "4005" in (result.reason or "")
    assert fake.deals == {}
    async with sessions() as session:
        payout = await session.get(IbPayout, d)
        assert payout is not None
        assert payout.status == "needs_attention"
        assert "refused the credit" in (payout.decision_reason or "")
        assert payout.ledger_key is None and payout.mt5_ticket is None
        mirror = mt5_mirror(SERVER, PAYOUT_LOGIN, "USD")
        assert (await balance(session, mirror, "USD")).amount == 0
        assert (await balance(session, ib_wallet(ibs["D"], "USD"), "USD")).amount == 0
