"""ops.smoke against a fake API: the script's logic, not the stack (`make smoke` does that):
the client's way, and the consoles' check with the credentials file as the seed writes it."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pyotp
import pytest

from ops import smoke
from ops.seed import NewCredential, SeedReport, write_credentials


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


def written_credentials(tmp_path: Path) -> tuple[str, str, str]:
    """A credentials file as the seed writes it; the auditor's password and TOTP secret."""
    password, secret = "Dev-auditor-pass", pyotp.random_base32()
    report = SeedReport(
        created=[
            NewCredential(
                "staff", "finance@brokerflow.example", "Dev-other", pyotp.random_base32()
            ),
            NewCredential("staff", smoke.AUDITOR, password, secret),
            NewCredential("client", "alice@brokerflow.example", "Dev-client"),
        ]
    )
    path = tmp_path / "dev-credentials.txt"
    write_credentials(report, path)
    return path.read_text(), password, secret


def test_the_auditor_is_read_from_the_seeds_file_and_its_code_is_the_apps(
    tmp_path: Path,
) -> None:
    text, password, secret = written_credentials(tmp_path)
    assert smoke.staff_credentials(text, smoke.AUDITOR) == (password, secret)
    with pytest.raises(smoke.SmokeFailure, match="no password and TOTP secret"):
        smoke.staff_credentials(text, "alice@brokerflow.example")
    at = 1_800_000_000.0
    assert smoke.totp_now(secret, at) == pyotp.TOTP(secret).at(at)


def fake_staff_api(password: str, secret: str, queue: list[dict[str, str]]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/auth/staff/login":
            body = json.loads(request.content)
            expected = (smoke.AUDITOR, password)
            if (body["email"], body["password"]) != expected or not pyotp.TOTP(secret).verify(
                body["totp_code"], valid_window=1
            ):
                return httpx.Response(401, json={"detail": "bad credentials"})
            return httpx.Response(200, json={"access_token": "staff-tok", "expires_in": 900})
        if request.url.path == "/v1/finance/approvals":
            assert request.headers["authorization"] == "Bearer staff-tok"
            return httpx.Response(200, json=queue)
        return httpx.Response(404)

    return httpx.MockTransport(handler)


def test_the_consoles_show_the_seeds_demo_activity(tmp_path: Path) -> None:
    text, password, secret = written_credentials(tmp_path)
    queue = [
        {"direction": "withdrawal", "status": "pending_approval"},
        {"direction": "deposit", "status": "held"},
    ]
    lines: list[str] = []
    found = smoke.check_consoles(
        "http://api.test", text, lines.append, transport=fake_staff_api(password, secret, queue)
    )
    assert found == {"withdrawals pending approval": 1, "deposits held for compliance": 1}
    assert password not in " ".join(lines) and secret not in " ".join(lines)


def test_an_empty_queue_fails_the_smoke(tmp_path: Path) -> None:
    text, password, secret = written_credentials(tmp_path)
    queue = [{"direction": "deposit", "status": "held"}]
    with pytest.raises(smoke.SmokeFailure, match="no withdrawals pending approval") as failure:
        smoke.check_consoles(
            "http://api.test",
            text,
            lambda _: None,
            transport=fake_staff_api(password, secret, queue),
        )
    assert password not in str(failure.value)
