"""A withdrawal from the wallet takes its hold at request time, in the request's transaction:
what the available balance cannot cover is refused at once (409 with the reason), also when
requests race (real PostgreSQL, concurrent requests: never more accepted than the wallet holds),
and the workflow's own hold step finds the hold booked and does not take the money twice."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import ActivityEnvironment

from activities.ledger_steps import LedgerSteps
from contracts.funds import MovementRef, ReserveFromWallet
from contracts.withdrawal import WithdrawalInput
from db.models import JournalEntryRow, Payment
from domain.money import Money
from domain.money_flows import MovementKind
from tests.api.conftest import Books, FakeTemporal
from tests.support.people import People, Person
from workflows.funds import Saga

GOOD_IBAN = "DE89 3704 0044 0532 0130 00"


def withdrawal(amount: str) -> dict[str, Any]:
    return {
        "provider": "bankco",
        "amount": amount,
        "currency": "USD",
        "beneficiary_name": "Test Client",
        "beneficiary_account": GOOD_IBAN,
    }


async def withdraw(api: httpx.AsyncClient, who: Person, amount: str) -> httpx.Response:
    headers = {**who.headers, "Idempotency-Key": str(uuid.uuid4())}
    return await api.post("/v1/me/withdrawals", json=withdrawal(amount), headers=headers)


async def wallet_of(api: httpx.AsyncClient, who: Person) -> dict[str, str]:
    [usd] = (await api.get("/v1/me/wallets", headers=who.headers)).json()
    return {"available": usd["available"], "held": usd["held"]}


async def test_two_concurrent_withdrawals_exceeding_the_wallet_one_202_one_409(
    api: httpx.AsyncClient, people: People, books: Books, temporal: FakeTemporal
) -> None:
    for _ in range(3):  # a few rounds: the race must never let both through
        client = await people.client()
        await books.fund_wallet(client, "80.00")
        answers = await asyncio.gather(
            withdraw(api, client, "50.00"), withdraw(api, client, "50.00")
        )
        statuses = sorted(a.status_code for a in answers)
        assert statuses == [202, 409], [a.text for a in answers]
        [refused] = [a for a in answers if a.status_code == 409]
        problem = refused.json()
        assert problem["title"] == "Insufficient funds"
        assert "30.00 USD available" in problem["detail"]
        assert (problem["requested"], problem["available"]) == ("50.00", "30.00")
        assert await wallet_of(api, client) == {"available": "30.00", "held": "50.00"}
        assert await books.count(Payment, Payment.client_id == client.id) == 1


async def test_many_at_once_never_more_than_the_wallet_holds(
    api: httpx.AsyncClient, people: People, books: Books, temporal: FakeTemporal
) -> None:
    client = await people.client()
    await books.fund_wallet(client, "100.00")
    answers = await asyncio.gather(*(withdraw(api, client, "30.00") for _ in range(5)))
    assert sorted(a.status_code for a in answers) == [202, 202, 202, 409, 409]
    assert await wallet_of(api, client) == {"available": "10.00", "held": "90.00"}
    started = [arg for _, arg, _ in temporal.started if isinstance(arg, WithdrawalInput)]
    assert len(started) == 3  # a refused request starts nothing


async def test_the_workflow_finds_the_hold_booked_and_does_not_hold_twice(
    api: httpx.AsyncClient,
    people: People,
    books: Books,
    temporal: FakeTemporal,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    client = await people.client()
    await books.fund_wallet(client, "60.00")
    response = await withdraw(api, client, "50.00")
    assert response.status_code == 202, response.text
    [(_, request, _)] = temporal.started
    assert isinstance(request, WithdrawalInput)
    # The key the workflow's hold step books under is the one the API booked.
    saga = Saga(
        "withdrawal",
        request.client_id,
        request.reference,
        MovementRef(kind=MovementKind.PAYMENT, id=request.payment_id),
    )
    hold_key = saga.key("hold")
    assert await books.count(JournalEntryRow, JournalEntryRow.idempotency_key == hold_key) == 1

    steps = LedgerSteps(sessions, fx_spread_bps=0)
    reserve = ReserveFromWallet(key=hold_key, client_id=client.id, amount=Money.of("50.00", "USD"))
    # Only 10.00 is left, but the hold is already booked: the step succeeds and books nothing.
    await ActivityEnvironment().run(steps.reserve_from_wallet, reserve)
    assert await wallet_of(api, client) == {"available": "10.00", "held": "50.00"}
    assert await books.count(JournalEntryRow, JournalEntryRow.idempotency_key == hold_key) == 1


async def test_a_repeated_request_holds_once(
    api: httpx.AsyncClient, people: People, books: Books, temporal: FakeTemporal
) -> None:
    client = await people.client()
    await books.fund_wallet(client, "60.00")
    headers = {**client.headers, "Idempotency-Key": str(uuid.uuid4())}
    first, again = [
        await api.post("/v1/me/withdrawals", json=withdrawal("50.00"), headers=headers)
        for _ in range(2)
    ]
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    assert await wallet_of(api, client) == {"available": "10.00", "held": "50.00"}
