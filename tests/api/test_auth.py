"""Logging in: the same answer for every wrong credential, one use per TOTP code."""

from __future__ import annotations

import httpx
import pyotp

from domain.roles import StaffRole
from tests.support.people import PASSWORD, People


async def test_wrong_credentials_all_look_alike(api: httpx.AsyncClient, people: People) -> None:
    client = await people.client()
    answers = [
        await api.post(
            "/v1/auth/client/login", json={"email": client.email, "password": "Wrong-pw-123"}
        ),
        await api.post(
            "/v1/auth/client/login", json={"email": "nobody@example.com", "password": PASSWORD}
        ),
    ]
    assert [a.status_code for a in answers] == [401, 401]
    assert answers[0].json()["detail"] == answers[1].json()["detail"]
    assert answers[0].headers["content-type"] == "application/problem+json"


async def test_a_totp_code_logs_in_once_only(api: httpx.AsyncClient, people: People) -> None:
    staff = await people.staff(StaffRole.SUPPORT)  # logged in once already
    code = pyotp.TOTP(people.totp_secrets[staff.email]).now()
    replay = await api.post(
        "/v1/auth/staff/login", json={"email": staff.email, "password": PASSWORD, "totp_code": code}
    )
    assert replay.status_code == 401
    wrong = await api.post(
        "/v1/auth/staff/login",
        json={
            "email": staff.email,
            "password": PASSWORD,
            "totp_code": "000000" if code != "000000" else "111111",
        },
    )
    assert wrong.status_code == 401


async def test_a_blocked_client_cannot_log_in_and_its_token_stops_working(
    api: httpx.AsyncClient, people: People
) -> None:
    client = await people.client()
    compliance = await people.staff(StaffRole.COMPLIANCE)
    blocked = await api.post(
        f"/v1/clients/{client.id}/status",
        json={"status": "blocked", "reason": "fraud review"},
        headers=compliance.headers,
    )
    assert blocked.status_code == 200
    assert (await api.get("/v1/me", headers=client.headers)).status_code == 401
    login = await api.post(
        "/v1/auth/client/login", json={"email": client.email, "password": PASSWORD}
    )
    assert login.status_code == 403


async def test_tampered_and_foreign_tokens_are_refused(
    api: httpx.AsyncClient, people: People
) -> None:
    client = await people.client()
    token = client.headers["Authorization"]
    assert (
        await api.get("/v1/me", headers={"Authorization": token[:-2] + "xx"})
    ).status_code == 401
    assert (
        await api.get("/v1/me", headers={"Authorization": "Bearer not.a.jwt"})
    ).status_code == 401
