"""Deposits, withdrawals and decisions through HTTP on the real stack: API, worker, Temporal,
the PSP simulator paying, transferring and settling, and its webhooks coming back signed."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pyotp
import pytest

from api.security import hash_password
from db.models import StaffUser
from db.sealed import SecretBox
from db.session import create_engine, create_sessionmaker
from db.urls import app_database_url
from domain.roles import StaffRole
from tests.conftest import make_settings
from tests.e2e.helpers import sign_up_and_log_in
from tests.support.processes import PspSimulator
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e
PASSWORD = "Officer-Pass-42"
IBAN = "DE89370400440532013000"
FINISHED = {"completed", "rejected", "failed", "expired"}


@pytest.fixture
def api(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.api_url, timeout=30) as client:
        yield client


def staff_headers(stack: Stack, api: httpx.Client, role: StaffRole) -> dict[str, str]:
    """A staff user of its own in the stack's database, logged in with password and TOTP."""
    settings = make_settings(stack.owner_url)
    email = f"e2e-{role.value}-{uuid.uuid4().hex[:8]}@example.com"
    secret = pyotp.random_base32()

    async def insert() -> None:
        engine = create_engine(app_database_url(stack.owner_url, settings), pool_size=1)
        async with create_sessionmaker(engine).begin() as session:
            session.add(
                StaffUser(
                    id=uuid.uuid4(),
                    email=email,
                    full_name=f"E2E {role.value}",
                    password_hash=await hash_password(PASSWORD),
                    totp_secret_enc=SecretBox(settings.secrets_key).seal(secret),
                    roles=[role.value],
                    ip_allowlist=["127.0.0.1/32"],
                    active=True,
                )
            )
        await engine.dispose()

    asyncio.run(insert())
    response = api.post(
        "/v1/auth/staff/login",
        json={"email": email, "password": PASSWORD, "totp_code": pyotp.TOTP(secret).now()},
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def wait_for(
    read: Callable[[], dict[str, Any]], done: Callable[[dict[str, Any]], bool], timeout: float = 60
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    seen: dict[str, Any] = {}
    while time.monotonic() < deadline:
        seen = read()
        if done(seen):
            return seen
        time.sleep(0.25)
    raise TimeoutError(f"still {seen}")


def payment_of(api: httpx.Client, headers: dict[str, str], payment_id: str) -> dict[str, Any]:
    response = api.get(f"/v1/me/payments/{payment_id}", headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def finance_view(api: httpx.Client, headers: dict[str, str], payment_id: str) -> dict[str, Any]:
    response = api.get(f"/v1/finance/payments/{payment_id}", headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


def request(
    api: httpx.Client, path: str, headers: dict[str, str], body: dict[str, Any]
) -> dict[str, Any]:
    response = api.post(path, json=body, headers={**headers, "Idempotency-Key": str(uuid.uuid4())})
    assert response.status_code == 202, response.text
    return dict(response.json())


def available(api: httpx.Client, headers: dict[str, str], currency: str = "USD") -> Decimal:
    wallets = api.get("/v1/me/wallets", headers=headers).json()
    return sum((Decimal(w["available"]) for w in wallets if w["currency"] == currency), Decimal(0))


def approved_client(api: httpx.Client, stack: Stack) -> tuple[dict[str, str], dict[str, str]]:
    """A client signed up and logged in whose KYC compliance approved: its headers, then the
    compliance officer's."""
    _, client = sign_up_and_log_in(api)
    compliance = staff_headers(stack, api, StaffRole.COMPLIANCE)
    client_id = api.get("/v1/me", headers=client).json()["id"]
    kyc = api.put(
        f"/v1/compliance/clients/{client_id}/kyc",
        json={"kyc_status": "approved", "screening_status": "clear", "reason": "passport"},
        headers=compliance,
    )
    assert kyc.status_code == 200, kyc.text
    return client, compliance


def card_deposit(
    api: httpx.Client, client: dict[str, str], amount: str
) -> tuple[dict[str, Any], str]:
    """A CardCo deposit to the wallet, once its payment page is there: the payment and the
    processor's intent id (what the payer pays on the page)."""
    body = {"provider": "cardco", "amount": amount, "currency": "USD"}
    deposit = request(api, "/v1/me/deposits", client, body)
    page = wait_for(lambda: payment_of(api, client, deposit["id"]), lambda p: p["redirect_url"])
    return deposit, str(page["redirect_url"]).rsplit("/", 1)[-1]


class TestMoneyThroughTheStack:
    def test_a_webhook_later_than_the_question_is_the_same_payment_not_a_second_one(
        self, api: httpx.Client, stack: Stack, psp_sim: PspSimulator
    ) -> None:
        client, compliance = approved_client(api, stack)
        finance = staff_headers(stack, api, StaffRole.FINANCE)
        deposit, intent = card_deposit(api, client, "40.00")
        # The webhook leaves 8 s late: the deposit asks the processor first (2 s in) and completes.
        psp_sim.webhook_faults(delay_ms=8000)
        try:
            psp_sim.pay(intent)
            wait_for(
                lambda: payment_of(api, client, deposit["id"]),
                lambda p: p["status"] in FINISHED,
            )
            assert payment_of(api, client, deposit["id"])["status"] == "completed"
            events = wait_for(
                lambda: finance_view(api, compliance, deposit["id"]),
                lambda view: bool(view["webhook_events"]),
            )["webhook_events"]
        finally:
            psp_sim.webhook_faults()
        assert [e["outcome"] for e in events] == ["accepted"]
        assert available(api, client) == Decimal("40.00")
        queue = api.get("/v1/finance/unmatched", params={"limit": 200}, headers=finance)
        assert queue.status_code == 200, queue.text
        assert deposit["id"] not in {i.get("payment_id") for i in queue.json()}

    def test_a_deposit_whose_webhook_is_lost_is_credited_once_all_the_same(
        self, api: httpx.Client, stack: Stack, psp_sim: PspSimulator
    ) -> None:
        client, compliance = approved_client(api, stack)
        deposit, intent = card_deposit(api, client, "75.00")
        psp_sim.webhook_faults(drop_probability=1.0)  # the processor never reaches BrokerFlow
        try:
            psp_sim.pay(intent)
            # Asked 2 s in (the stack's setting), the processor tells what it sent.
            wait_for(
                lambda: payment_of(api, client, deposit["id"]),
                lambda p: p["status"] in FINISHED,
            )
        finally:
            psp_sim.webhook_faults()
        assert payment_of(api, client, deposit["id"])["status"] == "completed"
        assert available(api, client) == Decimal("75.00")
        dropped = [d for d in psp_sim.deliveries() if intent in d["body"]]
        assert [d["outcome"] for d in dropped] == ["dropped"]
        assert finance_view(api, compliance, deposit["id"])["webhook_events"] == []

    def test_deposits_withdrawals_and_four_eyes(
        self, api: httpx.Client, stack: Stack, psp_sim: PspSimulator
    ) -> None:
        _, client = sign_up_and_log_in(api)
        compliance = staff_headers(stack, api, StaffRole.COMPLIANCE)
        finance_a = staff_headers(stack, api, StaffRole.FINANCE)
        finance_b = staff_headers(stack, api, StaffRole.FINANCE)
        client_id = api.get("/v1/me", headers=client).json()["id"]

        # 1. KYC still pending: a card deposit is held for compliance, then released.
        held = request(
            api,
            "/v1/me/deposits",
            client,
            {"provider": "cardco", "amount": "100.00", "currency": "USD"},
        )
        page = wait_for(lambda: payment_of(api, client, held["id"]), lambda p: p["redirect_url"])
        psp_sim.webhook_faults(duplicate_probability=1.0)  # every webhook arrives twice
        try:
            psp_sim.pay(page["redirect_url"].rsplit("/", 1)[-1])
            wait_for(lambda: payment_of(api, client, held["id"]), lambda p: p["status"] == "held")
        finally:
            psp_sim.webhook_faults()
        flagged = finance_view(api, compliance, held["id"])
        assert "kyc_not_approved" in flagged["risk_flags"]
        assert flagged["gateway_reference"] == page["redirect_url"].rsplit("/", 1)[-1]
        approvals = api.get("/v1/finance/approvals", headers=compliance).json()
        assert held["id"] in [a["id"] for a in approvals]
        decided = api.post(
            f"/v1/compliance/deposits/{held['id']}/decision",
            json={"approve": True, "reason": "KYC documents arrived by post"},
            headers=compliance,
        )
        assert decided.status_code == 200, decided.text
        wait_for(lambda: payment_of(api, client, held["id"]), lambda p: p["status"] in FINISHED)
        assert payment_of(api, client, held["id"])["status"] == "completed"
        detail = finance_view(api, compliance, held["id"])
        assert [e["outcome"] for e in detail["webhook_events"]] == ["accepted"]
        assert [d["role"] for d in detail["decisions"]] == ["compliance"]
        assert available(api, client) == Decimal("100.00")

        # 2. KYC approved: a bank transfer goes straight to the wallet.
        kyc = api.put(
            f"/v1/compliance/clients/{client_id}/kyc",
            json={"kyc_status": "approved", "screening_status": "clear", "reason": "passport"},
            headers=compliance,
        )
        assert kyc.status_code == 200, kyc.text
        bank = request(
            api,
            "/v1/me/deposits",
            client,
            {"provider": "bankco", "amount": "2000.00", "currency": "USD"},
        )
        bank = wait_for(
            lambda: payment_of(api, client, bank["id"]), lambda p: p["transfer_reference"]
        )
        psp_sim.incoming(bank["transfer_reference"], "2000.00", "USD", "Erika Mustermann")
        wait_for(lambda: payment_of(api, client, bank["id"]), lambda p: p["status"] in FINISHED)
        assert payment_of(api, client, bank["id"])["status"] == "completed"
        assert available(api, client) == Decimal("2100.00")

        # 3. A large withdrawal needs two different finance officers.
        out = request(
            api,
            "/v1/me/withdrawals",
            client,
            {
                "provider": "bankco",
                "amount": "1500.00",
                "currency": "USD",
                "beneficiary_name": "Erika Mustermann",
                "beneficiary_account": IBAN,
            },
        )
        wait_for(
            lambda: payment_of(api, client, out["id"]), lambda p: p["status"] == "pending_approval"
        )
        path = f"/v1/finance/withdrawals/{out['id']}/decision"
        first = api.post(path, json={"approve": True, "reason": "known client"}, headers=finance_a)
        assert first.status_code == 200, first.text
        assert first.json()["approvals"] == 1
        twice = api.post(path, json={"approve": True, "reason": "me again"}, headers=finance_a)
        assert twice.status_code == 409, twice.text
        second = api.post(path, json={"approve": True, "reason": "agreed"}, headers=finance_b)
        assert second.status_code == 200, second.text
        sent = wait_for(
            lambda: finance_view(api, finance_a, out["id"]),
            lambda p: p["status"] == "payout_sent" and p["provider_ref"],
        )
        psp_sim.settle(sent["provider_ref"])
        wait_for(lambda: payment_of(api, client, out["id"]), lambda p: p["status"] in FINISHED)
        assert payment_of(api, client, out["id"])["status"] == "completed"
        assert available(api, client) == Decimal("600.00")
        late = api.post(path, json={"approve": True, "reason": "late"}, headers=finance_b)
        assert late.status_code == 409
        notes = api.get("/v1/me/notifications", headers=client).json()
        assert notes, "the client heard about its money"

    def test_a_forged_webhook_is_stored_as_rejected(self, api: httpx.Client, stack: Stack) -> None:
        finance = staff_headers(stack, api, StaffRole.FINANCE)
        body = b'{"id": "evt_forged", "type": "payment_intent.succeeded"}'
        forged = api.post(
            "/v1/webhooks/cardco",
            content=body,
            headers={"CardCo-Signature": f"t={int(time.time())},v1={'0' * 64}"},
        )
        assert forged.status_code == 400
        rejected = api.get(
            "/v1/finance/webhook-events", params={"outcome": "rejected"}, headers=finance
        ).json()
        assert any("signature" in (e["reason"] or "") for e in rejected)
