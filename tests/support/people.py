"""Principals for API tests: inserted straight into the test database, logged in over HTTP."""

from __future__ import annotations

import io
import itertools
import random
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import httpx
import pyotp
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.security import hash_password
from db.models import AccountApplication, Client, IntroducingBroker, Mt5Account, StaffUser
from db.sealed import SecretBox
from domain.roles import StaffRole

PASSWORD = "Correct-Horse-9"
LOCALHOST = ["127.0.0.1/32"]

# Dates of birth handed out one after the other from a random start: applicants of one run never
# share a name and a date of birth by chance (sign-up refuses the same person twice).
_EARLIEST_BIRTH = date(1950, 1, 1)
_BIRTH_DAYS = 365 * 50
_births = itertools.count(random.randrange(_BIRTH_DAYS))


def unique_birth_date() -> date:
    return _EARLIEST_BIRTH + timedelta(days=next(_births) % _BIRTH_DAYS)


def applicant(**overrides: Any) -> dict[str, Any]:
    """A complete sign-up body of an adult living in Germany, unique in email and person."""
    body: dict[str, Any] = {
        "email": f"applicant-{uuid.uuid4().hex[:10]}@example.com",
        "password": "Str0ng-enough-pw",
        "full_name": "Erika Mustermann",
        "country": "DE",
        "nationality": "DE",
        "date_of_birth": unique_birth_date().isoformat(),
        "phone": "+4915123456789",
        "address": {"line1": "Heidestrasse 17", "city": "Koeln", "postal_code": "51147"},
        "account_type": "standard",
    }
    body.update(overrides)
    return body


def passport_pdf(full_name: str = "Erika Mustermann", number: str | None = None) -> bytes:
    """A one-page PDF identity document, made the way a real export is (WeasyPrint)."""
    from weasyprint import HTML

    number = number or uuid.uuid4().hex[:9].upper()
    surname, _, given = full_name.upper().rpartition(" ")
    html = (
        "<html><body style='font-family: sans-serif'>"
        "<h1>PASSPORT / REISEPASS</h1>"
        f"<p>Passport No. {number}</p><p>Surname: {surname or given}</p>"
        f"<p>Given names: {given if surname else ''}</p><p>Nationality: DEUTSCH</p>"
        f"<p style='font-family: monospace'>P&lt;D&lt;&lt;{surname.replace(' ', '&lt;')}"
        f"&lt;&lt;{given}&lt;&lt;&lt;&lt;&lt;&lt;</p>"
        "</body></html>"
    )
    pdf: bytes = HTML(string=html).write_pdf()
    return pdf


def utility_bill_png(seed: int | None = None, size: int = 96) -> bytes:
    """A PNG 'photo' of a utility bill: noise, so it is well above the minimum size."""
    from PIL import Image

    rng = random.Random(seed if seed is not None else uuid.uuid4().int)
    image = Image.new("RGB", (size, size))
    image.putdata([tuple(rng.randrange(256) for _ in range(3)) for _ in range(size * size)])
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


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
