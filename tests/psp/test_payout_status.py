"""Asking a processor where a payout stands (`PaymentProvider.payout_status`), for a withdrawal
whose verdict webhook is late. The PSP simulator has no payout look-up yet, so BankCo's call is
checked against a stand-in of `GET /bankco/api/payouts/{id}` shaped as its `POST` answer."""

from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr

from domain.payments import PayoutState, UnsupportedByProvider
from psp_adapter.bankco import BankCo
from psp_adapter.cardco import CardCo

BASE = "http://psp.test"


def bankco_answering(status: int, body: dict[str, object]) -> tuple[BankCo, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, json=body)

    bank = BankCo(BASE, SecretStr("sk_bank_dev"), SecretStr("whsec_bank_dev"))
    bank._http = httpx.AsyncClient(
        base_url=BASE,
        headers={"Authorization": "Bearer sk_bank_dev"},
        transport=httpx.MockTransport(answer),
    )
    return bank, seen


def payout(status: str) -> dict[str, object]:
    return {
        "id": "po_1",
        "amount": "100.00",
        "currency": "USD",
        "beneficiary_name": "Jane Doe",
        "iban": "GB82WEST12345698765432",
        "reference": "BF1",
        "status": status,
    }


@pytest.mark.parametrize(
    ("reported", "state"),
    [
        ("pending", PayoutState.PENDING),
        ("settled", PayoutState.SETTLED),
        ("failed", PayoutState.FAILED),
        ("on_hold", PayoutState.PENDING),  # unknown to BrokerFlow: not a verdict
    ],
)
async def test_bankco_reports_the_payouts_state(reported: str, state: PayoutState) -> None:
    bank, seen = bankco_answering(200, payout(reported))
    try:
        assert await bank.payout_status("po_1") is state
    finally:
        await bank.aclose()
    [request] = seen
    assert (request.method, request.url.path) == ("GET", "/bankco/api/payouts/po_1")
    assert request.headers["authorization"] == "Bearer sk_bank_dev"


async def test_an_unknown_payout_is_an_http_error() -> None:
    bank, _ = bankco_answering(404, {"error": {"message": "no such payout"}})
    try:
        with pytest.raises(httpx.HTTPStatusError):
            await bank.payout_status("po_missing")
    finally:
        await bank.aclose()


async def test_cardco_has_no_payouts_to_ask_about() -> None:
    card = CardCo(BASE, SecretStr("sk_card_dev"), SecretStr("whsec_card_dev"))
    try:
        with pytest.raises(UnsupportedByProvider):
            await card.payout_status("po_1")
    finally:
        await card.aclose()
