"""The interface activities and the webhook endpoint use; one implementation per processor."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Protocol

from domain.money import Money
from domain.payments import PaymentEvent, PaymentSession, PayoutState, SettlementLine

# A webhook older than this (or this far in the future) is refused: replays of old captures.
SIGNATURE_TOLERANCE_SECONDS = 300


class PaymentProvider(Protocol):
    name: str

    async def start_deposit(
        self, reference: str, amount: Money, payer_name: str, idempotency_key: str
    ) -> PaymentSession: ...

    async def payout(
        self, reference: str, amount: Money, beneficiary: str, account: str, idempotency_key: str
    ) -> str:
        """Start a payout; returns the processor's id. It settles later, by webhook."""
        ...

    async def payout_status(self, payout_id: str) -> PayoutState:
        """Where the payout `payout_id` stands, asked of the processor: for when its verdict
        webhook is late or lost (a withdrawal never waits on a webhook alone)."""
        ...

    async def refund(
        self, provider_ref: str, reference: str, amount: Money, payer: str, idempotency_key: str
    ) -> str:
        """Send a collected payment back to whoever paid it; returns the processor's id."""
        ...

    async def payment_events(self, provider_ref: str) -> list[PaymentEvent]:
        """Every event the processor sent about the deposit `provider_ref` (what the deposit's
        session got), with the ids its webhooks carry: for when a webhook is late or lost."""
        ...

    def verify_webhook(
        self, headers: Mapping[str, str], body: bytes, now: datetime
    ) -> PaymentEvent:
        """The event, if the signature and its time are right; raises WebhookRejected if not."""
        ...

    async def settlement(self, day: date) -> list[SettlementLine]: ...

    async def aclose(self) -> None: ...
