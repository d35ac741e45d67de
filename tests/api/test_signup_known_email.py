"""Sign-up with an address that has an account: answered as a new sign-up is, and the owner is
told by mail (and in-app), at most once an hour however often someone tries."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import ActivityEnvironment

from activities.mail import ClientMail
from contracts.client_mail import ClientMailInput, MailTemplate
from db.models import AuditEntry, Notification
from mailer.smtp import InMemoryMailer
from settings import Settings
from tests.api.conftest import FakeTemporal
from tests.support.people import applicant


async def test_the_answer_is_a_new_sign_ups_and_the_owner_gets_one_mail_an_hour(
    api: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    temporal: FakeTemporal,
) -> None:
    body = applicant()
    first = await api.post("/v1/signup", json=body)
    assert first.status_code == 202, first.text
    owner = uuid.UUID(first.json()["client_id"])
    started_for_new = len(temporal.started)

    tries = [await api.post("/v1/signup", json=applicant(email=body["email"])) for _ in range(3)]
    for answer in tries:
        assert answer.status_code == first.status_code
        assert set(answer.json()) == set(first.json())
        assert answer.json()["status"] == first.json()["status"]
        assert answer.headers.get("content-type") == first.headers.get("content-type")
    assert len({a.json()["client_id"] for a in tries}) == 3  # ids of nothing, all different

    # One notice (the same mail workflow id for every try within the hour).
    mails = [arg for _, arg, _ in temporal.started[started_for_new:]]
    assert all(isinstance(m, ClientMailInput) for m in mails) and len(mails) == 3
    assert {m.key for m in mails} == {mails[0].key}
    notice = mails[0]
    assert notice.template is MailTemplate.SIGNUP_WITH_YOUR_EMAIL and notice.client_id == owner

    # The mail itself, as the worker sends it: to the owner, saying what to do.
    mailer = InMemoryMailer()
    step = ClientMail(
        sessions,
        mailer,
        sender="Broker <no-reply@broker.example>",
        public_base_url="https://portal.broker.example/",
        link_key=settings.jwt_secret,
    )
    await ActivityEnvironment().run(step.send_client_mail, notice)
    [sent] = mailer.sent
    assert sent.to == body["email"].lower()
    assert "tried to sign up with your email address" in sent.subject
    assert "log in" in sent.text and "reset its password" in sent.text
    assert "https://portal.broker.example" in sent.text

    async with sessions() as session:
        notices = list(
            await session.scalars(
                select(Notification).where(
                    Notification.client_id == owner,
                    Notification.kind == "signup_with_your_email",
                )
            )
        )
        attempts = list(
            await session.scalars(
                select(AuditEntry).where(AuditEntry.action == "client.signup_with_known_email")
            )
        )
    assert len(notices) == 1 and "already have an account" in notices[0].message
    assert len(attempts) == 3 and {a.entity_id for a in attempts} == {str(owner)}
