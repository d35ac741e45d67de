"""The finance console's server-rendered pages: log-in to a cookie, pages, decision forms."""

from __future__ import annotations

import re
import uuid
from urllib.parse import urlencode

import httpx
import pyotp
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.console.lookups import decision_notice
from api.finance.schemas import DecisionResult
from db.models import AccountApplication, Mt5Account, PaymentDecision, StaffUser
from domain.payments import PaymentDirection, PaymentStatus
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
        # A browser goes to the log-in page, which comes back to the page asked for.
        assert response.status_code == 303
        assert response.headers["location"] == f"/console/login?{urlencode({'next': path})}"
        # Programs get the problem document, as from every other route.
        assert (await api.get(path)).headers["content-type"] == "application/problem+json"
    client = await people.client()
    refused = await api.get("/console/finance", headers=client.headers)
    assert refused.status_code == 403
    with_query = await api.get("/console/ledger?code=abc", headers=browser)
    assert with_query.headers["location"] == "/console/login?next=%2Fconsole%2Fledger%3Fcode%3Dabc"
    login = await api.get(with_query.headers["location"])
    assert 'action="/console/login?next=/console/ledger%3Fcode%3Dabc"' in login.text
    # The IB portal's pages go to the IB portal's log-in.
    portal = await api.get("/console/ib", headers=browser)
    assert portal.status_code == 303
    assert portal.headers["location"] == "/console/ib/login?next=%2Fconsole%2Fib"
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
    wallet = f"wallet:{client.id}:USD"
    accounts = await api.get("/console/ledger", params={"q": client.email}, headers=auditor.headers)
    assert accounts.status_code == 200
    # The client by name and email, the account by its purpose; the code only on hover and in
    # the link; the wallet's balance on the credit side, unsigned.
    row = _row(accounts.text, f'data-code="{wallet}"')
    assert "Test Client" in row and client.email in row and "client wallet" in row
    assert f'title="{wallet}"' in row and "-42.00" not in row
    assert re.search(r'<td class="debit"></td><td class="credit">42.00</td>', row)
    entries = await api.get("/console/ledger", params={"code": wallet}, headers=auditor.headers)
    assert entries.status_code == 200
    assert "deposit via bankco" in entries.text and "clearing at bankco" in entries.text
    assert "<strong>42.00 USD</strong> credit" in entries.text
    assert re.search(r'<td class="debit"></td>\s*<td class="credit">42.00</td>', entries.text)
    assert "Dr 42.00" in entries.text and "Cr 42.00" in entries.text
    # An auditor sees approvals but gets no decision forms.
    await books.payment(client)
    finance_page = await api.get("/console/finance", headers=auditor.headers)
    assert finance_page.status_code == 200 and "finance decides" in finance_page.text
    assert "/decision" not in finance_page.text


async def test_the_ledger_pages_search_filters_and_paging(
    api: httpx.AsyncClient, people: People, books: Books
) -> None:
    auditor = await people.staff(StaffRole.AUDITOR)
    client = await people.client()
    await books.fund_wallet(client, "10.00", "USD")
    await books.fund_wallet(client, "20.00", "EUR")
    mine = {"q": client.email}
    both = await api.get("/console/ledger", params=mine, headers=auditor.headers)
    assert both.text.count("data-code=") == 2 and "1&ndash;2 of 2" in both.text
    euros = await api.get(
        "/console/ledger", params={**mine, "currency": "EUR"}, headers=auditor.headers
    )
    assert euros.text.count("data-code=") == 1 and f"wallet:{client.id}:EUR" in euros.text
    holds = await api.get(
        "/console/ledger", params={**mine, "kind": "hold"}, headers=auditor.headers
    )
    assert "No account matches." in holds.text
    first = await api.get("/console/ledger", params={**mine, "limit": 1}, headers=auditor.headers)
    assert first.text.count("data-code=") == 1 and "1&ndash;1 of 2" in first.text
    assert 'rel="next"' in first.text and 'rel="prev"' not in first.text
    second = await api.get(
        "/console/ledger", params={**mine, "limit": 1, "offset": 1}, headers=auditor.headers
    )
    assert "2&ndash;2 of 2" in second.text and 'rel="prev"' in second.text
    assert 'rel="next"' not in second.text
    # By code, and the wrong kind of filter value is no filter, never an error page.
    by_code = await api.get(
        "/console/ledger",
        params={"q": f"wallet:{client.id}", "kind": "nonsense"},
        headers=auditor.headers,
    )
    assert by_code.status_code == 200 and by_code.text.count("data-code=") == 2


