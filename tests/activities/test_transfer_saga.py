"""Transfers between a client's wallet and MT5 accounts, end to end on the real database, a real
Temporal server and the MT5 simulator (faults included): the books and MT5 agree afterwards."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from contracts import TASK_QUEUE
from contracts.funds import MovementResult
from contracts.transfer import TransferInput, transfer_workflow_id
from db.ledger import balance, post_entry
from db.models import Client as ClientRow
from db.models import FxRateRow, Transfer
from db.sealed import SecretBox
from domain.funds import mt5_mirror
from domain.money import Money
from domain.money_flows import MovementKind, Mt5AccountRef, Pocket, reference_for
from domain.payments import PaymentStatus
from domain.wallets import available, credit_deposit, wallet
from mt5_adapter.webapi import WebApiGateway, gateway_for
from settings import Settings
from tests.conftest import FLEET_NAMESPACE, mt5_settings_for
from tests.support.accounts import approve_kyc, open_live_account
from tests.support.processes import Simulator
from worker import build_workers
from workflows.transfer import TransferWorkflow


@dataclass
class Books:
    client: Client
    sessions: async_sessionmaker[AsyncSession]
    mt5: WebApiGateway
    client_id: uuid.UUID
    usd_login: int
    eur_login: int

    async def transfer(self, amount: Money, source: Pocket, destination: Pocket) -> MovementResult:
        transfer_id = uuid.uuid4()
        reference = reference_for(MovementKind.TRANSFER, transfer_id)
        async with self.sessions.begin() as session:
            session.add(
                Transfer(
                    id=transfer_id,
                    client_id=self.client_id,
                    reference=reference,
                    status=PaymentStatus.INITIATED,
                    currency=amount.currency,
                    amount_minor=amount.to_minor_units(),
                    idempotency_key=reference,
                    request_hash="-",
                    workflow_id=transfer_workflow_id(transfer_id),
                    destination_currency=destination.currency,
                    destination_server=destination.mt5.server if destination.mt5 else None,
                    destination_login=destination.mt5.login if destination.mt5 else None,
                )
            )
        return await self.client.execute_workflow(
            TransferWorkflow.run,
            TransferInput(
                transfer_id=transfer_id,
                client_id=self.client_id,
                reference=reference,
                amount=amount,
                source=source,
                destination=destination,
            ),
            id=transfer_workflow_id(transfer_id),
            task_queue=TASK_QUEUE,
        )

    async def wallet_balance(self, currency: str) -> Decimal:
        async with self.sessions() as session:
            code = wallet(str(self.client_id), currency)
            return available(await balance(session, code, currency)).amount

    async def mt5_agrees_with_the_books(self, login: int, currency: str) -> Decimal:
        """MT5's balance, after checking it equals the ledger's mirror of the account."""
        on_mt5 = (await self.mt5.get_user(login)).balance
        async with self.sessions() as session:
            mirror = await balance(session, mt5_mirror("demo", login, currency), currency)
        assert on_mt5 == -mirror.amount
        return on_mt5


def usd_wallet() -> Pocket:
    return Pocket(currency="USD")


@pytest.fixture
async def books(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    temporal_env: WorkflowEnvironment,
    mt5_sim: Simulator,
) -> AsyncIterator[Books]:
    client = await Client.connect(
        temporal_env.client.service_client.config.target_host,
        namespace=FLEET_NAMESPACE,
        data_converter=temporal_env.client.data_converter,
    )
    server = mt5_settings_for(mt5_sim)
    client_id = uuid.uuid4()
    async with sessions.begin() as session:
        session.add(
            ClientRow(
                id=client_id,
                email=f"{client_id.hex[:8]}@example.com",
                password_hash="x",
                full_name="Transfer Client",
                country="CY",
                date_of_birth=date(1980, 1, 1),
            )
        )
        session.add(
            FxRateRow(
                base="EUR",
                quote="USD",
                bid=Decimal("1.0800"),
                ask=Decimal("1.0802"),
                as_of=datetime.now(UTC),
            )
        )
    await approve_kyc(sessions, client_id)
    async with sessions.begin() as session:
        funding = credit_deposit("funding", str(client_id), "cardco", Money.of("1000", "USD"))
        await post_entry(session, funding)
    async with AsyncExitStack() as stack:
        gateway = gateway_for(server)
        stack.push_async_callback(gateway.aclose)
        usd = await open_live_account(sessions, gateway, client_id, currency="USD")
        eur = await open_live_account(sessions, gateway, client_id, currency="EUR")
        for worker in build_workers(
            client, sessions, SecretBox(settings.secrets_key), {"demo": gateway}, [server]
        ):
            await stack.enter_async_context(worker)
        yield Books(client, sessions, gateway, client_id, usd, eur)


def on_mt5(login: int, currency: str) -> Pocket:
    return Pocket(currency=currency, mt5=Mt5AccountRef(server="demo", login=login))


class TestTransfers:
    async def test_wallet_to_mt5_and_on_to_another_currency(
        self, books: Books, mt5_sim: Simulator
    ) -> None:
        # The first credit's answer is lost after MT5 applied it: the retry must find it.
        mt5_sim.inject_faults(
            {"path": "/api/trade/balance", "mode": "drop_after_commit", "times": 1}
        )
        try:
            first = await books.transfer(
                Money.of("300.00", "USD"), usd_wallet(), on_mt5(books.usd_login, "USD")
            )
        finally:
            mt5_sim.clear_faults()
        assert first.status is PaymentStatus.COMPLETED
        assert await books.wallet_balance("USD") == Decimal("700.00")
        assert await books.mt5_agrees_with_the_books(books.usd_login, "USD") == Decimal("300.00")

        second = await books.transfer(
            Money.of("108.01", "USD"),
            on_mt5(books.usd_login, "USD"),
            on_mt5(books.eur_login, "EUR"),
        )
        # 108.01 USD at mid 1.0801 is 100.00 EUR; the 0.5 % spread leaves 99.50 EUR.
        assert second.status is PaymentStatus.COMPLETED
        assert second.credited == Money.of("99.50", "EUR")
        assert await books.mt5_agrees_with_the_books(books.usd_login, "USD") == Decimal("191.99")
        assert await books.mt5_agrees_with_the_books(books.eur_login, "EUR") == Decimal("99.50")

    async def test_refusals_leave_everything_as_it_was(self, books: Books) -> None:
        beyond_wallet = await books.transfer(
            Money.of("1000.01", "USD"), usd_wallet(), on_mt5(books.usd_login, "USD")
        )
        beyond_margin = await books.transfer(
            Money.of("0.01", "USD"), on_mt5(books.usd_login, "USD"), usd_wallet()
        )

        assert beyond_wallet.status is PaymentStatus.REJECTED
        assert "available" in (beyond_wallet.reason or "")
        assert beyond_margin.status is PaymentStatus.REJECTED
        assert "free margin" in (beyond_margin.reason or "")
        assert await books.wallet_balance("USD") == Decimal("1000.00")
        assert await books.mt5_agrees_with_the_books(books.usd_login, "USD") == Decimal(0)
        async with books.sessions() as session:
            statuses = (await session.scalars(select(Transfer.status))).all()
        assert sorted(statuses) == ["rejected", "rejected"]
