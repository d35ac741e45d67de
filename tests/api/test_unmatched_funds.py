"""Money no deposit books goes to the unmatched-funds queue (issue 11, defect 2), and finance
works it: `GET /v1/finance/unmatched`, `POST …/{id}/return`, `POST …/{id}/credit`.

The webhook side queues what the API can see: a payment for no known reference, for a deposit
whose workflow has finished (expired, failed, cancelled, or one that took its money already),
or for a withdrawal's reference. A second payment while the deposit runs is queued by the
deposit workflow (`tests/workflows/test_deposit_unmatched.py`)."""

from __future__ import annotations

import logging
import uuid

import httpx
import pytest

from contracts.unmatched_funds import RESOLVE_UNMATCHED, ResolveUnmatched
from db.models import AuditEntry, JournalEntryRow, UnmatchedFunds, WebhookEvent
from domain.payments import UnmatchedAction
from domain.roles import StaffRole
from tests.api.conftest import (
    Books,
    FakeTemporal,
    bankco_webhook,
    card_succeeded,
    cardco_webhook,
)
from tests.support.people import People

CARD_SECRET = "whsec_card_dev"
BANK_SECRET = "whsec_bank_dev"


def transfer(reference: str, event_id: str, amount: str = "500.00") -> dict[str, object]:
    return {
        "event_id": event_id,
        "event": "transfer.received",
        "data": {"id": f"tr_{event_id}", "reference": reference, "amount": amount,
                 "currency": "USD", "payer_name": "Jane Payer"},
    }  # fmt: skip


async def send_bank(api: httpx.AsyncClient, event: dict[str, object]) -> dict[str, object]:
    body, headers = bankco_webhook(BANK_SECRET, event)
    response = await api.post("/v1/webhooks/bankco", content=body, headers=headers)
    assert response.status_code == 200, response.text
    answer: dict[str, object] = response.json()
    return answer


async def queued(books: Books) -> dict[str, UnmatchedFunds]:
    return {row.event_id: row for row in await books.rows(UnmatchedFunds)}


async def opened_audits(books: Books, item: UnmatchedFunds) -> int:
    return await books.count(
        AuditEntry,
        AuditEntry.action == "unmatched_funds.opened",
        AuditEntry.entity_id == str(item.id),
    )


