"""The scheduled run's later steps, through the workflow on the session's Temporal dev server
with an MT5 simulator of its own: account balances as of the period's end (MT5's balance less
what trading changed, the trading figure from the ingested deals) against the ledger's mirror;
a payout the processor settled while BrokerFlow still waits for its webhook (`lost_webhook`)
and one sent long ago with nothing in the report (`stuck_at_processor`); the new alerted
cases mailed to finance; the run's report stored and served from the store; a case resolved
without an adjusting entry, audited."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from itertools import count
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.reconciliation import ReconciliationMt5Steps, ReconciliationSteps
from activities.trade_ingestion import utc_converter
from api.context import RequestContext
from api.policy import Principal
from api.reconciliation import service
from contracts import mt5_task_queue
from contracts.reconciliation import (
    RECONCILIATION,
    ReconciliationInput,
    ReconciliationResult,
    day_to_reconcile,
)
from contracts.steps import Mt5Step, Step, implementations
from db.ledger import post_entry
from db.models import AuditEntry, Client, IngestionState, Payment, StaffUser
from db.models.reconciliation import ReconciliationBreak, ReconciliationRun
from db.models.reconciliation_cases import ReconciliationCase
from db.trade_store import Batch, DealStore, copy_text
from domain.money import Money
from domain.mt5 import BalanceOperation, NewMt5User
from domain.payments import SettlementLine
from domain.roles import PrincipalKind, StaffRole
from mailer.smtp import InMemoryMailer
from mt5_adapter.webapi import WebApiGateway, gateway_for
from storage.documents import LocalFileStore
from tests.conftest import mt5_settings_for
from tests.reconciliation.test_run_workflow import FakeProcessor, entry, reference
from tests.support.processes import Simulator, start_simulator
from workflows.reconciliation import ReconciliationWorkflow

LOGINS = count(5_302_000)


@pytest.fixture(scope="module")
def bare_sim(artifacts_dir: Path) -> Iterator[Simulator]:
    """A simulator of this module's own: the session's generates history and flow, which every
    `group=*` read of the run would walk."""
    child = start_simulator(artifacts_dir / "logs", tls=False)
    yield child
    child.child.kill()  # its books are thrown away


@pytest.fixture
async def gateway(bare_sim: Simulator) -> AsyncIterator[WebApiGateway]:
    mt5 = gateway_for(mt5_settings_for(bare_sim))
    yield mt5
    await mt5.aclose()


class BankCo(FakeProcessor):
    name = "bankco"


async def dealer_trade(gateway: WebApiGateway, login: int, side: int) -> None:
    """A market deal on EURUSD (side 0 buy, 1 sell), done by the simulator's dealer."""
    fields = {"Action": 200, "Login": login, "Symbol": "EURUSD", "Type": side, "Volume": 1_000}
    sent = (await gateway._call("dealer/send_request", {}, fields, write=True))["answer"]
    result = (await gateway._call("dealer/get_request_result", {"id": sent["id"]}))["answer"]
    assert result["result"]["Retcode"].startswith("10009 "), result


async def ingest(
    sessions: async_sessionmaker[AsyncSession], gateway: WebApiGateway, server: str, login: int
) -> None:
    """What the live follower would have done for `login`: its deals copied into `deals` for
    `server` (the session's simulator is shared: only this test's account), and a poll
    stamped after the run's balance read."""
    now = datetime.now(UTC)
    records = await gateway.deal_records("*", now - timedelta(days=2), now, logins=[login])
    lines, low, high = copy_text(server, records, utc_converter(await gateway.server_zone()))
    async with sessions.begin() as session:
        await DealStore(sessions).merge(
            await session.connection(), Batch(lines, len(records), low, high)
        )
    async with sessions.begin() as session:
        values: dict[str, Any] = {"last_poll_at": now + timedelta(hours=1), "watermark": now}
        await session.execute(
            pg_insert(IngestionState)
            .values(server=server, **values)
            .on_conflict_do_update(index_elements=["server"], set_=values)
        )


