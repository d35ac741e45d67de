"""The scheduled reconciliation run end to end: the workflow on the session's Temporal dev server,
its MT5 step reading `deal/get_batch` from an MT5 simulator of this module's own (UTC+2, so
the broker day is not the UTC day), a processor's settlement report from a fake processor, the
ledger from real postings. A clean day gives zero breaks; a balance deal written on MT5 with
BrokerFlow's comment but no BrokerFlow record is `missing_in_ledger`, filed as an alerted case.
The schedule is built from settings."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from itertools import count

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import ScheduleActionStartWorkflow, ScheduleCalendarSpec
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.reconciliation import ReconciliationMt5Steps, ReconciliationSteps
from contracts import mt5_task_queue
from contracts.reconciliation import (
    RECONCILIATION,
    ReconciliationInput,
    ReconciliationResult,
    day_to_reconcile,
    period_bounds,
)
from contracts.steps import Mt5Step, Step, implementations
from db.ledger import post_entry
from db.models.reconciliation_cases import ReconciliationCase
from domain.ledger import JournalEntry, Posting
from domain.money import Money
from domain.mt5 import BalanceOperation, NewMt5User
from domain.payments import SettlementLine
from mt5_adapter.webapi import WebApiGateway
from schedules import reconciliation_schedule
from settings import Mt5ServerSettings, ReconciliationSettings, Settings
from tests.support.mt5_utc_plus_2 import UTC_PLUS_2, gateway, simulator  # noqa: F401 (fixtures)
from workflows.reconciliation import ReconciliationWorkflow

LOGINS = count(5_301_000)


class FakeProcessor:
    """A processor whose settlement report is what the test says."""

    name = "cardco"

    def __init__(self) -> None:
        self.lines: list[SettlementLine] = []

    async def settlement(self, day: date) -> list[SettlementLine]:
        return [line for line in self.lines if line.day == day]


def entry(key: str, debit: str, credit: str, amount: str) -> JournalEntry:
    return JournalEntry(
        idempotency_key=key,
        description="reconciliation run test",
        postings=(
            Posting(account=debit, amount=Money.of(amount, "USD")),
            Posting(account=credit, amount=Money.of(f"-{amount}", "USD")),
        ),
    )


def reference() -> str:
    return "BF" + uuid.uuid4().hex[:20].upper()


@asynccontextmanager
async def workers(
    env: WorkflowEnvironment,
    sessions: async_sessionmaker[AsyncSession],
    gateway: WebApiGateway,  # noqa: F811
    processor: FakeProcessor,
    server: str,
) -> AsyncIterator[Callable[[date], Awaitable[ReconciliationResult]]]:
    """The run's workers (main queue and the server's MT5 queue), and a way to run a day."""
    queue = f"reconciliation-{uuid.uuid4()}"
    steps = implementations(Step, ReconciliationSteps(sessions, {processor.name: processor}))  # type: ignore[dict-item]
    mt5 = implementations(Mt5Step, ReconciliationMt5Steps(server, sessions, gateway))

    async def run_day(day: date) -> ReconciliationResult:
        result: ReconciliationResult = await env.client.execute_workflow(
            RECONCILIATION.name,
            ReconciliationInput(
                server=server,
                day=day,
                server_clock_offset=UTC_PLUS_2,
                window_seconds=0,  # nothing is a timing break, whatever the wall clock
                match_window_seconds=0,
                alert_above=Decimal("50"),
            ),
            id=f"reconciliation-test-{uuid.uuid4()}",
            task_queue=queue,
            result_type=ReconciliationResult,
            # A step failing for good must fail the test, not retry until the suite's timeout.
            execution_timeout=timedelta(seconds=60),
        )
        return result

    async with (
        Worker(
            env.client,
            task_queue=queue,
            workflows=[ReconciliationWorkflow],
            activities=list(steps.values()),
        ),
        Worker(env.client, task_queue=mt5_task_queue(server), activities=list(mt5.values())),
    ):
        yield run_day


async def test_a_clean_day_has_no_breaks_and_a_deal_without_books_is_found(
    temporal_env: WorkflowEnvironment,
    sessions: async_sessionmaker[AsyncSession],
    gateway: WebApiGateway,  # noqa: F811
) -> None:
    server = f"recon{uuid.uuid4().hex[:6]}"  # a task queue of this test's own
    login = next(LOGINS)
    await gateway.add_user(
        NewMt5User(
            login=login,
            group="demo\\standard",
            name="Reconciled",
            leverage=100,
            password_main="Main#Pass1",
            password_investor="Inv#Pass1",
        )
    )
    # A deposit, in the books and on MT5 and at the processor.
    paid = reference()
    await gateway.apply_balance(
        BalanceOperation(login=login, amount=Decimal("100.00"), comment=f"dep {paid}")
    )
    async with sessions.begin() as session:
        await post_entry(
            session,
            entry(f"{paid}:received", "psp:cardco:USD", "suspense:incoming:USD", "100.00"),
        )
        await post_entry(
            session, entry(f"{paid}:to-mt5", "hold:c:USD", f"mt5:{server}-{login}:USD", "100.00")
        )
    # The broker day of now on the server's clock (UTC+2).
    day = day_to_reconcile(datetime.now(UTC), time(0), UTC_PLUS_2, today=True)
    processor = FakeProcessor()
    processor.lines.append(
        SettlementLine(
            day=day,
            provider_ref="pi_1",
            reference=paid,
            kind="charge",
            gross=Money.of("100.00", "USD"),
            fee=Money.of("3.20", "USD"),
            net=Money.of("96.80", "USD"),
        )
    )

    async with workers(temporal_env, sessions, gateway, processor, server) as run_day:
        clean = await run_day(day)
        assert (clean.deals, clean.settlement_rows, clean.breaks) == (1, 1, 0)
        assert clean.matched == 2 and clean.cases_opened == 0

        # A dealer writes a deposit's comment on MT5 by hand: no BrokerFlow record of it.
        lost = reference()
        await gateway.apply_balance(
            BalanceOperation(login=login, amount=Decimal("75.00"), comment=f"dep {lost}")
        )
        found = await run_day(day)
    assert (found.breaks, found.cases_opened, found.alerted) == (1, 1, 1)
    async with sessions() as session:
        case = await session.scalar(
            select(ReconciliationCase).where(ReconciliationCase.server == server)
        )
    assert case is not None
    assert (case.type, case.reference, case.login) == ("missing_in_ledger", lost, login)
    assert (case.amount_minor, case.currency, case.status) == (7500, "USD", "open")


def test_the_broker_day_is_on_the_servers_clock() -> None:
    start, end = period_bounds(date(2026, 12, 7), time(0), UTC_PLUS_2)
    assert start == datetime(2026, 12, 6, 22, tzinfo=UTC) and end - start == timedelta(days=1)
    # 23:30 UTC on the 7th is 01:30 on the 8th at UTC+2: the last whole day is the 7th.
    at = datetime(2026, 12, 7, 23, 30, tzinfo=UTC)
    assert day_to_reconcile(at, time(0), UTC_PLUS_2, today=False) == date(2026, 12, 7)
    assert day_to_reconcile(at, time(0), UTC_PLUS_2, today=True) == date(2026, 12, 8)


def test_the_daily_schedule_starts_after_the_cut_off_on_the_servers_clock() -> None:
    settings = Settings(
        env="dev",
        mt5=Mt5ServerSettings(name="live-1", server_clock_offset=UTC_PLUS_2),
        reconciliation=ReconciliationSettings(delay=timedelta(minutes=30)),
    )
    schedule = reconciliation_schedule(settings, "live-1", hourly=False)
    (calendar,) = schedule.spec.calendars
    assert isinstance(calendar, ScheduleCalendarSpec)
    # 00:30 at UTC+2 is 22:30 UTC.
    assert (calendar.hour[0].start, calendar.minute[0].start) == (22, 30)
    action = schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    (argument,) = action.args
    assert isinstance(argument, ReconciliationInput)
    assert (argument.server, argument.server_clock_offset, argument.today) == (
        "live-1",
        UTC_PLUS_2,
        False,
    )
