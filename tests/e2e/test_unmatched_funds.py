"""Two bank transfers of 500 quoting one deposit of 1,000 on the real stack (issue 11, defect 2):
the deposit books the first, the second lands in the unmatched-funds queue for finance; a
transfer quoting no known reference lands there too. Nothing is acknowledged and forgotten."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from domain.roles import StaffRole
from tests.e2e.test_payments_api import (
    FINISHED,
    approved_client,
    available,
    payment_of,
    request,
    staff_headers,
    wait_for,
)
from tests.support.processes import PspSimulator
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e


@pytest.fixture
def api(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.api_url, timeout=30) as client:
        yield client


def unmatched(api: httpx.Client, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = api.get("/v1/finance/unmatched", params={"limit": 200}, headers=headers)
    assert response.status_code == 200, response.text
    return list(response.json())


def test_a_second_transfer_on_one_reference_is_queued_not_forgotten(
    api: httpx.Client,
    stack: Stack,
    psp_sim: PspSimulator,
) -> None:
    client, compliance = approved_client(api, stack)
    finance = staff_headers(stack, api, StaffRole.FINANCE)

    announced = request(
        api,
        "/v1/me/deposits",
        client,
        {"provider": "bankco", "amount": "1000.00", "currency": "USD"},
    )
    deposit = wait_for(
        lambda: payment_of(api, client, announced["id"]), lambda p: p["transfer_reference"]
    )
    reference = deposit["transfer_reference"]
    psp_sim.incoming(reference, "500.00", "USD", "Erika Mustermann")
    psp_sim.incoming(reference, "500.00", "USD", "Erika Mustermann")

    # 500 instead of 1,000 announced: held for compliance; the other 500 is queued meanwhile.
    wait_for(lambda: payment_of(api, client, announced["id"]), lambda p: p["status"] == "held")
    [second] = wait_for(
        lambda: {
            "items": [i for i in unmatched(api, finance) if i["event_reference"] == reference]
        },
        lambda seen: len(seen["items"]) == 1,
    )["items"]
    assert (second["amount"], second["currency"], second["reason"], second["status"]) == (
        "500.00",
        "USD",
        "second_payment",
        "open",
    )
    assert second["payment_id"] == announced["id"]
    assert second["payer_name"] == "Erika Mustermann"

    decided = api.post(
        f"/v1/compliance/deposits/{announced['id']}/decision",
        json={"approve": True, "reason": "the client sent it in two parts"},
        headers=compliance,
    )
    assert decided.status_code == 200, decided.text
    wait_for(lambda: payment_of(api, client, announced["id"]), lambda p: p["status"] in FINISHED)
    assert payment_of(api, client, announced["id"])["status"] == "completed"
    assert available(api, client) == Decimal("500.00")  # the other 500 waits for finance
    assert len([i for i in unmatched(api, finance) if i["event_reference"] == reference]) == 1

    # A transfer quoting a reference nobody issued is queued as well.
    psp_sim.incoming("NOT-A-BROKERFLOW-REF", "42.00", "USD", "Somebody Else")
    [lost] = wait_for(
        lambda: {
            "items": [
                i for i in unmatched(api, finance) if i["event_reference"] == "NOT-A-BROKERFLOW-REF"
            ]
        },
        lambda seen: len(seen["items"]) >= 1,
    )["items"][:1]
    assert (lost["amount"], lost["reason"]) == ("42.00", "unknown_reference")
