"""The gateway against answers other MT5 builds give: numbers as JSON numbers, 13 for an empty
history, 401 instead of 403; and the exact requests it sends. Played by a scripted transport, not
by our simulator."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from domain.mt5 import Mt5UserChanges, UserRights
from mt5_adapter.errors import Mt5AuthError, Mt5HasOpenPositions
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
        if path == "time/get" and path not in answers:
            return envelope({"TimeZone": "0", "Daylight": "0"})
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


async def test_update_user_sends_login_and_only_the_changed_fields_as_strings() -> None:
    """Reference 3.2: `user/update` takes `login` plus record fields; the POSTed record uses the
    record's CamelCase names, and server records carry numbers as strings."""
    sent: list[httpx.Request] = []
    record = {"Login": "5000001", "Group": "real\\eu\\pro", "Leverage": "30", "Rights": "487"}

    def update(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return envelope(record)

    mt5 = gateway(scripted_server({"user/update": update}))
    changes = Mt5UserChanges(
        group="real\\eu\\pro",
        leverage=30,
        rights=UserRights(0x1E3) | UserRights.TRADE_DISABLED,
        name="N",
        email="e@x.io",
        comment="c",
    )
    user = await mt5.update_user(5000001, changes)
    assert (user.group, user.leverage, user.rights) == ("real\\eu\\pro", 30, 487)
    [request] = sent
    assert request.method == "POST" and request.url.params["login"] == "5000001"
    assert json.loads(request.content) == {
        "Login": "5000001",
        "Group": "real\\eu\\pro",
        "Name": "N",
        "Email": "e@x.io",
        "Leverage": "30",
        "Rights": "487",
        "Comment": "c",
    }
    await mt5.update_user(5000001, Mt5UserChanges(rights=0))
    assert json.loads(sent[-1].content) == {"Login": "5000001", "Rights": "0"}


async def test_user_delete_refused_and_position_total_as_a_number() -> None:
    mt5 = gateway(
        scripted_server(
            {
                "user/delete": lambda r: envelope(None, "3008 Account has open trades"),
                "position/get_total": lambda r: envelope({"total": 2}),
            }
        )
    )
    with pytest.raises(Mt5HasOpenPositions):
        await mt5.delete_user(5000001)
    assert await mt5.get_open_position_count(5000001) == 2


async def test_a_server_at_utc_plus_3_is_read_and_asked_in_its_own_time() -> None:
    """Server at UTC+2 with daylight saving, in July: UTC+3. A deal MT5 stamped 15:00:00 server
    time (1782918000 = 2026-07-01 15:00:00 as Unix seconds of the local clock) happened at 12:00
    UTC; a window of 11:50-12:10 UTC is sent as 14:50-15:10 server time."""
    sent: list[httpx.QueryParams] = []

    def batch(request: httpx.Request) -> httpx.Response:
        sent.append(request.url.params)
        deal = {"Deal": "5", "Login": "9", "Action": "2", "Comment": "dep", "Time": "1782918000"}
        return envelope([deal])

    mt5 = gateway(
        scripted_server(
            {
                "time/get": lambda r: envelope({"TimeZone": "120", "Daylight": "1"}),
                "deal/get_batch": batch,
            }
        )
    )
    noon = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    found = await mt5.find_deal_by_comment(
        9, "dep", noon - timedelta(minutes=10), noon + timedelta(minutes=10)
    )
    assert found is not None and found.time == noon
    assert sent[0]["from"] == str(1782918000 - 600) and sent[0]["to"] == str(1782918000 + 600)
