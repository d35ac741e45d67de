"""The payment-processor simulator: both providers' flows, signed webhooks, retries, faults,
settlement, ground truth and payouts that settle by themselves."""

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

from tests.support.processes import PspSimulator, start_psp_simulator

CARD = {"Authorization": "Bearer sk_card_dev"}
BANK = {"Authorization": "Bearer sk_bank_dev"}


class Receiver:
    """A webhook endpoint that records what arrives and answers 200, or first `failures`."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        self.failures: list[int] = []  # statuses to answer, in turn, before 200 again
        received, failures = self.received, self.failures

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append((self.path, dict(self.headers), body))
                self.send_response(failures.pop(0) if failures else 200)
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
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.server.shutdown()


# Two retries, a second apart at first: every attempt is signed in a different second.
RETRIES = ["--webhook-retries", "2", "--webhook-retry-base-ms", "1000"]


@pytest.fixture
def sim(artifacts_dir: Path, receiver: Receiver) -> Iterator[PspSimulator]:
    simulator = start_psp_simulator(artifacts_dir / "logs", receiver.url, extra=RETRIES)
    yield simulator
    simulator.stop()


@pytest.fixture
def psp(sim: PspSimulator, receiver: Receiver) -> Iterator[tuple[httpx.Client, Receiver]]:
    with httpx.Client(base_url=sim.base_url) as client:
        yield client, receiver


def card_signature(headers: dict[str, str]) -> dict[str, str]:
    """`t=<unix>,v1=<hex>` as {"t": ..., "v1": ...}."""
    return dict(item.split("=", 1) for item in headers["CardCo-Signature"].split(","))


def card_signature_ok(headers: dict[str, str], body: bytes, secret: str = "whsec_card_dev") -> bool:
    parts = card_signature(headers)
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
    # Each event travels on its own; like a real processor's, two sent close together may
    # arrive in either order.
    assert sorted(events[1:]) == ["charge.dispute.created", "charge.refunded"]
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
    status_of = f"/bankco/api/payouts/{payout.json()['id']}"
    assert client.get(status_of, headers=BANK).json()["status"] == "pending"
    client.post("/_sim/bankco/settle", json={"payout": payout.json()["id"]})
    assert json.loads(receiver.wait_for(2)[1][2])["event"] == "payout.settled"
    # A client that lost the webhook asks where the payout stands.
    assert client.get(status_of, headers=BANK).json() == {**payout.json(), "status": "settled"}
    assert client.get(status_of).status_code == 401
    assert client.get("/bankco/api/payouts/po_none", headers=BANK).status_code == 404
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


def wait_until(check: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_refused_webhook_is_retried_and_signed_again_each_time(
    sim: PspSimulator, receiver: Receiver
) -> None:
    receiver.failures.extend([500, 500])
    intent = httpx.post(
        f"{sim.base_url}/cardco/v1/payment_intents",
        json={"amount": 500, "currency": "EUR", "reference": "dep-r"},
        headers=CARD,
    ).json()
    sim.pay(intent["id"])
    attempts = receiver.wait_for(3)
    assert len(attempts) == 3
    bodies = {raw for _, _, raw in attempts}
    assert len(bodies) == 1  # the same event, the same id, every time
    stamps = [int(card_signature(headers)["t"]) for _, headers, _ in attempts]
    assert len(set(stamps)) == 3 and stamps == sorted(stamps)
    assert all(card_signature_ok(h, raw) for _, h, raw in attempts)
    wait_until(lambda: sim.deliveries()[0]["outcome"] == "delivered")
    [entry] = sim.deliveries()
    assert (entry["attempts"], entry["status"], entry["signed_at"]) == (3, 200, stamps)


def test_retries_give_up_after_the_configured_number(sim: PspSimulator, receiver: Receiver) -> None:
    receiver.failures.extend([503] * 3)
    reference = httpx.post(
        f"{sim.base_url}/bankco/api/deposit_references",
        json={"customer_reference": "c-9"},
        headers=BANK,
    ).json()["reference"]
    sim.incoming(reference, "20.00", "USD", "Carol Diaz")
    wait_until(lambda: sim.deliveries()[0]["outcome"] == "failed")
    [entry] = sim.deliveries()
    assert (entry["attempts"], entry["status"]) == (3, 503)  # the first try and two retries
    assert all(bank_signature_ok(h, raw) for _, h, raw in receiver.wait_for(3))
    assert len({h["X-BankCo-Timestamp"] for _, h, _ in receiver.received}) == 3


def test_state_lists_every_payment_the_processors_know(
    sim: PspSimulator, psp: tuple[httpx.Client, Receiver]
) -> None:
    client = psp[0]
    intent = client.post(
        "/cardco/v1/payment_intents",
        json={"amount": 1_000, "currency": "USD", "reference": "dep-s"},
        headers=CARD,
    ).json()
    sim.pay(intent["id"])
    client.post(
        "/cardco/v1/refunds", json={"payment_intent": intent["id"], "amount": 400}, headers=CARD
    )
    reference = client.post(
        "/bankco/api/deposit_references", json={"customer_reference": "c-7"}, headers=BANK
    ).json()["reference"]
    transfer = sim.incoming(reference, "75.50", "EUR", "Dan Wu")
    payout = client.post(
        "/bankco/api/payouts",
        json={
            "amount": "30.00",
            "currency": "EUR",
            "beneficiary": {"name": "Dan Wu", "iban": "DE89370400440532013000"},
            "reference": "wd-s",
        },
        headers=BANK,
    ).json()

    state = sim.state()
    [card] = state["cardco"]["intents"]
    assert (card["id"], card["reference"], card["amount"], card["currency"]) == (
        intent["id"],
        "dep-s",
        1_000,
        "USD",
    )
    assert (card["status"], card["refunded"]) == ("succeeded", 400)
    bank = state["bankco"]
    assert bank["deposit_references"] == [{"reference": reference, "customer_reference": "c-7"}]
    assert [(t["id"], t["amount"], t["payer_name"]) for t in bank["transfers"]] == [
        (transfer["id"], "75.50", "Dan Wu")
    ]
    assert [(p["id"], p["reference"], p["status"]) for p in bank["payouts"]] == [
        (payout["id"], "wd-s", "pending")
    ]
    sim.settle(payout["id"], "failed")
    assert sim.state()["bankco"]["payouts"][0]["status"] == "failed"


def make_payout(base_url: str, reference: str) -> str:
    response = httpx.post(
        f"{base_url}/bankco/api/payouts",
        json={
            "amount": "10.00",
            "currency": "USD",
            "beneficiary": {"name": "Eve Li", "iban": "DE89370400440532013000"},
            "reference": reference,
        },
        headers=BANK,
    )
    assert response.status_code == 202
    return str(response.json()["id"])


def test_payouts_settle_by_themselves_when_asked(artifacts_dir: Path, receiver: Receiver) -> None:
    sim = start_psp_simulator(
        artifacts_dir / "logs", receiver.url, extra=["--auto-settle-ms", "200"]
    )
    try:

        def status(payout: str) -> str:
            by_id = {p["id"]: p["status"] for p in sim.state()["bankco"]["payouts"]}
            return str(by_id[payout])

        settled = make_payout(sim.base_url, "wd-a1")
        assert status(settled) == "pending"
        wait_until(lambda: status(settled) == "settled")

        sim.auto_settle(100, fail_probability=1.0)
        failed = make_payout(sim.base_url, "wd-a2")
        wait_until(lambda: status(failed) == "failed")
        events = [json.loads(raw)["event"] for _, _, raw in receiver.wait_for(2)]
        assert events == ["payout.settled", "payout.failed"]

        sim.auto_settle(None)
        waiting = make_payout(sim.base_url, "wd-a3")
        time.sleep(0.5)
        assert status(waiting) == "pending"
        assert httpx.get(f"{sim.base_url}/_sim/bankco/auto_settle").json() == {"auto_settle": None}
        bad = httpx.post(f"{sim.base_url}/_sim/bankco/auto_settle", json={"after_ms": -1})
        assert bad.status_code == 400
    finally:
        sim.stop()
