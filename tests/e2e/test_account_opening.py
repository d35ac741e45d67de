"""Sign-up to a demo MT5 login, through HTTP, on the real stack."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.helpers import (
    new_applicant,
    sign_up_and_log_in,
    simulator_deals,
    simulator_users,
    wait_for_account,
)
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e


@pytest.fixture
def api(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.api_url, timeout=30) as client:
        yield client


class TestSignUpOpensADemoAccount:
    def test_the_client_reads_its_new_mt5_login(self, api: httpx.Client, stack: Stack) -> None:
        accepted, headers = sign_up_and_log_in(api, account_type="pro")
        account = wait_for_account(api, headers)

        assert account["server"] == "demo"
        assert account["group"] == "demo\\pro"
        assert account["leverage"] == 500
        assert account["kind"] == "demo"
        [user] = [
            u
            for u in simulator_users(stack.simulator.base_url)
            if int(u["Login"]) == account["login"]
        ]
        assert user["Group"] == "demo\\pro"
        assert int(user["Leverage"]) == 500
        deposits = [
            d
            for d in simulator_deals(stack.simulator.base_url, account["login"])
            if int(d["Action"]) == 2
        ]
        assert len(deposits) == 1
        application = api.get(f"/v1/me/applications/{accepted['application_id']}", headers=headers)
        assert application.json()["status"] == "completed"

    def test_credentials_are_handed_over_exactly_once(self, api: httpx.Client) -> None:
        _, headers = sign_up_and_log_in(api)
        login = wait_for_account(api, headers)["login"]
        first = api.post(f"/v1/me/accounts/{login}/credentials", headers=headers)
        assert first.status_code == 200, first.text
        assert first.json()["login"] == login and len(first.json()["password"]) >= 8
        again = api.post(f"/v1/me/accounts/{login}/credentials", headers=headers)
        assert again.status_code == 410
        assert again.headers["content-type"] == "application/problem+json"


class TestBadSignUpsWriteNothing:
    @pytest.mark.parametrize(
        ("override", "field"),
        [
            ({"country": "XX"}, "country"),
            ({"date_of_birth": "2015-01-01"}, "date_of_birth"),
            ({"password": "short"}, "password"),
            ({"email": "not-an-email"}, "email"),
        ],
    )
    def test_rejected_with_a_reason(
        self, api: httpx.Client, override: dict[str, str], field: str
    ) -> None:
        applicant = new_applicant(**override)
        response = api.post("/v1/signup", json=applicant)
        assert response.status_code == 422, response.text
        assert field in response.text
        login = api.post(
            "/v1/auth/client/login",
            json={"email": applicant["email"], "password": applicant["password"]},
        )
        assert login.status_code in (401, 422)

    def test_a_second_sign_up_with_the_same_email_is_a_conflict(self, api: httpx.Client) -> None:
        applicant = new_applicant()
        assert api.post("/v1/signup", json=applicant).status_code == 202
        again = api.post("/v1/signup", json={**applicant, "email": applicant["email"].upper()})
        assert again.status_code == 409


class TestTransientMt5Errors:
    def test_are_retried_by_temporal_until_the_account_opens(
        self, api: httpx.Client, stack: Stack
    ) -> None:
        stack.simulator.inject_faults(
            {"path": "/api/user/add", "mode": "retcode", "retcode": 12, "times": 1},
            {"path": "/api/trade/balance", "mode": "retcode", "retcode": 10, "times": 1},
        )
        try:
            _, headers = sign_up_and_log_in(api)
            login = wait_for_account(api, headers)["login"]
            assert stack.simulator.fault_hits() == 2
        finally:
            stack.simulator.clear_faults()
        [user] = [u for u in simulator_users(stack.simulator.base_url) if int(u["Login"]) == login]
        assert user["Balance"] == "10000.00"