class TestQueuedFromWebhooks:
    async def test_a_second_transfer_for_a_deposit_that_took_its_money_is_queued_with_an_alert(
        self,
        api: httpx.AsyncClient,
        people: People,
        books: Books,
        temporal: FakeTemporal,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        client = await people.client()
        deposit = await books.payment(
            client,
            direction="deposit",
            status="completed",
            transfer_reference="BKTWO500",
            amount_minor=50_000,
        )
        temporal.closed.add(deposit.workflow_id)
        caplog.set_level(logging.WARNING, logger="brokerflow.unmatched_funds")

        answer = await send_bank(api, transfer("BKTWO500", "bk_2"))

        assert answer == {"outcome": "needs_review", "event_id": "bk_2"}
        item = (await queued(books))["bk_2"]
        assert (item.reason, item.status, item.payment_id) == ("second_payment", "open", deposit.id)
        assert (item.amount_minor, item.currency, item.payer_name) == (50_000, "USD", "Jane Payer")
        assert (item.provider, item.event_reference, item.provider_ref) == (
            "bankco",
            "BKTWO500",
            "tr_bk_2",
        )
        assert item.reference.startswith("UF") and len(item.reference) == 22
        assert await opened_audits(books, item) == 1
        [alert] = [r for r in caplog.records if r.name == "brokerflow.unmatched_funds"]
        assert alert.levelno == logging.WARNING
        assert "unmatched funds queued" in alert.getMessage() and "bk_2" in alert.getMessage()
        metrics = (await api.get("/metrics")).text
        assert (
            'brokerflow_unmatched_funds_total{provider="bankco",reason="second_payment"} 1.0'
            in metrics
        )
        # Nothing is booked until finance decides.
        assert await books.count(JournalEntryRow) == 0

    async def test_an_unknown_reference_is_queued_once_however_often_it_is_delivered(
        self, api: httpx.AsyncClient, books: Books, temporal: FakeTemporal
    ) -> None:
        event = transfer("NOBODY-KNOWS", "bk_lost", "120.00")
        assert (await send_bank(api, event))["outcome"] == "unmatched"
        assert (await send_bank(api, event))["outcome"] == "duplicate"

        [item] = (await queued(books)).values()
        assert (item.reason, item.payment_id, item.amount_minor) == (
            "unknown_reference",
            None,
            12_000,
        )
        assert "NOBODY-KNOWS" in (item.detail or "")
        assert await opened_audits(books, item) == 1
        assert await books.count(WebhookEvent) == 1
        assert temporal.signals == []

    @pytest.mark.parametrize(
        ("status", "reason"),
        [
            ("expired", "deposit_expired"),
            ("failed", "deposit_failed"),
            ("cancelled", "deposit_cancelled"),
        ],
    )
    async def test_a_payment_for_a_deposit_that_ended_without_money_is_queued(
        self,
        api: httpx.AsyncClient,
        people: People,
        books: Books,
        temporal: FakeTemporal,
        status: str,
        reason: str,
    ) -> None:
        client = await people.client()
        deposit = await books.payment(client, direction="deposit", status=status, provider="cardco")
        temporal.closed.add(deposit.workflow_id)
        body, headers = cardco_webhook(CARD_SECRET, card_succeeded(deposit.reference))
        response = await api.post("/v1/webhooks/cardco", content=body, headers=headers)
        assert response.json()["outcome"] == "needs_review"
        item = (await queued(books))["evt_1"]
        assert (item.reason, item.payment_id, item.amount_minor) == (reason, deposit.id, 10_000)

    async def test_money_quoting_a_withdrawal_is_queued_not_signalled(
        self, api: httpx.AsyncClient, people: People, books: Books, temporal: FakeTemporal
    ) -> None:
        client = await people.client()
        payout = await books.payment(client, status="payout_sent", transfer_reference="BKWD1")
        assert (await send_bank(api, transfer("BKWD1", "bk_wd")))["outcome"] == "needs_review"
        assert (await queued(books))["bk_wd"].reason == "not_a_deposit"
        assert (await queued(books))["bk_wd"].payment_id == payout.id
        assert temporal.signals == []

    async def test_events_that_bring_no_money_are_not_queued(
        self, api: httpx.AsyncClient, people: People, books: Books, temporal: FakeTemporal
    ) -> None:
        client = await people.client()
        done = await books.payment(client, direction="deposit", status="completed")
        temporal.closed.add(done.workflow_id)
        declined = card_succeeded("BF_NOBODY", event_id="evt_declined") | {
            "type": "payment_intent.payment_failed"
        }
        body, headers = cardco_webhook(CARD_SECRET, declined)
        response = await api.post("/v1/webhooks/cardco", content=body, headers=headers)
        assert response.json()["outcome"] == "unmatched"
        assert await books.count(UnmatchedFunds) == 0

    async def test_a_payment_for_a_running_deposit_goes_to_its_workflow(
        self, api: httpx.AsyncClient, people: People, books: Books, temporal: FakeTemporal
    ) -> None:
        client = await people.client()
        deposit = await books.payment(
            client, direction="deposit", status="awaiting_funds", transfer_reference="BKRUN"
        )
        for event_id in ("bk_a", "bk_b"):
            assert (await send_bank(api, transfer("BKRUN", event_id)))["outcome"] == "accepted"
        # Both reach the workflow, which takes the first and queues the second.
        assert [(w, e.event_id) for w, _, e in temporal.signals] == [
            (deposit.workflow_id, "bk_a"),
            (deposit.workflow_id, "bk_b"),
        ]
        assert await books.count(UnmatchedFunds) == 0


async def an_open_item(api: httpx.AsyncClient, books: Books, event_id: str) -> UnmatchedFunds:
    await send_bank(api, transfer(f"REF-{event_id}", event_id, "75.00"))
    return (await queued(books))[event_id]


class TestFinanceWorksTheQueue:
    async def test_finance_lists_open_items_and_filters_by_status(
        self, api: httpx.AsyncClient, people: People, books: Books, temporal: FakeTemporal
    ) -> None:
        finance = await people.staff(StaffRole.FINANCE)
        auditor = await people.staff(StaffRole.AUDITOR)
        item = await an_open_item(api, books, "bk_list")

        listed = await api.get("/v1/finance/unmatched", headers=auditor.headers)
        assert listed.status_code == 200, listed.text
        [view] = [i for i in listed.json() if i["id"] == str(item.id)]
        assert (view["amount"], view["currency"], view["status"], view["reason"]) == (
            "75.00",
            "USD",
            "open",
            "unknown_reference",
        )
        assert (view["event_id"], view["event_reference"], view["payer_name"]) == (
            "bk_list",
            "REF-bk_list",
            "Jane Payer",
        )
        await api.post(
            f"/v1/finance/unmatched/{item.id}/return",
            json={"reason": "payer asked for it back"},
            headers=finance.headers,
        )
        still_open = await api.get("/v1/finance/unmatched", headers=finance.headers)
        assert str(item.id) not in [i["id"] for i in still_open.json()]
        returning = await api.get(
            "/v1/finance/unmatched", params={"status": "returning"}, headers=finance.headers
        )
        assert str(item.id) in [i["id"] for i in returning.json()]
        bad = await api.get(
            "/v1/finance/unmatched", params={"status": "lost"}, headers=finance.headers
        )
        assert bad.status_code == 422

    async def test_return_starts_its_workflow_and_a_second_resolution_is_a_conflict(
        self, api: httpx.AsyncClient, people: People, books: Books, temporal: FakeTemporal
    ) -> None:
        finance = await people.staff(StaffRole.FINANCE)
        client = await people.client()
        item = await an_open_item(api, books, "bk_ret")

        response = await api.post(
            f"/v1/finance/unmatched/{item.id}/return",
            json={"reason": "unknown payer, sent back"},
            headers=finance.headers,
        )
        assert response.status_code == 202, response.text
        assert (response.json()["status"], response.json()["resolution"]) == (
            "returning",
            "return",
        )
        [(name, request, workflow_id)] = temporal.started
        assert name == RESOLVE_UNMATCHED.name
        assert isinstance(request, ResolveUnmatched)
        assert (request.item_id, request.action, request.staff_id) == (
            item.id,
            UnmatchedAction.RETURN,
            finance.id,
        )
        assert workflow_id.startswith(f"unmatched-funds-{item.id}")
        [audit] = await books.rows(
            AuditEntry,
            AuditEntry.entity_id == str(item.id),
            AuditEntry.action == "unmatched_funds.returning",
        )
        assert (audit.actor_kind, audit.actor_id) == ("staff", str(finance.id))
        assert audit.before == {"status": "open"} and audit.after is not None
        assert audit.after["status"] == "returning"

        for path, body in (
            ("return", {"reason": "again"}),
            ("credit", {"reason": "to a client", "client_id": str(client.id)}),
        ):
            again = await api.post(
                f"/v1/finance/unmatched/{item.id}/{path}", json=body, headers=finance.headers
            )
            assert again.status_code == 409, again.text
            assert "already returning" in again.json()["detail"]
        assert len(temporal.started) == 1

    async def test_credit_to_a_client_starts_its_workflow(
        self, api: httpx.AsyncClient, people: People, books: Books, temporal: FakeTemporal
    ) -> None:
        finance = await people.staff(StaffRole.FINANCE)
        client = await people.client()
        item = await an_open_item(api, books, "bk_credit")

        response = await api.post(
            f"/v1/finance/unmatched/{item.id}/credit",
            json={"client_id": str(client.id), "reason": "the client's second transfer"},
            headers=finance.headers,
        )
        assert response.status_code == 202, response.text
        view = response.json()
        assert (view["status"], view["credited_client_id"]) == ("crediting", str(client.id))
        [(_, request, _)] = temporal.started
        assert (request.action, request.client_id) == (UnmatchedAction.CREDIT, client.id)

    async def test_bad_requests_are_4xx_with_reasons(
        self, api: httpx.AsyncClient, people: People, books: Books, temporal: FakeTemporal
    ) -> None:
        finance = await people.staff(StaffRole.FINANCE)
        item = await an_open_item(api, books, "bk_bad")
        base = f"/v1/finance/unmatched/{item.id}"

        nobody = await api.post(
            f"{base}/credit",
            json={"client_id": str(uuid.uuid4()), "reason": "who is it"},
            headers=finance.headers,
        )
        assert nobody.status_code == 422 and "no client" in nobody.json()["detail"]
        no_client = await api.post(
            f"{base}/credit", json={"reason": "x" * 5}, headers=finance.headers
        )
        assert no_client.status_code == 422
        no_reason = await api.post(f"{base}/return", json={}, headers=finance.headers)
        assert no_reason.status_code == 422
        unknown = await api.post(
            f"/v1/finance/unmatched/{uuid.uuid4()}/return",
            json={"reason": "no such item"},
            headers=finance.headers,
        )
        assert unknown.status_code == 404
        temporal.down = True
        down = await api.post(
            f"{base}/return", json={"reason": "engine down"}, headers=finance.headers
        )
        assert down.status_code == 503
        temporal.down = False
        [still] = await books.rows(UnmatchedFunds, UnmatchedFunds.id == item.id)
        assert still.status == "open"  # nothing changed
        assert temporal.started == []

    async def test_only_finance_resolves_and_clients_see_nothing(
        self, api: httpx.AsyncClient, people: People, books: Books, temporal: FakeTemporal
    ) -> None:
        client = await people.client()
        compliance = await people.staff(StaffRole.COMPLIANCE)
        item = await an_open_item(api, books, "bk_who")

        assert (await api.get("/v1/finance/unmatched", headers=client.headers)).status_code == 403
        for path in ("return", "credit"):
            body = {"reason": "mine now", "client_id": str(client.id)}
            url = f"/v1/finance/unmatched/{item.id}/{path}"
            assert (await api.post(url, json=body, headers=client.headers)).status_code == 403
            assert (await api.post(url, json=body, headers=compliance.headers)).status_code == 403
        assert temporal.started == []
