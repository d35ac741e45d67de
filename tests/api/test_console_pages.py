"""The finance console's server-rendered pages: log-in to a cookie, pages, decision forms."""

from __future__ import annotations

import re

import httpx
import pyotp
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import StaffUser
from domain.roles import StaffRole
from tests.api.conftest import Books, FakeTemporal
from tests.support.people import PASSWORD, People, Person


async def officer_not_yet_logged_in(
    people: People, sessions: async_sessionmaker[AsyncSession], *roles: StaffRole
) -> Person:
    """A staff user whose current TOTP code is still unused (codes are single-use)."""
    staff = await people.staff(*roles, active=False)
    async with sessions.begin() as session:
        await session.execute(update(StaffUser).where(StaffUser.id == staff.id).values(active=True))
    return staff


async def test_the_pages_need_a_log_in(api: httpx.AsyncClient, people: People) -> None:
    browser = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    for path in ("/console/finance", "/console/ledger"):
        response = await api.get(path, headers=browser)
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("text/html")
        assert 'href="/console/login"' in response.text
        # Programs get the problem document, as from every other route.
        assert (await api.get(path)).headers["content-type"] == "application/problem+json"
    client = await people.client()
    refused = await api.get("/console/finance", headers=client.headers)
    assert refused.status_code == 403
    front = await api.get("/console")
    assert 'href="/console/finance"' in front.text and 'href="/console/ledger"' in front.text


async def test_log_in_then_decide_with_the_form(
    api: httpx.AsyncClient,
    people: People,
    books: Books,
    temporal: FakeTemporal,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    officer = await officer_not_yet_logged_in(people, sessions, StaffRole.FINANCE)
    client = await people.client()
    withdrawal = await books.payment(client, risk_flags=("large_amount",))
    code = pyotp.TOTP(people.totp_secrets[officer.email]).now()

    assert (await api.get("/console/login")).status_code == 200
    wrong = await api.post(
        "/console/login", data={"email": officer.email, "password": "nope", "totp_code": code}
    )
    assert wrong.status_code == 401 and "wrong" in wrong.text
    logged_in = await api.post(
        "/console/login", data={"email": officer.email, "password": PASSWORD, "totp_code": code}
    )
    assert logged_in.status_code == 303
    assert logged_in.headers["location"] == "/console/finance"
    set_cookie = logged_in.headers["set-cookie"].lower()
    assert "bf_console=" in set_cookie and "httponly" in set_cookie
    assert "samesite=strict" in set_cookie and "path=/console" in set_cookie
    cookie = {"bf_console": logged_in.cookies["bf_console"]}
    api.cookies.clear()

    page = await api.get("/console/finance", cookies=cookie)
    assert page.status_code == 200
    assert withdrawal.reference in page.text and "large_amount" in page.text
    action = f"/console/withdrawals/{withdrawal.id}/decision"
    assert f'action="{action}"' in page.text
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert match is not None
    csrf = match.group(1)

    forged = await api.post(
        action, data={"decision": "approve", "reason": "ok", "csrf": ""}, cookies=cookie
    )
    assert forged.status_code == 403 and temporal.updates == []
    decided = await api.post(
        action,
        data={"decision": "approve", "reason": "documents checked", "csrf": csrf},
        cookies=cookie,
    )
    assert decided.status_code == 303
    assert decided.headers["location"].startswith("/console/finance?notice=")
    [(workflow_id, _, decision)] = temporal.updates
    assert workflow_id == withdrawal.workflow_id and decision.staff_id == officer.id

    temporal.refusal = "you have approved this withdrawal already: a second officer must"
    again = await api.post(
        action, data={"decision": "approve", "reason": "again", "csrf": csrf}, cookies=cookie
    )
    assert again.status_code == 303 and "error=" in again.headers["location"]
    shown = await api.get(again.headers["location"], cookies=cookie)
    assert "a second officer must" in shown.text

    out = await api.post("/console/logout", cookies=cookie)
    assert out.status_code == 303 and 'bf_console=""' in out.headers["set-cookie"]


async def test_the_ledger_page(api: httpx.AsyncClient, people: People, books: Books) -> None:
    auditor = await people.staff(StaffRole.AUDITOR)
    client = await people.client()
    await books.fund_wallet(client, "42.00")
    accounts = await api.get("/console/ledger", headers=auditor.headers)
    assert accounts.status_code == 200
    wallet = f"wallet:{client.id}:USD"
    assert wallet in accounts.text and "-42.00" in accounts.text
    entries = await api.get("/console/ledger", params={"code": wallet}, headers=auditor.headers)
    assert entries.status_code == 200
    assert "deposit via bankco" in entries.text and "psp:bankco:USD" in entries.text
    # An auditor sees approvals but gets no decision forms.
    await books.payment(client)
    finance_page = await api.get("/console/finance", headers=auditor.headers)
    assert finance_page.status_code == 200 and "finance decides" in finance_page.text
    assert "/decision" not in finance_page.text
