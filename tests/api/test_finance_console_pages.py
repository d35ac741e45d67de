"""Finance cases and unmatched funds in the console and the API: a case resolved (API and
console form) with its audit row, once; unmatched funds listed with people by name, credited
from the console by the client's email to the wallet or a live MT5 account, or returned, each
through the API's service (same checks, same audit row, the same workflow started)."""

from __future__ import annotations

import uuid

import httpx

from contracts.unmatched_funds import ResolveUnmatched
from db.models import AuditEntry, FinanceCase, UnmatchedFunds
from domain.money_flows import Mt5AccountRef
from domain.payments import FinanceCaseStatus, UnmatchedAction
from domain.roles import StaffRole
from tests.api.conftest import Books, FakeTemporal
from tests.api.test_finance_cases import add_case
from tests.api.test_unmatched_funds import an_open_item
from tests.support.people import People


async def audit_of(books: Books, entity_id: object, action: str) -> list[AuditEntry]:
    return await books.rows(
        AuditEntry, AuditEntry.entity_id == str(entity_id), AuditEntry.action == action
    )


class TestResolveACase:
    async def test_the_api_resolves_an_open_case_once_with_its_audit_row(
        self, api: httpx.AsyncClient, people: People, books: Books
    ) -> None:
        client = await people.client()
        finance = await people.staff(StaffRole.FINANCE)
        case = await add_case(books, client.id, FinanceCaseStatus.OPEN)
        url = f"/v1/finance/cases/{case.id}/resolve"
        request_id = {"X-Request-ID": "req-resolve-1"}

        done = await api.post(
            url,
            json={"reason": "taken back on MT5 by hand"},
            headers={**finance.headers, **request_id},
        )
        assert done.status_code == 200, done.text
        assert (done.json()["id"], done.json()["status"]) == (str(case.id), "resolved")
        [row] = await audit_of(books, case.id, "finance_case.resolved")
        assert (row.actor_kind, row.actor_id, row.request_id) == (
            "staff",
            str(finance.id),
            "req-resolve-1",
        )
        assert row.before == {"status": "open"} and row.after is not None
        assert (row.after["status"], row.reason) == ("resolved", "taken back on MT5 by hand")

        again = await api.post(url, json={"reason": "again"}, headers=finance.headers)
        assert again.status_code == 409 and "already resolved" in again.json()["detail"]
        assert (await api.post(url, json={}, headers=finance.headers)).status_code == 422
        unknown = f"/v1/finance/cases/{uuid.uuid4()}/resolve"
        missing = await api.post(unknown, json={"reason": "who"}, headers=finance.headers)
        assert missing.status_code == 404
        auditor = await people.staff(StaffRole.AUDITOR)
        refused = await api.post(url, json={"reason": "mine"}, headers=auditor.headers)
        assert refused.status_code == 403
        assert len(await audit_of(books, case.id, "finance_case.resolved")) == 1

    async def test_the_console_lists_shows_and_resolves_a_case(
        self, api: httpx.AsyncClient, people: People, books: Books
    ) -> None:
        client = await people.client()
        finance = await people.staff(StaffRole.FINANCE)
        case = await add_case(books, client.id, FinanceCaseStatus.OPEN)

        listed = await api.get(
            "/console/finance/cases", params={"q": client.email}, headers=finance.headers
        )
        assert listed.status_code == 200
        assert case.reference in listed.text and client.email in listed.text
        assert str(client.id) not in listed.text.replace(f'title="client {client.id}"', "")
        assert "undo &#39;tri X&#39; on MT5 demo 7001" in listed.text

        # The payments page no longer lists cases: it counts the open ones and links here.
        payments = await api.get("/console/finance", headers=finance.headers)
        assert payments.status_code == 200 and 'id="finance-cases"' not in payments.text
        assert 'href="/console/finance/cases"' in payments.text
        assert "open case" in payments.text

        page = await api.get(f"/console/finance/cases/{case.id}", headers=finance.headers)
        assert page.status_code == 200 and 'id="resolve-form"' in page.text
        assert "Mt5AccountDisabled: disabled" in page.text and "90.00 EUR" in page.text

        short = await api.post(
            f"/console/finance/cases/{case.id}/resolve",
            data={"reason": "x", "csrf": ""},
            headers=finance.headers,
        )
        assert short.status_code == 303 and "error=" in short.headers["location"]
        resolved = await api.post(
            f"/console/finance/cases/{case.id}/resolve",
            data={"reason": "credited by hand", "csrf": ""},
            headers=finance.headers,
        )
        assert resolved.status_code == 303 and "notice=" in resolved.headers["location"]
        [stored] = await books.rows(FinanceCase, FinanceCase.id == case.id)
        assert stored.status == "resolved"
        [row] = await audit_of(books, case.id, "finance_case.resolved")
        assert (row.actor_id, row.reason) == (str(finance.id), "credited by hand")


