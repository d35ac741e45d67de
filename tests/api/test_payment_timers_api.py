"""The payment timers are settings the workflows cannot read: the API puts them into each deposit's
and withdrawal's workflow input (`PaymentRules.timers()`)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest

from contracts.deposit import DepositInput
from contracts.withdrawal import WithdrawalInput
from domain.payments import PaymentTimers
from settings import PaymentRules
from tests.api.conftest import Books, FakeTemporal
from tests.api.test_payments import deposit, key, post, withdrawal
from tests.support.people import People

CONFIGURED = {
    "payout_verdict_poll_after": timedelta(minutes=5),
    "payout_verdict_poll_every": timedelta(minutes=15),
    "payout_verdict_escalate_after": timedelta(hours=6),
    "held_decision_sla": timedelta(hours=8),
}
EXPECTED = PaymentTimers(
    payout_poll_after=timedelta(minutes=5),
    payout_poll_every=timedelta(minutes=15),
    payout_escalate_after=timedelta(hours=6),
    held_decision_sla=timedelta(hours=8),
)


@pytest.fixture
def configured(api: httpx.AsyncClient) -> Iterator[None]:
    """The running app's payment rules, with timers other than the defaults."""
    state = api._transport.app.state.brokerflow  # type: ignore[attr-defined]
    before = state.settings
    payments = before.payments.model_copy(update=CONFIGURED)
    state.settings = before.model_copy(update={"payments": payments})
    yield
    state.settings = before


async def test_a_deposit_carries_the_configured_timers(
    api: httpx.AsyncClient, people: People, temporal: FakeTemporal, configured: None
) -> None:
    client = await people.client()
    response = await post(api, "/v1/me/deposits", client, deposit(), key())
    assert response.status_code == 202, response.text
    [(_, request, _)] = temporal.started
    assert isinstance(request, DepositInput)
    assert request.timers == EXPECTED


async def test_a_withdrawal_carries_the_configured_timers(
    api: httpx.AsyncClient,
    people: People,
    books: Books,
    temporal: FakeTemporal,
    configured: None,
) -> None:
    client = await people.client()
    await books.fund_wallet(client, "500.00")
    response = await post(api, "/v1/me/withdrawals", client, withdrawal(), key())
    assert response.status_code == 202, response.text
    [(_, request, _)] = temporal.started
    assert isinstance(request, WithdrawalInput)
    assert request.timers == EXPECTED


def test_the_defaults_are_the_domains() -> None:
    assert PaymentRules().timers() == PaymentTimers()
    assert PaymentTimers() == PaymentTimers(
        payout_poll_after=timedelta(minutes=30),
        payout_poll_every=timedelta(hours=1),
        payout_escalate_after=timedelta(hours=24),
        held_decision_sla=timedelta(hours=24),
    )