async def payment(
    sessions: async_sessionmaker[AsyncSession],
    ref: str,
    amount: int,
    since: datetime,
    **fields: Any,
) -> None:
    """A withdrawal out at BankCo (`payout_sent`) since `since`, unless `fields` say otherwise
    (another direction, status, a `transfer_reference`)."""
    client_id = uuid.uuid4()
    async with sessions.begin() as session:
        session.add(
            Client(
                id=client_id,
                email=f"c-{client_id.hex[:8]}@example.com",
                password_hash="x",
                full_name="Waiting Client",
                country="DE",
                date_of_birth=date(1990, 1, 1),
            )
        )
        await session.flush()
        session.add(
            Payment(
                client_id=client_id,
                reference=ref,
                currency="USD",
                amount_minor=amount,
                requested_minor=amount,
                idempotency_key=ref,
                request_hash="0" * 64,
                workflow_id=f"withdrawal-{ref}",
                updated_at=since,
                **{
                    "direction": "withdrawal",
                    "provider": "bankco",
                    "status": "payout_sent",
                    **fields,
                },
            )
        )


@asynccontextmanager
async def workers(
    env: WorkflowEnvironment,
    sessions: async_sessionmaker[AsyncSession],
    gateway: WebApiGateway,
    steps: ReconciliationSteps,
    server: str,
) -> AsyncIterator[Callable[[date], Awaitable[ReconciliationResult]]]:
    queue = f"reconciliation-{uuid.uuid4()}"
    main = implementations(Step, steps)
    mt5 = implementations(Mt5Step, ReconciliationMt5Steps(server, sessions, gateway))

    async def run_day(day: date) -> ReconciliationResult:
        result: ReconciliationResult = await env.client.execute_workflow(
            RECONCILIATION.name,
            ReconciliationInput(
                server=server,
                day=day,
                today=True,
                window_seconds=0,
                match_window_seconds=0,
                alert_above=Decimal("50"),
                stuck_after_seconds=86400,
            ),
            id=f"reconciliation-test-{uuid.uuid4()}",
            task_queue=queue,
            result_type=ReconciliationResult,
            execution_timeout=timedelta(seconds=60),
        )
        return result

    async with (
        Worker(
            env.client, task_queue=queue, workflows=[ReconciliationWorkflow],
            activities=list(main.values()),
        ),
        Worker(env.client, task_queue=mt5_task_queue(server), activities=list(mt5.values())),
    ):  # fmt: skip
        yield run_day


