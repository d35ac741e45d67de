"""On the real stack (API, worker, Temporal dev server, PSP simulator): a deposit request answers
with its transfer reference (update-with-start) and a repeat of it is the same deposit; a
withdrawal waiting for four-eyes approval is listed by a visibility query on its status search
attribute (the query operations run in the Temporal UI, docs/payments.md); a second transfer on
the deposit's reference, credited to the client by finance, is found by its `UF…` reference and
status and among the client's workflows (docs/unmatched-funds.md)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from contracts.funds import CLIENT_ID, MOVEMENT_STATUS, PAYMENT_REFERENCE, stuck_since
from contracts.unmatched_funds import RESOLVE_UNMATCHED
from contracts.withdrawal import WITHDRAWAL
from domain.payments import PaymentStatus, UnmatchedStatus
from domain.roles import StaffRole
from tests.e2e.test_payments_api import IBAN, approved_client, staff_headers
from tests.support.processes import PspSimulator
from tests.support.stack import Stack
from tests.support.waiting import eventually

pytestmark = pytest.mark.e2e


async def payment(api: httpx.AsyncClient, who: dict[str, str], payment_id: str) -> dict[str, Any]:
    response = await api.get(f"/v1/me/payments/{payment_id}", headers=who)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def listed(env: WorkflowEnvironment, query: str) -> set[str]:
    return {execution.id async for execution in env.client.list_workflows(query)}


async def test_a_deposit_answers_with_its_reference_and_a_waiting_withdrawal_is_listed_by_status(
    stack: Stack, psp_sim: PspSimulator, temporal_env: WorkflowEnvironment
) -> None:
    def sign_up() -> tuple[dict[str, str], dict[str, str]]:
        with httpx.Client(base_url=stack.api_url, timeout=30) as sync_api:
            return approved_client(sync_api, stack)

    client, _ = await asyncio.to_thread(sign_up)

    def finance_officer() -> dict[str, str]:
        with httpx.Client(base_url=stack.api_url, timeout=30) as sync_api:
            return staff_headers(stack, sync_api, StaffRole.FINANCE)

    finance = await asyncio.to_thread(finance_officer)
    async with httpx.AsyncClient(base_url=stack.api_url, timeout=30) as api:
        client_id = (await api.get("/v1/me", headers=client)).json()["id"]

        # 1. The bank reference comes in the request's own answer; the same key is the same deposit.
        body = {"provider": "bankco", "amount": "2000.00", "currency": "USD"}
        idem = {"Idempotency-Key": str(uuid.uuid4())}
        answer = await api.post("/v1/me/deposits", json=body, headers={**client, **idem})
        assert answer.status_code == 202, answer.text
        deposit = answer.json()
        assert deposit["status"] == "awaiting_funds" and deposit["transfer_reference"]
        again = await api.post("/v1/me/deposits", json=body, headers={**client, **idem})
        assert again.status_code == 202 and again.json()["id"] == deposit["id"]
        stored = await eventually(
            lambda: _with(api, client, deposit["id"], lambda p: p["transfer_reference"]),
            "the deposit's reference stored on the payment",
            30,
        )
        assert stored["transfer_reference"] == deposit["transfer_reference"]
        await asyncio.to_thread(
            psp_sim.incoming, deposit["transfer_reference"], "2000.00", "USD", "Erika Mustermann"
        )
        await eventually(
            lambda: _with(api, client, deposit["id"], lambda p: p["status"] == "completed"),
            "the deposit credited",
            60,
        )
        # A second transfer on the finished deposit's reference: queued, finance credits it.
        await asyncio.to_thread(
            psp_sim.incoming, deposit["transfer_reference"], "25.00", "USD", "Erika Mustermann"
        )
        item = await eventually(
            lambda: _queued(api, finance, deposit["transfer_reference"]),
            "the second transfer queued for finance",
            30,
        )
        credit = await api.post(
            f"/v1/finance/unmatched/{item['id']}/credit",
            json={"client_id": client_id, "reason": "the client's second transfer"},
            headers=finance,
        )
        assert credit.status_code == 202, credit.text

        # 2. A large withdrawal waits for two finance officers, and is listed as waiting.
        out = await api.post(
            "/v1/me/withdrawals",
            json={
                "provider": "bankco",
                "amount": "1500.00",
                "currency": "USD",
                "beneficiary_name": "Erika Mustermann",
                "beneficiary_account": IBAN,
            },
            headers={**client, "Idempotency-Key": str(uuid.uuid4())},
        )
        assert out.status_code == 202, out.text
        payment_id = out.json()["id"]
        withdrawal_id = f"withdrawal-{payment_id}"
        await eventually(
            lambda: _with(api, client, payment_id, lambda p: p["status"] == "pending_approval"),
            "the withdrawal waiting for approval",
            60,
        )

    waiting = stuck_since(
        WITHDRAWAL.name, PaymentStatus.PENDING_APPROVAL, datetime.now(UTC) + timedelta(minutes=1)
    )
    await eventually(
        lambda: _has(temporal_env, waiting, withdrawal_id),
        f"{withdrawal_id} listed by {waiting!r}",
        30,
    )
    # The resolution, by its item's reference and the status it reached.
    credited = (
        f"WorkflowType = '{RESOLVE_UNMATCHED.name}' AND {PAYMENT_REFERENCE.name} = "
        f"'{item['reference']}' AND {MOVEMENT_STATUS.name} = '{UnmatchedStatus.CREDITED.value}'"
    )
    [resolution] = await eventually(
        lambda: listed(temporal_env, credited), f"the resolution listed by {credited!r}", 30
    )
    mine = await listed(temporal_env, f"{CLIENT_ID.name} = '{client_id}'")
    assert mine == {withdrawal_id, f"deposit-{deposit['id']}", resolution}
    # Entered a minute ago at most: not among those stuck for more than a day.
    day_old = stuck_since(
        WITHDRAWAL.name, PaymentStatus.PENDING_APPROVAL, datetime.now(UTC) - timedelta(days=1)
    )
    assert withdrawal_id not in await listed(temporal_env, day_old)


async def _with(
    api: httpx.AsyncClient, who: dict[str, str], payment_id: str, done: Any
) -> dict[str, Any] | None:
    seen = await payment(api, who, payment_id)
    return seen if done(seen) else None


async def _queued(
    api: httpx.AsyncClient, finance: dict[str, str], reference: str
) -> dict[str, Any] | None:
    response = await api.get("/v1/finance/unmatched", params={"limit": 200}, headers=finance)
    assert response.status_code == 200, response.text
    return next((i for i in response.json() if i["event_reference"] == reference), None)


async def _has(env: WorkflowEnvironment, query: str, workflow_id: str) -> bool:
    return workflow_id in await listed(env, query)
