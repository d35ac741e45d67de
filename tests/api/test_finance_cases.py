"""Finance sees the movements whose undoing stopped short (`GET /v1/finance/cases`), and
resolving a case moves its movement out of `needs_attention`, once, audited."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from db.models import AuditEntry, FinanceCase, Payment, Transfer, UnmatchedFunds
from domain.money_flows import MovementKind, reference_for
from domain.payments import FinanceCaseKind, FinanceCaseStatus, PaymentStatus
from domain.roles import StaffRole
from tests.api.conftest import Books
from tests.api.test_unmatched_funds import an_open_item
from tests.support.people import People, Person


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


# -- resolving a case moves its movement on (docs/finance-cases.md) ------------------------------


async def a_case_on(
    books: Books, movement: Payment | Transfer | UnmatchedFunds, kind: str, reason: str, **kw: Any
) -> FinanceCase:
    """An open case of `kind` naming `movement`, as the workflows open them."""
    kinds: dict[type, str] = {Payment: "payment", Transfer: "transfer"}
    movement_kind = kinds.get(type(movement), "unmatched_funds")
    async with books.sessions.begin() as session:
        case = FinanceCase(
            movement_kind=movement_kind,
            movement_id=movement.id,
            reference=movement.reference,
            client_id=kw.get("client_id", getattr(movement, "client_id", None)),
            kind=kind,
            status=FinanceCaseStatus.OPEN.value,
            currency="USD",
            amount_minor=10050,
            reason=reason,
            undone=[],
            not_undone=[{"step": "mt5_reverse_if_applied", "what": "undo on MT5", "error": "gone"}],
        )
        session.add(case)
    return case


async def a_transfer(books: Books, owner: Person, status: PaymentStatus) -> Transfer:
    transfer_id = uuid.uuid4()
    row = Transfer(
        id=transfer_id,
        client_id=owner.id,
        reference=reference_for(MovementKind.TRANSFER, transfer_id),
        status=status.value,
        currency="USD",
        amount_minor=10050,
        idempotency_key=str(transfer_id),
        request_hash="0" * 64,
        workflow_id=f"transfer-{transfer_id}",
        destination_currency="EUR",
    )
    async with books.sessions.begin() as session:
        session.add(row)
    return row


async def resolved_twice(
    api: httpx.AsyncClient, case: FinanceCase, finance: Person, what: str
) -> dict[str, Any]:
    url = f"/v1/finance/cases/{case.id}/resolve"
    done = await api.post(url, json={"reason": what}, headers=finance.headers)
    assert done.status_code == 200, done.text
    again = await api.post(url, json={"reason": "once more"}, headers=finance.headers)
    assert again.status_code == 409, again.text
    return dict(done.json())


def moved_rows(books: Books, movement_id: uuid.UUID) -> Any:
    return books.rows(AuditEntry, AuditEntry.entity_id == str(movement_id))


class TestResolvingMovesTheMovementOn:
    @pytest.mark.parametrize(
        ("direction", "reason", "ends"),
        [
            ("withdrawal", "rejected: rejected by finance: no", "rejected"),
            ("deposit", "MT5 refused the credit (disabled)", "completed"),
        ],
    )
    async def test_a_payment_leaves_needs_attention_once_audited(
        self,
        api: httpx.AsyncClient,
        people: People,
        books: Books,
        direction: str,
        reason: str,
        ends: str,
    ) -> None:
        client = await people.client()
        finance = await people.staff(StaffRole.FINANCE)
        payment = await books.payment(
            client, direction=direction, status=PaymentStatus.NEEDS_ATTENTION, risk_flags=()
        )
        case = await a_case_on(books, payment, "compensation_incomplete", reason)

        done = await resolved_twice(api, case, finance, "took 'dep' back on MT5 by hand")
        assert (done["status"], done["movement_status_before"], done["movement_status"]) == (
            "resolved",
            "needs_attention",
            ends,
        )
        shown = await api.get(f"/v1/finance/payments/{payment.id}", headers=finance.headers)
        assert shown.json()["status"] == ends
        [stored] = await books.rows(Payment, Payment.id == payment.id)
        assert stored.failure_reason.endswith(
            "put right by finance: took 'dep' back on MT5 by hand"
        )
        assert (stored.completed_at is not None) is (ends == "completed")
        [row] = await moved_rows(books, payment.id)
        assert (row.action, row.actor_id, row.before, row.reason) == (
            f"payment.{ends}",
            str(finance.id),
            {"status": "needs_attention"},
            "took 'dep' back on MT5 by hand",
        )
        assert row.after == {"status": ends, "finance_case": str(case.id)}
        [resolved] = await moved_rows(books, case.id)
        assert resolved.before == {"status": "open", "movement_status": "needs_attention"}
        assert resolved.after is not None and resolved.after["movement_status"] == ends

    async def test_a_transfer_ends_as_its_undoing_was_heading_for(
        self, api: httpx.AsyncClient, people: People, books: Books
    ) -> None:
        client = await people.client()
        finance = await people.staff(StaffRole.FINANCE)
        transfer = await a_transfer(books, client, PaymentStatus.NEEDS_ATTENTION)
        case = await a_case_on(books, transfer, "compensation_incomplete", "cancelled: by staff")

        done = await resolved_twice(api, case, finance, "credited the wallet by hand")
        assert done["movement_status"] == "cancelled"
        [stored] = await books.rows(Transfer, Transfer.id == transfer.id)
        assert stored.status == "cancelled"
        assert (
            stored.failure_reason == "by staff; put right by finance: credited the wallet by hand"
        )
        assert [r.action for r in await moved_rows(books, transfer.id)] == ["transfer.cancelled"]

    async def test_an_unmatched_item_left_crediting_ends_credited(
        self, api: httpx.AsyncClient, people: People, books: Books
    ) -> None:
        client = await people.client()
        finance = await people.staff(StaffRole.FINANCE)
        item = await an_open_item(api, books, f"bk_{uuid.uuid4().hex[:8]}")
        async with books.sessions.begin() as session:
            await session.execute(
                update(UnmatchedFunds)
                .where(UnmatchedFunds.id == item.id)
                .values(status="crediting", credited_client_id=client.id)
            )
        case = await a_case_on(
            books, item, "compensation_incomplete", "MT5 refused the credit", client_id=client.id
        )

        done = await resolved_twice(api, case, finance, "MT5 keeps it: credit stands")
        assert (done["movement_status_before"], done["movement_status"]) == (
            "crediting",
            "credited",
        )
        [stored] = await books.rows(UnmatchedFunds, UnmatchedFunds.id == item.id)
        assert stored.status == "credited" and stored.resolved_at is not None
        credited = [r for r in await moved_rows(books, item.id) if r.actor_kind == "staff"]
        assert [(r.action, r.actor_id) for r in credited] == [
            ("unmatched_funds.credited", str(finance.id))
        ]

    async def test_other_cases_and_other_statuses_leave_the_movement_alone(
        self, api: httpx.AsyncClient, people: People, books: Books
    ) -> None:
        client = await people.client()
        finance = await people.staff(StaffRole.FINANCE)
        waiting = await books.payment(client)  # pending_approval
        overdue = await a_case_on(books, waiting, "decision_overdue", "nobody decided in 24 h")
        done = await resolved_twice(api, overdue, finance, "chased the second officer")
        assert (done["movement_status_before"], done["movement_status"]) == (None, None)

        settled = await books.payment(client, status=PaymentStatus.REJECTED, risk_flags=())
        case = await a_case_on(books, settled, "compensation_incomplete", "rejected: no")
        done = await resolved_twice(api, case, finance, "nothing left to do")
        assert done["movement_status"] is None
        for payment in (waiting, settled):
            assert await moved_rows(books, payment.id) == []
