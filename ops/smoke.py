"""`make smoke`: one client's way through a running stack, over HTTP only.

Signs up a fresh client (random e-mail), logs in, and polls `/v1/me/accounts` until the
account-opening workflow has given it a demo MT5 login. Exit 0 and print the login on success;
exit 1 with the reason otherwise (2 if the API cannot be reached at all).

    python -m ops.smoke [--base-url http://127.0.0.1:8000] [--timeout 60]
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import string
import sys
import time
from typing import Any

import httpx


class SmokeFailure(Exception):
    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def default_base_url() -> str:
    explicit = os.environ.get("BROKERFLOW_SMOKE_BASE_URL")
    if explicit:
        return explicit
    try:
        from settings import get_settings

        settings = get_settings()
        host = settings.api_host if settings.api_host not in {"0.0.0.0", "::", ""} else "127.0.0.1"
        return f"http://{host}:{settings.api_port}"
    except Exception:
        return "http://127.0.0.1:8000"


def _describe(response: httpx.Response) -> str:
    body = response.text
    if len(body) > 500:
        body = body[:500] + "..."
    request = response.request
    return f"{request.method} {request.url.path} -> {response.status_code}: {body}"


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise SmokeFailure(f"not JSON: {_describe(response)}") from None


def run(
    base_url: str,
    timeout: float,
    log: Any = print,
    *,
    interval: float = 1.0,
    transport: httpx.BaseTransport | None = None,
) -> dict[str, Any]:
    """The smoke run itself; returns the demo account, raises SmokeFailure."""
    tag = secrets.token_hex(6)
    email = f"smoke-{tag}@example.com"
    password = f"Smoke-{tag}-Aa1!"
    with httpx.Client(base_url=base_url, timeout=15.0, transport=transport) as http:
        try:
            health = http.get("/healthz")
        except httpx.HTTPError as exc:
            raise SmokeFailure(f"the API at {base_url} is not reachable: {exc!r}", code=2) from None
        if health.status_code != 200:
            raise SmokeFailure(f"the API is not healthy: {_describe(health)}")

        signup = http.post(
            "/v1/signup",
            json={
                "email": email,
                "password": password,
                # A new person each run: BrokerFlow refuses the same name and birth date twice.
                "full_name": "Smoke " + "".join(random.choices(string.ascii_lowercase, k=8)),
                "country": "GB",
                "nationality": "GB",
                "date_of_birth": f"19{random.randint(50, 99)}-0{random.randint(1, 9)}-15",
                "phone": "+447911123456",
                "address": {"line1": "1 Smoke Lane", "city": "London", "postal_code": "SW1A 1AA"},
                "account_type": "standard",
            },
        )
        if signup.status_code != 202:
            raise SmokeFailure(f"sign-up was not accepted: {_describe(signup)}")
        application = _json(signup)
        log(f"signed up {email}: {application}")

        login = http.post("/v1/auth/client/login", json={"email": email, "password": password})
        if login.status_code != 200:
            raise SmokeFailure(f"login failed: {_describe(login)}")
        token = _json(login).get("access_token")
        if not token:
            raise SmokeFailure(f"login gave no access_token: {_describe(login)}")
        auth = {"Authorization": f"Bearer {token}"}
        log("logged in; waiting for the demo account")

        deadline = time.monotonic() + timeout
        last = ""
        while True:
            accounts = http.get("/v1/me/accounts", headers=auth)
            if accounts.status_code != 200:
                raise SmokeFailure(f"listing accounts failed: {_describe(accounts)}")
            body = _json(accounts)
            if not isinstance(body, list):
                raise SmokeFailure(f"/v1/me/accounts is not a list: {_describe(accounts)}")
            demo = [a for a in body if isinstance(a, dict) and a.get("kind") == "demo"]
            if demo:
                account = demo[0]
                if not isinstance(account.get("login"), int):
                    raise SmokeFailure(f"the demo account has no integer login: {account}")
                return account
            last = accounts.text
            if time.monotonic() > deadline:
                raise SmokeFailure(
                    f"no demo account within {timeout:.0f}s (application "
                    f"{application.get('application_id')}; last answer {last})"
                )
            time.sleep(interval)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ops.smoke", description=__doc__)
    parser.add_argument("--base-url", default=None, help="the API (default: from settings)")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for MT5")
    args = parser.parse_args(argv)
    base_url = args.base_url or default_base_url()
    started = time.monotonic()
    try:
        account = run(base_url, args.timeout)
    except SmokeFailure as exc:
        print(f"SMOKE FAILED: {exc}", file=sys.stderr)
        return exc.code
    except httpx.HTTPError as exc:
        print(f"SMOKE FAILED: HTTP error talking to {base_url}: {exc!r}", file=sys.stderr)
        return 1
    elapsed = time.monotonic() - started
    print(
        f"SMOKE OK in {elapsed:.1f}s: demo login {account['login']} on {account.get('server')} "
        f"(group {account.get('group')}, leverage 1:{account.get('leverage')})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
