"""The gateway against answers other MT5 builds give: numbers as JSON numbers, 13 for an empty
history, 401 instead of 403. Played by a scripted transport, not by our simulator."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from mt5_adapter.errors import Mt5AuthError
from mt5_adapter.webapi import WebApiGateway
from settings import Mt5ServerSettings

PASSWORD = "Manager#1"


def proof(password: str, rand_hex: str) -> str:
    pw = hashlib.md5(hashlib.md5(password.encode("utf-16-le")).digest() + b"WebAPI").digest()
    return hashlib.md5(pw + bytes.fromhex(rand_hex)).hexdigest()


def scripted_server(
    answers: dict[str, Callable[[httpx.Request], httpx.Response]], *, knows_password: bool = True
) -> httpx.MockTransport:
    srv_rand = "00112233445566778899aabbccddeeff"

    def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/api/")
        if path == "auth/start":
            return httpx.Response(200, json={"retcode": "0 Done", "srv_rand": srv_rand})
        if path == "auth/answer":
            assert request.url.params["srv_rand_answer"] == proof(PASSWORD, srv_rand)
            secret = PASSWORD if knows_password else "something else"
            return httpx.Response(
                200,
                json={
                    "retcode": "0 Done",
                    "cli_rand_answer": proof(secret, request.url.params["cli_rand"]),
                },
            )
        return answers[path](request)

    return httpx.MockTransport(handle)


def gateway(transport: httpx.MockTransport) -> WebApiGateway:
    return WebApiGateway(Mt5ServerSettings(address="mt5.example:443", connections=1), transport)


def envelope(answer: Any, retcode: str = "0 Done") -> httpx.Response:
    return httpx.Response(200, content=json.dumps({"retcode": retcode, "answer": answer}))


async def test_numbers_as_json_numbers_are_read_exactly() -> None:
    deal = {
        "Deal": 77,
        "Login": 5000001,
        "Action": 2,
        "Entry": 0,
        "Profit": 250.01,
        "Comment": "c",
        "Time": 1795000000,
    }
    user = {
        "Login": 5000001,
        "Group": "real\\std",
        "Leverage": 100,
        "Rights": 483,
        "Balance": 0.1,
        "Credit": 0,
    }
    mt5 = gateway(
        scripted_server(
            {"deal/get_batch": lambda r: envelope([deal]), "user/get": lambda r: envelope(user)}
        )
    )
    now = datetime.now(UTC)
    found = await mt5.find_deal_by_comment(5000001, "c", now - timedelta(days=400), now)
    assert found is not None and found.profit == Decimal("250.01") and found.ticket == 77
    assert (await mt5.get_user(5000001)).balance == Decimal("0.1")


async def test_an_empty_history_answered_with_13_is_empty() -> None:
    mt5 = gateway(scripted_server({"deal/get_batch": lambda r: envelope(None, "13 Not found")}))
    now = datetime.now(UTC)
    assert await mt5.find_deal_by_comment(1, "x", now - timedelta(days=1), now) is None


async def test_a_401_is_a_lost_session_too() -> None:
    calls: list[int] = []

    def access(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(401) if len(calls) == 1 else envelope(None)

    await gateway(scripted_server({"test/access": access})).ping()
    assert len(calls) == 2


async def test_a_server_that_cannot_prove_the_password_is_refused() -> None:
    mt5 = gateway(scripted_server({}, knows_password=False))
    with pytest.raises(Mt5AuthError, match="prove"):
        await mt5.ping()
