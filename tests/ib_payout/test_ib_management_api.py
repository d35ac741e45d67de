"""IB management through the API on a real database: the tree (a cycle refused with 409), an
IB's plan, frequency and payout destination, plans and their versions (only in the future),
the plan preview (the same answer as `python -m ib.preview`, 422 with a reason on a bad
document, nothing stored), and fraud flags: stored by the cycle's step once per evidence,
listed for finance (with a payout's IB), cleared by a finance officer. Every change has its
audit row with the staff actor, before and after."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import ActivityEnvironment

from activities.ib_management import IbManagementSteps
from activities.ib_payout import IbPayoutSteps
from contracts.ib_payout import AccrualRequest, FraudCheck, PayoutFrequency, PayoutPeriod
from db.models import AuditEntry, Client
from db.models.ib import IbCommission, IbFraudFlag, IbPayout, IntroducingBroker
from db.models.security import AuthSession
from db.sealed import SecretBox
from domain.ib.commissions import PreviewInput, preview
from domain.roles import StaffRole
from settings import Settings
from storage.documents import LocalFileStore
from tests.ib_payout.scene import T0, Scene, trade, version
from tests.support.people import People

EXAMPLE = Path(__file__).parents[2] / "docs" / "examples" / "ib-preview.json"
FUTURE = 4_102_444_800  # 2100-01-01


async def audit_of(
    sessions: async_sessionmaker[AsyncSession], action: str, entity_id: str
) -> list[AuditEntry]:
    async with sessions() as session:
        return list(
            await session.scalars(
                select(AuditEntry).where(
                    AuditEntry.action == action, AuditEntry.entity_id == entity_id
                )
            )
        )


async def audit_count(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(AuditEntry)) or 0)


def new_ib(code: str, **extra: Any) -> dict[str, Any]:
    return {
        "email": f"{code.lower()}@example.com",
        "name": f"IB {code}",
        "password": "Correct-Horse-Battery-9",
        "referral_code": code,
        **extra,
    }


async def test_tree_terms_and_plans(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    people = People(sessions, SecretBox(settings.secrets_key), api)
    admin = await people.staff(StaffRole.ADMIN)
    finance = await people.staff(StaffRole.FINANCE)

    # A plan and its first version (finance), then IBs placed under each other (admin).
    terms = version(1, T0, "4", "100")
    created = await api.post(
        "/v1/ibs/plans",
        json={"id": "direct", "name": "Direct", "terms": terms, "reason": "new plan"},
        headers=finance.headers,
    )
    assert created.status_code == 201, created.text
    assert [v["version"] for v in created.json()["versions"]] == [1]
    [plan_row] = await audit_of(sessions, "ib_plan.created", "direct")
    assert plan_row.actor_kind == "staff" and plan_row.actor_id == str(finance.id)
    assert plan_row.after == {"name": "Direct", "version": 1, "from": T0}
    again = await api.post(
        "/v1/ibs/plans",
        json={"id": "direct", "name": "Direct", "terms": terms, "reason": "new plan"},
        headers=finance.headers,
    )
    assert again.status_code == 409
    bad = await api.post(
        "/v1/ibs/plans",
        json={"id": "bad", "name": "Bad", "terms": {**terms, "counting": "x"}, "reason": "try"},
        headers=finance.headers,
    )
    assert bad.status_code == 422 and "terms.counting" in bad.text

    a = await api.post("/v1/ibs", json=new_ib("AAA", plan_id="direct"), headers=admin.headers)
    assert a.status_code == 201, a.text
    a_id = a.json()["id"]
    b = await api.post("/v1/ibs", json=new_ib("BBB", parent_id=a_id), headers=admin.headers)
    b_id = b.json()["id"]
    c = await api.post("/v1/ibs", json=new_ib("CCC", parent_id=b_id), headers=admin.headers)
    c_id = c.json()["id"]
    assert (a.json()["plan_id"], c.json()["parent_id"]) == ("direct", b_id)

    # A under C would make A → B → C → A: refused, nothing written.
    before = await audit_count(sessions)
    cycle = await api.put(
        f"/v1/ibs/{a_id}/parent", json={"parent_id": c_id, "reason": "x" * 5}, headers=admin.headers
    )
    assert cycle.status_code == 409 and "cycle" in cycle.json()["detail"]
    itself = await api.put(
        f"/v1/ibs/{a_id}/parent", json={"parent_id": a_id, "reason": "x" * 5}, headers=admin.headers
    )
    assert itself.status_code == 409
    assert await audit_count(sessions) == before
    moved = await api.put(
        f"/v1/ibs/{c_id}/parent",
        json={"parent_id": None, "reason": "left B's team"},
        headers=admin.headers,
    )
    assert moved.status_code == 200 and moved.json()["parent_id"] is None
    [row] = await audit_of(sessions, "ib.parent_set", c_id)
    assert row.before is not None and row.after is not None
    assert (row.before["parent_id"], row.after["parent_id"], row.reason) == (
        b_id,
        None,
        "left B's team",
    )
    missing = await api.put(
        f"/v1/ibs/{c_id}/parent",
        json={"parent_id": str(uuid.uuid4()), "reason": "typo"},
        headers=admin.headers,
    )
    assert missing.status_code == 404

    # Terms: plan, frequency, and an MT5 account BrokerFlow opened as the destination.
    await Scene(sessions).account(7_700_100, "USD")
    changed = await api.patch(
        f"/v1/ibs/{b_id}",
        json={
            "plan_id": "direct",
            "payout_frequency": "weekly",
            "payout_to": {"kind": "mt5", "server": "demo", "login": 7_700_100},
            "reason": "paid to its trading account",
        },
        headers=admin.headers,
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["payout_mt5_login"], changed.json()["payout_frequency"]) == (
        7_700_100,
        "weekly",
    )
    [terms_row] = await audit_of(sessions, "ib.terms_set", b_id)
    assert terms_row.before is not None and terms_row.after is not None
    assert (terms_row.before["payout_to"], terms_row.after["payout_to"]) == (
        "wallet",
        "mt5:demo/7700100",
    )
    assert (terms_row.before["plan_id"], terms_row.after["plan_id"]) == (None, "direct")
    unknown = await api.patch(
        f"/v1/ibs/{b_id}",
        json={"payout_to": {"kind": "mt5", "server": "demo", "login": 1}, "reason": "typo"},
        headers=admin.headers,
    )
    assert unknown.status_code == 404
    half = await api.patch(
        f"/v1/ibs/{b_id}",
        json={"payout_to": {"kind": "mt5"}, "reason": "typo"},
        headers=admin.headers,
    )
    assert half.status_code == 422
    nothing = await api.patch(f"/v1/ibs/{b_id}", json={"reason": "noop"}, headers=admin.headers)
    assert nothing.status_code == 422

    # A new version takes effect in the future only, and after the newest one.
    past = await api.post(
        "/v1/ibs/plans/direct/versions",
        json={"terms": version(2, T0 + 10, "5", "100"), "reason": "raise"},
        headers=finance.headers,
    )
    assert past.status_code == 422 and "future" in past.json()["detail"]
    added = await api.post(
        "/v1/ibs/plans/direct/versions",
        json={"terms": version(7, FUTURE, "5", "100"), "reason": "raise from 2100"},
        headers=finance.headers,
    )
    assert added.status_code == 201, added.text
    assert (added.json()["version"], added.json()["effective_from"]) == (2, FUTURE)
    [version_row] = await audit_of(sessions, "ib_plan.version_added", "direct")
    assert (version_row.before, version_row.after) == (
        {"version": 1, "from": T0},
        {"version": 2, "from": FUTURE},
    )
    same = await api.post(
        "/v1/ibs/plans/direct/versions",
        json={"terms": version(3, FUTURE, "6", "100"), "reason": "again"},
        headers=finance.headers,
    )
    assert same.status_code == 409
    listed = await api.get("/v1/ibs/plans", headers=finance.headers)
    assert [v["version"] for v in listed.json()[0]["versions"]] == [1, 2]


async def test_the_plan_preview_answers_as_the_command_does(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    people = People(sessions, SecretBox(settings.secrets_key), api)
    auditor = await people.staff(StaffRole.AUDITOR)
    text = EXAMPLE.read_text()
    expected = preview(
        PreviewInput.model_validate(json.loads(text, parse_float=Decimal))
    ).model_dump(mode="json")
    before = await audit_count(sessions)
    answer = await api.post(
        "/v1/ibs/plan-preview",
        content=text,
        headers={**auditor.headers, "Content-Type": "application/json"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == expected
    document = json.loads(text)
    document["ibs"]["D"]["plan"] = "nope"
    refused = await api.post("/v1/ibs/plan-preview", json=document, headers=auditor.headers)
    assert refused.status_code == 422
    assert "nope" in refused.json()["detail"]
    not_json = await api.post(
        "/v1/ibs/plan-preview",
        content="{not json",
        headers={**auditor.headers, "Content-Type": "application/json"},
    )
    assert 400 <= not_json.status_code < 500
    assert await audit_count(sessions) == before


async def test_fraud_flags_are_stored_once_listed_and_cleared(
    api: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession], settings: Settings
) -> None:
    scene = Scene(sessions)
    await scene.plan("direct", version(1, T0, "4", "100"))
    ib = await scene.ib("D", "direct")
    await scene.account(1001)
    await scene.attribute(1001, ib, T0)
    # Twelve round trips held 65 s, just above the plan's 60 s minimum hold.
    await scene.write_deals(
        d
        for n in range(12)
        for d in (
            trade(10 + 2 * n, T0 + 1000 * n, 0, 0, 10000, "1.10000", 900 + n),
            trade(11 + 2 * n, T0 + 1000 * n + 65, 1, 1, 10000, "1.10010", 900 + n, closed=10000),
        )
    )
    async with sessions.begin() as session:
        ib_row = await session.get(IntroducingBroker, ib)
        assert ib_row is not None
        owner = await session.scalar(select(Client.id).where(Client.email.like("c1001-%")))
        assert owner is not None
        # The client has the IB's e-mail in another case, and logged in from its address.
        await session.execute(
            update(Client).where(Client.id == owner).values(email=ib_row.email.upper())
        )
        for kind, subject in (("ib", ib), ("client", owner)):
            session.add(
                AuthSession(
                    principal_kind=kind,
                    subject_id=subject,
                    refresh_hash=uuid.uuid4().hex,
                    refresh_expires_at=ib_row.created_at,
                    ip="203.0.113.9",
                )
            )
        payout = IbPayout(
            ib_id=ib,
            period_start=T0,
            period_end=T0 + 86400,
            amount=Decimal("1"),
            currency="USD",
            rows=1,
            status="statement_ready",
        )
        session.add(payout)
    steps = IbManagementSteps(sessions)
    check = FraudCheck(start=T0, end=T0 + 86400)
    first = await ActivityEnvironment().run(steps.flag_ib_fraud, check)
    assert (first.flags, first.ibs) == (3, 1)
    second = await ActivityEnvironment().run(steps.flag_ib_fraud, check)
    assert second.flags == 0  # the same evidence is the same flag

    people = People(sessions, SecretBox(settings.secrets_key), api)
    finance = await people.staff(StaffRole.FINANCE)
    auditor = await people.staff(StaffRole.AUDITOR)
    listed = await api.get(
        "/v1/ibs/fraud-flags", params={"payout_id": str(payout.id)}, headers=auditor.headers
    )
    assert listed.status_code == 200, listed.text
    flags = {f["rule"]: f for f in listed.json()}
    assert set(flags) == {"self_referral_identity", "self_referral_ip", "commission_farming"}
    farming = flags["commission_farming"]
    assert farming["evidence"]["just_above"] == 12 and farming["login"] == 1001
    assert "203.0.113.9" in flags["self_referral_ip"]["detail"]
    raised = await audit_of(sessions, "ib_fraud_flag.raised", str(farming["id"]))
    assert len(raised) == 1 and raised[0].actor_kind == "system"

    flag_id = flags["self_referral_ip"]["id"]
    refused = await api.post(
        f"/v1/ibs/fraud-flags/{flag_id}/clear", json={"reason": "x" * 5}, headers=auditor.headers
    )
    assert refused.status_code == 403
    cleared = await api.post(
        f"/v1/ibs/fraud-flags/{flag_id}/clear",
        json={"reason": "shared office, checked"},
        headers=finance.headers,
    )
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["cleared_by"] == str(finance.id)
    [row] = await audit_of(sessions, "ib_fraud_flag.cleared", str(flag_id))
    assert (row.actor_id, row.reason) == (str(finance.id), "shared office, checked")
    assert row.before is not None and row.after is not None
    assert (row.before["cleared"], row.after["cleared"]) == (False, True)
    twice = await api.post(
        f"/v1/ibs/fraud-flags/{flag_id}/clear", json={"reason": "again"}, headers=finance.headers
    )
    assert twice.status_code == 409
    open_now = await api.get(
        "/v1/ibs/fraud-flags", params={"ib_id": str(ib)}, headers=finance.headers
    )
    assert {f["rule"] for f in open_now.json()} == {"self_referral_identity", "commission_farming"}
    # Cleared stays cleared: the next check does not raise the same evidence again.
    assert (await ActivityEnvironment().run(steps.flag_ib_fraud, check)).flags == 0
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(IbFraudFlag)) == 3


async def test_a_payout_mt5_refused_is_released_to_the_next_cycle(
    api: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
    tmp_path: Path,
) -> None:
    scene = Scene(sessions)
    await scene.plan("direct", version(1, T0, "4", "100"))
    ib = await scene.ib("R", "direct")
    await scene.account(1101)
    await scene.attribute(1101, ib, T0)
    await scene.write_deals(
        [
            trade(70, T0 + 100, 0, 0, 10000, "1.10000", 970, login=1101),
            trade(71, T0 + 500, 1, 1, 10000, "1.10010", 970, login=1101, closed=10000),
        ]
    )
    steps = IbPayoutSteps(sessions, LocalFileStore(tmp_path))
    week = 7 * 24 * 3600
    activity = ActivityEnvironment()
    await activity.run(
        steps.accrue_ib_commissions, AccrualRequest(start=T0, end=T0 + week, history_from=T0)
    )
    opened = await activity.run(
        steps.open_ib_payouts,
        PayoutPeriod(frequency=PayoutFrequency.WEEKLY, start=T0, end=T0 + week),
    )
    [payout_id] = opened.payouts
    people = People(sessions, SecretBox(settings.secrets_key), api)
    finance = await people.staff(StaffRole.FINANCE)
    release = f"/v1/finance/ib-payouts/{payout_id}/release"
    why = {"reason": "MT5 account closed; the IB is paid to its wallet now"}

    waiting = await api.post(release, json=why, headers=finance.headers)
    assert waiting.status_code == 409 and "needs attention" in waiting.json()["detail"]

    async with sessions.begin() as session:
        await session.execute(
            update(IbPayout).where(IbPayout.id == payout_id).values(status="needs_attention")
        )
    compliance = await people.staff(StaffRole.COMPLIANCE)
    assert (await api.post(release, json=why, headers=compliance.headers)).status_code == 403
    released = await api.post(release, json=why, headers=finance.headers)
    assert released.status_code == 200, released.text
    assert released.json()["status"] == "rejected"
    async with sessions() as session:
        rows = list(
            await session.scalars(select(IbCommission.payout_id).where(IbCommission.ib_id == ib))
        )
    assert rows and set(rows) == {None}  # back to the next cycle
    [entry] = await audit_of(sessions, "ib_payout.released", str(payout_id))
    assert entry.actor_id == str(finance.id) and entry.reason == why["reason"]
    assert entry.before and entry.before["status"] == "needs_attention"
    assert (await api.post(release, json=why, headers=finance.headers)).status_code == 409
