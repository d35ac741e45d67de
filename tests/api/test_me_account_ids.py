"""The client API names each MT5 account by BrokerFlow's id as well as its MT5 login."""

from __future__ import annotations

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import Mt5Account
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
