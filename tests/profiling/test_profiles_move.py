"""`BookMove` in Temporal's time-skipping environment with its real steps: the database side
against the real database, the MT5 side (`user/get`, `user/update`) against a gateway fake that
answers as MT5 does (a busy server once; 8 for a group the manager may not use)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.account_changes import Mt5AccountChangeSteps
from activities.client_profiling import BookMoveRecords
from contracts import mt5_task_queue
from contracts.client_profiling import BookMoveInput, BookMoveResult, book_move_workflow_id
from db.models import AccountBook, AuditEntry, BookDecision, Mt5Account
from domain.mt5 import Mt5User, Mt5UserChanges
from mt5_adapter.errors import Mt5PermissionDenied, Mt5TransientError
from tests.activities.kyc_rows import add_client, add_live_account
from tests.activities.test_account_change_steps import FakeMt5 as AccountChangeMt5
from tests.workflows.money_fakes import replay, start_environment
from workflows.client_profiling import BookMoveWorkflow

SERVER, LOGIN = "live-1", 7001
KNOWN_GROUPS = {"real\\eu\\standard", "real\\a-book", "real\\b-book"}


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    environment = await start_environment()
    yield environment
    await environment.shutdown()


class FakeMt5(AccountChangeMt5):
    """The account change's fake, with the groups this broker has and an answer lost once."""

    def __init__(self) -> None:
        super().__init__(login=LOGIN)
        self.busy = 1

    async def update_user(self, login: int, changes: Mt5UserChanges) -> Mt5User:
        if changes.group not in KNOWN_GROUPS:
            raise Mt5PermissionDenied(8, "Not enough permissions", "user/update")
        # Applied, then the answer is lost: the retry sets the same group again.
        self.updates.append(changes)
        self.user = self.user.model_copy(update={"group": changes.group})
        if self.busy:
            self.busy -= 1
            raise Mt5TransientError(10004, "Requote", "user/update")
        return self.user


async def decision(sessions: async_sessionmaker[AsyncSession], group: str) -> uuid.UUID:
    client = await add_client(sessions)
    await add_live_account(sessions, client.id, login=LOGIN)
    decision_id = uuid.uuid4()
    async with sessions.begin() as session:
        session.add(
            BookDecision(
                id=decision_id,
                server=SERVER,
                login=LOGIN,
                kind="accept",
                book="A",
                a_share=None,
                target_group=group,
                profile="latency_arbitrage",
                suggested_book="A",
                profile_computed_at=datetime(2026, 11, 4, 13, tzinfo=UTC),
                reason=None,
                status="moving",
                decided_by=uuid.uuid4(),
                decided_by_roles=["dealer"],
            )
        )
    return decision_id


async def move(
    env: WorkflowEnvironment,
    sessions: async_sessionmaker[AsyncSession],
    mt5: FakeMt5,
    decision_id: uuid.UUID,
    group: str,
) -> BookMoveResult:
    queue = f"test-{uuid.uuid4()}"
    records = BookMoveRecords(sessions)
    steps = Mt5AccountChangeSteps(mt5)  # type: ignore[arg-type]
    async with (
        Worker(
            env.client,
            task_queue=queue,
            workflows=[BookMoveWorkflow],
            activities=[records.record_book_moved, records.mark_book_move_failed],
        ),
        Worker(
            env.client,
            task_queue=mt5_task_queue(SERVER),
            activities=[steps.read_mt5_account, steps.apply_account_change],
        ),
    ):
        handle = await env.client.start_workflow(
            BookMoveWorkflow.run,
            BookMoveInput(decision_id=decision_id, server=SERVER, login=LOGIN, group=group),
            id=book_move_workflow_id(decision_id),
            task_queue=queue,
        )
        try:
            return await handle.result()
        finally:
            await replay(handle, BookMoveWorkflow)


async def test_an_accepted_book_moves_the_account_once_and_records_the_book(
    env: WorkflowEnvironment, sessions: async_sessionmaker[AsyncSession]
) -> None:
    decision_id = await decision(sessions, "real\\a-book")
    mt5 = FakeMt5()

    result = await move(env, sessions, mt5, decision_id, "real\\a-book")

    assert result.status == "applied"
    assert (result.before and result.before.group, result.after and result.after.group) == (
        "real\\eu\\standard",
        "real\\a-book",
    )
    # The lost answer was retried: the same absolute group sent twice, no harm.
    assert [u.group for u in mt5.updates] == ["real\\a-book", "real\\a-book"]
    async with sessions() as session:
        row = await session.get(BookDecision, decision_id)
        book = await session.get(AccountBook, (SERVER, LOGIN))
        account = await session.scalar(select(Mt5Account).where(Mt5Account.login == LOGIN))
        [audit] = await session.scalars(
            select(AuditEntry).where(AuditEntry.action == "profiling.book_moved")
        )
    assert row is not None and row.status == "applied" and row.after
    assert row.after["group"] == "real\\a-book"
    assert book is not None and (book.book, book.a_share) == ("A", None)
    assert account is not None and account.group == "real\\a-book"
    after = audit.after or {}
    assert (audit.before, after["group"], after["book"]) == (
        {"book": "B", "a_share": None, "default": True, "group": "real\\eu\\standard"},
        "real\\a-book",
        "A",
    )


async def test_a_group_mt5_refuses_leaves_the_decision_failed_with_the_reason(
    env: WorkflowEnvironment, sessions: async_sessionmaker[AsyncSession]
) -> None:
    decision_id = await decision(sessions, "real\\nowhere")
    mt5 = FakeMt5()

    with pytest.raises(WorkflowFailureError) as failure:
        await move(env, sessions, mt5, decision_id, "real\\nowhere")

    cause = failure.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "Mt5PermissionDenied"
    async with sessions() as session:
        row = await session.get(BookDecision, decision_id)
        book = await session.get(AccountBook, (SERVER, LOGIN))
    assert row is not None and row.status == "failed"
    assert row.failure_reason and row.failure_reason.startswith("Mt5PermissionDenied: ")
    assert book is None
