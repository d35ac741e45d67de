"""Guessing is throttled: per account and per source address, growing delays, then a lock that
is audited and that an administrator may lift. Time is the app's clock, moved by the test."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pyotp
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import AuditEntry
from domain.roles import StaffRole
from settings import AuthThrottleRules, Settings, ThrottleLimit
from tests.api.conftest import FakeTemporal
from tests.api.test_onboarding_api import sign_up
from tests.support.people import PASSWORD, People

WRONG = "Wrong-password-1"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock(api: httpx.AsyncClient) -> Clock:
    clock = Clock()
    api._transport.app.state.brokerflow.clock = clock  # type: ignore[attr-defined]
    return clock


def use_rules(api: httpx.AsyncClient, **rules: Any) -> None:
    state = api._transport.app.state.brokerflow  # type: ignore[attr-defined]
    state.settings = state.settings.model_copy(update={"auth_throttle": AuthThrottleRules(**rules)})


async def audit_rows(sessions: async_sessionmaker[AsyncSession], action: str) -> list[AuditEntry]:
    async with sessions() as session:
        return list(await session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


async def fail_until_locked(
    clock: Clock, attempt: Callable[[], Any], lock_after: int = 10
) -> list[int]:
    """Fail `lock_after` times, each time waiting out any delay; the statuses seen."""
    statuses = []
    failures = 0
    while failures < lock_after:
        response = await attempt()
        statuses.append(response.status_code)
        if response.status_code == 429:
            clock.advance(int(response.headers["Retry-After"]))
        else:
            assert response.status_code == 401, response.text
            failures += 1
    return statuses


async def test_wrong_client_passwords_meet_growing_delays_then_a_lock(
    api: httpx.AsyncClient,
    people: People,
    clock: Clock,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    client = await people.client()

    def wrong() -> Any:
        return api.post("/v1/auth/client/login", json={"email": client.email, "password": WRONG})

    delays = []
    for _ in range(3):  # the first three are free
        assert (await wrong()).status_code == 401
    for _ in range(6):
        assert (await wrong()).status_code == 401
        early = await wrong()
        assert early.status_code == 429
        assert early.headers["content-type"] == "application/problem+json"
        delays.append(int(early.headers["Retry-After"]))
        clock.advance(delays[-1])
    assert delays == [1, 2, 4, 8, 16, 32]
    assert (await wrong()).status_code == 401  # the tenth: locked
    right = await api.post(
        "/v1/auth/client/login", json={"email": client.email, "password": PASSWORD}
    )
    assert right.status_code == 429
    assert int(right.headers["Retry-After"]) == 15 * 60
    assert "locked until" in right.json()["detail"]
    [lock] = await audit_rows(sessions, "auth.locked")
    assert lock.after and lock.after["key"] == client.email and lock.after["key_kind"] == "account"
    assert lock.ip == "127.0.0.1"
    clock.advance(15 * 60)
    again = await api.post(
        "/v1/auth/client/login", json={"email": client.email, "password": PASSWORD}
    )
    assert again.status_code == 200


async def test_parallel_guesses_are_checked_one_at_a_time(
    api: httpx.AsyncClient, people: People, clock: Clock
) -> None:
    """A burst sent at once cannot all be checked before the first failure is counted: an
    attempt while another on the account is being checked is refused, so at most the free
    failures and the one that starts the delay reach the password check."""
    client = await people.client()
    wrong = {"email": client.email, "password": WRONG}
    burst = await asyncio.gather(
        *(api.post("/v1/auth/client/login", json=wrong) for _ in range(30))
    )
    statuses = [response.status_code for response in burst]
    assert set(statuses) <= {401, 429}
    assert 1 <= statuses.count(401) <= 4, statuses  # 3 free + the one that sets the delay
    busy = [r for r in burst if "being checked" in r.text]
    assert all(r.headers["Retry-After"] == "1" for r in busy)
    # Every guess that reached the password was counted: the next one waits.
    if statuses.count(401) == 4:
        right = {"email": client.email, "password": PASSWORD}
        assert (await api.post("/v1/auth/client/login", json=right)).status_code == 429


async def test_a_right_password_clears_the_accounts_failures(
    api: httpx.AsyncClient, people: People, clock: Clock
) -> None:
    client = await people.client()
    for _ in range(3):
        response = await api.post(
            "/v1/auth/client/login", json={"email": client.email, "password": WRONG}
        )
        assert response.status_code == 401
    right = {"email": client.email, "password": PASSWORD}
    assert (await api.post("/v1/auth/client/login", json=right)).status_code == 200
    wrong = {"email": client.email, "password": WRONG}
    for _ in range(3):  # three free ones again
        assert (await api.post("/v1/auth/client/login", json=wrong)).status_code == 401


async def test_wrong_totp_codes_lock_the_staff_account_for_api_and_console(
    api: httpx.AsyncClient, people: People, clock: Clock
) -> None:
    staff = await people.staff(StaffRole.FINANCE)
    code = pyotp.TOTP(people.totp_secrets[staff.email]).now()
    bad = "000000" if code != "000000" else "111111"

    def wrong_code() -> Any:
        return api.post(
            "/v1/auth/staff/login",
            json={"email": staff.email, "password": PASSWORD, "totp_code": bad},
        )

    statuses = await fail_until_locked(clock, wrong_code)
    assert statuses.count(401) == 10 and 429 in statuses
    console = await api.post(
        "/console/login",
        data={"email": staff.email, "password": PASSWORD, "totp_code": code},
    )
    assert console.status_code == 429
    assert int(console.headers["Retry-After"]) == 15 * 60


async def test_console_logins_count_as_staff_logins(
    api: httpx.AsyncClient, people: People, clock: Clock
) -> None:
    staff = await people.staff(StaffRole.FINANCE)

    def wrong_password() -> Any:
        return api.post(
            "/console/login", data={"email": staff.email, "password": WRONG, "totp_code": "123456"}
        )

    await fail_until_locked(clock, wrong_password)
    code = pyotp.TOTP(people.totp_secrets[staff.email]).now()
    bearer_login = await api.post(
        "/v1/auth/staff/login", json={"email": staff.email, "password": PASSWORD, "totp_code": code}
    )
    assert bearer_login.status_code == 429


async def test_one_address_guessing_many_accounts_is_locked(
    api: httpx.AsyncClient, people: People, clock: Clock, sessions: async_sessionmaker[AsyncSession]
) -> None:
    use_rules(api, login_address=ThrottleLimit(free=4, lock_after=6))
    victim = await people.client()
    for n in range(6):
        response = await api.post(
            "/v1/auth/client/login", json={"email": f"guess-{n}@example.com", "password": WRONG}
        )
        assert response.status_code == 401
        if n >= 4:
            clock.advance(60)
    refused = await api.post(
        "/v1/auth/client/login", json={"email": victim.email, "password": PASSWORD}
    )
    assert refused.status_code == 429 and "your address" in refused.json()["detail"]
    [lock] = await audit_rows(sessions, "auth.locked")
    assert lock.after and lock.after["key_kind"] == "address" and lock.after["key"] == "127.0.0.1"


async def test_an_admin_lifts_a_lock_and_it_is_audited(
    api: httpx.AsyncClient,
    people: People,
    clock: Clock,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    admin = await people.staff(StaffRole.ADMIN)
    client = await people.client()

    def wrong() -> Any:
        return api.post("/v1/auth/client/login", json={"email": client.email, "password": WRONG})

    await fail_until_locked(clock, wrong)
    listed = await api.get("/v1/security/locks", headers=admin.headers)
    assert listed.status_code == 200
    [lock] = [row for row in listed.json() if row["key"] == client.email]
    assert lock["locked"] is True and lock["scope"] == "login:client"
    support = await people.staff(StaffRole.SUPPORT)
    path = f"/v1/security/locks/{lock['id']}/unlock"
    body = {"reason": "client called, identity checked"}
    assert (await api.post(path, json=body, headers=support.headers)).status_code == 403
    lifted = await api.post(path, json=body, headers=admin.headers)
    assert lifted.status_code == 200 and lifted.json()["locked"] is False
    right = {"email": client.email, "password": PASSWORD}
    assert (await api.post("/v1/auth/client/login", json=right)).status_code == 200
    [row] = await audit_rows(sessions, "auth.unlocked")
    assert row.actor_id == str(admin.id) and row.reason == body["reason"]
    assert row.before and row.before["blocked_until"] is not None
    assert row.after and row.after["blocked_until"] is None
    again = await api.post(path, json=body, headers=admin.headers)
    assert again.status_code == 409


async def test_verification_resends_are_throttled_per_address(
    api: httpx.AsyncClient, clock: Clock, temporal: FakeTemporal, settings: Settings
) -> None:
    use_rules(api, resend_address=ThrottleLimit(free=2, lock_after=3, window_minutes=60))
    first, second = await sign_up(api), await sign_up(api)
    temporal.started.clear()
    for who in (first, second):
        response = await api.post("/v1/me/email/verification", headers=who.headers)
        assert response.status_code == 202
    third = await api.post("/v1/me/email/verification", headers=first.headers)
    assert third.status_code == 202
    refused = await api.post("/v1/me/email/verification", headers=second.headers)
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) == 15 * 60
    assert len(temporal.started) == 3
