"""Staff and introducing brokers reset a forgotten password as clients do (the same answer for
known and unknown addresses, a one-time expiring link by the one mail step, every session ended,
audited), and a staff user's reset also needs a current TOTP code: the mailed token alone does
not take over a staff account. The console has the pages for both."""

from __future__ import annotations

import time
import uuid

import httpx
import pyotp
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import ActivityEnvironment

from activities.mail import ClientMail
from api.security import password_matches
from contracts.client_mail import CLIENT_MAIL, ClientMailInput, MailRecipient, MailTemplate
from db.models import PasswordReset, StaffUser
from domain.roles import StaffRole
from mailer.smtp import InMemoryMailer
from settings import Settings, ThrottleLimit
from tests.api.conftest import FakeTemporal
from tests.api.test_brute_force import Clock, audit_rows, clock, use_rules
from tests.support.people import PASSWORD, People

__all__ = ["clock"]  # the fixture, used here by name
NEW_PASSWORD = "Brand-new-Secret-42"


async def mailed_token(
    sessions: async_sessionmaker[AsyncSession], settings: Settings, mail: ClientMailInput
) -> tuple[str, str]:
    """Run the mail step as the worker would: the link it wrote, and the mail's text."""
    mailer = InMemoryMailer()
    step = ClientMail(
        sessions,
        mailer,
        sender="Broker <no-reply@broker.example>",
        public_base_url="https://broker.example/",
        link_key=settings.jwt_secret,
    )
    await ActivityEnvironment().run(step.send_client_mail, mail)
    [sent] = mailer.sent
    [link] = [line for line in sent.text.splitlines() if "#token=" in line]
    return link.strip(), sent.text


def next_code(secret: str) -> str:
    """A code of the next 30-second step: the log-in spent the current one (no replays)."""
    return pyotp.TOTP(secret).at(time.time() + 30)


async def test_a_staff_reset_needs_the_mailed_token_and_a_current_code(
    api: httpx.AsyncClient,
    people: People,
    temporal: FakeTemporal,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    clock: Clock,
) -> None:
    staff = await people.staff(StaffRole.FINANCE)
    disabled = await people.staff(StaffRole.FINANCE, active=False)
    answers = [
        await api.post("/v1/auth/staff/password-reset", json={"email": email})
        for email in (staff.email.upper(), "nobody-here@example.com", disabled.email)
    ]
    assert {a.status_code for a in answers} == {202}
    assert answers[0].json() == answers[1].json() == answers[2].json()

    # Only the active staff user gets a reset and a mail, by the clients' own mail step.
    [(name, mail, _)] = temporal.started
    assert name == CLIENT_MAIL.name and isinstance(mail, ClientMailInput)
    assert mail.recipient is MailRecipient.STAFF and mail.client_id == staff.id
    assert mail.template is MailTemplate.PASSWORD_RESET
    link, text = await mailed_token(sessions, settings, mail)
    assert link.startswith("https://broker.example/console/reset-password#token=")
    assert "authenticator app" in text
    token = link.split("#token=", 1)[1]
    [requested] = await audit_rows(sessions, "staff.password_reset_requested")
    assert requested.entity_id == str(staff.id) and token not in str(requested.after)

    # The token alone is not enough, nor with a wrong code; neither spends it.
    path = "/v1/auth/staff/password-reset/confirm"
    body = {"token": token, "new_password": NEW_PASSWORD}
    assert (await api.post(path, json=body)).status_code == 422
    secret = people.totp_secrets[staff.email]
    good = next_code(secret)
    wrong = "000000" if good != "000000" else "111111"
    refused = await api.post(path, json={**body, "totp_code": wrong})
    assert refused.status_code == 422 and "one-time code" in refused.json()["detail"]

    done = await api.post(path, json={**body, "totp_code": good})
    assert done.status_code == 200, done.text
    assert done.json() == {"sessions_ended": 1}
    assert (await api.get("/v1/audit", headers=staff.headers)).status_code == 401
    async with sessions() as session:
        row = await session.get(StaffUser, staff.id)
        assert row is not None and await password_matches(row.password_hash, NEW_PASSWORD)
        [reset] = await session.scalars(
            select(PasswordReset).where(PasswordReset.subject_id == staff.id)
        )
    assert reset.principal_kind == "staff" and reset.used_reason == "used"
    # Used once; the code was spent too.
    again = await api.post(path, json={**body, "totp_code": good})
    assert again.status_code == 422
    [entry] = await audit_rows(sessions, "staff.password_reset")
    assert entry.actor_kind == "staff" and entry.actor_roles == ["finance"]
    assert entry.actor_id == str(staff.id) and entry.after and entry.after["sessions_ended"] == 1


