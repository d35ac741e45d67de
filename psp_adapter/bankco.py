"""BankCo, a bank/crypto rail: transfers matched by reference, payouts that settle later.
Amounts are decimal strings."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
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
    WebhookRejected,
)
from psp_adapter import signing

# A payout's `status` as BankCo reports it.
PAYOUT_STATES = {
    "pending": PayoutState.PENDING,
    "settled": PayoutState.SETTLED,
    "failed": PayoutState.FAILED,
}

EVENTS = {
    "transfer.received": PaymentEventKind.TRANSFER_RECEIVED,
    "payout.settled": PaymentEventKind.PAYOUT_SETTLED,
    "payout.failed": PaymentEventKind.PAYOUT_FAILED,
}


class BankCo:
    name = "bankco"

    def __init__(self, base_url: str, api_key: SecretStr, webhook_secret: SecretStr) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url,
            headers={"Authorization": f"Bearer {api_key.get_secret_value()}"},
            timeout=15,
        )
        self._secret = webhook_secret

    async def start_deposit(
        self, reference: str, amount: Money, payer_name: str, idempotency_key: str
    ) -> PaymentSession:
        """Bank deposits are pushed by the client: hand out the reference to quote."""
        response = await self._http.post(
            "/bankco/api/deposit_references", json={"customer_reference": reference}
        )
        response.raise_for_status()
        transfer_reference = str(response.json()["reference"])
        return PaymentSession(
            provider=self.name,
            provider_ref=transfer_reference,
            transfer_reference=transfer_reference,
        )

    async def payout(
        self, reference: str, amount: Money, beneficiary: str, account: str, idempotency_key: str
    ) -> str:
        response = await self._http.post(
            "/bankco/api/payouts",
            json={
                "amount": format(amount.amount, "f"),
                "currency": amount.currency,
                "beneficiary": {"name": beneficiary, "iban": account},
                "reference": reference,
            },
            headers={"Idempotency-Key": idempotency_key},
        )
        response.raise_for_status()
        return str(response.json()["id"])

    async def payout_status(self, payout_id: str) -> PayoutState:
        """`GET /bankco/api/payouts/{id}`: the payout as `POST /bankco/api/payouts` answered it,
        with its current `status`. A status BrokerFlow does not know is taken as pending (the
        webhook or a later poll will say more)."""
        response = await self._http.get(f"/bankco/api/payouts/{payout_id}")
        response.raise_for_status()
        return PAYOUT_STATES.get(str(response.json().get("status")), PayoutState.PENDING)

    async def refund(
        self, provider_ref: str, reference: str, amount: Money, payer: str, idempotency_key: str
    ) -> str:
        """Return an incoming transfer to its origin: a payout whose account names the transfer
        (BankCo routes it back to the sending account)."""
        return await self.payout(
            reference, amount, payer, f"ORIGIN-{provider_ref}", idempotency_key
        )

    def verify_webhook(
        self, headers: Mapping[str, str], body: bytes, now: datetime
    ) -> PaymentEvent:
        lowered = {k.lower(): v for k, v in headers.items()}
        try:
            sent_at = int(lowered["x-bankco-timestamp"])
            signature = lowered["x-bankco-signature"].removeprefix("sha256=")
        except (KeyError, ValueError) as exc:
            raise WebhookRejected("BankCo signature headers are missing or malformed") from exc
        signing.check(
            self._secret.get_secret_value(), f"{sent_at}\n".encode() + body, signature, sent_at, now
        )
        return self._event(signing.json_object(body), sent_at)

    def _event(self, event: dict[str, Any], sent_at: int) -> PaymentEvent:
        with signing.well_formed("BankCo"):
            kind = EVENTS.get(str(event.get("event")))
            if kind is None:
                raise WebhookRejected(
                    f"BankCo event {event.get('event')!r} is not one BrokerFlow uses"
                )
            data = event["data"]
            return PaymentEvent(
                provider=self.name,
                event_id=str(event["event_id"]),
                kind=kind,
                provider_ref=str(data["id"]),
                reference=str(data.get("reference", "")),
                amount=Money(amount=Decimal(str(data["amount"])), currency=str(data["currency"])),
                payer_name=str(data.get("payer_name") or data.get("beneficiary_name") or ""),
                sent_at=datetime.fromtimestamp(sent_at, UTC),
            )

    async def payment_events(self, provider_ref: str) -> list[PaymentEvent]:
        """`GET /bankco/api/events?reference=`: the events BankCo sent about a deposit
        reference (every transfer quoting it), with their own ids."""
        response = await self._http.get("/bankco/api/events", params={"reference": provider_ref})
        response.raise_for_status()
        return [
            self._event(event, int(event.get("created", 0)))
            for event in response.json()["events"]
            if EVENTS.get(str(event.get("event"))) is not None
        ]

    async def settlement(self, day: date) -> list[SettlementLine]:
        response = await self._http.get(f"/bankco/api/settlements/{day.isoformat()}.csv")
        response.raise_for_status()
        return [
            SettlementLine(
                day=date.fromisoformat(row["date"]),
                provider_ref=row["payment_id"],
                reference=row["reference"],
                kind=row["type"],
                gross=Money(amount=Decimal(row["gross"]), currency=row["currency"]),
                fee=Money(amount=Decimal(row["fee"]), currency=row["currency"]),
                net=Money(amount=Decimal(row["net"]), currency=row["currency"]),
            )
            for row in csv.DictReader(io.StringIO(response.text))
        ]

    async def aclose(self) -> None:
        await self._http.aclose()
