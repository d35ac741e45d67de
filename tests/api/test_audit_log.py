"""Every staff mutation leaves an audit row in its own transaction; the log cannot be changed."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from sqlalchemy import create_engine, func, pool, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.app import create_app
from db.models import AuditEntry
from domain.roles import StaffRole
from settings import Settings
from tests.api.test_access_matrix import admits_staff
from tests.support.database import ProvisionedDatabase
from tests.support.people import People

STRONG = "Another-Strong-9"


async def audit_rows(sessions: async_sessionmaker[AsyncSession], action: str) -> list[AuditEntry]:
    async with sessions() as session:
        return list(await session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


Mutations = dict[tuple[str, str], tuple[str, str]]
# Staff decisions on payments go to the payment's workflow as an update; the workflow's step
# records the decision and its audit row (staff actor, IP, request id) in the transaction of the
# status change, so the API writes none (tests/api/test_finance.py checks that it does not).
AUDITED_BY_THEIR_WORKFLOW = {
    ("POST", "/v1/finance/withdrawals/{payment_id}/decision"),
    ("POST", "/v1/compliance/deposits/{payment_id}/decision"),
    ("POST", "/console/withdrawals/{payment_id}/decision"),
    ("POST", "/console/deposits/{payment_id}/decision"),
    ("POST", "/v1/compliance/kyc/cases/{case_id}/decision"),
    ("POST", "/console/compliance/cases/{case_id}/decision"),
    ("POST", "/v1/compliance/account-changes/{change_id}/decision"),
    ("POST", "/v1/finance/ib-payouts/{payout_id}/decision"),
    ("POST", "/console/ib-payouts/{payout_id}/decision"),
    # Its workflow's step writes each approval's audit row (tests/ib_payout/test_pay_again.py).
    ("POST", "/v1/finance/ib-payouts/{payout_id}/pay-again"),
    # The console's form calls the same service (tests/ib_payout/test_pay_again_console.py).
    ("POST", "/console/ib-payouts/{payout_id}/pay-again"),
}
# Their audit entries (with before/after and the officer as actor) are asserted where their
# fixtures live: tests/api/test_kyc_cases_api.py.
AUDITED_IN_KYC_TESTS = {
    ("POST", "/v1/compliance/kyc/hits/{hit_id}"),
    ("POST", "/console/compliance/hits/{hit_id}"),
    ("POST", "/v1/compliance/screening/lists"),
    ("POST", "/v1/accounts/{account_id}/group"),
    ("POST", "/v1/accounts/{account_id}/trading"),
    ("POST", "/v1/accounts/{account_id}/close"),
}
# Finance resolving unmatched funds: the officer's audit row (before/after status, client,
# amount, reason) is asserted in tests/api/test_unmatched_funds.py, beside its fixtures.
AUDITED_IN_UNMATCHED_FUNDS_TESTS = {
    ("POST", "/v1/finance/unmatched/{item_id}/return"),
    ("POST", "/v1/finance/unmatched/{item_id}/credit"),
    # The console's forms go through the same service (tests/api/test_finance_console_pages.py).
    ("POST", "/console/finance/unmatched/{item_id}/return"),
    ("POST", "/console/finance/unmatched/{item_id}/credit"),
    # Resolving a finance case (officer, before/after, reason): the same test file; the
    # movement it moves on, with its own audit row: tests/api/test_finance_cases.py.
    ("POST", "/v1/finance/cases/{case_id}/resolve"),
    ("POST", "/console/finance/cases/{case_id}/resolve"),
}
# Lifting a log-in lock: its audit row (admin, reason, before/after) is asserted in
# tests/api/test_brute_force.py, which locks an account first with a clock it controls.
AUDITED_IN_SECURITY_TESTS = {
    ("POST", "/v1/security/locks/{lock_id}/unlock"),
}
# Password resets are anonymous routes (no staff policy), listed for the record: their audit rows
# (`staff.password_reset_requested`, `staff.password_reset` with the staff user as actor, the IB
# ones) are asserted in tests/api/test_staff_password_reset.py, which has the mailed token.
AUDITED_IN_RESET_TESTS = {
    ("POST", "/v1/auth/staff/password-reset"),
    ("POST", "/v1/auth/staff/password-reset/confirm"),
    ("POST", "/console/forgot-password"),
    ("POST", "/console/reset-password"),
}
# Reassigning a client to another IB: its audit row (admin, before/after attribution) is asserted
# in tests/ib_payout/test_payout_api.py, beside the IB tree it needs.
AUDITED_IN_IB_PAYOUT_TESTS = {("POST", "/v1/ib-attributions")}
# IB management (tree, terms, plans, fraud flags): each audit row (the staff actor, before and
# after, the reason) is asserted in tests/ib_payout/test_ib_management_api.py, beside the IBs,
# plans and flags it needs; the plan preview writes nothing (asserted there too).
AUDITED_IN_IB_MANAGEMENT_TESTS = {
    ("POST", "/v1/finance/ib-payouts/{payout_id}/release"),
    ("PUT", "/v1/ibs/{ib_id}/parent"),
    ("PATCH", "/v1/ibs/{ib_id}"),
    ("POST", "/v1/ibs/plans"),
    ("POST", "/v1/ibs/plans/{plan_id}/versions"),
    ("POST", "/v1/ibs/plan-preview"),
    ("POST", "/v1/ibs/fraud-flags/{flag_id}/clear"),
}

# The risk desk (books, thresholds, alerts acknowledged and resolved, API and console): each
# audit row (staff actor, request id, before/after) is asserted in tests/risk/test_risk_api.py,
# beside the exposure points and alerts it needs.
AUDITED_IN_RISK_TESTS = {
    ("PUT", "/v1/risk/books/{server}/{login}"),
    ("POST", "/v1/risk/thresholds"),
    ("POST", "/v1/risk/thresholds/{threshold_id}/deactivate"),
    ("POST", "/v1/risk/alerts/{alert_id}/acknowledge"),
    ("POST", "/v1/risk/alerts/{alert_id}/resolve"),
    ("POST", "/console/risk/alerts/{alert_id}/acknowledge"),
    ("POST", "/console/risk/alerts/{alert_id}/resolve"),
}
# Client profiles (the dealer accepts or overrides a suggested book, API and console): each audit
# row (staff actor, request id, before/after) is asserted in tests/profiling/test_profiles_api.py.
AUDITED_IN_PROFILE_TESTS = {
    ("POST", "/v1/profiles/{server}/{login}/accept"),
    ("POST", "/v1/profiles/{server}/{login}/override"),
    ("POST", "/console/profiles/{server}/{login}/accept"),
    ("POST", "/console/profiles/{server}/{login}/override"),
}
# The mirrored dealer-plugin rules (docs/revenue.md): the audit row (staff actor, request id,
# rules before and after) is asserted in tests/revenue/test_revenue_e2e.py.
AUDITED_IN_REVENUE_TESTS = {("PUT", "/v1/revenue/servers/{server}/dealer-rules")}
# Reconciliation (back-fill, sign-off, case assign/comment/adjustment proposed and approved, API
# and console): each audit row (finance officer, request id, before/after) is asserted in
# tests/reconciliation/test_cases_api.py, beside the runs and cases it needs (an entry rejected,
# a case reopened: tests/reconciliation/test_case_decisions.py).
AUDITED_IN_RECONCILIATION_TESTS = {
    ("POST", "/v1/reconciliation/runs"),
    ("POST", "/v1/reconciliation/runs/{run_id}/sign-off"),
    ("POST", "/v1/reconciliation/cases/{case_id}/assign"),
    ("POST", "/v1/reconciliation/cases/{case_id}/comments"),
    ("POST", "/v1/reconciliation/cases/{case_id}/adjustment"),
    ("POST", "/v1/reconciliation/cases/{case_id}/adjustment/approve"),
    ("POST", "/v1/reconciliation/cases/{case_id}/resolve"),
    ("POST", "/v1/reconciliation/cases/{case_id}/adjustment/reject"),
    ("POST", "/v1/reconciliation/cases/{case_id}/reopen"),
    ("POST", "/console/reconciliation/runs"),
    ("POST", "/console/reconciliation/runs/{run_id}/sign-off"),
    ("POST", "/console/reconciliation/cases/{case_id}/assign"),
    ("POST", "/console/reconciliation/cases/{case_id}/comment"),
    ("POST", "/console/reconciliation/cases/{case_id}/adjustment"),
    ("POST", "/console/reconciliation/cases/{case_id}/approve"),
    ("POST", "/console/reconciliation/cases/{case_id}/resolve"),
    ("POST", "/console/reconciliation/cases/{case_id}/reject"),
    ("POST", "/console/reconciliation/cases/{case_id}/reopen"),
}


async def staff_mutations(api: httpx.AsyncClient, people: People) -> tuple[Mutations, str]:
    """One real call per staff mutation route, (method, route) -> (action, entity); request id."""
    admin = await people.staff(StaffRole.ADMIN)
    compliance = await people.staff(StaffRole.COMPLIANCE)
    finance = await people.staff(StaffRole.FINANCE)
    target = await people.staff(StaffRole.SUPPORT)
    client = await people.client()
    request_id = {"X-Request-ID": f"req-{uuid.uuid4().hex[:8]}"}

    async def call(
        method: str, path: str, body: dict[str, Any], who: dict[str, str]
    ) -> httpx.Response:
        response = await api.request(method, path, json=body, headers={**who, **request_id})
        assert response.status_code < 300, response.text
        return response

    created = await call(
        "POST",
        "/v1/staff/users",
        {
            "email": "new.officer@example.com",
            "full_name": "New Officer",
            "password": STRONG,
            "roles": ["compliance"],
            "ip_allowlist": ["10.0.0.0/8"],
        },
        admin.headers,
    )
    await call(
        "PATCH", f"/v1/staff/users/{target.id}", {"roles": ["support", "finance"]}, admin.headers
    )
    ib = await call(
        "POST",
        "/v1/ibs",
        {
            "email": "ib.new@example.com",
            "name": "New IB",
            "password": STRONG,
            "referral_code": "NEWIB",
        },
        admin.headers,
    )
    await call(
        "POST",
        f"/v1/ibs/{ib.json()['id']}/referral-code",
        {"reason": "the code leaked"},
        admin.headers,
    )
    await call(
        "POST",
        f"/v1/clients/{client.id}/status",
        {"status": "blocked", "reason": "suspected account takeover"},
        compliance.headers,
    )
    rate = await call(
        "POST",
        "/v1/finance/fx-rates",
        {"base": "EUR", "quote": "USD", "bid": "1.0840", "ask": "1.0844"},
        finance.headers,
    )
    await call(
        "PUT",
        f"/v1/compliance/clients/{client.id}/kyc",
        {"kyc_status": "approved", "screening_status": "clear", "reason": "passport checked"},
        compliance.headers,
    )
    leaver = await people.staff(StaffRole.SUPPORT)
    await call("POST", "/v1/auth/logout", {"everywhere": True}, leaver.headers)
    return {
        ("POST", "/v1/auth/logout"): ("auth.logged_out", str(leaver.id)),
        ("POST", "/v1/finance/fx-rates"): ("fx_rate.set", str(rate.json()["id"])),
        ("PUT", "/v1/compliance/clients/{client_id}/kyc"): ("client.kyc_updated", str(client.id)),
        ("POST", "/v1/staff/users"): ("staff.created", created.json()["id"]),
        ("PATCH", "/v1/staff/users/{staff_id}"): ("staff.updated", str(target.id)),
        ("POST", "/v1/ibs"): ("ib.created", ib.json()["id"]),
        ("POST", "/v1/ibs/{ib_id}/referral-code"): (
            "ib.referral_code_regenerated",
            ib.json()["id"],
        ),
        ("POST", "/v1/clients/{client_id}/status"): ("client.blocked", str(client.id)),
        ("POST", "/v1/auth/staff/login"): ("staff.logged_in", str(admin.id)),
    }, request_id["X-Request-ID"]


async def test_every_staff_mutation_is_audited_with_before_and_after(
    api: httpx.AsyncClient,
    people: People,
    sessions: async_sessionmaker[AsyncSession],
    settings: Settings,
) -> None:
    calls, request_id = await staff_mutations(api, people)
    app = create_app(settings)
    mutating_staff_routes = {
        (next(iter(r.methods)), r.path)
        for r in app.routes
        if isinstance(r, APIRoute)
        and r.methods & {"POST", "PATCH", "PUT", "DELETE"}
        and admits_staff(r)
    }
    # A new staff mutation without a case here fails the test.
    assert mutating_staff_routes <= (
        set(calls)
        | AUDITED_BY_THEIR_WORKFLOW
        | AUDITED_IN_KYC_TESTS
        | AUDITED_IN_UNMATCHED_FUNDS_TESTS
        | AUDITED_IN_SECURITY_TESTS
        | AUDITED_IN_IB_PAYOUT_TESTS
        | AUDITED_IN_IB_MANAGEMENT_TESTS
        | AUDITED_IN_RESET_TESTS
        | AUDITED_IN_RISK_TESTS
        | AUDITED_IN_RECONCILIATION_TESTS
        | AUDITED_IN_PROFILE_TESTS
        | AUDITED_IN_REVENUE_TESTS
    )
    for (_, path), (action, entity_id) in calls.items():
        rows = [r for r in await audit_rows(sessions, action) if r.entity_id == entity_id]
        assert len(rows) == 1, (path, action)
        row = rows[0]
        assert row.actor_kind == "staff" and row.actor_id and row.actor_roles
        assert row.ip == "127.0.0.1"
        if action != "staff.logged_in":
            assert row.request_id == request_id
            assert row.after
    [update] = await audit_rows(sessions, "staff.updated")
    assert update.before == {"roles": ["support"], "ip_allowlist": ["127.0.0.1/32"], "active": True}
    assert update.after and update.after["roles"] == ["finance", "support"]
    [block] = await audit_rows(sessions, "client.blocked")
    assert (block.before, block.after, block.reason) == (
        {"status": "active"},
        {"status": "blocked"},
        "suspected account takeover",
    )


async def test_a_refused_mutation_writes_no_audit_row(
    api: httpx.AsyncClient, people: People, sessions: async_sessionmaker[AsyncSession]
) -> None:
    admin = await people.staff(StaffRole.ADMIN)
    body = {"email": "dup@example.com", "name": "Dup", "password": STRONG, "referral_code": "DUP1"}
    assert (await api.post("/v1/ibs", json=body, headers=admin.headers)).status_code == 201
    again = await api.post("/v1/ibs", json={**body, "referral_code": "DUP2"}, headers=admin.headers)
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    assert len(await audit_rows(sessions, "ib.created")) == 1


@pytest.mark.parametrize(
    "statement",
    ["UPDATE audit_log SET action = 'forged'", "DELETE FROM audit_log", "TRUNCATE audit_log"],
)
async def test_the_app_role_cannot_change_the_log(
    statement: str,
    people: People,
    api: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await people.staff(StaffRole.ADMIN)  # its login writes a row
    async with sessions() as session:
        with pytest.raises(DBAPIError, match="permission denied"):
            await session.execute(text(statement))
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(AuditEntry)) == 1


def test_not_even_the_owner_can_rewrite_history(test_db: ProvisionedDatabase) -> None:
    engine = create_engine(test_db.owner_url, poolclass=pool.NullPool)
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO audit_log (actor_kind, actor_roles, action, entity_type, entity_id)"
                " VALUES ('system', '{}', 'test', 'thing', '1')"
            )
        )
    for statement in (
        "UPDATE audit_log SET action = 'x'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
            connection.execute(text(statement))
    engine.dispose()


async def test_auditors_search_the_log_and_clients_cannot(
    api: httpx.AsyncClient, people: People
) -> None:
    auditor = await people.staff(StaffRole.AUDITOR)
    client = await people.client()
    page = await api.get(
        "/v1/audit", params={"action": "staff.logged_in", "limit": 1}, headers=auditor.headers
    )
    assert page.status_code == 200
    assert [e["actor_id"] for e in page.json()["items"]] == [str(auditor.id)]
    assert (await api.get("/v1/audit", headers=client.headers)).status_code == 403
