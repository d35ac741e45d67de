"""Processors' webhooks: forged, stale and malformed ones are stored as rejected and answered 400;
a replay is recognised and acted on once; nothing ever reaches the books from here."""

from __future__ import annotations

import time

import httpx
import pytest

from db.models import AuditEntry, FinanceCase, JournalEntryRow, PostingRow, WebhookEvent
from domain.payments import PaymentEvent, PaymentEventKind
from domain.roles import StaffRole
from settings import AuthThrottleRules, Settings, ThrottleLimit
from tests.api.conftest import (
    Books,
    FakeTemporal,
    bankco_webhook,
    card_succeeded,
    cardco_webhook,
)
from tests.support.people import People

CARD_SECRET = "whsec_card_dev"  # the settings' defaults, which the test app uses
BANK_SECRET = "whsec_bank_dev"


async def stored(books: Books) -> list[tuple[str, str | None, str]]:
    rows = await books.rows(WebhookEvent)
    return sorted((r.provider, r.event_id, r.outcome) for r in rows)


async def no_books_touched(books: Books) -> None:
    assert await books.count(JournalEntryRow) == 0
    assert await books.count(PostingRow) == 0


class TestRefusedWebhooks:
    async def test_an_unknown_processor(self, api: httpx.AsyncClient, books: Books) -> None:
        body, headers = cardco_webhook(CARD_SECRET, card_succeeded("BF1"))
        response = await api.post("/v1/webhooks/paypal", content=body, headers=headers)
        assert response.status_code == 404
        assert await books.count(WebhookEvent) == 0

    @pytest.mark.parametrize(
        ("secret", "age_seconds", "event", "why"),
        [
            ("whsec_forged", 0, card_succeeded("BF1"), "signature does not match"),
            (CARD_SECRET, 6 * 60, card_succeeded("BF1"), "outside the tolerated window"),
            (CARD_SECRET, -6 * 60, card_succeeded("BF1"), "outside the tolerated window"),
            (CARD_SECRET, 0, {"id": "evt_x", "type": "payment_intent.succeeded"}, "malformed"),
            (CARD_SECRET, 0, {"id": "evt_y", "type": "customer.created"}, "not one BrokerFlow"),
        ],
    )
    async def test_forged_stale_or_malformed(
        self,
        api: httpx.AsyncClient,
        people: People,
        books: Books,
        temporal: FakeTemporal,
        secret: str,
        age_seconds: int,
        event: dict[str, object],
        why: str,
    ) -> None:
        client = await people.client()
        payment = await books.payment(
            client, direction="deposit", status="awaiting_funds", provider="cardco"
        )
        event = {**event}
        if "data" in event:
            event = card_succeeded(payment.reference)
        body, headers = cardco_webhook(secret, event, int(time.time()) - age_seconds)
        response = await api.post("/v1/webhooks/cardco", content=body, headers=headers)
        assert response.status_code == 400, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert why in response.json()["detail"]
        [row] = await books.rows(WebhookEvent)
        assert (row.outcome, row.event_id, row.payload, row.payment_id) == (
            "rejected",
            None,
            None,
            None,
        )
        assert why in (row.reason or "")
        assert temporal.signals == []
        await no_books_touched(books)

    async def test_missing_signature_and_a_body_too_large(
        self, api: httpx.AsyncClient, books: Books, temporal: FakeTemporal
    ) -> None:
        unsigned = await api.post("/v1/webhooks/bankco", json={"event": "transfer.received"})
        assert unsigned.status_code == 400
        huge = await api.post(
            "/v1/webhooks/bankco", content=b"x" * 200_000, headers={"X-BankCo-Timestamp": "1"}
        )
        assert huge.status_code == 400 and "larger than" in huge.json()["detail"]
        assert [r.outcome for r in await books.rows(WebhookEvent)] == ["rejected", "rejected"]
        assert temporal.signals == []


