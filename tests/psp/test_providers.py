"""BrokerFlow's processor adapters against the PSP simulator: sessions, verified webhooks,
forgeries and stale replays refused, settlement reports read into Money."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from domain.money import Money
from domain.payments import PaymentEventKind, UnsupportedByProvider, WebhookRejected
from psp_adapter import signing
from psp_adapter.bankco import BankCo
from psp_adapter.cardco import CardCo
from tests.simulators.test_psp import Receiver
from tests.support.processes import BIN, free_port, spawn, wait_for_http, wait_for_log


@pytest.fixture
def psp(artifacts_dir: Path) -> Iterator[tuple[str, Receiver]]:
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
        yield f"http://127.0.0.1:{port}", receiver
    finally:
        child.stop()
        receiver.server.shutdown()


@pytest.fixture
async def cardco(psp: tuple[str, Receiver]) -> AsyncIterator[CardCo]:
    provider = CardCo(psp[0], SecretStr("sk_card_dev"), SecretStr("whsec_card_dev"))
    yield provider
    await provider.aclose()


@pytest.fixture
async def bankco(psp: tuple[str, Receiver]) -> AsyncIterator[BankCo]:
    provider = BankCo(psp[0], SecretStr("sk_bank_dev"), SecretStr("whsec_bank_dev"))
    yield provider
    await provider.aclose()


async def test_a_card_deposit_from_hosted_page_to_verified_event(
    cardco: CardCo, psp: tuple[str, Receiver]
) -> None:
    base, receiver = psp
    amount = Money(amount=Decimal("150.00"), currency="EUR")
    session = await cardco.start_deposit("dep-7", amount, "Alice Martin", "dep-7")
    assert session.redirect_url and session.redirect_url.startswith(base)
    assert (await cardco.start_deposit("dep-7", amount, "Alice Martin", "dep-7")) == session
    httpx.post(session.redirect_url, data={"outcome": "succeeded"})
    [(_, headers, body)] = receiver.wait_for(1)

    event = cardco.verify_webhook(headers, body, datetime.now(UTC))
    assert (event.kind, event.reference, event.amount, event.provider_ref) == (
        PaymentEventKind.PAYMENT_SUCCEEDED,
        "dep-7",
        amount,
        session.provider_ref,
    )
    forged = body.replace(b"15000", b"95000")
    with pytest.raises(WebhookRejected, match="signature"):
        cardco.verify_webhook(headers, forged, datetime.now(UTC))
    with pytest.raises(WebhookRejected, match="window"):
        cardco.verify_webhook(headers, body, datetime.now(UTC) + timedelta(minutes=10))
    with pytest.raises(WebhookRejected):
        cardco.verify_webhook({}, body, datetime.now(UTC))

    [line] = await cardco.settlement(datetime.now(UTC).date())
    assert (line.gross, line.fee, line.net) == (
        amount,
        Money(amount=Decimal("4.65"), currency="EUR"),
        Money(amount=Decimal("145.35"), currency="EUR"),
    )
    with pytest.raises(UnsupportedByProvider):
        await cardco.payout("wd-1", amount, "Alice", "DE00", "wd-1")


async def test_a_bank_transfer_in_and_a_payout_out(
    bankco: BankCo, psp: tuple[str, Receiver]
) -> None:
    base, receiver = psp
    session = await bankco.start_deposit(
        "client-42", Money(amount=Decimal("1"), currency="USD"), "Bob", "k"
    )
    assert session.transfer_reference
    httpx.post(
        f"{base}/_sim/bankco/incoming",
        json={
            "reference": session.transfer_reference,
            "amount": "250.00",
            "currency": "USD",
            "payer_name": "Bob Schmidt",
        },
    )
    [(_, headers, body)] = receiver.wait_for(1)
    received = bankco.verify_webhook(headers, body, datetime.now(UTC))
    assert (received.kind, received.reference, received.payer_name) == (
        PaymentEventKind.TRANSFER_RECEIVED,
        session.transfer_reference,
        "Bob Schmidt",
    )
    assert received.amount == Money(amount=Decimal("250.00"), currency="USD")

    payout_id = await bankco.payout(
        "wd-9",
        Money(amount=Decimal("100.00"), currency="USD"),
        "Bob Schmidt",
        "DE89370400440532013000",
        "wd-9",
    )
    assert payout_id == await bankco.payout(
        "wd-9",
        Money(amount=Decimal("100.00"), currency="USD"),
        "Bob Schmidt",
        "DE89370400440532013000",
        "wd-9",
    )
    httpx.post(f"{base}/_sim/bankco/settle", json={"payout": payout_id})
    settled = bankco.verify_webhook(*receiver.wait_for(2)[1][1:], datetime.now(UTC))
    assert (settled.kind, settled.provider_ref) == (PaymentEventKind.PAYOUT_SETTLED, payout_id)
    tampered = json.loads(receiver.received[1][2])
    tampered["data"]["amount"] = "1000.00"
    with pytest.raises(WebhookRejected):
        bankco.verify_webhook(
            receiver.received[1][1], json.dumps(tampered).encode(), datetime.now(UTC)
        )


@pytest.mark.parametrize(
    "payload",
    [
        {"type": "payment_intent.succeeded", "id": "evt_1"},
        {"type": "payment_intent.succeeded", "id": "evt_1", "data": {"object": {"id": "pi_1"}}},
        {
            "type": "payment_intent.succeeded",
            "id": "evt_1",
            "data": {"object": {"id": "pi_1", "amount": "lots", "currency": "usd"}},
        },
        {
            "type": "payment_intent.succeeded",
            "id": "evt_1",
            "data": {"object": {"id": "pi_1", "amount": 100, "currency": "XXX"}},
        },
    ],
)
def test_a_signed_but_malformed_webhook_is_refused(payload: dict[str, object]) -> None:
    """Signed with the right secret, yet missing fields or carrying wrong values."""
    provider = CardCo("http://127.0.0.1:9", SecretStr("sk"), SecretStr("whsec_test"))
    body = json.dumps(payload).encode()
    now = datetime.now(UTC)
    stamp = int(now.timestamp())
    signature = signing.hmac_hex("whsec_test", f"{stamp}.".encode() + body)
    with pytest.raises(WebhookRejected, match="malformed"):
        provider.verify_webhook({"CardCo-Signature": f"t={stamp},v1={signature}"}, body, now)


async def test_events_whose_webhooks_were_lost_are_listed_with_the_webhooks_ids(
    cardco: CardCo, bankco: BankCo, psp: tuple[str, Receiver]
) -> None:
    base, receiver = psp
    # A delivered webhook first: the list answers the same event, under the same id.
    amount = Money(amount=Decimal("80.00"), currency="USD")
    delivered = await cardco.start_deposit("dep-lost-0", amount, "Ann Lee", "dep-lost-0")
    httpx.post(str(delivered.redirect_url), data={"outcome": "succeeded"})
    [(_, headers, body)] = receiver.wait_for(1)
    pushed = cardco.verify_webhook(headers, body, datetime.now(UTC))
    [listed] = await cardco.payment_events(delivered.provider_ref)
    assert listed.model_dump(exclude={"sent_at"}) == pushed.model_dump(exclude={"sent_at"})

    # From now on every webhook is lost on the way; the processors still know what they sent.
    assert httpx.post(f"{base}/_sim/webhooks", json={"drop_probability": 1}).is_success
    card = await cardco.start_deposit("dep-lost-1", amount, "Ann Lee", "dep-lost-1")
    assert await cardco.payment_events(card.provider_ref) == []
    httpx.post(str(card.redirect_url), data={"outcome": "succeeded"})
    [paid] = await cardco.payment_events(card.provider_ref)
    assert (paid.kind, paid.reference, paid.amount, paid.provider_ref) == (
        PaymentEventKind.PAYMENT_SUCCEEDED,
        "dep-lost-1",
        amount,
        card.provider_ref,
    )

    bank = await bankco.start_deposit("client-lost", amount, "Ann Lee", "k-lost")
    for sent in ("500.00", "500.00"):  # two transfers quoting one reference
        httpx.post(
            f"{base}/_sim/bankco/incoming",
            json={"reference": bank.provider_ref, "amount": sent, "currency": "USD"},
        )
    transfers = await bankco.payment_events(bank.provider_ref)
    assert [t.kind for t in transfers] == [PaymentEventKind.TRANSFER_RECEIVED] * 2
    assert len({t.event_id for t in transfers}) == 2
    assert len({t.provider_ref for t in transfers}) == 2

    assert len(receiver.received) == 1  # nothing else was delivered
    log = httpx.get(f"{base}/_sim/webhooks").json()["delivered"]
    assert [entry["outcome"] for entry in log].count("dropped") == 3
    refused = httpx.post(f"{base}/_sim/webhooks", json={"drop_probability": 2})
    assert refused.status_code == 400
