"""The payment-processor simulator: both providers' flows, signed webhooks, faults, settlement."""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.processes import BIN, free_port, spawn, wait_for_http, wait_for_log

CARD = {"Authorization": "Bearer sk_card_dev"}
BANK = {"Authorization": "Bearer sk_bank_dev"}


class Receiver:
    """A webhook endpoint that records what arrives."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((self.path, dict(self.headers), body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def wait_for(self, count: int, timeout: float = 10) -> list[tuple[str, dict[str, str], bytes]]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.received)


@pytest.fixture
def psp(artifacts_dir: Path) -> Iterator[tuple[httpx.Client, Receiver]]:
    receiver = Receiver()
    port = free_port()
    child = spawn(
        "psp-sim",
        [
            str(BIN / "python"),
            "-m",
            "simulators.psp",
            "--port",
            str(port),
            "--webhook-url",
            receiver.url,
        ],
        {},
        artifacts_dir / "logs",
    )
    try:
        wait_for_log(child, "PSP simulator listening")
        wait_for_http(child, f"http://127.0.0.1:{port}/_sim/webhooks")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            yield client, receiver
    finally:
        child.stop()
        receiver.server.shutdown()


def card_signature_ok(headers: dict[str, str], body: bytes, secret: str = "whsec_card_dev") -> bool:
    parts = dict(item.split("=", 1) for item in headers["CardCo-Signature"].split(","))
    expected = hmac.new(
        secret.encode(), f"{parts['t']}.{body.decode()}".encode(), hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(expected, parts["v1"])


def bank_signature_ok(headers: dict[str, str], body: bytes, secret: str = "whsec_bank_dev") -> bool:
    signed = f"{headers['X-BankCo-Timestamp']}\n{body.decode()}".encode()
    expected = "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers["X-BankCo-Signature"])


def settlement(client: httpx.Client, path: str, headers: dict[str, str]) -> list[dict[str, str]]:
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    response = client.get(f"{path}/{today}.csv", headers=headers)
    response.raise_for_status()
    return list(csv.DictReader(io.StringIO(response.text)))


def test_card_payment_refund_and_chargeback(psp: tuple[httpx.Client, Receiver]) -> None:
    client, receiver = psp
    body = {
        "amount": 10_000,
        "currency": "usd",
        "reference": "dep-1",
        "customer": {"name": "Alice Martin"},
    }
    first = client.post(
        "/cardco/v1/payment_intents", json=body, headers={**CARD, "Idempotency-Key": "k1"}
    ).json()
    again = client.post(
        "/cardco/v1/payment_intents", json=body, headers={**CARD, "Idempotency-Key": "k1"}
    ).json()
    assert first["id"] == again["id"] and first["status"] == "requires_action"
    assert client.post("/cardco/v1/payment_intents", json=body).status_code == 401
    client.post(first["hosted_url"], data={"outcome": "succeeded"})
    [(path, headers, raw)] = receiver.wait_for(1)
    event = json.loads(raw)
    assert path == "/hooks/cardco" and event["type"] == "payment_intent.succeeded"
    assert event["data"]["object"]["reference"] == "dep-1"
    assert card_signature_ok(headers, raw) and not card_signature_ok(headers, raw, "wrong")

    client.post(
        "/cardco/v1/refunds", json={"payment_intent": first["id"], "amount": 2_500}, headers=CARD
    )
    client.post("/_sim/cardco/chargeback", json={"payment_intent": first["id"]})
    events = [json.loads(r[2])["type"] for r in receiver.wait_for(3)]
    assert events[1:] == ["charge.refunded", "charge.dispute.created"]
    rows = settlement(client, "/cardco/v1/settlements", CARD)
    assert [(r["type"], r["gross_minor"], r["fee_minor"]) for r in rows] == [
        ("charge", "10000", "320"),  # 2.90 % + 0.30
        ("refund", "-2500", "0"),
        ("chargeback", "-10000", "1500"),
    ]


def test_bank_transfer_in_and_payout_out(psp: tuple[httpx.Client, Receiver]) -> None:
    client, receiver = psp
    reference = client.post(
        "/bankco/api/deposit_references", json={"customer_reference": "c-42"}, headers=BANK
    ).json()["reference"]
    client.post(
        "/_sim/bankco/incoming",
        json={
            "reference": reference,
            "amount": "250.00",
            "currency": "EUR",
            "payer_name": "Bob Schmidt",
        },
    )
    [(path, headers, raw)] = receiver.wait_for(1)
    event = json.loads(raw)
    assert path == "/hooks/bankco" and event["event"] == "transfer.received"
    assert (event["data"]["reference"], event["data"]["amount"], event["data"]["payer_name"]) == (
        reference,
        "250.00",
        "Bob Schmidt",
    )
    assert bank_signature_ok(headers, raw)

    payout = client.post(
        "/bankco/api/payouts",
        json={
            "amount": "100.00",
            "currency": "EUR",
            "beneficiary": {"name": "Bob Schmidt", "iban": "DE89370400440532013000"},
            "reference": "wd-1",
        },
        headers={**BANK, "Idempotency-Key": "wd-1"},
    )
    assert payout.status_code == 202 and payout.json()["status"] == "pending"
    client.post("/_sim/bankco/settle", json={"payout": payout.json()["id"]})
    assert json.loads(receiver.wait_for(2)[1][2])["event"] == "payout.settled"
    rows = settlement(client, "/bankco/api/settlements", BANK)
    assert [(r["type"], r["gross"], r["fee"]) for r in rows] == [
        ("incoming", "250.00", "0.25"),
        ("payout", "-100.00", "1.00"),
    ]


def test_webhooks_can_arrive_twice_and_out_of_order(psp: tuple[httpx.Client, Receiver]) -> None:
    client, receiver = psp
    client.post("/_sim/webhooks", json={"duplicate_probability": 1.0, "reorder_window": 4})
    reference = client.post(
        "/bankco/api/deposit_references", json={"customer_reference": "c-1"}, headers=BANK
    ).json()["reference"]
    for amount in ("1.00", "2.00", "3.00"):
        client.post(
            "/_sim/bankco/incoming",
            json={"reference": reference, "amount": amount, "currency": "USD"},
        )
    client.delete("/_sim/webhooks")  # flush what the reorder window still holds
    amounts = [json.loads(r[2])["data"]["amount"] for r in receiver.wait_for(6)]
    assert sorted(amounts) == ["1.00", "1.00", "2.00", "2.00", "3.00", "3.00"]
