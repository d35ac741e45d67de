"""Deposits, withdrawals and transfers through HTTP on the real stack: the API and worker as
processes, PostgreSQL, Temporal, the MT5 simulator and the payment-processor simulator, whose
signed webhooks reach the API as a processor's would."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.ledger import balance
from db.sealed import SecretBox
from db.session import create_engine, create_sessionmaker
from db.urls import app_database_url
from domain.funds import mt5_mirror
from domain.roles import StaffRole
from mt5_adapter.webapi import WebApiGateway, gateway_for
from tests.conftest import make_settings, mt5_settings_for
from tests.e2e.helpers import simulator_deals, simulator_users
from tests.support.accounts import approve_kyc, open_live_account
from tests.support.people import People, Person
from tests.support.processes import PspSimulator
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e
IBAN = "DE89370400440532013000"
TERMINAL = {"completed", "rejected", "failed", "expired", "cancelled"}


@dataclass
class Desk:
    """The stack seen by a test: HTTP, the processors, MT5 and the books."""

    api: httpx.AsyncClient
    psp: PspSimulator
    mt5: WebApiGateway
    sessions: async_sessionmaker[AsyncSession]
    people: People
    stack: Stack

    async def client(self, *, kyc: bool = True, live_account: bool = True) -> tuple[Person, int]:
        person = await self.people.client()
        if kyc:
            await approve_kyc(self.sessions, person.id)
        login = await open_live_account(self.sessions, self.mt5, person.id) if live_account else 0
        return person, login

    async def request(
        self, person: Person, path: str, body: dict[str, Any], key: str | None = None
    ) -> dict[str, Any]:
        headers = {**person.headers, "Idempotency-Key": key or uuid.uuid4().hex}
        response = await self.api.post(path, json=body, headers=headers)
        assert response.status_code == 202, response.text
        return dict(response.json())

    async def payment(self, person: Person, payment_id: str) -> dict[str, Any]:
        response = await self.api.get(f"/v1/me/payments/{payment_id}", headers=person.headers)
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def wait_for(
        self, person: Person, payment_id: str, *statuses: str, timeout: float = 60
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            payment = await self.payment(person, payment_id)
            if payment["status"] in statuses:
                return payment
            assert payment["status"] not in TERMINAL, payment
            await asyncio.sleep(0.2)
        raise TimeoutError(f"payment {payment_id} never reached {statuses}: {payment}")

    async def wait_for_session(self, person: Person, payment_id: str) -> dict[str, Any]:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            payment = await self.payment(person, payment_id)
            if payment["redirect_url"] or payment["transfer_reference"]:
                return payment
            await asyncio.sleep(0.1)
        raise TimeoutError("the processor's payment page never appeared")

    async def card_deposit(self, person: Person, amount: str, **extra: Any) -> dict[str, Any]:
        payment = await self.request(
            person,
            "/v1/me/deposits",
            {"provider": "cardco", "amount": amount, "currency": "USD", **extra},
        )
        page = await self.wait_for_session(person, payment["id"])
        await asyncio.to_thread(self.psp.pay, page["redirect_url"].rsplit("/", 1)[-1])
        return page

    async def funded_account(self, amount: str) -> tuple[Person, int]:
        person, login = await self.client()
        deposit = await self.card_deposit(person, amount, mt5_login=login)
        await self.wait_for(person, deposit["id"], "completed")
        return person, login

    async def mt5_balance(self, login: int) -> Decimal:
        """MT5's balance, after checking the ledger's mirror says the same."""
        users = await asyncio.to_thread(simulator_users, self.stack.simulator.base_url)
        [user] = [u for u in users if int(u["Login"]) == login]
        async with self.sessions() as session:
            mirror = await balance(session, mt5_mirror("demo", login, "USD"), "USD")
        assert Decimal(str(user["Balance"])) == -mirror.amount
        return -mirror.amount

    async def wallet(self, person: Person) -> dict[str, str]:
        response = await self.api.get("/v1/me/wallets", headers=person.headers)
        assert response.status_code == 200, response.text
        return {w["currency"]: w["available"] for w in response.json()}

    def payout_of(self, reference: str) -> dict[str, Any]:
        [payout] = [p for p in self.psp.state()["bankco"]["payouts"] if p["reference"] == reference]
        return dict(payout)


@pytest.fixture
async def desk(stack: Stack) -> AsyncIterator[Desk]:
    assert stack.psp is not None
    settings = make_settings(stack.owner_url)
    engine = create_engine(app_database_url(stack.owner_url, settings), pool_size=2)
    gateway = gateway_for(mt5_settings_for(stack.simulator))
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as api:
        sessions = create_sessionmaker(engine)
        people = People(sessions, SecretBox(settings.secrets_key), api)
        try:
            yield Desk(api, stack.psp, gateway, sessions, people, stack)
        finally:
            await gateway.aclose()
            await engine.dispose()


class TestDeposits:
    async def test_a_card_deposit_reaches_the_wallet_once(self, desk: Desk) -> None:
        person, _ = await desk.client(live_account=False)
        key = uuid.uuid4().hex
        body = {"provider": "cardco", "amount": "150.00", "currency": "USD"}
        first = await desk.request(person, "/v1/me/deposits", body, key)
        again = await desk.request(person, "/v1/me/deposits", body, key)
        assert again["id"] == first["id"]
        page = await desk.wait_for_session(person, first["id"])
        await asyncio.to_thread(desk.psp.pay, page["redirect_url"].rsplit("/", 1)[-1])

        done = await desk.wait_for(person, first["id"], "completed")

        assert done["amount"] == "150.00"
        assert (await desk.wallet(person))["USD"] == "150.00"

    async def test_a_bank_transfer_reaches_the_mt5_account(self, desk: Desk) -> None:
        person, login = await desk.client()
        deposit = await desk.request(
            person,
            "/v1/me/deposits",
            {"provider": "bankco", "amount": "250.00", "currency": "USD", "mt5_login": login},
        )
        page = await desk.wait_for_session(person, deposit["id"])
        await asyncio.to_thread(
            desk.psp.incoming, page["transfer_reference"], "250.00", "USD", "Test Client"
        )

        await desk.wait_for(person, deposit["id"], "completed")

        assert await desk.mt5_balance(login) == Decimal("250.00")
        deals = await asyncio.to_thread(simulator_deals, desk.stack.simulator.base_url, login)
        assert [d["Comment"] for d in deals if int(d["Action"]) == 2] == [
            f"dep {deposit['reference']}"
        ]

    async def test_a_held_deposit_waits_for_compliance(self, desk: Desk) -> None:
        person, login = await desk.client(kyc=False)
        officer = await desk.people.staff(StaffRole.COMPLIANCE)
        approved = await desk.card_deposit(person, "100.00", mt5_login=login)
        rejected = await desk.card_deposit(person, "40.00", mt5_login=login)
        for payment in (approved, rejected):
            await desk.wait_for(person, payment["id"], "held")

        for payment, approve in ((approved, True), (rejected, False)):
            decision = await desk.api.post(
                f"/v1/compliance/deposits/{payment['id']}/decision",
                json={"approve": approve, "reason": "documents checked by phone"},
                headers=officer.headers,
            )
            assert decision.status_code == 200, decision.text
        again = await desk.api.post(
            f"/v1/compliance/deposits/{approved['id']}/decision",
            json={"approve": False, "reason": "second thoughts"},
            headers=officer.headers,
        )

        assert again.status_code == 409
        await desk.wait_for(person, approved["id"], "completed")
        await desk.wait_for(person, rejected["id"], "rejected")
        assert await desk.mt5_balance(login) == Decimal("100.00")
        intents = desk.psp.state()["cardco"]["intents"]
        [refunded] = [i for i in intents if i["reference"] == rejected["reference"]]
        assert int(refunded["refunded"]) == 4000


class TestWithdrawals:
    async def test_a_large_withdrawal_needs_two_finance_officers(self, desk: Desk) -> None:
        person, login = await desk.funded_account("1500.00")
        first = await desk.people.staff(StaffRole.FINANCE)
        second = await desk.people.staff(StaffRole.FINANCE)
        withdrawal = await desk.request(
            person,
            "/v1/me/withdrawals",
            {
                "provider": "bankco",
                "amount": "1200.00",
                "currency": "USD",
                "mt5_login": login,
                "beneficiary_name": "Test Client",
                "beneficiary_account": IBAN,
            },
        )
        await desk.wait_for(person, withdrawal["id"], "pending_approval")
        decide = f"/v1/finance/withdrawals/{withdrawal['id']}/decision"
        body = {"approve": True, "reason": "source of funds known"}

        assert (await desk.api.post(decide, json=body, headers=first.headers)).status_code == 200
        twice = await desk.api.post(decide, json=body, headers=first.headers)
        assert twice.status_code == 409
        assert (await desk.api.post(decide, json=body, headers=second.headers)).status_code == 200
        await desk.wait_for(person, withdrawal["id"], "payout_sent")
        await asyncio.to_thread(desk.psp.settle, desk.payout_of(withdrawal["reference"])["id"])

        await desk.wait_for(person, withdrawal["id"], "completed")
        assert await desk.mt5_balance(login) == Decimal("300.00")

    async def test_a_failed_payout_puts_the_money_back(self, desk: Desk) -> None:
        person, login = await desk.funded_account("500.00")
        withdrawal = await desk.request(
            person,
            "/v1/me/withdrawals",
            {
                "provider": "bankco",
                "amount": "200.00",
                "currency": "USD",
                "mt5_login": login,
                "beneficiary_name": "Test Client",
                "beneficiary_account": IBAN,
            },
        )
        await desk.wait_for(person, withdrawal["id"], "payout_sent")
        assert await desk.mt5_balance(login) == Decimal("300.00")
        payout = desk.payout_of(withdrawal["reference"])
        await asyncio.to_thread(desk.psp.settle, payout["id"], "failed")

        await desk.wait_for(person, withdrawal["id"], "failed")
        assert await desk.mt5_balance(login) == Decimal("500.00")


class TestTransfers:
    async def test_from_the_wallet_to_an_mt5_account(self, desk: Desk) -> None:
        person, login = await desk.client()
        deposit = await desk.card_deposit(person, "80.00")
        await desk.wait_for(person, deposit["id"], "completed")

        transfer = await desk.request(
            person,
            "/v1/me/transfers",
            {
                "amount": "30.00",
                "currency": "USD",
                "source": {"kind": "wallet"},
                "destination": {"kind": "mt5", "login": login},
            },
        )
        deadline = time.monotonic() + 60
        while (status := await self._status(desk, person, transfer["id"])) != "completed":
            assert status not in TERMINAL and time.monotonic() < deadline, status
            await asyncio.sleep(0.2)

        assert (await desk.wallet(person))["USD"] == "50.00"
        assert await desk.mt5_balance(login) == Decimal("30.00")

    @staticmethod
    async def _status(desk: Desk, person: Person, transfer_id: str) -> str:
        response = await desk.api.get(f"/v1/me/transfers/{transfer_id}", headers=person.headers)
        assert response.status_code == 200, response.text
        return str(response.json()["status"])
