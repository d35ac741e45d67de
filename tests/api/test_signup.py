"""Registration through HTTP: a complete applicant is recorded with a demo account opening and a
verification mail; every bad field is refused with its reason and leaves no row and no workflow;
the same email, or the same person under another email, is refused."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.signup.service import name_key
from contracts.account_opening import ACCOUNT_OPENING
from contracts.client_mail import CLIENT_MAIL, ClientMailInput, MailTemplate
from db.models import AccountApplication, AuditEntry, Client, Notification
from tests.api.conftest import FakeTemporal
from tests.support.people import applicant


async def count(sessions: async_sessionmaker[AsyncSession], model: type) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def nothing_written(sessions: async_sessionmaker[AsyncSession]) -> None:
    assert await count(sessions, Client) == 0
    assert await count(sessions, AccountApplication) == 0
    assert await count(sessions, AuditEntry) == 0


def birthday_years_ago(years: int, days: int = 0) -> str:
    today = datetime.now(UTC).date()
    try:
        then = today.replace(year=today.year - years)
    except ValueError:  # 29 February
        then = today.replace(year=today.year - years, day=28)
    return (then + timedelta(days=days)).isoformat()


class TestACompleteApplicant:
    async def test_is_recorded_with_a_demo_account_and_a_verification_mail(
        self,
        api: httpx.AsyncClient,
        sessions: async_sessionmaker[AsyncSession],
        temporal: FakeTemporal,
    ) -> None:
        body = applicant(
            full_name="  José  Álvarez-Núñez ",
            phone="+49 151 2345 6789",
            address={
                "line1": "Heidestrasse 17",
                "line2": "3. OG links",
                "city": "Koeln",
                "postal_code": " 51147 ",
            },
            nationality="ES",
        )
        response = await api.post("/v1/signup", json=body)
        assert response.status_code == 202, response.text
        client_id = uuid.UUID(response.json()["client_id"])
        async with sessions() as session:
            client = await session.get(Client, client_id)
        assert client is not None
        assert client.phone == "+4915123456789"
        assert client.nationality == "ES" and client.country == "DE"
        assert client.address_line1 == "Heidestrasse 17" and client.address_line2 == "3. OG links"
        assert client.city == "Koeln" and client.postal_code == "51147"
        assert client.name_key == "alvarez jose nunez"
        assert client.email_verified_at is None
        assert client.account_type == "standard" and client.category == "retail"

        [opening, mail] = temporal.started
        assert opening[0] == ACCOUNT_OPENING.name
        assert opening[2] == f"account-opening-{response.json()['application_id']}"
        assert mail[0] == CLIENT_MAIL.name
        assert mail[2] == f"mail-verify-{client_id}"
        assert mail[1] == ClientMailInput(
            key=f"verify-{client_id}", client_id=client_id, template=MailTemplate.VERIFY_EMAIL
        )

    async def test_without_postal_code_where_the_country_has_none(
        self, api: httpx.AsyncClient, temporal: FakeTemporal
    ) -> None:
        body = applicant(
            country="AE",
            phone="+971501234567",
            date_of_birth="1980-02-03",
            address={"line1": "Villa 12, Street 5", "city": "Dubai"},
        )
        response = await api.post("/v1/signup", json=body)
        assert response.status_code == 202, response.text


class TestBadInputWritesNothing:
    @pytest.mark.parametrize(
        ("override", "says"),
        [
            ({"country": "XX"}, "country"),
            ({"country": "de"}, "country"),
            ({"nationality": "XX"}, "nationality"),
            ({"nationality": None}, "nationality"),
            ({"date_of_birth": birthday_years_ago(18, days=1)}, "at least 18"),
            (
                {"country": "SG", "phone": "+6581234567", "date_of_birth": birthday_years_ago(20)},
                "at least 21",
            ),
            ({"date_of_birth": "1890-01-01"}, "plausible"),
            ({"phone": "015123456789"}, "international form"),
            ({"phone": "+49 1"}, "international form"),
            ({"phone": "+49123456"}, "not a valid phone number in DE"),
            ({"phone": "+18005551234"}, "toll-free"),
            ({"phone": 4915123456789}, "phone"),
            ({"address": {"city": "Koeln", "postal_code": "51147"}}, "address.line1"),
            ({"address": {"line1": "Heidestr. 17", "postal_code": "51147"}}, "address.city"),
            ({"address": {"line1": "Heidestr. 17", "city": "Koeln"}}, "need a postal code"),
            (
                {"address": {"line1": "Heidestr. 17", "city": "Koeln", "postal_code": "<b>1</b>"}},
                "address.postal_code",
            ),
            (
                {"address": {"line1": "Heidestr. 17", "city": "Koeln", "postal_code": "1" * 13}},
                "address.postal_code",
            ),
            (
                {"address": {"line1": "Heide\nstr. 17", "city": "Koeln", "postal_code": "51147"}},
                "address.line1",
            ),
            (
                {"address": {"line1": "x" * 201, "city": "Koeln", "postal_code": "51147"}},
                "address.line1",
            ),
            ({"address": None}, "address"),
            ({"full_name": "---"}, "full_name must contain letters"),
            ({"password": "short"}, "password"),
            ({"email": "not-an-email"}, "email"),
            ({"account_type": "platinum"}, "account_type"),
            ({"extra": "field"}, "extra"),
            ({"referral_code": "NOPE"}, "referral_code"),
        ],
    )
    async def test_refused_with_a_reason(
        self,
        api: httpx.AsyncClient,
        sessions: async_sessionmaker[AsyncSession],
        temporal: FakeTemporal,
        override: dict[str, Any],
        says: str,
    ) -> None:
        body = applicant()
        body.update(override)
        response = await api.post("/v1/signup", json=body)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert says in response.text
        assert temporal.started == []
        await nothing_written(sessions)

    async def test_a_missing_required_field(
        self,
        api: httpx.AsyncClient,
        sessions: async_sessionmaker[AsyncSession],
        temporal: FakeTemporal,
    ) -> None:
        for field in ("phone", "nationality", "address", "date_of_birth", "country"):
            body = applicant()
            del body[field]
            response = await api.post("/v1/signup", json=body)
            assert response.status_code == 422, field
            assert field in response.json()["detail"]
        assert temporal.started == []
        await nothing_written(sessions)

    async def test_workflow_engine_down(
        self,
        api: httpx.AsyncClient,
        sessions: async_sessionmaker[AsyncSession],
        temporal: FakeTemporal,
    ) -> None:
        temporal.down = True
        response = await api.post("/v1/signup", json=applicant())
        assert response.status_code == 503
        await nothing_written(sessions)


class TestDuplicates:
    async def test_the_same_email_in_any_case(
        self,
        api: httpx.AsyncClient,
        sessions: async_sessionmaker[AsyncSession],
        temporal: FakeTemporal,
    ) -> None:
        first = applicant()
        created = await api.post("/v1/signup", json=first)
        assert created.status_code == 202
        again = applicant(email=first["email"].upper(), full_name="Somebody Else")
        response = await api.post("/v1/signup", json=again)
        # Answered as for a new address: the answer does not tell who has an account.
        assert response.status_code == 202, response.text
        assert set(response.json()) == set(created.json())
        assert response.json()["status"] == created.json()["status"]
        assert response.json()["client_id"] != created.json()["client_id"]
        assert await count(sessions, Client) == 1
        # The first applicant's opening and mail, then the mail to the owner (nothing opens).
        owner = uuid.UUID(created.json()["client_id"])
        assert len(temporal.started) == 3
        _, notice_mail, mail_id = temporal.started[2]
        assert isinstance(notice_mail, ClientMailInput)
        assert notice_mail.template is MailTemplate.SIGNUP_WITH_YOUR_EMAIL
        assert notice_mail.client_id == owner and mail_id == f"mail-{notice_mail.key}"
        # The owner is told, and the attempt is audited.
        async with sessions() as session:
            [notice] = await session.scalars(
                select(Notification).where(Notification.client_id == owner)
            )
            [entry] = await session.scalars(
                select(AuditEntry).where(AuditEntry.action == "client.signup_with_known_email")
            )
        assert notice.kind == "signup_with_your_email" and "already have" in notice.message
        assert entry.entity_id == str(owner) and entry.ip == "127.0.0.1"

    @pytest.mark.parametrize(
        "written_again",
        ["erika mustermann", "MUSTERMANN Erika", "Érika  Mustérmann", "Mustermann, Erika"],
    )
    async def test_the_same_person_under_another_email(
        self,
        api: httpx.AsyncClient,
        sessions: async_sessionmaker[AsyncSession],
        temporal: FakeTemporal,
        written_again: str,
    ) -> None:
        first = applicant(full_name="Erika Mustermann", date_of_birth="1984-08-12")
        assert (await api.post("/v1/signup", json=first)).status_code == 202
        again = applicant(full_name=written_again, date_of_birth="1984-08-12")
        response = await api.post("/v1/signup", json=again)
        assert response.status_code == 409, response.text
        assert "name and date of birth" in response.json()["detail"]
        assert await count(sessions, Client) == 1

    async def test_a_namesake_born_on_another_day_is_someone_else(
        self, api: httpx.AsyncClient, temporal: FakeTemporal
    ) -> None:
        first = applicant(full_name="Erika Mustermann", date_of_birth="1984-08-12")
        other = applicant(full_name="Erika Mustermann", date_of_birth="1984-08-13")
        assert (await api.post("/v1/signup", json=first)).status_code == 202
        assert (await api.post("/v1/signup", json=other)).status_code == 202

    async def test_the_same_person_twice_at_once(
        self,
        api: httpx.AsyncClient,
        sessions: async_sessionmaker[AsyncSession],
        temporal: FakeTemporal,
    ) -> None:
        bodies = [applicant(full_name="Max Muster", date_of_birth="1979-03-04") for _ in range(2)]
        answers = await asyncio.gather(*(api.post("/v1/signup", json=b) for b in bodies))
        assert sorted(a.status_code for a in answers) == [202, 409]
        assert await count(sessions, Client) == 1


class TestNameKey:
    @pytest.mark.parametrize(
        ("name", "key"),
        [
            ("Erika Mustermann", "erika mustermann"),
            ("  MUSTERMANN   erika ", "erika mustermann"),
            ("Hans Müller-Lüdenscheidt", "hans ludenscheidt muller"),
            ("Straße", "strasse"),
            ("\uff25\uff52\uff49\uff4b\uff41", "erika"),  # full-width letters: NFKD
            ("Zoë O'Brien", "brien o zoe"),
            ("---", ""),
        ],
    )
    def test_folds_accents_case_spaces_and_order(self, name: str, key: str) -> None:
        assert name_key(name) == key

    def test_is_bounded_by_the_column(self) -> None:
        assert len(name_key("a " * 500)) <= 200


def test_birth_dates_of_test_applicants_differ() -> None:
    births = {applicant()["date_of_birth"] for _ in range(500)}
    assert len(births) == 500
    assert all(date.fromisoformat(b) < date(2001, 1, 1) for b in births)
