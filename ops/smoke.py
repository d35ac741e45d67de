"""`make smoke`: one client's way through a running stack, over HTTP only.

Signs up a fresh client (random e-mail), logs in, and polls `/v1/me/accounts` until the
account-opening workflow has given it a demo MT5 login. Then, when the seed's credentials file
is there (`<data dir>/dev-credentials.txt`, or `--credentials`), it logs in as the demo auditor
(read-only, and nobody's working identity, so the TOTP code it spends is in nobody's way) and
checks the consoles have something to work on: the finance approvals queue holds a withdrawal
waiting for four-eyes and a deposit held for compliance (the seed's demo activity). Exit 0 on
success; exit 1 with the reason otherwise (2 if the API cannot be reached at all). Nothing
secret is printed.

    python -m ops.smoke [--base-url http://127.0.0.1:8000] [--timeout 60] [--credentials FILE]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import os
import random
import secrets
import string
import struct
import sys
import time
from pathlib import Path
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


def default_credentials() -> Path | None:
    try:
        from settings import get_settings

        return Path(get_settings().data_dir) / "dev-credentials.txt"
    except Exception:
        return None


AUDITOR = "auditor@brokerflow.example"


def staff_credentials(text: str, email: str) -> tuple[str, str]:
    """`email`'s password and TOTP secret from the seed's credentials file (the layout
    `ops.seed.write_credentials` writes: a `staff EMAIL password P` line, then `TOTP secret S`)."""
    lines = text.splitlines()
    for number, line in enumerate(lines):
        words = line.split()
        if words[:2] == ["staff", email] and len(words) >= 4 and words[2] == "password":
            following = lines[number + 1].split() if number + 1 < len(lines) else []
            if following[:2] == ["TOTP", "secret"] and len(following) >= 3:
                return words[3], following[2]
    raise SmokeFailure(f"no password and TOTP secret for {email} in the credentials file")


def totp_now(secret: str, at: float | None = None) -> str:
    """The RFC 6238 code (SHA-1, 6 digits, 30 s) the authenticator app would show."""
    key = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    counter = int((time.time() if at is None else at) // 30)
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    code = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{code % 1_000_000:06d}"


def check_consoles(
    base_url: str,
    credentials: str,
    log: Any = print,
    *,
    transport: httpx.BaseTransport | None = None,
) -> dict[str, int]:
    """The seed's demo activity as the consoles show it; raises SmokeFailure if a queue is empty.
    Returns how many items of each kind the approvals queue holds."""
    password, secret = staff_credentials(credentials, AUDITOR)
    with httpx.Client(base_url=base_url, timeout=15.0, transport=transport) as http:
        # A code logs in once: when an earlier smoke spent this step's, the next step's (the
        # server allows one step of drift) serves.
        for at in (time.time(), time.time() + 30):
            login = http.post(
                "/v1/auth/staff/login",
                json={"email": AUDITOR, "password": password, "totp_code": totp_now(secret, at)},
            )
            if login.status_code != 401:
                break
        if login.status_code != 200:
            # Not _describe: the request carried a password; the answer does not.
            raise SmokeFailure(
                f"the demo auditor could not log in: {login.status_code} {login.text[:300]}"
            )
        auth = {"Authorization": f"Bearer {_json(login).get('access_token')}"}
        approvals = http.get("/v1/finance/approvals", headers=auth)
        if approvals.status_code != 200:
            raise SmokeFailure(f"the approvals queue did not answer: {_describe(approvals)}")
        items = _json(approvals)
        if not isinstance(items, list):
            raise SmokeFailure(f"/v1/finance/approvals is not a list: {_describe(approvals)}")
        found = {
            "withdrawals pending approval": sum(
                1
                for i in items
                if i.get("direction") == "withdrawal" and i.get("status") == "pending_approval"
            ),
            "deposits held for compliance": sum(
                1 for i in items if i.get("direction") == "deposit" and i.get("status") == "held"
            ),
        }
        empty = [what for what, count in found.items() if count == 0]
        if empty:
            raise SmokeFailure(
                f"the finance approvals queue has no {' and no '.join(empty)}: the seed's demo"
                " activity did not reach it (see .data/logs/seed.log)"
            )
        log("consoles: " + ", ".join(f"{count} {what}" for what, count in found.items()))
        return found


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
    parser.add_argument(
        "--credentials",
        type=Path,
        default=None,
        help="the seed's credentials file (default: <data dir>/dev-credentials.txt); without"
        " it the consoles are not checked",
    )
    args = parser.parse_args(argv)
    base_url = args.base_url or default_base_url()
    credentials = args.credentials or default_credentials()
    started = time.monotonic()
    try:
        account = run(base_url, args.timeout)
        if credentials is not None and credentials.is_file():
            check_consoles(base_url, credentials.read_text(encoding="utf-8"))
        else:
            print(f"consoles not checked: no credentials file at {credentials}")
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
