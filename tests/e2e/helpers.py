"""Driving the running stack the way a client does: over HTTP."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx

from tests.support.people import applicant

PASSWORD = "Str0ng-enough-pw"


def new_applicant(**overrides: Any) -> dict[str, Any]:
    """A complete sign-up body; its date of birth differs from every other applicant's of the
    run, so applicants sharing a name are not refused as the same person."""
    body = applicant(email=f"e2e-{uuid.uuid4().hex[:10]}@example.com", password=PASSWORD)
    body.update(overrides)
    return body


def sign_up_and_log_in(
    api: httpx.Client, **overrides: Any
) -> tuple[dict[str, Any], dict[str, str]]:
    applicant = new_applicant(**overrides)
    response = api.post("/v1/signup", json=applicant)
    assert response.status_code == 202, response.text
    token = api.post(
        "/v1/auth/client/login",
        json={"email": applicant["email"], "password": applicant["password"]},
    )
    assert token.status_code == 200, token.text
    return response.json(), {"Authorization": f"Bearer {token.json()['access_token']}"}


def wait_for_account(
    api: httpx.Client, headers: dict[str, str], timeout: float = 90
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        accounts = api.get("/v1/me/accounts", headers=headers)
        assert accounts.status_code == 200, accounts.text
        if accounts.json():
            return dict(accounts.json()[0])
        time.sleep(0.3)
    raise TimeoutError("no MT5 account appeared")


def simulator_users(base_url: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{base_url}/_sim/state/users", verify=False, timeout=10)
    response.raise_for_status()
    body = response.json()
    return list(body["users"] if isinstance(body, dict) else body)


def simulator_deals(base_url: str, login: int) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{base_url}/_sim/state/deals", params={"login": login}, verify=False, timeout=10
    )
    response.raise_for_status()
    body = response.json()
    return list(body["deals"] if isinstance(body, dict) else body)
