"""Forgotten passwords: the request answers alike for any address and mails a one-time,
expiring link (kept as a hash); the confirmation sets a password the server's rules accept,
spends the token and ends every session; both are throttled per account and per address, with
the app's clock moved by the test instead of sleeping."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import ActivityEnvironment

from activities.mail import ClientMail
from contracts.client_mail import CLIENT_MAIL, ClientMailInput, MailTemplate
from db.models import AuthSession, Client, PasswordReset
from domain.password_reset import make_token, token_digest
from mailer.smtp import InMemoryMailer
from settings import Settings, ThrottleLimit
from tests.api.conftest import FakeTemporal
from tests.api.test_brute_force import Clock, audit_rows, use_rules
from tests.support.people import PASSWORD, People, Person

NEW_PASSWORD = "Brand-new-Secret-42"


@pytest.fixture
def clock(api: httpx.AsyncClient) -> Clock:
    clock = Clock()
    api._transport.app.state.brokerflow.clock = clock  # type: ignore[attr-defined]
    return clock


def token_for(settings: Settings, reset_id: uuid.UUID) -> str:
    return make_token(settings.jwt_secret.get_secret_value().encode(), reset_id)


async def resets(sessions: async_sessionmaker[AsyncSession], who: Person) -> list[PasswordReset]:
    async with sessions() as session:
        rows = await session.scalars(
            select(PasswordReset)
            .where(PasswordReset.subject_id == who.id)
            .order_by(PasswordReset.created_at, PasswordReset.expires_at)
        )
        return list(rows)


def ask(api: httpx.AsyncClient, email: str) -> Any:
    return api.post("/v1/auth/password-reset", json={"email": email})


def confirm(api: httpx.AsyncClient, token: str, password: str = NEW_PASSWORD) -> Any:
    return api.post(
        "/v1/auth/password-reset/confirm", json={"token": token, "new_password": password}
    )


async def test_known_and_unknown_addresses_get_the_same_answer(
    api: httpx.AsyncClient,
    people: People,
    temporal: FakeTemporal,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    clock: Clock,
) -> None:
    client = await people.client()
    known = await ask(api, client.email.upper())
    unknown = await ask(api, "nobody-here@example.com")
    assert known.status_code == unknown.status_code == 202, known.text
    assert known.json() == unknown.json()
    assert known.headers.get("content-type") == unknown.headers.get("content-type")

    # Only the known address gets a reset and its mail; the workflow carries no token.
    [reset] = await resets(sessions, client)
    [(name, mail, workflow_id)] = temporal.started
    assert name == CLIENT_MAIL.name and isinstance(mail, ClientMailInput)
    assert mail.template is MailTemplate.PASSWORD_RESET and mail.client_id == client.id
    assert mail.context["reset_id"] == str(reset.id)
    assert workflow_id == f"mail-password-reset-{reset.id}"
    token = token_for(settings, reset.id)
    assert token not in repr(mail)
    # Stored as a hash, expiring after the configured minutes.
    assert reset.token_hash == token_digest(token) and token not in reset.token_hash
    assert reset.expires_at == clock.now + timedelta(minutes=30)
    [entry] = await audit_rows(sessions, "client.password_reset_requested")
    assert entry.entity_id == str(client.id) and entry.after is not None
    assert token not in str(entry.after) and reset.token_hash not in str(entry.after)


async def test_the_mailed_link_sets_a_new_password_once_and_ends_every_session(
    api: httpx.AsyncClient,
    people: People,
    temporal: FakeTemporal,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    clock: Clock,
) -> None:
    client = await people.client()
    assert (await api.get("/v1/me", headers=client.headers)).status_code == 200
    assert (await ask(api, client.email)).status_code == 202

    # The mail step writes the link (the test runs it as the worker would).
    [(_, mail, _)] = temporal.started
    mailer = InMemoryMailer()
    step = ClientMail(
        sessions,
        mailer,
        sender="Broker <no-reply@broker.example>",
        public_base_url="https://portal.broker.example/",
        link_key=settings.jwt_secret,
    )
    await ActivityEnvironment().run(step.send_client_mail, mail)
    [sent] = mailer.sent
    assert sent.to == client.email and "Reset your password" in sent.subject
    [link] = [line for line in sent.text.splitlines() if "#token=" in line]
    assert link.startswith("https://portal.broker.example/reset-password#token=")
    assert "30 minutes" in sent.text
    token = link.split("#token=", 1)[1].strip()

    done = await confirm(api, token)
    assert done.status_code == 200, done.text
    assert done.json() == {"sessions_ended": 1}
    # The old session is over; the old password is refused, the new one works.
    assert (await api.get("/v1/me", headers=client.headers)).status_code == 401
    old = {"email": client.email, "password": PASSWORD}
    assert (await api.post("/v1/auth/client/login", json=old)).status_code == 401
    new = {"email": client.email, "password": NEW_PASSWORD}
    assert (await api.post("/v1/auth/client/login", json=new)).status_code == 200
    async with sessions() as session:
        revoked = list(
            await session.scalars(
                select(AuthSession.revoked_reason).where(AuthSession.subject_id == client.id)
            )
        )
    assert "password_reset" in revoked

    # Single use.
    again = await confirm(api, token, "Another-Secret-43")
    assert again.status_code == 422 and "already used" in again.json()["detail"]
    [entry] = await audit_rows(sessions, "client.password_reset")
    assert entry.actor_id == str(client.id) and entry.after is not None
    assert entry.after["sessions_ended"] == 1 and NEW_PASSWORD not in str(entry.after)


async def test_expired_superseded_forged_and_weak(
    api: httpx.AsyncClient,
    people: People,
    temporal: FakeTemporal,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    clock: Clock,
) -> None:
    client = await people.client()
    await ask(api, client.email)
    clock.advance(60)
    await ask(api, client.email)
    first, second = await resets(sessions, client)
    assert first.used_reason == "superseded" and second.used_at is None

    # A newer request closes the older link.
    assert (await confirm(api, token_for(settings, first.id))).status_code == 422
    # A token of the right shape signed with another key, and one that names no reset.
    forged = make_token(b"not-the-server-key", second.id)
    assert (await confirm(api, forged)).status_code == 422
    assert (await confirm(api, token_for(settings, uuid.uuid4()))).status_code == 422
    assert (await confirm(api, "x" * 40)).status_code == 422

    # A password the server's rules refuse is refused as it is, and spends nothing.
    weak = await confirm(api, token_for(settings, second.id), "alllowercaseletters")
    assert weak.status_code == 422 and "three of" in weak.json()["detail"]
    short = await confirm(api, token_for(settings, second.id), "Sh0rt!")
    assert short.status_code == 422

    # Past its lifetime the link is dead.
    clock.advance(31 * 60)
    expired = await confirm(api, token_for(settings, second.id))
    assert expired.status_code == 422
    assert expired.json()["detail"].endswith("ask for a new one")
    login = {"email": client.email, "password": PASSWORD}
    assert (await api.post("/v1/auth/client/login", json=login)).status_code == 200


async def test_requests_are_throttled_per_email_alike_for_unknown_ones(
    api: httpx.AsyncClient,
    people: People,
    temporal: FakeTemporal,
    sessions: async_sessionmaker[AsyncSession],
    clock: Clock,
) -> None:
    client = await people.client()
    use_rules(api, reset_account=ThrottleLimit(free=2, lock_after=4, window_minutes=60))

    async def statuses(email: str) -> list[tuple[int, str | None]]:
        seen = []
        for _ in range(6):
            response = await ask(api, email)
            seen.append((response.status_code, response.headers.get("Retry-After")))
            if response.status_code == 429:
                clock.advance(int(response.headers["Retry-After"]))
        return seen

    known = await statuses(client.email)
    # Two free, the third makes the next wait 1 s, the fourth locks (15 minutes).
    assert known == [(202, None), (202, None), (202, None), (429, "1"), (202, None), (429, "900")]
    unknown = await statuses("nobody-here@example.com")
    assert unknown == known  # the throttle tells nothing either
    locks = await audit_rows(sessions, "auth.locked")
    assert {row.after["scope"] for row in locks if row.after} == {"reset:client"}
    assert len(locks) == 2


async def test_requests_are_throttled_per_address(
    api: httpx.AsyncClient, temporal: FakeTemporal, clock: Clock
) -> None:
    use_rules(api, reset_address=ThrottleLimit(free=3, lock_after=50))
    answers = [(await ask(api, f"someone-{n}@example.com")).status_code for n in range(5)]
    assert answers == [202, 202, 202, 202, 429]
    refused = await ask(api, "yet-another@example.com")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
    assert "your address" in refused.json()["detail"]


async def test_guessing_tokens_is_throttled_and_a_good_token_then_waits_too(
    api: httpx.AsyncClient,
    people: People,
    temporal: FakeTemporal,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    clock: Clock,
) -> None:
    client = await people.client()
    await ask(api, client.email)
    [reset] = await resets(sessions, client)
    use_rules(api, reset_address=ThrottleLimit(free=2, lock_after=5))
    good = token_for(settings, reset.id)
    wrong = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    seen = [(await confirm(api, wrong)).status_code for _ in range(4)]
    assert seen == [422, 422, 422, 429]
    waiting = await confirm(api, good)
    assert waiting.status_code == 429 and waiting.headers["Retry-After"]
    clock.advance(int(waiting.headers["Retry-After"]))
    assert (await confirm(api, good)).status_code == 200


async def test_a_blocked_client_gets_the_same_answer_and_no_mail(
    api: httpx.AsyncClient,
    people: People,
    temporal: FakeTemporal,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    client = await people.client()
    async with sessions.begin() as session:
        row = await session.get(Client, client.id)
        assert row is not None
        row.status = "blocked"
    response = await ask(api, client.email)
    assert response.status_code == 202
    assert temporal.started == [] and await resets(sessions, client) == []
    assert await audit_rows(sessions, "client.password_reset_requested") == []
