"""CardCo: payment intents paid on a hosted page, confirmed by webhook; refunds; chargebacks.

Amounts are integer minor units. Webhooks are signed Stripe-style:
`CardCo-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import asdict, dataclass, field

from simulators.psp.webhooks import Outbox

FEE_PERCENT_BP = 290  # 2.90 %
FEE_FIXED_MINOR = 30


@dataclass
class Intent:
    id: str
    amount: int
    currency: str
    reference: str
    customer_name: str
    status: str = "requires_action"
    created: int = field(default_factory=lambda: int(time.time()))
    refunded: int = 0
    disputed: bool = False


@dataclass
class Ledger:
    """What the settlement report lists: one row per money movement, dated with the processor's
    business day when it was made (today in UTC, unless `/_sim/settlement` pins a day).

    Report faults (`/_sim/settlement`): the rows of a payment in `omitted` are left out of the
    report, those of a payment in `doubled` are listed twice."""

    rows: list[dict[str, str]] = field(default_factory=list)
    day: str | None = None
    omitted: set[str] = field(default_factory=set)
    doubled: set[str] = field(default_factory=set)

    def today(self) -> str:
        return self.day or time.strftime("%Y-%m-%d", time.gmtime())

    def report(self, date: str) -> list[dict[str, str]]:
        """The rows of `date` as the report lists them (faults applied)."""
        listed: list[dict[str, str]] = []
        for row in self.rows:
            if row["date"] != date or row["payment_id"] in self.omitted:
                continue
            listed.append(row)
            if row["payment_id"] in self.doubled:
                listed.append(row)
        return listed


def card_fee(amount: int) -> int:
    return amount * FEE_PERCENT_BP // 10_000 + FEE_FIXED_MINOR


class CardCo:
    name = "cardco"

    def __init__(self, secret: str, api_key: str, outbox: Outbox) -> None:
        self.secret = secret
        self.api_key = api_key
        self.outbox = outbox
        self.intents: dict[str, Intent] = {}
        self.by_idempotency_key: dict[str, str] = {}
        self.settlement = Ledger()
        # Every event sent, by payment intent: what `GET .../events` lists (webhooks get lost).
        self.events: dict[str, list[dict[str, object]]] = {}

    def sign(self, body: str, timestamp: int) -> dict[str, str]:
        digest = hmac.new(self.secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256)
        return {"CardCo-Signature": f"t={timestamp},v1={digest.hexdigest()}"}

    def emit(self, event: str, intent: Intent) -> None:
        payload = {
            "id": f"evt_{secrets.token_hex(8)}",
            "type": event,
            "created": int(time.time()),
            "data": {"object": asdict(intent)},
        }
        self.events.setdefault(intent.id, []).append(payload)
        self.outbox.send(self.name, event, json.dumps(payload, separators=(",", ":")), self.sign)

    def create_intent(
        self, amount: int, currency: str, reference: str, customer_name: str, key: str | None
    ) -> Intent:
        if key and key in self.by_idempotency_key:
            return self.intents[self.by_idempotency_key[key]]
        intent = Intent(
            f"pi_{secrets.token_hex(10)}", amount, currency.upper(), reference, customer_name
        )
        self.intents[intent.id] = intent
        if key:
            self.by_idempotency_key[key] = intent.id
        return intent

    def pay(self, intent: Intent, succeed: bool) -> None:
        if intent.status != "requires_action":
            return
        intent.status = "succeeded" if succeed else "failed"
        if succeed:
            self._row(intent, "charge", intent.amount, card_fee(intent.amount))
        self.emit(
            "payment_intent.succeeded" if succeed else "payment_intent.payment_failed", intent
        )

    def refund(self, intent: Intent, amount: int) -> None:
        intent.refunded += amount
        self._row(intent, "refund", -amount, 0)
        self.emit("charge.refunded", intent)

    def chargeback(self, intent: Intent) -> None:
        intent.disputed = True
        self._row(intent, "chargeback", -intent.amount, 1500)
        self.emit("charge.dispute.created", intent)

    def _row(self, intent: Intent, kind: str, gross: int, fee: int) -> None:
        self.settlement.rows.append(
            {
                "date": self.settlement.today(),
                "payment_id": intent.id,
                "reference": intent.reference,
                "type": kind,
                "currency": intent.currency,
                "gross_minor": str(gross),
                "fee_minor": str(fee),
                "net_minor": str(gross - fee),
            }
        )
