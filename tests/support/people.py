"""Principals for API tests: inserted straight into the test database, logged in over HTTP."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

import httpx
import pyotp
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.security import hash_password
from db.models import AccountApplication, Client, IntroducingBroker, Mt5Account, StaffUser
from db.sealed import SecretBox
from domain.roles import StaffRole

PASSWORD = "Correct-Horse-9"
LOCALHOST = ["127.0.0.1/32"]


@dataclass(frozen=True)
class Person:
    id: uuid.UUID
    email: str
    headers: dict[str, str]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class People:
    """Creates principals of every kind in one test's database."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], box: SecretBox, api: httpx.AsyncClient
    ) -> None:
        self.sessions = sessions
        self.box = box
        self.api = api
        self.totp_secrets: dict[str, str] = {}

    async def _add(self, row: object) -> None:
        async with self.sessions.begin() as session:
            session.add(row)

    async def staff(
        self, *roles: StaffRole, allowlist: list[str] | None = None, active: bool = True
    ) -> Person:
        email = f"staff-{uuid.uuid4().hex[:8]}@example.com"
        secret = pyotp.random_base32()
        row = StaffUser(
            id=uuid.uuid4(),
            email=email,
            full_name="Test Staff",
            password_hash=await hash_password(PASSWORD),
            totp_secret_enc=self.box.seal(secret),
            roles=[r.value for r in roles],
            ip_allowlist=allowlist or LOCALHOST,
            active=active,
        )
        await self._add(row)
        self.totp_secrets[email] = secret
        headers = await self.log_in_staff(email) if active else {}
        return Person(row.id, email, headers)

    async def log_in_staff(self, email: str) -> dict[str, str]:
        response = await self.api.post(
            "/v1/auth/staff/login",
            json={
                "email": email,
                "password": PASSWORD,
                "totp_code": pyotp.TOTP(self.totp_secrets[email]).now(),
            },
        )
        assert response.status_code == 200, response.text
        return bearer(response.json()["access_token"])

    async def client(self, *, referred_by: uuid.UUID | None = None) -> Person:
        email = f"client-{uuid.uuid4().hex[:8]}@example.com"
        row = Client(
            id=uuid.uuid4(),
            email=email,
            password_hash=await hash_password(PASSWORD),
            full_name="Test Client",
            country="DE",
            date_of_birth=date(1990, 1, 1),
            status="active",
            referred_by_ib_id=referred_by,
        )
        await self._add(row)
        return Person(row.id, email, await self._log_in("client", email))

    async def ib(self) -> Person:
        email = f"ib-{uuid.uuid4().hex[:8]}@example.com"
        row = IntroducingBroker(
            id=uuid.uuid4(),
            email=email,
            name="Test IB",
            password_hash=await hash_password(PASSWORD),
            referral_code=f"IB{uuid.uuid4().hex[:8]}",
        )
        await self._add(row)
        return Person(row.id, email, await self._log_in("ib", email))

    async def _log_in(self, kind: str, email: str) -> dict[str, str]:
        response = await self.api.post(
            f"/v1/auth/{kind}/login", json={"email": email, "password": PASSWORD}
        )
        assert response.status_code == 200, response.text
        return bearer(response.json()["access_token"])

    async def mt5_account(self, client: Person, login: int) -> uuid.UUID:
        """A finished demo account of `client`, its one-time passwords still held."""
        application_id = uuid.uuid4()
        async with self.sessions.begin() as session:
            session.add(
                AccountApplication(
                    id=application_id,
                    client_id=client.id,
                    account_type="standard",
                    kind="demo",
                    status="completed",
                    workflow_id=f"account-opening-{application_id}",
                    mt5_server="demo",
                    mt5_login=login,
                    mt5_password_main_enc=self.box.seal("Main#Pass123"),
                    mt5_password_investor_enc=self.box.seal("Invest#Pass123"),
                )
            )
            await session.flush()
            session.add(
                Mt5Account(
                    client_id=client.id,
                    application_id=application_id,
                    server="demo",
                    login=login,
                    group="demo\\standard",
                    leverage=100,
                    currency="USD",
                    kind="demo",
                )
            )
        return application_id