class TestAcceptedWebhooks:
    async def test_a_payment_event_goes_to_its_workflow_once(
        self, api: httpx.AsyncClient, people: People, books: Books, temporal: FakeTemporal
    ) -> None:
        client = await people.client()
        payment = await books.payment(
            client, direction="deposit", status="awaiting_funds", provider="cardco"
        )
        body, headers = cardco_webhook(CARD_SECRET, card_succeeded(payment.reference))
        first = await api.post("/v1/webhooks/cardco", content=body, headers=headers)
        assert first.status_code == 200, first.text
        assert first.json() == {"outcome": "accepted", "event_id": "evt_1"}
        replay = await api.post("/v1/webhooks/cardco", content=body, headers=headers)
        assert replay.json() == {"outcome": "duplicate", "event_id": "evt_1"}

        [(workflow_id, signal, event)] = temporal.signals
        assert (workflow_id, signal) == (payment.workflow_id, "payment_event")
        assert isinstance(event, PaymentEvent)
        assert event.kind is PaymentEventKind.PAYMENT_SUCCEEDED and event.amount.amount == 100
        [row] = await books.rows(WebhookEvent)
        assert (row.outcome, row.payment_id, row.kind) == (
            "accepted",
            payment.id,
            "payment_succeeded",
        )
        assert row.payload is not None and row.payload["reference"] == payment.reference
        await no_books_touched(books)

    async def test_bankco_events_match_by_transfer_reference_or_payout_id(
        self, api: httpx.AsyncClient, people: People, books: Books, temporal: FakeTemporal
    ) -> None:
        client = await people.client()
        incoming = await books.payment(
            client, direction="deposit", status="awaiting_funds", transfer_reference="BKREF123"
        )
        payout = await books.payment(client, status="payout_sent", provider_ref="po_77")
        events = [
            {
                "event_id": "bk_1",
                "event": "transfer.received",
                "data": {"id": "tr_1", "reference": "BKREF123", "amount": "2500.00",
                         "currency": "USD", "payer_name": "Test Client"},
            },
            {
                "event_id": "bk_2",
                "event": "payout.settled",
                "data": {"id": "po_77", "reference": "", "amount": "2500.00", "currency": "USD"},
            },
        ]  # fmt: skip
        for event in events:
            body, headers = bankco_webhook(BANK_SECRET, event)
            response = await api.post("/v1/webhooks/bankco", content=body, headers=headers)
            assert response.json()["outcome"] == "accepted", response.text
        assert [w for w, _, _ in temporal.signals] == [incoming.workflow_id, payout.workflow_id]

    async def test_unmatched_and_finished_payments_are_left_for_finance(
        self, api: httpx.AsyncClient, people: People, books: Books, temporal: FakeTemporal
    ) -> None:
        client = await people.client()
        done = await books.payment(
            client, direction="deposit", status="completed", provider="cardco"
        )
        temporal.closed.add(done.workflow_id)
        chargeback = card_succeeded(done.reference, event_id="evt_cb") | {
            "type": "charge.dispute.created"
        }
        for event in (card_succeeded("BF_NOBODY", event_id="evt_lost"), chargeback):
            body, headers = cardco_webhook(CARD_SECRET, event)
            response = await api.post("/v1/webhooks/cardco", content=body, headers=headers)
            assert response.status_code == 200, response.text
        assert await stored(books) == [
            ("cardco", "evt_cb", "needs_review"),
            ("cardco", "evt_lost", "unmatched"),
        ]
        [review] = await books.rows(WebhookEvent, WebhookEvent.outcome == "needs_review")
        assert review.payment_id == done.id and "finished" in (review.reason or "")
        assert temporal.signals == []
        # Delivered again, it stays one row each.
        body, headers = cardco_webhook(CARD_SECRET, chargeback)
        again = await api.post("/v1/webhooks/cardco", content=body, headers=headers)
        assert again.json()["outcome"] == "duplicate"
        assert await books.count(WebhookEvent) == 2

    async def test_while_the_workflow_engine_is_down_nothing_is_kept(
        self, api: httpx.AsyncClient, people: People, books: Books, temporal: FakeTemporal
    ) -> None:
        client = await people.client()
        payment = await books.payment(
            client, direction="deposit", status="awaiting_funds", provider="cardco"
        )
        body, headers = cardco_webhook(CARD_SECRET, card_succeeded(payment.reference))
        temporal.down = True
        refused = await api.post("/v1/webhooks/cardco", content=body, headers=headers)
        assert refused.status_code == 503
        assert await books.count(WebhookEvent) == 0
        # The processor delivers it again later; now it is acted on.
        temporal.down = False
        retried = await api.post("/v1/webhooks/cardco", content=body, headers=headers)
        assert retried.json()["outcome"] == "accepted"
        assert len(temporal.signals) == 1


async def test_sealed_processor_secrets_are_opened(settings: Settings) -> None:
    from pydantic import SecretStr

    from api.app import create_app
    from settings import seal_secret
    from tests.conftest import app_client

    sealed = settings.model_copy(
        update={
            "psp": settings.psp.model_copy(
                update={
                    "cardco_webhook_secret": SecretStr(
                        seal_secret("whsec_other", settings.secrets_key)
                    )
                }
            )
        }
    )
    async for api in app_client(create_app(sealed)):
        body, headers = cardco_webhook("whsec_other", card_succeeded("BF_NOBODY"))
        response = await api.post("/v1/webhooks/cardco", content=body, headers=headers)
        assert response.json()["outcome"] == "unmatched"


# -- matched on both, declines then money, floods of forged ones ---------------------------------


