"""Finance sees the movements whose undoing stopped short: `GET /v1/finance/cases`."""

from __future__ import annotations

import uuid

import httpx

from db.models import FinanceCase
from domain.payments import FinanceCaseKind, FinanceCaseStatus
from domain.roles import StaffRole
from tests.api.conftest import Books
from tests.support.people import People


async def add_case(books: Books, client_id: uuid.UUID, status: FinanceCaseStatus) -> FinanceCase:
    async with books.sessions.begin() as session:
        case = FinanceCase(
            movement_kind="transfer",
            movement_id=uuid.uuid4(),
            reference=f"TR{uuid.uuid4().hex[:20].upper()}",
            client_id=client_id,
            kind=FinanceCaseKind.COMPENSATION_INCOMPLETE.value,
            status=status.value,
            currency="USD",
            amount_minor=10050,
            reason="failed: undone after a fault",
            undone=[
                {"step": "reverse_entry_if_booked", "what": "reverse the entry X:hold",
                 "amount": "100.50", "currency": "USD"},
            ],
            not_undone=[
                {"step": "mt5_reverse_if_applied", "what": "undo 'tri X' on MT5 demo 7001",
                 "amount": "90.00", "currency": "EUR", "error": "Mt5AccountDisabled: disabled"},
            ],
        )  # fmt: skip
        session.add(case)
    return case


async def test_finance_lists_open_cases_with_what_was_and_was_not_undone(
    api: httpx.AsyncClient, people: People, books: Books
) -> None:
    client = await people.client()
    finance = await people.staff(StaffRole.FINANCE)
    open_case = await add_case(books, client.id, FinanceCaseStatus.OPEN)
    resolved = await add_case(books, client.id, FinanceCaseStatus.RESOLVED)

    response = await api.get("/v1/finance/cases", headers=finance.headers)
    assert response.status_code == 200
    [listed] = [c for c in response.json() if c["client_id"] == str(client.id)]
    assert listed["id"] == str(open_case.id)
    assert (listed["reference"], listed["status"], listed["kind"]) == (
        open_case.reference,
        "open",
        "compensation_incomplete",
    )
    assert (listed["amount"], listed["currency"]) == ("100.50", "USD")
    assert [s["what"] for s in listed["undone"]] == ["reverse the entry X:hold"]
    [kept] = listed["not_undone"]
    assert (kept["amount"], kept["currency"], kept["error"]) == (
        "90.00",
        "EUR",
        "Mt5AccountDisabled: disabled",
    )

    done = await api.get(
        "/v1/finance/cases", params={"status": "resolved"}, headers=finance.headers
    )
    assert [c["id"] for c in done.json() if c["client_id"] == str(client.id)] == [str(resolved.id)]

    assert (await api.get("/v1/finance/cases", headers=client.headers)).status_code == 403
    assert (await api.get("/v1/finance/cases")).status_code == 401
