"""The client API names each MT5 account by BrokerFlow's id as well as its MT5 login, and shows
its MT5 money from the last synced snapshot."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import AccountStateRow, Mt5Account
from domain.roles import StaffRole
from tests.support.people import People


async def test_each_account_carries_its_id(
    api: httpx.AsyncClient, people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    client = await people.client()
    await people.mt5_account(client, 5_310_001)
    async with sessions() as session:
        account_id = await session.scalar(
            select(Mt5Account.id).where(Mt5Account.login == 5_310_001)
        )

    [listed] = (await api.get("/v1/me/accounts", headers=client.headers)).json()
    assert listed["id"] == str(account_id) and listed["login"] == 5_310_001
    one = await api.get("/v1/me/accounts/5310001", headers=client.headers)
    assert one.status_code == 200 and one.json()["id"] == str(account_id)

    support = await people.staff(StaffRole.SUPPORT)
    seen = await api.get(f"/v1/clients/{client.id}", headers=support.headers)
    assert seen.status_code == 200, seen.text
    assert [a["id"] for a in seen.json()["accounts"]] == [str(account_id)]

    schema = (await api.get("/openapi.json")).json()["components"]["schemas"]["Mt5AccountView"]
    assert "id" in schema["required"] and schema["properties"]["id"]["format"] == "uuid"


async def test_each_account_shows_its_synced_mt5_balance(
    api: httpx.AsyncClient, people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    client = await people.client()
    await people.mt5_account(client, 5_310_002)
    await people.mt5_account(client, 5_310_003)
    [before, _] = (await api.get("/v1/me/accounts", headers=client.headers)).json()
    assert before["trading"] is None  # not read by the ingestion yet: no figure is made up

    taken_at = datetime(2026, 12, 7, 1, 0, tzinfo=UTC)
    async with sessions.begin() as session:
        account = await session.scalar(select(Mt5Account).where(Mt5Account.login == 5_310_002))
        assert account is not None
        session.add(
            AccountStateRow(
                server=account.server,
                login=5_310_002,
                currency_digits=2,
                balance=Decimal("1250.00"),
                credit=Decimal("0"),
                equity=Decimal("1262.40"),
                margin=Decimal("100.00"),
                margin_free=Decimal("1162.40"),
                margin_level=Decimal("1262.40"),
                profit=Decimal("12.40"),
                storage=Decimal("0"),
                floating=Decimal("12.40"),
                taken_at=taken_at,
            )
        )
        currency = account.currency

    one = (await api.get("/v1/me/accounts/5310002", headers=client.headers)).json()
    assert one["trading"] == {
        "currency": currency,
        "balance": "1250.00",
        "credit": "0",
        "equity": "1262.40",
        "margin": "100.00",
        "margin_free": "1162.40",
        "margin_level": "1262.40",
        "as_of": "2026-12-07T01:00:00Z",
    }
    listed = (await api.get("/v1/me/accounts", headers=client.headers)).json()
    assert [a["trading"] is not None for a in listed] == [True, False]
