"""BankCo: incoming transfers matched by a deposit reference; payouts that settle later.

Amounts are decimal strings ("100.00"). Webhooks carry `X-BankCo-Timestamp` and
`X-BankCo-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>\\n<body>")>`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
import secrets
import time
from dataclasses import asdict, dataclass, field
from decimal import Decimal

from simulators.psp.card import Ledger
from simulators.psp.webhooks import Outbox

INCOMING_FEE_RATE = Decimal("0.001")
PAYOUT_FEE = Decimal("1.00")


@dataclass
class Transfer:
    id: str
    reference: str
    amount: str
    currency: str
    payer_name: str
    received: int = field(default_factory=lambda: int(time.time()))


@dataclass
class Payout:
    id: str
    amount: str
    currency: str
    beneficiary_name: str
    iban: str
    reference: str
    status: str = "pending"


@dataclass
class AutoSettle:
    """Payouts settle by themselves `after_ms` after they are made, or fail with a probability."""

    after_ms: int
    fail_probability: float = 0.0
    seed: int = 0


class BankCo:
    name = "bankco"

    def __init__(self, secret: str, api_key: str, outbox: Outbox) -> None:
        self.secret = secret
        self.api_key = api_key
        self.outbox = outbox
        self.references: dict[str, str] = {}  # deposit reference -> customer reference
        self.transfers: list[Transfer] = []
        self.payouts: dict[str, Payout] = {}
        self.by_idempotency_key: dict[str, str] = {}
        self.settlement = Ledger()
        self.auto_settle: AutoSettle | None = None
        self._random = random.Random(0)
        # Every event sent, by the reference it concerns: what `GET /bankco/api/events` lists.
        self.events: dict[str, list[dict[str, object]]] = {}

    def set_auto_settle(self, rule: AutoSettle | None) -> None:
        """None or after_ms 0: payouts wait for `/_sim/bankco/settle` (the default)."""
        self.auto_settle = rule if rule and rule.after_ms > 0 else None
        # Reseeded on every change, so a test gets the same outcomes on every run.
        self._random = random.Random(rule.seed if rule else 0)

    def sign(self, body: str, timestamp: int) -> dict[str, str]:
        digest = hmac.new(self.secret.encode(), f"{timestamp}\n{body}".encode(), hashlib.sha256)
        return {
            "X-BankCo-Timestamp": str(timestamp),
            "X-BankCo-Signature": f"sha256={digest.hexdigest()}",
        }

    def emit(self, event: str, data: dict[str, object]) -> None:
        payload = {
            "event": event,
            "event_id": secrets.token_hex(8),
            "created": int(time.time()),
            "data": data,
        }
        self.events.setdefault(str(data.get("reference", "")), []).append(payload)
        self.outbox.send(self.name, event, json.dumps(payload, separators=(",", ":")), self.sign)

    def deposit_reference(self, customer_reference: str) -> str:
        for reference, customer in self.references.items():
            if customer == customer_reference:
                return reference
        reference = f"BF{secrets.token_hex(4).upper()}"
        self.references[reference] = customer_reference
        return reference

    def incoming(self, reference: str, amount: Decimal, currency: str, payer_name: str) -> Transfer:
        transfer = Transfer(
            f"tr_{secrets.token_hex(8)}", reference, f"{amount:.2f}", currency, payer_name
        )
        self.transfers.append(transfer)
        fee = (amount * INCOMING_FEE_RATE).quantize(Decimal("0.01"))
        self._row("incoming", transfer.id, reference, currency, amount, fee)
        self.emit("transfer.received", asdict(transfer))
        return transfer

    def payout(
        self, amount: Decimal, currency: str, name: str, iban: str, reference: str, key: str | None
    ) -> Payout:
        if key and key in self.by_idempotency_key:
            return self.payouts[self.by_idempotency_key[key]]
        payout = Payout(
            f"po_{secrets.token_hex(8)}", f"{amount:.2f}", currency, name, iban, reference
        )
        self.payouts[payout.id] = payout
        if key:
            self.by_idempotency_key[key] = payout.id
        if self.auto_settle:
            succeed = self._random.random() >= self.auto_settle.fail_probability
            self.outbox.background(self._settle_later(payout, self.auto_settle.after_ms, succeed))
        return payout

    async def _settle_later(self, payout: Payout, after_ms: int, succeed: bool) -> None:
        await asyncio.sleep(after_ms / 1000)
        self.settle(payout, succeed)  # a no-op if it was settled by hand meanwhile

    def settle(self, payout: Payout, succeed: bool) -> None:
        if payout.status != "pending":
            return
        payout.status = "settled" if succeed else "failed"
        if succeed:
            self._row(
                "payout",
                payout.id,
                payout.reference,
                payout.currency,
                -Decimal(payout.amount),
                PAYOUT_FEE,
            )
        self.emit(f"payout.{payout.status}", asdict(payout))

    def _row(
        self, kind: str, ident: str, reference: str, currency: str, gross: Decimal, fee: Decimal
    ) -> None:
        self.settlement.rows.append(
            {
                "date": self.settlement.today(),
                "payment_id": ident,
                "reference": reference,
                "type": kind,
                "currency": currency,
                "gross": f"{gross:.2f}",
                "fee": f"{fee:.2f}",
                "net": f"{gross - fee:.2f}",
            }
        )
