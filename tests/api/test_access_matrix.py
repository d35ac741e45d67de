"""Every route against every kind of principal: a route without a policy, or a policy that lets the
wrong people in, fails here."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from api.app import create_app
from api.policy import Policy, PublicPolicy
from domain.roles import PrincipalKind, StaffRole
from settings import Settings
from tests.conftest import app_client
from tests.support.people import People


def policies_of(dependant: Dependant) -> Iterator[Policy | PublicPolicy]:
    for dependency in dependant.dependencies:
        if isinstance(dependency.call, Policy | PublicPolicy):
            yield dependency.call
        yield from policies_of(dependency)


def routes_without_exactly_one_policy(app: FastAPI) -> list[str]:
    return [
        f"{sorted(route.methods)} {route.path}"
        for route in app.routes
        if isinstance(route, APIRoute) and len(set(policies_of(route.dependant))) != 1
    ]


def policy_of(route: APIRoute) -> Policy | PublicPolicy:
    [policy] = set(policies_of(route.dependant))
    return policy


def admits_staff(route: APIRoute) -> bool:
    policy = policy_of(route)
    return isinstance(policy, Policy) and bool(policy.staff_roles)


def concrete_path(route: APIRoute) -> str:
    path = route.path
    for name in route.param_convertors:
        path = path.replace(f"{{{name}}}", "5000123" if name == "login" else str(uuid.uuid4()))
    return path


@dataclass(frozen=True)
class Caller:
    label: str
    kind: PrincipalKind | None
    roles: frozenset[StaffRole]
    headers: dict[str, str]


@pytest.fixture
async def callers(people: People) -> list[Caller]:
    result = [Caller("anonymous", None, frozenset(), {})]
    client = await people.client()
    result.append(Caller("client", PrincipalKind.CLIENT, frozenset(), client.headers))
    ib = await people.ib()
    result.append(Caller("ib", PrincipalKind.IB, frozenset(), ib.headers))
    for role in StaffRole:
        staff = await people.staff(role)
        result.append(Caller(role.value, PrincipalKind.STAFF, frozenset({role}), staff.headers))
    return result


def admitted(policy: Policy | PublicPolicy, caller: Caller) -> bool:
    if isinstance(policy, PublicPolicy):
        return True
    return caller.kind is not None and policy.admits(caller.kind, caller.roles)


class TestEveryRouteDeclaresOnePolicy:
    def test_the_app(self, settings: Settings) -> None:
        assert routes_without_exactly_one_policy(create_app(settings)) == []

    def test_the_check_catches_a_route_that_lost_its_policy(self, settings: Settings) -> None:
        app = create_app(settings)
        unguarded = APIRouter()

        @unguarded.get("/v1/forgotten")
        async def forgotten() -> dict[str, str]:
            return {}

        app.include_router(unguarded)
        assert routes_without_exactly_one_policy(app) == ["['GET'] /v1/forgotten"]

    def test_the_check_catches_a_policy_removed_from_an_existing_route(
        self, settings: Settings
    ) -> None:
        app = create_app(settings)
        route = next(r for r in app.routes if isinstance(r, APIRoute) and r.path == "/v1/audit")
        route.dependant.dependencies = [
            d
            for d in route.dependant.dependencies
            if not set(policies_of(Dependant(dependencies=[d])))
        ]
        assert routes_without_exactly_one_policy(app) == ["['GET'] /v1/audit"]


# Written out by hand so the matrix cannot simply agree with itself.
FINANCE_READERS = {"admin", "finance", "compliance", "auditor"}
REVENUE_READERS = {"admin", "dealer", "risk", "finance", "auditor"}
EVERYONE = {"anonymous", "client", "ib", *(role.value for role in StaffRole)}
EXPECTED = {
    ("GET", "/v1/audit"): {"admin", "auditor"},
    ("GET", "/v1/staff/users"): {"admin"},
    ("POST", "/v1/staff/users"): {"admin"},
    ("PATCH", "/v1/staff/users/{staff_id}"): {"admin"},
    ("GET", "/v1/security/locks"): {"admin"},
    ("POST", "/v1/auth/refresh"): EVERYONE,
    ("POST", "/v1/auth/password-reset"): EVERYONE,
    ("POST", "/v1/auth/password-reset/confirm"): EVERYONE,
    ("POST", "/v1/auth/staff/password-reset"): EVERYONE,
    ("POST", "/v1/auth/staff/password-reset/confirm"): EVERYONE,
    ("POST", "/v1/auth/ib/password-reset"): EVERYONE,
    ("POST", "/v1/auth/ib/password-reset/confirm"): EVERYONE,
    ("POST", "/v1/auth/logout"): EVERYONE - {"anonymous"},
    ("POST", "/v1/security/locks/{lock_id}/unlock"): {"admin"},
    ("POST", "/v1/ibs"): {"admin"},
    ("GET", "/v1/ibs"): {"admin", "finance", "auditor"},
    # IB management: admins place IBs and set their terms, finance officers own the plans and
    # clear fraud flags, finance readers preview plans and read the flags.
    ("PUT", "/v1/ibs/{ib_id}/parent"): {"admin"},
    ("PATCH", "/v1/ibs/{ib_id}"): {"admin"},
    ("POST", "/v1/ibs/{ib_id}/referral-code"): {"admin"},
    ("GET", "/v1/ibs/plans"): {"admin", "finance", "auditor"},
    ("POST", "/v1/ibs/plans"): {"finance"},
    ("POST", "/v1/ibs/plans/{plan_id}/versions"): {"finance"},
    ("POST", "/v1/ibs/plan-preview"): FINANCE_READERS,
    ("GET", "/v1/ibs/fraud-flags"): FINANCE_READERS,
    ("POST", "/v1/ibs/fraud-flags/{flag_id}/clear"): {"finance"},
    ("POST", "/v1/clients/{client_id}/status"): {"admin", "compliance"},
    ("GET", "/v1/clients"): {
        "admin",
        "compliance",
        "support",
        "finance",
        "risk",
        "dealer",
        "auditor",
    },
    ("GET", "/v1/me/accounts"): {"client"},
    ("POST", "/v1/me/accounts/{login}/credentials"): {"client"},
    ("GET", "/v1/ib/clients"): {"ib"},
    ("GET", "/v1/finance/ib-payouts"): FINANCE_READERS,
    ("GET", "/v1/finance/ib-payouts/{payout_id}"): FINANCE_READERS,
    ("GET", "/v1/finance/ib-payouts/{payout_id}/statement"): FINANCE_READERS,
    ("POST", "/v1/finance/ib-payouts/{payout_id}/decision"): {"finance"},
    ("POST", "/v1/finance/ib-payouts/{payout_id}/release"): {"finance"},
    ("POST", "/v1/finance/ib-payouts/{payout_id}/pay-again"): {"finance"},
    ("POST", "/v1/ib-attributions"): {"admin"},
    ("GET", "/v1/ib/tree"): {"ib"},
    ("GET", "/v1/ib/attributed-clients"): {"ib"},
    ("GET", "/v1/ib/commissions"): {"ib"},
    ("GET", "/v1/ib/payouts"): {"ib"},
    ("GET", "/v1/ib/payouts/{payout_id}/statement"): {"ib"},
    # payments: clients for their own money
    ("POST", "/v1/me/deposits"): {"client"},
    ("POST", "/v1/me/withdrawals"): {"client"},
    ("POST", "/v1/me/transfers"): {"client"},
    ("GET", "/v1/me/payments/{payment_id}"): {"client"},
    ("GET", "/v1/me/transfers"): {"client"},
    ("GET", "/v1/me/wallets"): {"client"},
    ("GET", "/v1/me/notifications"): {"client"},
    # processors sign their webhooks; the route itself is open
    ("POST", "/v1/webhooks/{provider}"): EVERYONE,
    # finance views: read by those who answer for money, changed by exactly one desk each
    ("GET", "/v1/finance/payments"): FINANCE_READERS,
    ("GET", "/v1/finance/payments/{payment_id}"): FINANCE_READERS,
    ("GET", "/v1/finance/approvals"): FINANCE_READERS,
    ("GET", "/v1/finance/cases"): FINANCE_READERS,
    ("GET", "/v1/finance/unmatched"): FINANCE_READERS,
    ("POST", "/v1/finance/unmatched/{item_id}/return"): {"finance"},
    ("POST", "/v1/finance/unmatched/{item_id}/credit"): {"finance"},
    ("POST", "/v1/finance/cases/{case_id}/resolve"): {"finance"},
    ("GET", "/console/finance/cases"): FINANCE_READERS,
    ("GET", "/console/finance/cases/{case_id}"): FINANCE_READERS,
    ("POST", "/console/finance/cases/{case_id}/resolve"): {"finance"},
    ("GET", "/console/finance/unmatched"): FINANCE_READERS,
    ("GET", "/console/finance/unmatched/{item_id}"): FINANCE_READERS,
    ("POST", "/console/finance/unmatched/{item_id}/credit"): {"finance"},
    ("POST", "/console/finance/unmatched/{item_id}/return"): {"finance"},
    ("GET", "/v1/finance/ledger/accounts"): FINANCE_READERS,
    ("GET", "/v1/finance/ledger/accounts/{code}/entries"): FINANCE_READERS,
    ("GET", "/v1/finance/fx-rates"): FINANCE_READERS,
    ("GET", "/v1/finance/webhook-events"): FINANCE_READERS,
    ("POST", "/v1/finance/fx-rates"): {"admin", "finance"},
    ("POST", "/v1/finance/withdrawals/{payment_id}/decision"): {"finance"},
    ("POST", "/v1/compliance/deposits/{payment_id}/decision"): {"compliance"},
    ("PUT", "/v1/compliance/clients/{client_id}/kyc"): {"compliance"},
    ("GET", "/console/finance"): FINANCE_READERS,
    ("GET", "/console/ledger"): FINANCE_READERS,
    ("POST", "/console/withdrawals/{payment_id}/decision"): {"finance"},
    ("POST", "/console/deposits/{payment_id}/decision"): {"compliance"},
    ("POST", "/console/login"): EVERYONE,
    ("GET", "/console/ib-payouts"): FINANCE_READERS,
    ("GET", "/console/ib-payouts/{payout_id}"): FINANCE_READERS,
    ("GET", "/console/ib-payouts/{payout_id}/statement"): FINANCE_READERS,
    ("POST", "/console/ib-payouts/{payout_id}/decision"): {"finance"},
    ("POST", "/console/ib-payouts/{payout_id}/pay-again"): {"finance"},
    ("POST", "/console/ib/login"): EVERYONE,
    ("POST", "/console/forgot-password"): EVERYONE,
    ("POST", "/console/reset-password"): EVERYONE,
    ("POST", "/console/ib/forgot-password"): EVERYONE,
    ("POST", "/console/ib/reset-password"): EVERYONE,
    ("GET", "/console/ib"): {"ib"},
    ("GET", "/console/ib/clients"): {"ib"},
    ("GET", "/console/ib/commissions"): {"ib"},
    ("GET", "/console/ib/payouts"): {"ib"},
    ("GET", "/console/ib/payouts/{payout_id}/statement"): {"ib"},
    ("GET", "/console/ingestion"): {"admin", "dealer", "risk", "auditor"},
    # reporting (issue 16): finance, management (admin) and the auditor read; nobody writes
    ("GET", "/v1/analytics/revenue"): {"admin", "finance", "auditor"},
    ("GET", "/v1/analytics/lifetime-value"): {"admin", "finance", "auditor"},
    ("GET", "/v1/analytics/regions"): {"admin", "finance", "auditor"},
    ("GET", "/v1/analytics/ib-contribution"): {"admin", "finance", "auditor"},
    ("GET", "/v1/analytics/client-money"): {"admin", "finance", "auditor"},
    ("GET", "/v1/analytics/export/{report}"): {"admin", "finance", "auditor"},
    ("GET", "/v1/analytics/report.pdf"): {"admin", "finance", "auditor"},
    ("GET", "/console/reports"): {"admin", "finance", "auditor"},
    ("GET", "/console/reports/export/{report}"): {"admin", "finance", "auditor"},
    ("GET", "/console/reports/report.pdf"): {"admin", "finance", "auditor"},
    # The risk desk: dealers and risk (and admins) act, the auditor reads.
    ("PUT", "/v1/risk/books/{server}/{login}"): {"admin", "dealer", "risk"},
    ("GET", "/v1/risk/books/{server}"): {"admin", "dealer", "risk", "auditor"},
    ("POST", "/v1/risk/thresholds"): {"admin", "dealer", "risk"},
    ("GET", "/v1/risk/thresholds"): {"admin", "dealer", "risk", "auditor"},
    ("POST", "/v1/risk/thresholds/{threshold_id}/deactivate"): {"admin", "dealer", "risk"},
    ("GET", "/v1/risk/alerts"): {"admin", "dealer", "risk", "auditor"},
    ("POST", "/v1/risk/alerts/{alert_id}/acknowledge"): {"admin", "dealer", "risk"},
    ("POST", "/v1/risk/alerts/{alert_id}/resolve"): {"admin", "dealer", "risk"},
    ("GET", "/v1/risk/exposure"): {"admin", "dealer", "risk", "auditor"},
    ("GET", "/console/risk"): {"admin", "dealer", "risk", "auditor"},
    ("GET", "/console/risk/live"): {"admin", "dealer", "risk", "auditor"},
    ("GET", "/console/risk/stream"): {"admin", "dealer", "risk", "auditor"},
    ("POST", "/console/risk/alerts/{alert_id}/acknowledge"): {"admin", "dealer", "risk"},
    ("POST", "/console/risk/alerts/{alert_id}/resolve"): {"admin", "dealer", "risk"},
    # Client profiles (issue 15): the risk desk decides a book, the auditor reads.
    ("GET", "/v1/profiles"): {"admin", "dealer", "risk", "auditor"},
    ("GET", "/v1/profiles/{server}/{login}"): {"admin", "dealer", "risk", "auditor"},
    ("POST", "/v1/profiles/{server}/{login}/accept"): {"admin", "dealer", "risk"},
    ("POST", "/v1/profiles/{server}/{login}/override"): {"admin", "dealer", "risk"},
    ("GET", "/console/profiles"): {"admin", "dealer", "risk", "auditor"},
    ("POST", "/console/profiles/{server}/{login}/accept"): {"admin", "dealer", "risk"},
    ("POST", "/console/profiles/{server}/{login}/override"): {"admin", "dealer", "risk"},
    # Dealer-plugin revenue (issue 15): the risk desk keeps the mirrored rules; finance and the
    # auditor read the figures with it.
    ("GET", "/v1/revenue/servers/{server}/dealer-rules"): REVENUE_READERS,
    ("PUT", "/v1/revenue/servers/{server}/dealer-rules"): {"admin", "dealer", "risk"},
    ("GET", "/v1/revenue/servers/{server}/deals"): REVENUE_READERS,
    ("GET", "/v1/revenue/servers/{server}/summary"): REVENUE_READERS,
    ("GET", "/v1/revenue/servers/{server}/slippage"): REVENUE_READERS,
    ("GET", "/v1/revenue/servers/{server}/mirror"): REVENUE_READERS,
    ("GET", "/console/revenue"): REVENUE_READERS,
    # Reconciliation (issue 16): finance readers read runs, cases and reports; finance acts.
    ("GET", "/v1/reconciliation/runs"): FINANCE_READERS,
    ("POST", "/v1/reconciliation/runs"): {"finance"},
    ("GET", "/v1/reconciliation/runs/{run_id}"): FINANCE_READERS,
    ("GET", "/v1/reconciliation/runs/{run_id}/report.pdf"): FINANCE_READERS,
    ("GET", "/v1/reconciliation/runs/{run_id}/report.csv"): FINANCE_READERS,
    ("POST", "/v1/reconciliation/runs/{run_id}/sign-off"): {"finance"},
    ("GET", "/v1/reconciliation/cases"): FINANCE_READERS,
    ("GET", "/v1/reconciliation/cases/{case_id}"): FINANCE_READERS,
    ("POST", "/v1/reconciliation/cases/{case_id}/assign"): {"finance"},
    ("POST", "/v1/reconciliation/cases/{case_id}/comments"): {"finance"},
    ("POST", "/v1/reconciliation/cases/{case_id}/adjustment"): {"finance"},
    ("POST", "/v1/reconciliation/cases/{case_id}/adjustment/approve"): {"finance"},
    ("POST", "/v1/reconciliation/cases/{case_id}/resolve"): {"finance"},
    ("POST", "/v1/reconciliation/cases/{case_id}/adjustment/reject"): {"finance"},
    ("POST", "/v1/reconciliation/cases/{case_id}/reopen"): {"finance"},
    ("GET", "/console/reconciliation"): FINANCE_READERS,
    ("POST", "/console/reconciliation/runs"): {"finance"},
    ("GET", "/console/reconciliation/runs/{run_id}"): FINANCE_READERS,
    ("GET", "/console/reconciliation/runs/{run_id}/report.pdf"): FINANCE_READERS,
    ("GET", "/console/reconciliation/runs/{run_id}/report.csv"): FINANCE_READERS,
    ("POST", "/console/reconciliation/runs/{run_id}/sign-off"): {"finance"},
    ("GET", "/console/reconciliation/cases"): FINANCE_READERS,
    ("GET", "/console/reconciliation/cases/{case_id}"): FINANCE_READERS,
    ("POST", "/console/reconciliation/cases/{case_id}/assign"): {"finance"},
    ("POST", "/console/reconciliation/cases/{case_id}/comment"): {"finance"},
    ("POST", "/console/reconciliation/cases/{case_id}/adjustment"): {"finance"},
    ("POST", "/console/reconciliation/cases/{case_id}/approve"): {"finance"},
    ("POST", "/console/reconciliation/cases/{case_id}/resolve"): {"finance"},
    ("POST", "/console/reconciliation/cases/{case_id}/reject"): {"finance"},
    ("POST", "/console/reconciliation/cases/{case_id}/reopen"): {"finance"},
    # onboarding: the mailed link is open (the token is the credential), the rest is the client's
    ("GET", "/v1/verify-email"): EVERYONE,
    ("POST", "/v1/me/email/verification"): {"client"},
    ("GET", "/v1/me/questionnaire"): {"client"},
    ("PUT", "/v1/me/questionnaire"): {"client"},
    ("POST", "/v1/me/documents"): {"client"},
    ("GET", "/v1/me/documents"): {"client"},
    ("POST", "/v1/me/kyc"): {"client"},
    ("GET", "/v1/me/kyc"): {"client"},
    ("POST", "/v1/me/kyc/info"): {"client"},
    ("POST", "/v1/me/accounts/{login}/leverage"): {"client"},
    ("POST", "/v1/me/accounts/{login}/close"): {"client"},
    ("GET", "/v1/me/account-changes"): {"client"},
}


async def test_every_route_admits_exactly_its_principals(
    settings: Settings, callers: list[Caller], api: httpx.AsyncClient
) -> None:
    app = create_app(settings)
    routes = [r for r in app.routes if isinstance(r, APIRoute)]
    wrong: list[str] = []
    for route in routes:
        policy = policy_of(route)
        [method] = route.methods
        path = concrete_path(route)
        body: dict[str, str] | None = {} if method in {"POST", "PATCH", "PUT"} else None
        expected_labels = EXPECTED.get((method, route.path))
        for caller in callers:
            should_pass = admitted(policy, caller)
            if expected_labels is not None:
                assert should_pass == (caller.label in expected_labels), (route.path, caller.label)
            response = await api.request(method, path, json=body, headers=caller.headers)
            if should_pass and response.status_code in (401, 403):
                wrong.append(
                    f"{method} {route.path} refused {caller.label}: {response.status_code}"
                )
            if not should_pass:
                expected_status = 401 if caller.kind is None else 403
                if response.status_code != expected_status:
                    wrong.append(
                        f"{method} {route.path} let {caller.label} through: {response.status_code}"
                    )
    assert wrong == []
    assert {(m, p) for m, p in EXPECTED} <= {(next(iter(r.methods)), r.path) for r in routes}


async def test_staff_outside_their_allowlist_are_refused_everywhere(
    settings: Settings, people: People
) -> None:
    admin = await people.staff(*StaffRole, allowlist=["10.1.0.0/16", "127.0.0.1/32"])
    app = create_app(settings)
    staff_routes = [r for r in app.routes if isinstance(r, APIRoute) and admits_staff(r)]
    async for outsider in app_client(app, ip="192.0.2.7"):
        for route in staff_routes:
            [method] = route.methods
            response = await outsider.request(
                method,
                concrete_path(route),
                json={} if method != "GET" else None,
                headers=admin.headers,
            )
            assert response.status_code == 403, route.path
            assert "192.0.2.7" in response.json()["detail"]
    async for insider in app_client(app, ip="10.1.2.3"):
        assert (await insider.get("/v1/audit", headers=admin.headers)).status_code == 200
