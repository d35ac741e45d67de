"""Live MT5 accounts for money tests: a real MT5 user on the simulator and BrokerFlow's rows for
it, as live provisioning (the KYC issue) will make them. Until that lands, tests open them here.
"""

from __future__ import annotations

import random
import uuid

from pydantic import SecretStr
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import AccountApplication, Client, Mt5Account
from domain.mt5 import NewMt5User
from domain.payment_checks import KycStatus, ScreeningStatus
from mt5_adapter.gateway import Mt5Gateway

LIVE_GROUPS = {"USD": "real\\standard", "EUR": "real\\eu\\standard"}


async def open_live_account(
    sessions: async_sessionmaker[AsyncSession],
    gateway: Mt5Gateway,
    client_id: uuid.UUID,
    *,
    currency: str = "USD",
    server: str = "demo",
) -> int:
    """A live account of `client_id` on `server`; returns its login."""
    # The simulator outlives each test's database: a login range of its own per call.
    login = random.randrange(7_000_000, 9_999_999)
    await gateway.add_user(
        NewMt5User(
            login=login,
            group=LIVE_GROUPS[currency],
            name="Live Test",
            leverage=30,
            password_main=SecretStr("Main-Pass-1"),
            password_investor=SecretStr("Invest-Pass-1"),
            comment="test live account",
        )
    )
    async with sessions.begin() as session:
        application = AccountApplication(
            id=uuid.uuid4(),
            client_id=client_id,
            account_type="standard",
            kind="live",
            status="completed",
            workflow_id=f"test-live-{uuid.uuid4()}",
            mt5_server=server,
            mt5_login=login,
        )
        session.add(application)
        await session.flush()
        session.add(
            Mt5Account(
                client_id=client_id,
                application_id=application.id,
                server=server,
                login=login,
                group=LIVE_GROUPS[currency],
                leverage=30,
                currency=currency,
                kind="live",
            )
        )
    return login


async def approve_kyc(sessions: async_sessionmaker[AsyncSession], client_id: uuid.UUID) -> None:
    async with sessions.begin() as session:
        await session.execute(
            update(Client)
            .where(Client.id == client_id)
            .values(kyc_status=KycStatus.APPROVED, screening_status=ScreeningStatus.CLEAR)
        )