class TestUnmatchedFundsInTheConsole:
    async def test_listed_and_credited_to_a_live_mt5_account_by_the_clients_email(
        self,
        api: httpx.AsyncClient,
        people: People,
        books: Books,
        temporal: FakeTemporal,
    ) -> None:
        finance = await people.staff(StaffRole.FINANCE)
        client = await people.client()
        login = await books.live_account(client)
        demo = await books.live_account(client, kind="demo")
        item = await an_open_item(api, books, f"bk_{uuid.uuid4().hex[:6]}")

        listed = await api.get(
            "/console/finance/unmatched", params={"q": item.reference}, headers=finance.headers
        )
        assert listed.status_code == 200 and item.reference in listed.text
        assert "75.00 USD" in listed.text and "Jane Payer" in listed.text
        page = await api.get(f"/console/finance/unmatched/{item.id}", headers=finance.headers)
        assert page.status_code == 200 and 'id="credit-form"' in page.text

        url = f"/console/finance/unmatched/{item.id}/credit"
        form = {"client_email": client.email, "reason": "their second transfer", "csrf": ""}
        on_demo = await api.post(
            url, data={**form, "mt5_login": str(demo)}, headers=finance.headers
        )
        assert "no+live+MT5+account" in on_demo.headers["location"]
        nobody = await api.post(
            url, data={**form, "client_email": "nobody@example.com"}, headers=finance.headers
        )
        assert "no+client+with+the+email" in nobody.headers["location"]
        assert temporal.started == []

        credited = await api.post(
            url, data={**form, "mt5_login": str(login)}, headers=finance.headers
        )
        assert credited.status_code == 303 and "notice=" in credited.headers["location"]
        [(_, request, _)] = temporal.started
        assert isinstance(request, ResolveUnmatched)
        assert (request.action, request.client_id, request.mt5) == (
            UnmatchedAction.CREDIT,
            client.id,
            Mt5AccountRef(server="live-1", login=login),
        )
        [row] = await audit_of(books, item.id, "unmatched_funds.crediting")
        assert row.actor_id == str(finance.id) and row.after is not None
        assert row.after["mt5"] == f"live-1/{login}"

        shown = await api.get(f"/console/finance/unmatched/{item.id}", headers=finance.headers)
        assert "crediting" in shown.text and client.email in shown.text
        assert 'id="credit-form"' not in shown.text  # nothing left to decide

    async def test_returned_from_the_console_and_the_api_refuses_another_currency(
        self,
        api: httpx.AsyncClient,
        people: People,
        books: Books,
        temporal: FakeTemporal,
    ) -> None:
        finance = await people.staff(StaffRole.FINANCE)
        client = await people.client()
        euro = await books.live_account(client, currency="EUR")
        item = await an_open_item(api, books, f"bk_{uuid.uuid4().hex[:6]}")

        other_currency = await api.post(
            f"/v1/finance/unmatched/{item.id}/credit",
            json={"client_id": str(client.id), "reason": "to EUR", "mt5_login": euro},
            headers=finance.headers,
        )
        assert other_currency.status_code == 422
        assert "in EUR, the money is USD" in other_currency.json()["detail"]

        returned = await api.post(
            f"/console/finance/unmatched/{item.id}/return",
            data={"reason": "nobody we know", "csrf": ""},
            headers=finance.headers,
        )
        assert returned.status_code == 303 and "notice=" in returned.headers["location"]
        [stored] = await books.rows(UnmatchedFunds, UnmatchedFunds.id == item.id)
        assert stored.status == "returning"
        assert len(await audit_of(books, item.id, "unmatched_funds.returning")) == 1
        [(_, request, _)] = temporal.started
        assert request.action is UnmatchedAction.RETURN
