"""The IB payout routes: finance lists payouts, reads the statement and decides through the
payout's real workflow (audited); an IB logs in and reads its tree, its clients (masked), its
commission rows with traces and its own statements, never another IB's."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.ib_management import IbManagementSteps
from activities.ib_payout import accrue
from api.app import create_app
from api.ib.payouts import attribution_router, finance_router, portal_router
from api.security import hash_password
from api.temporal import TemporalConnector
from contracts.ib_payout import (
    IB_PAYOUT,
    PayoutInput,
    ib_payout_workflow_id,
)
from contracts.steps import Step, implementations
from db.models import AuditEntry
from db.models.ib import IbAttribution, IbPayout, IntroducingBroker
from db.sealed import SecretBox
from domain.roles import StaffRole
from settings import Settings
from tests.conftest import app_client
from tests.ib_payout.opened import first_week_payouts
from tests.ib_payout.scene import T0, example_scene
from tests.ib_payout.test_accrual import PERIOD, WEEK
from tests.support.people import PASSWORD, People
from tests.support.waiting import eventually
from workflows.ib_payout import IbPayoutWorkflow


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The API with the IB payout routers mounted (api/app.py mounts them once integrated)."""
    app = create_app(settings)
    app.include_router(finance_router)
    app.include_router(portal_router)
    app.include_router(attribution_router)
    async for client in app_client(app):
        yield client


async def log_in_ib(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], ib: uuid.UUID
) -> dict[str, str]:
    async with sessions.begin() as session:
        await session.execute(
            update(IntroducingBroker)
            .where(IntroducingBroker.id == ib)
            .values(password_hash=await hash_password(PASSWORD))
        )
        email = await session.scalar(
            select(IntroducingBroker.email).where(IntroducingBroker.id == ib)
        )
    response = await api.post("/v1/auth/ib/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def test_finance_and_the_ib_portal(
    api: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    temporal_env: WorkflowEnvironment,
) -> None:
    opened = await first_week_payouts(sessions, settings)
    ibs, steps, by_ib = opened.ibs, opened.steps, opened.payouts
    people = People(sessions, SecretBox(settings.secrets_key), api)
    finance = await people.staff(StaffRole.FINANCE)
    support = await people.staff(StaffRole.SUPPORT)

    listed = await api.get("/v1/finance/ib-payouts", headers=finance.headers)
    assert listed.status_code == 200, listed.text
    assert {p["status"] for p in listed.json()} == {"accrued"}
    assert (await api.get("/v1/finance/ib-payouts", headers=support.headers)).status_code == 403
    d_payout = by_ib[ibs["D"]]
    missing = await api.get(f"/v1/finance/ib-payouts/{d_payout}/statement", headers=finance.headers)
    assert missing.status_code == 404

    queue = f"ib-payout-api-{uuid.uuid4()}"
    api._transport.app.state.brokerflow.temporal = TemporalConnector(  # type: ignore[attr-defined]
        "unused", "default", client=temporal_env.client
    )
    async with Worker(
        temporal_env.client,
        task_queue=queue,
        workflows=[IbPayoutWorkflow],
        activities=list(implementations(Step, steps, IbManagementSteps(sessions)).values()),
    ):
        handle = await temporal_env.client.start_workflow(
            IB_PAYOUT.name,
            PayoutInput(payout_id=d_payout),
            id=ib_payout_workflow_id(d_payout),
            task_queue=queue,
        )

        async def ready() -> bool:
            async with sessions() as session:
                payout = await session.get(IbPayout, d_payout)
                return payout is not None and payout.status == "statement_ready"

        await eventually(ready, "D's statement rendered", timeout=60)
        pdf = await api.get(f"/v1/finance/ib-payouts/{d_payout}/statement", headers=finance.headers)
        assert pdf.status_code == 200
        assert pdf.headers["content-type"] == "application/pdf"
        assert pdf.content.startswith(b"%PDF-")

        decided = await api.post(
            f"/v1/finance/ib-payouts/{d_payout}/decision",
            json={"approve": True, "reason": "statement checked"},
            headers=finance.headers,
        )
        assert decided.status_code == 200, decided.text
        # 106.50 USD is below the default threshold of 1000: one approval pays it.
        assert decided.json()["status"] == "approved"
        assert (await handle.result())["status"] == "paid"
    async with sessions() as session:
        audited = await session.scalar(
            select(AuditEntry).where(
                AuditEntry.action == "ib_payout.approved", AuditEntry.entity_id == str(d_payout)
            )
        )
    assert audited is not None
    assert (audited.actor_kind, audited.actor_id) == ("staff", str(finance.id))

    # The IB portal, as M (top of the tree) and as D.
    m_headers = await log_in_ib(api, sessions, ibs["M"])
    d_headers = await log_in_ib(api, sessions, ibs["D"])
    tree = (await api.get("/v1/ib/tree", headers=m_headers)).json()
    assert [(t["id"], t["level"]) for t in tree] == [
        (str(ibs["M"]), 0),
        (str(ibs["S"]), 1),
        (str(ibs["D"]), 2),
    ]
    clients = (await api.get("/v1/ib/attributed-clients", headers=m_headers)).json()
    # "Client 1001" masked to its initials; no email, birth date or country.
    assert clients == [
        {
            "server": "demo",
            "login": 1001,
            "ib_id": str(ibs["D"]),
            "name": "C. 1.",
            "effective_from": T0,
            "effective_to": None,
        }
    ]
    rows = (await api.get("/v1/ib/commissions", headers=d_headers)).json()
    assert len(rows) == 5
    deal4 = next(r for r in rows if r["deal"] == 4)
    assert deal4["amount"] == "2.40000000"
    assert deal4["trace"]["row"]["volume_why"].startswith("INOUT: 0.60 closed")
    mine = (await api.get("/v1/ib/payouts", headers=d_headers)).json()
    assert [(p["id"], p["status"]) for p in mine] == [(str(d_payout), "paid")]
    own = await api.get(f"/v1/ib/payouts/{d_payout}/statement", headers=d_headers)
    assert own.status_code == 200 and own.content.startswith(b"%PDF-")
    others = await api.get(f"/v1/ib/payouts/{d_payout}/statement", headers=m_headers)
    assert others.status_code == 404
    assert (await api.get("/v1/ib/tree", headers=finance.headers)).status_code == 403