async def test_balances_waiting_payments_mail_and_the_stored_report(
    temporal_env: WorkflowEnvironment,
    sessions: async_sessionmaker[AsyncSession],
    gateway: WebApiGateway,
    tmp_path: Path,
) -> None:
    server = f"recbal{uuid.uuid4().hex[:6]}"
    login = next(LOGINS)
    await gateway.add_user(
        NewMt5User(
            login=login, group="demo\\standard", name="Balanced", leverage=100,
            password_main="Main#Pass1", password_investor="Inv#Pass1",
        )
    )  # fmt: skip
    # A deposit in the books, on MT5 and at the processor; then the client trades it.
    paid = reference()
    await gateway.apply_balance(
        BalanceOperation(login=login, amount=Decimal("1000.00"), comment=f"dep {paid}")
    )
    async with sessions.begin() as session:
        await post_entry(
            session, entry(f"{paid}:received", "psp:bankco:USD", "suspense:incoming:USD", "1000.00")
        )
        await post_entry(
            session, entry(f"{paid}:to-mt5", "hold:c:USD", f"mt5:{server}-{login}:USD", "1000.00")
        )
        session.add(
            StaffUser(
                email=f"finance-{uuid.uuid4().hex[:8]}@example.com", full_name="Fin Officer",
                password_hash="x", totp_secret_enc="x", roles=["finance"],
                ip_allowlist=["127.0.0.1/32"],
            )
        )  # fmt: skip
    await dealer_trade(gateway, login, 0)
    await dealer_trade(gateway, login, 1)
    mt5_balance = (await gateway.get_user(login)).balance
    assert mt5_balance != Decimal("1000.00")  # trading changed it (spread, commission)

    day = day_to_reconcile(datetime.now(UTC), time(0), 0, today=True)
    processor = BankCo()
    processor.lines.append(
        SettlementLine(
            day=day, provider_ref="tr_1", reference=paid, kind="incoming",
            gross=Money.of("1000.00", "USD"), fee=Money.of("0", "USD"),
            net=Money.of("1000.00", "USD"),
        )
    )  # fmt: skip
    mailer, documents = InMemoryMailer(), LocalFileStore(tmp_path)
    providers: dict[str, Any] = {processor.name: processor}
    steps = ReconciliationSteps(sessions, providers, mailer=mailer, documents=documents)
    await ingest(sessions, gateway, server, login)

    async with workers(temporal_env, sessions, gateway, steps, server) as run_day:
        clean = await run_day(day)
        assert (clean.balances, clean.breaks, clean.mailed) == (1, 0, 0), clean

        # A dealer's goodwill on MT5 (no BrokerFlow record); a payout BankCo settled whose
        # webhook never came; a payout sent two days ago that BankCo has not reported.
        await gateway.apply_balance(
            BalanceOperation(login=login, amount=Decimal("60.00"), comment="goodwill")
        )
        await ingest(sessions, gateway, server, login)
        lost, stuck = reference(), reference()
        now = datetime.now(UTC)
        await payment(sessions, lost, 3000, now - timedelta(hours=2))
        await payment(sessions, stuck, 20000, now - timedelta(days=2))
        processor.lines.append(
            SettlementLine(
                day=day, provider_ref="po_9", reference=lost, kind="payout",
                gross=Money.of("-30.00", "USD"), fee=Money.of("0", "USD"),
                net=Money.of("-30.00", "USD"),
            )
        )  # fmt: skip
        found = await run_day(day)

    async with sessions() as session:
        breaks = {
            b.type: b
            for b in await session.scalars(
                select(ReconciliationBreak).where(ReconciliationBreak.run_id == found.run_id)
            )
        }
        run = await session.get(ReconciliationRun, found.run_id)
        cases = {
            c.type: c
            for c in await session.scalars(
                select(ReconciliationCase).where(ReconciliationCase.server == server)
            )
        }
    assert set(breaks) == {
        "manual_adjustment", "balance_mismatch", "lost_webhook", "stuck_at_processor",
    }  # fmt: skip
    mismatch = breaks["balance_mismatch"]
    assert (mismatch.login, mismatch.amount_minor, mismatch.expected_minor) == (login, 6000, 100000)
    assert (breaks["lost_webhook"].reference, breaks["lost_webhook"].amount_minor) == (lost, -3000)
    assert breaks["lost_webhook"].key == f"psp:bankco:{lost}:payout"
    assert (breaks["stuck_at_processor"].key, breaks["stuck_at_processor"].amount_minor) == (
        f"stuck:bankco:{stuck}",
        20000,
    )
    # 60, 60 and 200 at or above 50 are alerted and mailed to the finance officer; 30 is not.
    assert found.alerted == 3 and found.mailed == 1
    (mail,) = mailer.sent
    assert server in mail.subject and "3 new break(s)" in mail.subject
    assert stuck in mail.text and "balance_mismatch" in mail.text and lost not in mail.text

    # The report stored at the end of the run is the one served.
    assert run is not None and run.report_pdf_key and run.report_csv_key
    stored_pdf = await documents.get(run.report_pdf_key)
    assert stored_pdf.startswith(b"%PDF-")
    async with sessions() as session:
        assert await service.run_report_pdf(session, run.id, documents) == stored_pdf
        csv_text = await service.run_report_csv(session, run.id, documents)
    assert "stuck_at_processor" in csv_text and "lost_webhook" in csv_text

    # Finance explains the goodwill: resolved without an entry, audited.
    officer = Principal(
        kind=PrincipalKind.STAFF,
        id=uuid.uuid4(),
        email="officer@example.com",
        roles=frozenset({StaffRole.FINANCE}),
        context=RequestContext(ip="127.0.0.1", request_id="test", trace_id=None),
    )
    manual = cases["manual_adjustment"]
    async with sessions.begin() as session:
        detail = await service.resolve_explained(
            session, officer, manual.id, "goodwill approved by the dealing desk"
        )
    assert detail.status == "resolved" and detail.resolved_by == officer.id
    assert detail.resolution == "explained, nothing booked: goodwill approved by the dealing desk"
    async with sessions() as session:
        audited = await session.scalar(
            select(AuditEntry).where(
                AuditEntry.action == "reconciliation_case.resolved",
                AuditEntry.entity_id == str(manual.id),
            )
        )
    assert audited is not None
