"""The IB payout console pages in process (the browser test, tests/browser/
test_ib_payout_console.py, walks the happy path on the real stack): who may open what, the
queue's names, filter and paging, refusals shown on the page, the IB portal's log-in and its
own-only statements."""

from __future__ import annotations

import re
import uuid

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.ib_payout import IbPayoutSteps, accrue
from api.security import hash_password
from contracts.ib_payout import PayoutFrequency, PayoutPeriod
from db.models.ib import IbPayout, IntroducingBroker
from db.sealed import SecretBox
from domain.roles import StaffRole
from settings import Settings
from tests.ib_payout.scene import T0, example_scene
from tests.ib_payout.test_accrual import PERIOD
from tests.support.people import PASSWORD, People
from worker import NoDocumentStore

WEEK = 7 * 86400
BROWSER = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


async def opened_payouts(
    sessions: async_sessionmaker[AsyncSession],
) -> tuple[dict[str, uuid.UUID], dict[uuid.UUID, uuid.UUID]]:
    """docs/ib-commissions.md's example accrued, one payout opened per IB (no statement yet)."""
    ibs = await example_scene(sessions)
    await accrue(sessions, PERIOD)
    opened = await IbPayoutSteps(sessions, NoDocumentStore()).open_ib_payouts(
        PayoutPeriod(frequency=PayoutFrequency.WEEKLY, start=T0, end=T0 + WEEK)
    )
    async with sessions() as session:
        payouts = await session.scalars(select(IbPayout).where(IbPayout.id.in_(opened.payouts)))
        return ibs, {p.ib_id: p.id for p in payouts}


async def test_finance_pages_names_filter_paging_and_refusals(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    ibs, payouts = await opened_payouts(sessions)
    people = People(sessions, SecretBox(settings.secrets_key), api)
    finance = await people.staff(StaffRole.FINANCE)
    auditor = await people.staff(StaffRole.AUDITOR)
    compliance = await people.staff(StaffRole.COMPLIANCE)
    support = await people.staff(StaffRole.SUPPORT)

    anonymous = await api.get("/console/ib-payouts", headers=BROWSER)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/console/login?next=%2Fconsole%2Fib-payouts"
    assert (await api.get("/console/ib-payouts", headers=support.headers)).status_code == 403

    # The default queue is what waits for a decision: nothing yet (no statement rendered).
    waiting = await api.get("/console/ib-payouts", headers=finance.headers)
    assert waiting.status_code == 200 and 'id="empty-queue"' in waiting.text
    every = await api.get("/console/ib-payouts?status=all", headers=finance.headers)
    assert every.text.count("data-payout=") == 3
    assert ">M</a>" in every.text and ">D</a>" in every.text  # the IBs by name
    assert "106.50 USD" in every.text and "2026-01-01 00:00 to 2026-01-08 00:00" in every.text
    assert "page 1 of 1" in every.text
    clamped = await api.get("/console/ib-payouts?status=accrued&page=9", headers=finance.headers)
    assert "page 1 of 1" in clamped.text and clamped.text.count("data-payout=") == 3
    unknown = await api.get("/console/ib-payouts?status=bogus", headers=finance.headers)
    assert unknown.status_code == 200 and "unknown status" in unknown.text

    d_payout = payouts[ibs["D"]]
    page = await api.get(f"/console/ib-payouts/{d_payout}", headers=auditor.headers)
    assert page.status_code == 200
    assert "frame-src 'self'" in page.headers["content-security-policy"]
    assert "under S" in page.text and 'id="no-statement"' in page.text
    assert 'id="decide"' not in page.text  # nothing to decide before the statement
    # The navigation follows the roles: an auditor reads ingestion too, finance does not.
    assert 'href="/console/ingestion"' in page.text and 'href="/console/ib-payouts"' in page.text
    assert 'href="/console/ingestion"' not in waiting.text
    assert 'href="/console/compliance"' not in waiting.text
    assert (
        await api.get(f"/console/ib-payouts/{d_payout}/statement", headers=finance.headers)
    ).status_code == 404
    assert (
        await api.get(f"/console/ib-payouts/{uuid.uuid4()}", headers=finance.headers)
    ).status_code == 404

    # A statement waiting: finance officers get the forms, other finance readers a note.
    m_payout = payouts[ibs["M"]]
    async with sessions.begin() as session:
        await session.execute(
            update(IbPayout).where(IbPayout.id == m_payout).values(status="statement_ready")
        )
    read_only = await api.get(f"/console/ib-payouts/{m_payout}", headers=auditor.headers)
    assert 'id="readers-note"' in read_only.text and 'id="approve-form"' not in read_only.text
    officer = await api.get(f"/console/ib-payouts/{m_payout}", headers=finance.headers)
    assert 'id="approve-form"' in officer.text and 'id="reject-form"' in officer.text
    assert "EUR" in officer.text and "0 of 1" in officer.text

    # Not decidable yet: the refusal comes back to the page as an error, never an error page.
    form = {"decision": "approve", "reason": "statement checked"}
    refused = await api.post(
        f"/console/ib-payouts/{d_payout}/decision", data=form, headers=finance.headers
    )
    assert refused.status_code == 303
    assert "nothing+to+decide" in refused.headers["location"]
    short = await api.post(
        f"/console/ib-payouts/{d_payout}/decision",
        data={**form, "reason": "ok"},
        headers=finance.headers,
    )
    assert "reason+of+at+least+3" in short.headers["location"]
    # A finance reader who is not a finance officer: no decision, refused before any workflow.
    wrong_role = await api.post(
        f"/console/ib-payouts/{d_payout}/decision", data=form, headers=compliance.headers
    )
    assert wrong_role.status_code == 403
    assert "finance officers" in wrong_role.json()["detail"]


async def ib_log_in(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], ib: uuid.UUID
) -> dict[str, str]:
    async with sessions.begin() as session:
        await session.execute(
            update(IntroducingBroker)
            .where(IntroducingBroker.id == ib)
            .values(password_hash=await hash_password(PASSWORD))
        )
        email = await session.scalar(
            select(IntroducingBroker.email).where(IntroducingBroker.id == ib)
        )
    wrong = await api.post("/console/ib/login", data={"email": email, "password": "Wrong-Pass-1"})
    assert wrong.status_code == 401 and "wrong" in wrong.text
    response = await api.post("/console/ib/login", data={"email": email, "password": PASSWORD})
    assert response.status_code == 303 and response.headers["location"] == "/console/ib"
    set_cookie = response.headers["set-cookie"].lower()
    assert "httponly" in set_cookie and "samesite=strict" in set_cookie
    api.cookies.clear()
    return {"bf_console": response.cookies["bf_console"]}


