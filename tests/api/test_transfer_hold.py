"""A transfer out of the wallet takes its hold at request time, in the request's transaction, as
a withdrawal does: what the available balance cannot cover is refused at once (409 with the
reason), also when requests race each other or a withdrawal of the same wallet (real PostgreSQL,
concurrent requests), and the workflow's own hold step finds the hold booked and does not take
the money twice."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import ActivityEnvironment

from activities.ledger_steps import LedgerSteps
from contracts.funds import MovementRef, ReserveFromWallet
from contracts.transfer import TransferInput
from db.models import JournalEntryRow, Payment, Transfer
from domain.money import Money
from domain.money_flows import MovementKind
from tests.api.conftest import Books, FakeTemporal
from tests.api.test_withdrawal_hold import withdraw
from tests.support.people import People, Person
from workflows.funds import Saga


def to_mt5(login: int, amount: str) -> dict[str, Any]:
    return {
        "amount": amount,
        "currency": "USD",
        "source": {"kind": "wallet"},
        "destination": {"kind": "mt5", "login": login},
    }


async def transfer(
    api: httpx.AsyncClient, who: Person, login: int, amount: str, key: str | None = None
) -> httpx.Response:
    headers = {**who.headers, "Idempotency-Key": key or str(uuid.uuid4())}
    return await api.post("/v1/me/transfers", json=to_mt5(login, amount), headers=headers)


async def wallet_of(api: httpx.AsyncClient, who: Person) -> dict[str, str]:
    [usd] = (await api.get("/v1/me/wallets", headers=who.headers)).json()
    return {"available": usd["available"], "held": usd["held"]}


async def test_concurrent_transfers_beyond_the_wallet_are_refused_at_once(
    api: httpx.AsyncClient, people: People, books: Books, temporal: FakeTemporal
) -> None:
    client = await people.client()
    login = await books.live_account(client)
    await books.fund_wallet(client, "100.00")
    answers = await asyncio.gather(*(transfer(api, client, login, "30.00") for _ in range(5)))
    assert sorted(a.status_code for a in answers) == [202, 202, 202, 409, 409], [
        a.text for a in answers
    ]
    refused = [a.json() for a in answers if a.status_code == 409]
    for problem in refused:
        assert problem["title"] == "Insufficient funds"
        assert "10.00 USD available" in problem["detail"]
        assert (problem["requested"], problem["available"]) == ("30.00", "10.00")
    assert await wallet_of(api, client) == {"available": "10.00", "held": "90.00"}
    assert await books.count(Transfer, Transfer.client_id == client.id) == 3
    started = [arg for _, arg, _ in temporal.started if isinstance(arg, TransferInput)]
    assert len(started) == 3  # a refused request starts nothing


async def test_a_transfer_and_a_withdrawal_racing_for_one_wallet(
    api: httpx.AsyncClient, people: People, books: Books, temporal: FakeTemporal
) -> None:
    for _ in range(2):  # both orders are possible; neither may let both through
        client = await people.client()
        login = await books.live_account(client)
        await books.fund_wallet(client, "80.00")
        moved, withdrawn = await asyncio.gather(
            transfer(api, client, login, "50.00"), withdraw(api, client, "50.00")
        )
        assert sorted([moved.status_code, withdrawn.status_code]) == [202, 409], (
            moved.text,
            withdrawn.text,
        )
        assert await wallet_of(api, client) == {"available": "30.00", "held": "50.00"}
        accepted = await books.count(Transfer, Transfer.client_id == client.id)
        accepted += await books.count(Payment, Payment.client_id == client.id)
        assert accepted == 1


async def test_the_workflow_finds_the_hold_booked_and_does_not_hold_twice(
    api: httpx.AsyncClient,
    people: People,
    books: Books,
    temporal: FakeTemporal,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    client = await people.client()
    login = await books.live_account(client)
    await books.fund_wallet(client, "60.00")
    key = str(uuid.uuid4())
    first, again = [await transfer(api, client, login, "50.00", key) for _ in range(2)]
    assert first.status_code == again.status_code == 202, first.text
    assert first.json()["id"] == again.json()["id"]
    [(_, request, _)] = temporal.started
    assert isinstance(request, TransferInput)
    # The key the workflow's hold step books under is the one the API booked, once.
    saga = Saga(
        "transfer",
        request.client_id,
        request.reference,
        MovementRef(kind=MovementKind.TRANSFER, id=request.transfer_id),
    )
    hold_key = saga.key("hold")
    assert await books.count(JournalEntryRow, JournalEntryRow.idempotency_key == hold_key) == 1

    steps = LedgerSteps(sessions, fx_spread_bps=0)
    reserve = ReserveFromWallet(key=hold_key, client_id=client.id, amount=Money.of("50.00", "USD"))
    # Only 10.00 is left, but the hold is already booked: the step succeeds and books nothing.
    await ActivityEnvironment().run(steps.reserve_from_wallet, reserve)
    assert await wallet_of(api, client) == {"available": "10.00", "held": "50.00"}
    assert await books.count(JournalEntryRow, JournalEntryRow.idempotency_key == hold_key) == 1
