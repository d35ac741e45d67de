"""A payout left `needs_attention` is paid again by finance in one action (the route), through
its `IbPayoutAgain` workflow on a real Temporal: four-eyes above the threshold, each approval
audited with its officer, a resent request answered as the first, the same officer twice and
a payout that does not need attention refused, and the payment made once."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.ib_management import IbManagementSteps
from activities.ib_payout import ib_wallet
from api.app import create_app
from api.ib.payouts import finance_router
from api.temporal import TemporalConnector
from contracts import TASK_QUEUE
from contracts.ib_payout import (
    PayoutResult,
    PayoutStatus,
    ib_payout_again_workflow_id,
)
from contracts.steps import Step, implementations
from db.ledger import balance
from db.models import AuditEntry
from db.models.ib import IbPayout
from db.sealed import SecretBox
from domain.roles import StaffRole
from settings import IbRules, Settings
from tests.conftest import FLEET_NAMESPACE, app_client
from tests.ib_payout.opened import REFUSED, first_week_payouts, own_namespace, refused_by_mt5
from tests.support.people import People
from tests.support.waiting import eventually
from tests.workflows.money_fakes import replay
from workflows.ib_payout import IbPayoutAgainWorkflow


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The API with four-eyes above 50: D's 106.50 USD needs two officers."""
    app = create_app(settings.model_copy(update={"ib": IbRules(four_eyes_above=Decimal(50))}))
    if not any(getattr(r, "path", "").endswith("/pay-again") for r in app.routes):
        app.include_router(finance_router)
    async for client in app_client(app):
        yield client


async def test_finance_pays_a_payout_needing_attention_again_once_with_four_eyes(
    api: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    temporal_env: WorkflowEnvironment,
) -> None:
    opened = await first_week_payouts(sessions, settings)
    temporal = await own_namespace(temporal_env)
    steps, d_payout, s_payout = opened.steps, opened.of("D"), opened.of("S")
    await refused_by_mt5(sessions, d_payout)  # D is paid to its wallet now: finance corrected it
    people = People(sessions, SecretBox(settings.secrets_key), api)
    first = await people.staff(StaffRole.FINANCE)
    second = await people.staff(StaffRole.FINANCE)
    support = await people.staff(StaffRole.SUPPORT)
    api._transport.app.state.brokerflow.temporal = TemporalConnector(  # type: ignore[attr-defined]
        "unused", FLEET_NAMESPACE, client=temporal
    )
    url = f"/v1/finance/ib-payouts/{d_payout}/pay-again"
    body = {"reason": "IB's destination corrected to its wallet"}

    def asked(person: object, request_id: str) -> dict[str, str]:
        return {**person.headers, "X-Request-ID": request_id}  # type: ignore[attr-defined]

    async with Worker(
        temporal,
        task_queue=TASK_QUEUE,
        workflows=[IbPayoutAgainWorkflow],
        activities=list(implementations(Step, steps, IbManagementSteps(sessions)).values()),
    ):
        assert (await api.post(url, json=body, headers=support.headers)).status_code == 403
        not_waiting = await api.post(
            f"/v1/finance/ib-payouts/{s_payout}/pay-again", json=body, headers=first.headers
        )
        assert not_waiting.status_code == 409, not_waiting.text
        request_id = uuid.uuid4().hex
        asked_once = await api.post(url, json=body, headers=asked(first, request_id))
        assert asked_once.status_code == 200, asked_once.text
        assert asked_once.json() | {"payout_id": None} == {
            "payout_id": None,
            "status": "needs_attention",
            "approvals": 1,
            "needed": 2,
        }
        # The same request resent: the first answer, not a second approval.
        resent = await api.post(url, json=body, headers=asked(first, request_id))
        assert resent.status_code == 200 and resent.json() == asked_once.json()
        twice = await api.post(url, json=body, headers=asked(first, uuid.uuid4().hex))
        assert twice.status_code == 409 and "a second officer must" in twice.text
        seconded = await api.post(url, json=body, headers=asked(second, uuid.uuid4().hex))
        assert seconded.status_code == 200, seconded.text
        assert (seconded.json()["status"], seconded.json()["approvals"]) == ("approved", 2)

        async def paid() -> bool:
            async with sessions() as session:
                payout = await session.get(IbPayout, d_payout)
                return payout is not None and payout.status == "paid"

        await eventually(paid, "the payout paid again", timeout=30)
        after = await api.post(url, json=body, headers=asked(second, uuid.uuid4().hex))
        assert after.status_code == 409 and "is paid" in after.text
        run = temporal.get_workflow_handle(
            ib_payout_again_workflow_id(d_payout), result_type=PayoutResult
        )
        assert (await run.result()).status is PayoutStatus.PAID
        # Its history (the start with the first approval, the second, the payment) replays.
        await replay(run, IbPayoutAgainWorkflow)

    async with sessions() as session:
        payout = await session.get(IbPayout, d_payout)
        assert payout is not None and payout.ledger_key == f"ib-payout:{d_payout}"
        wallet = ib_wallet(opened.ibs["D"], "USD")
        assert (await balance(session, wallet, "USD")).amount == Decimal("-106.50")
        entries = list(
            await session.scalars(
                select(AuditEntry)
                .where(AuditEntry.entity_id == str(d_payout))
                .order_by(AuditEntry.id)
            )
        )
        by_action = {e.action: e for e in entries}
        requested = by_action["ib_payout.pay_again_requested"]
        approved = by_action["ib_payout.pay_again_approved"]
        assert (requested.actor_kind, requested.actor_id) == ("staff", str(first.id))
        assert requested.before == {"status": "needs_attention", "reason": REFUSED}
        assert requested.reason == body["reason"]
        approved_after = approved.after or {}
        assert (approved.actor_id, approved_after["status"]) == (str(second.id), "approved")
        assert approved_after["pay_again_approved_by"] == [str(first.id), str(second.id)]
        assert by_action["ib_payout.paid"].before == {"status": "approved"}
        assert [e.action for e in entries].count("ib_payout.pay_again_requested") == 1
