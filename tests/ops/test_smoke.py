"""ops.smoke against a fake API: the script's logic, not the stack (`make smoke` does that)."""

from __future__ import annotations

import json

import httpx
import pytest

from ops import smoke


def fake_api(accounts_after: int, signup_status: int = 202) -> httpx.MockTransport:
    polls = 0
    state: dict[str, str] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/healthz":
            return httpx.Response(200, json={"status": "ok"})
        if path == "/v1/signup" and request.method == "POST":
            body = json.loads(request.content)
            assert set(body) == {
                "email",
                "password",
                "full_name",
                "country",
                "nationality",
                "date_of_birth",
                "phone",
                "address",
                "account_type",
            }
            assert body["account_type"] == "standard" and len(body["country"]) == 2
            state["email"], state["password"] = body["email"], body["password"]
            return httpx.Response(
                signup_status,
                json={"client_id": "c1", "application_id": "a1", "status": "pending"},
            )
        if path == "/v1/auth/client/login":
            body = json.loads(request.content)
            if (body["email"], body["password"]) != (state.get("email"), state.get("password")):
                return httpx.Response(401, json={"detail": "bad credentials"})
            return httpx.Response(
                200, json={"access_token": "tok", "token_type": "bearer", "expires_in": 900}
            )
        if path == "/v1/me/accounts":
            assert request.headers["authorization"] == "Bearer tok"
            nonlocal polls
            polls += 1
            if polls < accounts_after:
                return httpx.Response(200, json=[])
            return httpx.Response(
                200,
                json=[
                    {
                        "login": 5000001,
                        "server": "demo",
                        "group": "demo\\standard",
                        "leverage": 100,
                        "kind": "demo",
                    }
                ],
            )
        return httpx.Response(404)

    return httpx.MockTransport(handler)


def test_smoke_waits_for_the_demo_account() -> None:
    account = smoke.run(
        "http://api.test",
        timeout=5,
        log=lambda _: None,
        interval=0.01,
        transport=fake_api(accounts_after=3),
    )
    assert account["login"] == 5000001


def test_smoke_times_out_with_a_reason() -> None:
    with pytest.raises(smoke.SmokeFailure, match="no demo account within"):
        smoke.run(
            "http://api.test",
            timeout=0.05,
            log=lambda _: None,
            interval=0.01,
            transport=fake_api(accounts_after=10**6),
        )


def test_smoke_reports_a_refused_signup() -> None:
    with pytest.raises(smoke.SmokeFailure, match=r"sign-up was not accepted.*422"):
        smoke.run(
            "http://api.test",
            timeout=1,
            log=lambda _: None,
            transport=fake_api(accounts_after=1, signup_status=422),
        )


def test_smoke_exit_code_when_nothing_listens(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert smoke.main(["--base-url", f"http://127.0.0.1:{port}", "--timeout", "1"]) == 2
    assert "not reachable" in capsys.readouterr().err
