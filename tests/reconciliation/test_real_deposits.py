"""The strongest proof that reconciliation reads BrokerFlow's own books right: real deposits, then
the real `Reconciliation` run of their day.

A client asks for a card deposit and a bank deposit to an MT5 account through the API
(in-process, against this test's database); the worker's real steps (`worker.build_workers`:
the deposit workflow, the payment and ledger steps, the MT5 deposit) run them against a
payment-processor simulator and an MT5 simulator of this module's own; the customer pays on
CardCo's page and sends the transfer quoting BankCo's deposit reference (no webhooks: the
workflow asks the processor, as it does when a webhook is lost). Then the `Reconciliation`
workflow of the day, run by the same worker over the same simulators, finds nothing; after a
dealer's balance deal on MT5 by hand, exactly that break."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from contracts import TASK_QUEUE
from contracts.reconciliation import RECONCILIATION, ReconciliationInput, ReconciliationResult
from db.models.reconciliation import ReconciliationBreak
from db.sealed import SecretBox
from domain.mt5 import BalanceOperation
from mailer.smtp import InMemoryMailer
from mt5_adapter.webapi import WebApiGateway, gateway_for
from psp_adapter.providers import payment_providers
from settings import PaymentRules, PspSettings, Settings
from tests.conftest import FLEET_NAMESPACE, make_settings, mt5_settings_for
from tests.support import database
from tests.support.accounts import approve_kyc, open_live_account
from tests.support.people import People, Person
from tests.support.processes import PspSimulator, Simulator, start_psp_simulator, start_simulator
from tests.support.waiting import eventually
from worker import build_workers


@pytest.fixture(scope="module")
def bare_mt5(artifacts_dir: Path) -> Iterator[Simulator]:
    """An MT5 simulator of the module's own (UTC): the session's carries other tests' deals,
    which a `group=*` read of the day would reconcile too."""
    child = start_simulator(artifacts_dir / "logs", tls=False)
    yield child
    child.child.kill()  # its books are thrown away


@pytest.fixture(scope="module")
def psp(artifacts_dir: Path) -> Iterator[PspSimulator]:
    """A PSP simulator of the module's own, without webhooks: its reports hold only this day's
    payments of this test."""
    child = start_psp_simulator(artifacts_dir / "logs", "")
    yield child
    child.stop()


@pytest.fixture
def settings(
    test_db: database.ProvisionedDatabase,
    temporal_env: WorkflowEnvironment,
    bare_mt5: Simulator,
    psp: PspSimulator,
) -> Settings:
    """The API's settings: this test's database, the session's Temporal server (the fleet
    namespace: workers of the test's own), the module's simulators; a deposit asks the
    processor for its outcome after a second."""
    return make_settings(
        test_db.owner_url,
        temporal_address=temporal_env.client.service_client.config.target_host,
        temporal_namespace=FLEET_NAMESPACE,
        mt5=mt5_settings_for(bare_mt5),
        psp=PspSettings(base_url=psp.base_url, timeout_seconds=5),
        payments=PaymentRules(deposit_outcome_poll_after=timedelta(seconds=1)),
    )


@pytest.fixture
async def worker(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    temporal_env: WorkflowEnvironment,
    bare_mt5: Simulator,
) -> AsyncIterator[tuple[Client, WebApiGateway]]:
    """The worker's real workflows and steps, in-process, on the fleet namespace."""
    client = await Client.connect(
        temporal_env.client.service_client.config.target_host,
        namespace=FLEET_NAMESPACE,
        data_converter=temporal_env.client.data_converter,
    )
    async with AsyncExitStack() as stack:
        gateway = gateway_for(mt5_settings_for(bare_mt5))
        stack.push_async_callback(gateway.aclose)
        providers = payment_providers(settings.psp)
        for provider in providers.values():
            stack.push_async_callback(provider.aclose)
        for running in build_workers(
            client,
            sessions,
            SecretBox(settings.secrets_key),
            {"demo": gateway},
            [mt5_settings_for(bare_mt5)],
            providers,
            settings.payments,
            mailer=InMemoryMailer(),
        ):
            await stack.enter_async_context(running)
        yield client, gateway


