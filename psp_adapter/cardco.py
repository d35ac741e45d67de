"""CardCo, a card acquirer: payment intents paid on its hosted page, amounts in minor units."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

import httpx
from pydantic import SecretStr

from domain.money import Money
from domain.payments import (
    PaymentEvent,
    PaymentEventKind,
    PaymentSession,
    PayoutState,
    SettlementLine,
    UnsupportedByProvider,
    WebhookRejected,
)
from psp_adapter import signing

EVENTS = {
    "payment_intent.succeeded": PaymentEventKind.PAYMENT_SUCCEEDED,
    "payment_intent.payment_failed": PaymentEventKind.PAYMENT_FAILED,
    "charge.refunded": PaymentEventKind.REFUNDED,
    "charge.dispute.created": PaymentEventKind.CHARGEBACK,
}


class CardCo:
    name = "cardco"

    def __init__(self, base_url: str, api_key: SecretStr, webhook_secret: SecretStr) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url,
            headers={"Authorization": f"Bearer {api_key.get_secret_value()}"},
            timeout=15,
        )
        self._base_url = base_url.rstrip("/")
        self._secret = webhook_secret

    async def start_deposit(
        self, reference: str, amount: Money, payer_name: str, idempotency_key: str
    ) -> PaymentSession:
        response = await self._http.post(
            "/cardco/v1/payment_intents",
            json={
                "amount": amount.to_minor_units(),
                "currency": amount.currency,
                "reference": reference,
                "customer": {"name": payer_name},
            },
            headers={"Idempotency-Key": idempotency_key},
        )
        response.raise_for_status()
        intent = response.json()
        return PaymentSession(
            provider=self.name,
            provider_ref=intent["id"],
            redirect_url=f"{self._base_url}{intent['hosted_url']}",
        )

    async def payout(
        self, reference: str, amount: Money, beneficiary: str, account: str, idempotency_key: str
    ) -> str:
        raise UnsupportedByProvider("CardCo pays money back only as a refund of a card payment")

    async def payout_status(self, payout_id: str) -> PayoutState:
        raise UnsupportedByProvider("CardCo makes no payouts: there is no payout to ask about")

    async def refund(
        self, provider_ref: str, reference: str, amount: Money, payer: str, idempotency_key: str
    ) -> str:
        """Refund the card payment. CardCo keys no refunds, so a retry first asks how much of
        the payment is already refunded."""
        intent = await self._http.get(f"/cardco/v1/payment_intents/{provider_ref}")
        intent.raise_for_status()
        if int(intent.json().get("refunded", 0)) >= amount.to_minor_units():
            return provider_ref
        response = await self._http.post(
            "/cardco/v1/refunds",
            json={"payment_intent": provider_ref, "amount": amount.to_minor_units()},
            headers={"Idempotency-Key": idempotency_key},
        )
        response.raise_for_status()
        return provider_ref

    def verify_webhook(
        self, headers: Mapping[str, str], body: bytes, now: datetime
    ) -> PaymentEvent:
        header = {k.lower(): v for k, v in headers.items()}.get("cardco-signature", "")
        try:
            parts = dict(item.split("=", 1) for item in header.split(","))
            sent_at = int(parts["t"])
            signature = parts["v1"]
        except (ValueError, KeyError) as exc:
            raise WebhookRejected("CardCo-Signature header is missing or malformed") from exc
        signing.check(
            self._secret.get_secret_value(), f"{sent_at}.".encode() + body, signature, sent_at, now
        )
        return self._event(signing.json_object(body), sent_at)

    def _event(self, event: dict[str, Any], sent_at: int) -> PaymentEvent:
        with signing.well_formed("CardCo"):
            kind = EVENTS.get(str(event.get("type")))
            if kind is None:
                raise WebhookRejected(
                    f"CardCo event {event.get('type')!r} is not one BrokerFlow uses"
                )
            intent = event["data"]["object"]
            return PaymentEvent(
                provider=self.name,
                event_id=str(event["id"]),
                kind=kind,
                provider_ref=str(intent["id"]),
                reference=str(intent.get("reference", "")),
                amount=Money.from_minor_units(
                    int(intent["amount"]), str(intent["currency"]).upper()
                ),
                payer_name=str(intent.get("customer_name", "")),
                sent_at=datetime.fromtimestamp(sent_at, UTC),
            )

    async def payment_events(self, provider_ref: str) -> list[PaymentEvent]:
        """`GET /cardco/v1/payment_intents/{id}/events`: the events CardCo sent about the
        intent, with their own ids, so one also delivered by webhook counts once."""
        response = await self._http.get(f"/cardco/v1/payment_intents/{provider_ref}/events")
        response.raise_for_status()
        return [
            self._event(event, int(event.get("created", 0)))
            for event in response.json()["data"]
            if EVENTS.get(str(event.get("type"))) is not None
        ]

    async def settlement(self, day: date) -> list[SettlementLine]:
        response = await self._http.get(f"/cardco/v1/settlements/{day.isoformat()}.csv")
        response.raise_for_status()
        return [
            SettlementLine(
                day=date.fromisoformat(row["date"]),
                provider_ref=row["payment_id"],
                reference=row["reference"],
                kind=row["type"],
                gross=Money.from_minor_units(int(row["gross_minor"]), row["currency"]),
                fee=Money.from_minor_units(int(row["fee_minor"]), row["currency"]),
                net=Money.from_minor_units(int(row["net_minor"]), row["currency"]),
            )
            for row in csv.DictReader(io.StringIO(response.text))
        ]

    async def aclose(self) -> None:
        await self._http.aclose()