async def test_the_finance_lists_show_names_and_page(
    api: httpx.AsyncClient,
    people: People,
    books: Books,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    officer = await people.staff(StaffRole.FINANCE)
    client = await people.client()
    waiting = [await books.payment(client) for _ in range(3)]
    await books.payment(client, status=PaymentStatus.COMPLETED, risk_flags=())
    await books.payment(client, direction="deposit", status=PaymentStatus.COMPLETED, risk_flags=())
    async with sessions.begin() as session:
        session.add(
            PaymentDecision(
                payment_id=waiting[0].id,
                staff_id=officer.id,
                role="finance",
                approve=True,
                reason="checked the beneficiary",
            )
        )
    params: dict[str, str | int] = {
        "approvals_q": client.email,
        "approvals_limit": 2,
        "q": client.email,
    }
    page = await api.get("/console/finance", params=params, headers=officer.headers)
    assert page.status_code == 200
    approvals = _section(page.text, 'id="approvals"')
    # Oldest first, two a page: the client by name and email, the id only on hover.
    assert approvals.count("<tr data-payment=") == 2
    assert client.email in approvals and "Test Client" in approvals
    assert f">{client.id}<" not in approvals and f'title="client {client.id}"' in approvals
    assert "1&ndash;2 of 3" in page.text
    # The officer who approved sees no approve button on that row, and who decided by name.
    first = _row(page.text, f'data-payment="{waiting[0].id}"')
    assert "you approved" in first and 'value="approve"' not in first
    assert "(you)" in first and str(officer.id) not in first.replace(f'"{officer.id}"', "")
    second = _row(page.text, f'data-payment="{waiting[1].id}"')
    assert 'value="approve"' in second
    assert 'href="/console/finance?' in page.text and "approvals_offset=2" in page.text
    more = await api.get(
        "/console/finance", params={**params, "approvals_offset": 2}, headers=officer.headers
    )
    assert _section(more.text, 'id="approvals"').count("<tr data-payment=") == 1
    # Payments: searched by the client, filtered by status and direction, paged.
    payments = _section(page.text, 'id="payments"')
    assert payments.count("<tr data-payment=") == 5 and "1&ndash;5 of 5" in page.text
    done = await api.get(
        "/console/finance",
        params={"q": client.email, "status": "completed", "direction": "withdrawal"},
        headers=officer.headers,
    )
    assert _section(done.text, 'id="payments"').count("<tr data-payment=") == 1
    by_reference = await api.get(
        "/console/finance", params={"q": waiting[2].reference}, headers=officer.headers
    )
    assert _section(by_reference.text, 'id="payments"').count("<tr data-payment=") == 1
    nobody = await api.get(
        "/console/finance", params={"q": "no-such-client-anywhere"}, headers=officer.headers
    )
    assert "No payments match." in nobody.text


async def test_mt5_accounts_are_labelled_by_their_own_kind(
    api: httpx.AsyncClient,
    people: People,
    books: Books,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """A live account on the server named "demo" is LIVE, not `demo/5000007`."""
    officer = await people.staff(StaffRole.FINANCE)
    client = await people.client()
    login = 5_900_000 + uuid.uuid4().int % 90_000
    async with sessions.begin() as session:
        application = AccountApplication(
            id=uuid.uuid4(),
            client_id=client.id,
            account_type="standard",
            kind="live",
            status="completed",
            workflow_id=f"test-{uuid.uuid4()}",
            mt5_server="demo",
            mt5_login=login,
        )
        session.add(application)
        await session.flush()
        session.add(
            Mt5Account(
                client_id=client.id,
                application_id=application.id,
                server="demo",
                login=login,
                group="real\\eu\\standard",
                leverage=30,
                currency="USD",
                kind="live",
            )
        )
    await books.payment(client, mt5_server="demo", mt5_login=login)
    page = await api.get("/console/finance", params={"q": client.email}, headers=officer.headers)
    row = _section(page.text, 'id="payments"')
    assert f'<span class="badge acct-live">LIVE</span> {login}' in row
    assert "on server demo (live server)" in row and f"demo/{login}" not in row


def _section(page: str, marker: str) -> str:
    start = page.index(marker)
    return page[start : page.index("</table>", start)]


def _row(page: str, marker: str) -> str:
    start = page.index(marker)
    return page[start : page.index("\n      </tr>", start)]


def test_a_decision_says_the_state_the_withdrawal_reached() -> None:
    """The notice shows the state the workflow's update answered: the one the decision reached."""
    first = DecisionResult(payment_id=uuid.uuid4(), status="pending_approval", approvals=1)
    second = DecisionResult(payment_id=uuid.uuid4(), status="payout_sent", approvals=2)
    withdrawal = PaymentDirection.WITHDRAWAL
    assert "a second, different finance officer must" in decision_notice(withdrawal, True, first)
    released = decision_notice(withdrawal, True, second)
    assert released == "approved (2 of 2): the withdrawal is payout_sent, released for payout"
    rejected = DecisionResult(payment_id=uuid.uuid4(), status="rejected", approvals=1)
    assert decision_notice(withdrawal, False, rejected).startswith(
        "rejected: the withdrawal is rejected"
    )
    crediting = DecisionResult(payment_id=uuid.uuid4(), status="crediting", approvals=1)
    deposit = decision_notice(PaymentDirection.DEPOSIT, True, crediting)
    assert deposit == "approved: the deposit is crediting"


async def test_the_log_in_returns_to_the_page_that_sent_you(
    api: httpx.AsyncClient, people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """`?next=` on the log-in: back to that console page, never to another site."""
    for wanted, landing in (
        ("/console/compliance?status=", "/console/compliance?status="),
        ("//evil.example/console/", "/console/finance"),
        ("https://evil.example/", "/console/finance"),
        ("/console/logout", "/console/finance"),
    ):
        officer = await officer_not_yet_logged_in(people, sessions, StaffRole.COMPLIANCE)
        code = pyotp.TOTP(people.totp_secrets[officer.email]).now()
        response = await api.post(
            "/console/login",
            params={"next": wanted},
            data={"email": officer.email, "password": PASSWORD, "totp_code": code},
        )
        assert response.status_code == 303 and response.headers["location"] == landing
        api.cookies.clear()