async def deposit(
    api: httpx.AsyncClient, person: Person, provider: str, amount: str, login: int
) -> dict[str, Any]:
    """A deposit to MT5 account `login` asked for through the API, once its processor's page
    (or transfer reference) is there."""
    body = {"provider": provider, "amount": amount, "currency": "USD", "mt5_login": login}
    headers = {**person.headers, "Idempotency-Key": uuid.uuid4().hex}
    response = await api.post("/v1/me/deposits", json=body, headers=headers)
    assert response.status_code == 202, response.text
    payment_id = response.json()["id"]

    async def opened() -> dict[str, Any] | None:
        answer = await api.get(f"/v1/me/payments/{payment_id}", headers=person.headers)
        payment: dict[str, Any] = answer.json()
        return payment if payment["redirect_url"] or payment["transfer_reference"] else None

    payment: dict[str, Any] = await eventually(opened, f"the {provider} payment session", 30)
    return payment


async def completed(api: httpx.AsyncClient, person: Person, payment_id: str) -> None:
    async def done() -> bool | None:
        answer = await api.get(f"/v1/me/payments/{payment_id}", headers=person.headers)
        status = answer.json()["status"]
        assert status not in {"rejected", "failed", "expired", "cancelled"}, answer.json()
        return True if status == "completed" else None

    await eventually(done, f"payment {payment_id} completed", 60)


async def test_real_deposits_reconcile_clean_and_a_dealers_deal_is_the_only_break(
    api: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    worker: tuple[Client, WebApiGateway],
    psp: PspSimulator,
) -> None:
    client, mt5 = worker
    person = await People(sessions, SecretBox(settings.secrets_key), api).client()
    await approve_kyc(sessions, person.id)
    login = await open_live_account(sessions, mt5, person.id)

    card = await deposit(api, person, "cardco", "100.00", login)
    bank = await deposit(api, person, "bankco", "250.00", login)
    assert bank["transfer_reference"] != bank["reference"]  # BankCo's own, quoted by the payer
    await asyncio.to_thread(psp.pay, card["redirect_url"].rsplit("/", 1)[-1])
    await asyncio.to_thread(
        psp.incoming, bank["transfer_reference"], "250.00", "USD", "Test Client"
    )
    await completed(api, person, card["id"])
    await completed(api, person, bank["id"])
    assert (await mt5.get_user(login)).balance == Decimal("350.00")

    day = datetime.now(UTC).date()  # the MT5 simulator and the processors run on UTC

    async def reconcile() -> ReconciliationResult:
        result: ReconciliationResult = await client.execute_workflow(
            RECONCILIATION.name,
            ReconciliationInput(server="demo", day=day, today=True),
            id=f"reconciliation-test-{uuid.uuid4()}",
            task_queue=TASK_QUEUE,
            result_type=ReconciliationResult,
            execution_timeout=timedelta(seconds=60),
        )
        return result

    clean = await reconcile()
    # Two balance deals (`dep <reference>`) and two settlement rows (CardCo's charge, BankCo's
    # transfer quoting its own deposit reference): each matched, nothing left over.
    assert (clean.deals, clean.settlement_rows) == (2, 2)
    assert (clean.breaks, clean.matched) == (0, 4), clean

    ticket = await mt5.apply_balance(
        BalanceOperation(login=login, amount=Decimal("25.00"), comment="goodwill")
    )
    found = await reconcile()
    async with sessions() as session:
        breaks = (
            await session.scalars(
                select(ReconciliationBreak).where(ReconciliationBreak.run_id == found.run_id)
            )
        ).all()
    assert [(b.type, b.key, b.deal, b.login, b.amount_minor) for b in breaks] == [
        ("manual_adjustment", f"mt5-deal:{login}:{ticket}", ticket, login, 2500)
    ]
    assert found.matched == 4