async def test_refused_staff_codes_are_throttled(
    api: httpx.AsyncClient,
    people: People,
    temporal: FakeTemporal,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    clock: Clock,
) -> None:
    use_rules(api, reset_account=ThrottleLimit(free=1, lock_after=3, window_minutes=60))
    staff = await people.staff(StaffRole.COMPLIANCE)
    await api.post("/v1/auth/staff/password-reset", json={"email": staff.email})
    [(_, mail, _)] = temporal.started
    link, _ = await mailed_token(sessions, settings, mail)
    token = link.split("#token=", 1)[1]
    body = {"token": token, "new_password": NEW_PASSWORD, "totp_code": "000000"}
    good = next_code(people.totp_secrets[staff.email])
    if good == "000000":
        body["totp_code"] = "111111"
    path = "/v1/auth/staff/password-reset/confirm"
    statuses = [(await api.post(path, json=body)).status_code for _ in range(3)]
    assert statuses == [422, 422, 429]
    waiting = await api.post(path, json={**body, "totp_code": good})
    assert waiting.status_code == 429 and "Retry-After" in waiting.headers


async def test_an_ib_resets_through_the_console_pages(
    api: httpx.AsyncClient,
    people: People,
    temporal: FakeTemporal,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    clock: Clock,
) -> None:
    ib = await people.ib()
    login_page = await api.get("/console/ib/login")
    assert 'href="/console/ib/forgot-password"' in login_page.text
    assert (await api.get("/console/ib/forgot-password")).status_code == 200
    known = await api.post("/console/ib/forgot-password", data={"email": ib.email})
    unknown = await api.post("/console/ib/forgot-password", data={"email": "no-ib@example.com"})
    assert known.status_code == unknown.status_code == 200
    assert known.text == unknown.text and "a mail with a link" in known.text
    [(_, mail, _)] = temporal.started
    assert mail.recipient is MailRecipient.IB
    link, text = await mailed_token(sessions, settings, mail)
    assert link.startswith("https://broker.example/console/ib/reset-password#token=")
    assert "authenticator" not in text
    token = link.split("#token=", 1)[1]

    page = await api.get("/console/ib/reset-password")
    assert page.status_code == 200 and 'name="token"' in page.text
    assert "<script nonce=" in page.text and 'name="totp_code"' not in page.text
    form = {"token": token, "new_password": "alllowercaseletters"}
    weak = await api.post("/console/ib/reset-password", data=form)
    assert weak.status_code == 422 and "three of" in weak.text and token in weak.text
    done = await api.post("/console/ib/reset-password", data={**form, "new_password": NEW_PASSWORD})
    assert done.status_code == 200 and "new password is set" in done.text
    assert (await api.get("/v1/ib/me", headers=ib.headers)).status_code == 401
    new = {"email": ib.email, "password": NEW_PASSWORD}
    assert (await api.post("/v1/auth/ib/login", json=new)).status_code == 200
    old = {"email": ib.email, "password": PASSWORD}
    assert (await api.post("/v1/auth/ib/login", json=old)).status_code == 401
    [entry] = await audit_rows(sessions, "ib.password_reset")
    assert entry.entity_type == "introducing_broker" and entry.entity_id == str(ib.id)


async def test_the_staff_console_pages_ask_for_the_code(
    api: httpx.AsyncClient,
    people: People,
    temporal: FakeTemporal,
    settings: Settings,
    clock: Clock,
) -> None:
    assert 'href="/console/forgot-password"' in (await api.get("/console/login")).text
    page = await api.get("/console/reset-password")
    assert page.status_code == 200 and 'name="totp_code"' in page.text
    sent = await api.post("/console/forgot-password", data={"email": "nobody@example.com"})
    assert sent.status_code == 200 and "a mail with a link" in sent.text
    assert temporal.started == []
    bad = await api.post(
        "/console/reset-password",
        data={"token": f"{uuid.uuid4()}.{'x' * 43}", "new_password": NEW_PASSWORD},
    )
    assert bad.status_code == 422
