"""Logging out ends the session on the server: the old access token is refused afterwards, on
the bearer API and on the console; refresh tokens rotate and a replayed one ends the session."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pyotp
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import AuditEntry, AuthSession, StaffUser
from domain.roles import StaffRole
from settings import Settings
from tests.api.test_console_pages import officer_not_yet_logged_in
from tests.support.people import PASSWORD, People, bearer


async def log_in_client(api: httpx.AsyncClient, email: str) -> dict[str, object]:
    response = await api.post("/v1/auth/client/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


async def test_api_logout_refuses_the_old_token(
    api: httpx.AsyncClient, people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    auditor = await people.staff(StaffRole.AUDITOR)
    assert (await api.get("/v1/audit", headers=auditor.headers)).status_code == 200
    out = await api.post("/v1/auth/logout", json={"everywhere": False}, headers=auditor.headers)
    assert out.status_code == 200 and out.json() == {"sessions_ended": 1}
    after = await api.get("/v1/audit", headers=auditor.headers)
    assert after.status_code == 401
    assert "session has ended" in after.json()["detail"]
    async with sessions() as session:
        [row] = await session.scalars(
            select(AuditEntry).where(AuditEntry.action == "auth.logged_out")
        )
    assert row.actor_id == str(auditor.id) and row.after and row.after["everywhere"] is False


async def test_console_logout_refuses_the_cookie_token_everywhere(
    api: httpx.AsyncClient, people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    officer = await officer_not_yet_logged_in(people, sessions, StaffRole.FINANCE)
    code = pyotp.TOTP(people.totp_secrets[officer.email]).now()
    login = await api.post(
        "/console/login", data={"email": officer.email, "password": PASSWORD, "totp_code": code}
    )
    assert login.status_code == 303
    token = login.cookies["bf_console"]
    cookie = {"bf_console": token}
    assert (await api.get("/console/finance", cookies=cookie)).status_code == 200
    assert (await api.get("/v1/finance/payments", headers=bearer(token))).status_code == 200
    out = await api.post("/console/logout", cookies=cookie)
    assert out.status_code == 303 and 'bf_console=""' in out.headers["set-cookie"]
    assert (await api.get("/console/finance", cookies=cookie)).status_code == 401
    assert (await api.get("/v1/finance/payments", headers=bearer(token))).status_code == 401
    # Logging out again with the dead cookie is harmless.
    assert (await api.post("/console/logout", cookies=cookie)).status_code == 303


async def test_log_out_everywhere_ends_every_session(
    api: httpx.AsyncClient, people: People
) -> None:
    client = await people.client()
    other = await log_in_client(api, client.email)
    other_headers = bearer(str(other["access_token"]))
    assert (await api.get("/v1/me", headers=other_headers)).status_code == 200
    out = await api.post("/v1/auth/logout", json={"everywhere": True}, headers=client.headers)
    assert out.json() == {"sessions_ended": 2}
    assert (await api.get("/v1/me", headers=client.headers)).status_code == 401
    assert (await api.get("/v1/me", headers=other_headers)).status_code == 401
    refreshed = await api.post("/v1/auth/refresh", json={"refresh_token": other["refresh_token"]})
    assert refreshed.status_code == 401


async def test_refresh_tokens_rotate_and_a_replay_ends_the_session(
    api: httpx.AsyncClient, people: People
) -> None:
    client = await people.client()
    first = await log_in_client(api, client.email)
    assert first["expires_in"] == 15 * 60 and int(str(first["refresh_expires_in"])) > 6 * 86400
    second = await api.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200, second.text
    pair = second.json()
    assert pair["refresh_token"] != first["refresh_token"]
    assert (await api.get("/v1/me", headers=bearer(pair["access_token"]))).status_code == 200
    # The first refresh token again: a stolen copy; the session ends for both holders.
    replay = await api.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert replay.status_code == 401 and replay.json()["session_revoked"] is True
    assert (await api.get("/v1/me", headers=bearer(pair["access_token"]))).status_code == 401
    late = await api.post("/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert late.status_code == 401
    junk = await api.post("/v1/auth/refresh", json={"refresh_token": "x" * 40})
    assert junk.status_code == 401


async def test_role_change_and_deactivation_end_the_sessions(
    api: httpx.AsyncClient, people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    admin = await people.staff(StaffRole.ADMIN)
    officer = await people.staff(StaffRole.FINANCE)
    path = f"/v1/staff/users/{officer.id}"
    changed = await api.patch(path, json={"roles": ["auditor"]}, headers=admin.headers)
    assert changed.status_code == 200
    assert (await api.get("/v1/audit", headers=officer.headers)).status_code == 401
    async with sessions() as session:
        rows = list(await session.scalars(select(AuthSession)))
    ended = [r for r in rows if r.subject_id == officer.id]
    assert ended and all(r.revoked_reason == "staff_updated" for r in ended)
    async with sessions.begin() as session:  # let the same TOTP code log in once more
        await session.execute(
            update(StaffUser).where(StaffUser.id == officer.id).values(totp_last_step=None)
        )
    fresh = await people.log_in_staff(officer.email)
    assert (await api.get("/v1/audit", headers=fresh)).status_code == 200
    deactivated = await api.patch(path, json={"active": False}, headers=admin.headers)
    assert deactivated.status_code == 200
    assert (await api.get("/v1/audit", headers=fresh)).status_code == 401


async def test_a_blocked_client_loses_its_sessions(api: httpx.AsyncClient, people: People) -> None:
    client = await people.client()
    login = await log_in_client(api, client.email)
    compliance = await people.staff(StaffRole.COMPLIANCE)
    blocked = await api.post(
        f"/v1/clients/{client.id}/status",
        json={"status": "blocked", "reason": "account takeover"},
        headers=compliance.headers,
    )
    assert blocked.status_code == 200
    refreshed = await api.post("/v1/auth/refresh", json={"refresh_token": login["refresh_token"]})
    assert refreshed.status_code == 401


async def test_a_long_lived_or_sessionless_token_is_refused(
    api: httpx.AsyncClient, people: People, settings: Settings
) -> None:
    """A token minted with the signing key but not by a log-in (no session, or a year long)."""
    admin = await people.staff(StaffRole.ADMIN)
    now = datetime.now(UTC)
    claims = {
        "sub": str(admin.id),
        "kind": "staff",
        "aud": "brokerflow-api",
        "iat": now,
        "exp": now + timedelta(days=365),
        "jti": "forged",
    }
    key = settings.jwt_secret.get_secret_value()
    year = jwt.encode(claims, key, algorithm="HS256")
    assert (await api.get("/v1/audit", headers=bearer(year))).status_code == 401
    sessionless = jwt.encode({**claims, "exp": now + timedelta(minutes=5)}, key, algorithm="HS256")
    assert (await api.get("/v1/audit", headers=bearer(sessionless))).status_code == 401