class TestWebhookHardening:
    async def test_the_right_reference_with_another_intent_is_not_acted_upon(
        self, api: httpx.AsyncClient, people: People, books: Books, temporal: FakeTemporal
    ) -> None:
        client = await people.client()
        payment = await books.payment(
            client,
            direction="deposit",
            status="awaiting_funds",
            provider="cardco",
            provider_ref="pi_real",
        )
        forged = card_succeeded(payment.reference, intent="pi_forged", event_id="evt_forged")
        body, headers = cardco_webhook(CARD_SECRET, forged)
        response = await api.post("/v1/webhooks/cardco", content=body, headers=headers)
        assert response.status_code == 200
        assert response.json()["outcome"] == "needs_review"
        assert temporal.signals == []
        [row] = await books.rows(WebhookEvent)
        assert row.payment_id == payment.id
        assert "pi_forged" in (row.reason or "") and "pi_real" in (row.reason or "")
        genuine = card_succeeded(payment.reference, intent="pi_real", event_id="evt_real")
        body, headers = cardco_webhook(CARD_SECRET, genuine)
        accepted = await api.post("/v1/webhooks/cardco", content=body, headers=headers)
        assert accepted.json()["outcome"] == "accepted"
        [(_, _, event)] = temporal.signals
        assert event.provider_ref == "pi_real"
        await no_books_touched(books)

    async def test_money_after_a_decline_opens_a_finance_case(
        self, api: httpx.AsyncClient, people: People, books: Books, temporal: FakeTemporal
    ) -> None:
        client = await people.client()
        payment = await books.payment(
            client,
            direction="deposit",
            status="awaiting_funds",
            provider="cardco",
            provider_ref="pi_1",
        )
        declined = card_succeeded(payment.reference, event_id="evt_declined") | {
            "type": "payment_intent.payment_failed"
        }
        body, headers = cardco_webhook(CARD_SECRET, declined)
        assert (await api.post("/v1/webhooks/cardco", content=body, headers=headers)).json()[
            "outcome"
        ] == "accepted"
        temporal.closed.add(payment.workflow_id)  # the deposit ended failed
        late = card_succeeded(payment.reference, event_id="evt_late")
        for _ in range(2):  # delivered twice: one case
            body, headers = cardco_webhook(CARD_SECRET, late)
            response = await api.post("/v1/webhooks/cardco", content=body, headers=headers)
            assert response.status_code == 200, response.text
        [case] = await books.rows(FinanceCase)
        assert (case.kind, case.status, case.movement_id) == (
            "succeeded_after_decline",
            "open",
            payment.id,
        )
        assert case.amount_minor == 10_000 and case.currency == "USD"
        assert "after it had declined" in case.reason
        [opened] = await books.rows(AuditEntry, AuditEntry.action == "finance_case.opened")
        assert opened.entity_id == str(case.id) and opened.actor_kind == "system"
        listed = await api.get(
            "/v1/finance/cases", headers=(await people.staff(StaffRole.FINANCE)).headers
        )
        assert listed.status_code == 200
        assert [c["kind"] for c in listed.json()] == ["succeeded_after_decline"]

    async def test_rejected_webhooks_are_aggregated_and_throttled(
        self, api: httpx.AsyncClient, people: People, books: Books, temporal: FakeTemporal
    ) -> None:
        state = api._transport.app.state.brokerflow  # type: ignore[attr-defined]
        state.settings = state.settings.model_copy(
            update={
                "auth_throttle": AuthThrottleRules(
                    webhook_rejected_address=ThrottleLimit(free=5, lock_after=6)
                )
            }
        )
        client = await people.client()
        payment = await books.payment(
            client, direction="deposit", status="awaiting_funds", provider="cardco"
        )
        for n in range(6):
            body, headers = cardco_webhook("whsec_forged", card_succeeded("BF1", event_id=f"e{n}"))
            response = await api.post("/v1/webhooks/cardco", content=body, headers=headers)
            assert response.status_code == 400
        [row] = await books.rows(WebhookEvent)
        assert (row.outcome, row.repeats, row.source_ip) == ("rejected", 6, "127.0.0.1")
        assert row.last_received_at is not None
        # Locked: even a good one from this address waits, and nothing more is stored.
        body, headers = cardco_webhook(CARD_SECRET, card_succeeded(payment.reference))
        refused = await api.post("/v1/webhooks/cardco", content=body, headers=headers)
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
        assert await books.count(WebhookEvent) == 1
        finance = await people.staff(StaffRole.FINANCE)
        listed = await api.get(
            "/v1/finance/webhook-events", params={"outcome": "rejected"}, headers=finance.headers
        )
        [shown] = listed.json()
        assert shown["repeats"] == 6 and shown["source_ip"] == "127.0.0.1"