async def test_a_reassignment_starts_after_the_accrued_deals_and_is_audited(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    ibs = await example_scene(sessions)
    await accrue(sessions, PERIOD)
    people = People(sessions, SecretBox(settings.secrets_key), api)
    admin = await people.staff(StaffRole.ADMIN)
    finance = await people.staff(StaffRole.FINANCE)
    body = {
        "server": "demo",
        "login": 1001,
        "ib_id": str(ibs["S"]),
        "effective_from": T0 + 3000,
        "reason": "client asked to move to S",
    }
    # Deal 7 (T0 + 5000) is in the ledger already under D: moving the login before it is refused.
    refused = await api.post("/v1/ib-attributions", json=body, headers=admin.headers)
    assert refused.status_code == 409, refused.text
    assert (
        await api.post("/v1/ib-attributions", json=body, headers=finance.headers)
    ).status_code == 403
    moved = await api.post(
        "/v1/ib-attributions",
        json={**body, "effective_from": T0 + WEEK},
        headers=admin.headers,
    )
    assert moved.status_code == 201, moved.text
    async with sessions() as session:
        periods = (
            await session.execute(
                select(
                    IbAttribution.ib_id, IbAttribution.effective_from, IbAttribution.effective_to
                )
                .where(IbAttribution.login == 1001)
                .order_by(IbAttribution.effective_from)
            )
        ).all()
        audited = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "ib_attribution.assigned")
        )
    assert [tuple(p) for p in periods] == [
        (ibs["D"], T0, T0 + WEEK),
        (ibs["S"], T0 + WEEK, None),
    ]
    assert audited is not None
    assert audited.before == {"ib_id": str(ibs["D"]), "effective_from": T0}
    assert audited.actor_id == str(admin.id)
    # The period already accrued is unchanged by a recomputation: D keeps its rows.
    assert (await accrue(sessions, PERIOD)).rows == 0