async def test_the_ib_portal_pages_are_its_own(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    ibs, payouts = await opened_payouts(sessions)
    m_cookie = await ib_log_in(api, sessions, ibs["M"])
    d_cookie = await ib_log_in(api, sessions, ibs["D"])

    home = await api.get("/console/ib", cookies=m_cookie)
    assert home.status_code == 200
    tree = re.findall(r'<tr data-ib="([0-9a-f-]+)">', home.text)
    assert tree == [str(ibs["M"]), str(ibs["S"]), str(ibs["D"])]
    assert 'href="/console/ib-payouts"' not in home.text  # an IB's navigation, not staff's
    clients = await api.get("/console/ib/clients", cookies=m_cookie)
    assert "C. 1." in clients.text and "Client 1001" not in clients.text
    rows = await api.get("/console/ib/commissions", cookies=d_cookie)
    assert rows.text.count("data-row=") == 5
    assert "INOUT: 0.60 closed" in rows.text
    older = await api.get("/console/ib/commissions?before_id=1", cookies=d_cookie)
    assert "No commissions before these" in older.text
    listed = await api.get("/console/ib/payouts", cookies=d_cookie)
    assert f'data-payout="{payouts[ibs["D"]]}"' in listed.text
    assert f'data-payout="{payouts[ibs["M"]]}"' not in listed.text
    # Another IB's payout is not found, whether or not it has a statement.
    other = await api.get(f"/console/ib/payouts/{payouts[ibs['M']]}/statement", cookies=d_cookie)
    assert other.status_code == 404

    # Staff pages refuse an IB's session, and an IB page a staff member's.
    assert (await api.get("/console/ib-payouts", cookies=d_cookie)).status_code == 403
    people = People(sessions, SecretBox(settings.secrets_key), api)
    finance = await people.staff(StaffRole.FINANCE)
    assert (await api.get("/console/ib", headers=finance.headers)).status_code == 403

    left = await api.post("/console/logout", cookies=d_cookie)
    assert left.status_code == 303 and left.headers["location"] == "/console/ib/login"
    assert (await api.get("/console/ib", cookies=d_cookie)).status_code == 401
