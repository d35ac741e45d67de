"""The simulator and the adapter over the wire: each written from the protocol reference alone.

Raw httpx calls here speak the protocol by hand, so a shared misreading cannot pass unnoticed.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from domain.mt5 import BalanceOperation, BalanceType, Mt5UserChanges, NewMt5User
from mt5_adapter import errors
from mt5_adapter.webapi import WebApiGateway, gateway_for
from tests.conftest import mt5_settings_for
from tests.support.processes import Simulator, start_simulator


def proof(password: str, rand_hex: str) -> str:
    pw = hashlib.md5(hashlib.md5(password.encode("utf-16-le")).digest() + b"WebAPI").digest()
    return hashlib.md5(pw + bytes.fromhex(rand_hex)).hexdigest()


def log_in_by_hand(http: httpx.Client, manager: int, password: str) -> httpx.Response:
    start = http.get(
        "/api/auth/start",
        params={"version": "3211", "agent": "test", "login": manager, "type": "manager"},
    ).json()
    assert start["retcode"] == "0 Done" and len(start["srv_rand"]) == 32
    cli_rand = os.urandom(16).hex()
    answer = http.get(
        "/api/auth/answer",
        params={"srv_rand_answer": proof(password, start["srv_rand"]), "cli_rand": cli_rand},
    )
    body = answer.json()
    if body["retcode"] == "0 Done":
        assert body["cli_rand_answer"] == proof(password, cli_rand), (
            "server failed the mutual proof"
        )
    return answer


@pytest.fixture
def raw(mt5_sim: Simulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=mt5_sim.base_url, verify=False) as http:
        yield http


@pytest.fixture
async def gateway(mt5_sim: Simulator) -> AsyncIterator[WebApiGateway]:
    mt5 = gateway_for(mt5_settings_for(mt5_sim))
    yield mt5
    await mt5.aclose()


def new_user(login: int, **overrides: object) -> NewMt5User:
    values: dict[str, object] = {
        "login": login,
        "group": "demo\\standard",
        "name": "Wire Test",
        "leverage": 100,
        "password_main": "Main#Pass1",
        "password_investor": "Inv#Pass1",
        "comment": "wire",
    }
    values.update(overrides)
    return NewMt5User.model_validate(values)


def fresh_login() -> int:
    return 7_000_000 + int.from_bytes(os.urandom(3), "big")


class TestSimulatorSpeaksTheProtocol:
    def test_handshake_both_ways_and_numbers_as_strings(
        self, raw: httpx.Client, mt5_sim: Simulator
    ) -> None:
        assert log_in_by_hand(raw, mt5_sim.manager, mt5_sim.password).json()["retcode"] == "0 Done"
        answer = raw.get("/api/user/total").json()
        assert answer["retcode"] == "0 Done" and isinstance(answer["answer"]["total"], str)

    def test_wrong_password_gives_3006_and_no_session(
        self, raw: httpx.Client, mt5_sim: Simulator
    ) -> None:
        assert log_in_by_hand(raw, mt5_sim.manager, "Wrong#1").json()["retcode"].startswith("3006 ")
        assert raw.get("/api/test/access").status_code == 403

    def test_unknown_manager_and_bad_parameters(self, raw: httpx.Client) -> None:
        unknown = raw.get(
            "/api/auth/start",
            params={"version": "3211", "agent": "t", "login": "999", "type": "manager"},
        )
        assert unknown.json()["retcode"].startswith("1001 ")
        old = raw.get(
            "/api/auth/start",
            params={"version": "100", "agent": "t", "login": "1000", "type": "manager"},
        )
        assert old.json()["retcode"].startswith("3 ")

    def test_session_is_bound_to_the_connection(
        self, raw: httpx.Client, mt5_sim: Simulator
    ) -> None:
        log_in_by_hand(raw, mt5_sim.manager, mt5_sim.password)
        cookies = dict(raw.cookies)
        with httpx.Client(base_url=mt5_sim.base_url, verify=False, cookies=cookies) as other:
            assert other.get("/api/test/access").status_code == 403
        assert raw.get("/api/test/access").status_code == 200
        raw.cookies.clear()  # a client that keeps the connection but drops the cookie
        assert raw.get("/api/test/access").status_code == 200

    def test_user_and_balance_retcodes(self, raw: httpx.Client, mt5_sim: Simulator) -> None:
        log_in_by_hand(raw, mt5_sim.manager, mt5_sim.password)
        login = fresh_login()
        record = {
            "Login": login,
            "Group": "demo\\standard",
            "Name": "R",
            "Leverage": 100,
            "PassMain": "Main#Pass1",
            "PassInvestor": "Inv#Pass1",
        }
        added = raw.post("/api/user/add", json=record).json()
        assert added["retcode"] == "0 Done" and added["login"] == str(login)
        assert "PassMain" not in added["answer"] and added["answer"]["Balance"] == "0.00"
        assert raw.post("/api/user/add", json=record).json()["retcode"].startswith("3004 ")
        weak = raw.post("/api/user/add", json={**record, "Login": 0, "PassMain": "weak"}).json()
        assert weak["retcode"].startswith("3006 ")
        no_group = raw.post("/api/user/add", json={**record, "Login": 0, "Group": "nope"}).json()
        assert no_group["retcode"].startswith("8 ")
        missing = raw.post("/api/user/add", json={"Login": 0, "Name": "x"}).json()
        assert missing["retcode"].startswith("3 ")
        assert raw.get("/api/user/get", params={"login": 1}).json()["retcode"].startswith("13 ")

        def balance(amount: str, kind: str = "2") -> str:
            params = {"login": str(login), "type": kind, "balance": amount, "comment": "c"}
            return str(raw.get("/api/trade/balance", params=params).json()["retcode"])

        assert balance("100") == "0 Done"
        assert balance("-500").startswith("10019 ")
        assert balance("2000000000").startswith("4005 ")
        assert balance("10", kind="0").startswith("3 ")
        assert (
            raw.get("/api/user/get", params={"login": login}).json()["answer"]["Balance"]
            == "100.00"
        )


class TestAdapterAgainstTheSimulator:
    async def test_user_lifecycle(self, gateway: WebApiGateway) -> None:
        login = fresh_login()
        created = await gateway.add_user(new_user(login))
        assert (created.login, created.group, created.leverage) == (login, "demo\\standard", 100)
        updated = await gateway.update_user(login, Mt5UserChanges(leverage=50, comment="changed"))
        assert (updated.leverage, updated.comment) == (50, "changed")
        with pytest.raises(errors.Mt5LoginExists):
            await gateway.add_user(new_user(login))
        with pytest.raises(errors.Mt5InvalidPassword):
            await gateway.add_user(new_user(fresh_login(), password_main="weakweak"))
        await gateway.delete_user(login)
        with pytest.raises(errors.Mt5NotFound):
            await gateway.get_user(login)

    async def test_balance_operations_and_lookup_by_comment(self, gateway: WebApiGateway) -> None:
        login = fresh_login()
        await gateway.add_user(new_user(login))
        ticket = await gateway.apply_balance(
            BalanceOperation(login=login, amount=Decimal("250.005"), comment="dep-1")
        )
        await gateway.apply_balance(
            BalanceOperation(
                login=login, type=BalanceType.CREDIT, amount=Decimal("50"), comment="cr-1"
            )
        )
        with pytest.raises(errors.Mt5NotEnoughMoney):
            await gateway.apply_balance(
                BalanceOperation(login=login, amount=Decimal("-1000"), comment="wd")
            )
        user = await gateway.get_user(login)
        assert (user.balance, user.credit) == (Decimal("250.01"), Decimal("50.00"))
        now = datetime.now(UTC)
        found = await gateway.find_deal_by_comment(
            login, "dep-1", now - timedelta(hours=1), now + timedelta(hours=1)
        )
        assert found is not None and found.ticket == ticket and found.profit == Decimal("250.01")
        assert (
            await gateway.find_deal_by_comment(login, "nope", now - timedelta(hours=1), now) is None
        )

    async def test_a_lost_session_is_re_established(
        self, gateway: WebApiGateway, mt5_sim: Simulator
    ) -> None:
        login = fresh_login()
        await gateway.add_user(new_user(login))
        mt5_sim.inject_faults({"path": "/api/user/get", "mode": "http_403", "times": 1})
        assert (await gateway.get_user(login)).login == login

    async def test_transient_retcodes_are_retryable(
        self, gateway: WebApiGateway, mt5_sim: Simulator
    ) -> None:
        httpx.post(
            f"{mt5_sim.base_url}/_sim/faults",
            json={
                "rules": [{"path": "/api/user/get", "mode": "retcode", "retcode": 12, "times": 1}]
            },
            verify=False,
        ).raise_for_status()
        with pytest.raises(errors.Mt5TransientError) as throttled:
            await gateway.get_user(1)
        assert throttled.value.retryable and throttled.value.retcode == 12

    async def test_a_lost_answer_on_a_write_is_ambiguous(
        self, gateway: WebApiGateway, mt5_sim: Simulator
    ) -> None:
        login = fresh_login()
        await gateway.add_user(new_user(login))
        httpx.post(
            f"{mt5_sim.base_url}/_sim/faults",
            json={
                "rules": [{"path": "/api/trade/balance", "mode": "drop_after_commit", "times": 1}]
            },
            verify=False,
        ).raise_for_status()
        with pytest.raises(errors.Mt5ConnectionError) as lost:
            await gateway.apply_balance(
                BalanceOperation(login=login, amount=Decimal("5"), comment="amb")
            )
        assert lost.value.ambiguous and lost.value.retryable
        # Applied although unanswered: the balance moved and the deal is there.
        assert (await gateway.get_user(login)).balance == Decimal("5.00")

    async def test_a_wrong_manager_password_is_not_retryable(self, mt5_sim: Simulator) -> None:
        settings = mt5_settings_for(mt5_sim).model_copy(
            update={"manager_password": SecretStr("Wrong#Pass1")}
        )
        bad = gateway_for(settings)
        with pytest.raises(errors.Mt5AuthError) as refused:
            await bad.ping()
        assert not refused.value.retryable
        await bad.aclose()


def test_ip_allowlist_and_state_survive_a_restart(artifacts_dir: Path, tmp_path: Path) -> None:
    blocked = start_simulator(artifacts_dir / "logs", tls=False, extra=["--allow-ip", "10.0.0.0/8"])
    try:
        with httpx.Client(base_url=blocked.base_url) as http:
            start = http.get(
                "/api/auth/start",
                params={"version": "3211", "agent": "t", "login": "1000", "type": "manager"},
            )
            assert start.json()["retcode"].startswith("1012 ")
    finally:
        blocked.child.stop()

    # A manager allowed from 127.0.0.0/8 logs in from 127.0.0.1; the books it writes survive a
    # restart from the state file: the user, its balance deal and the balance.
    state = tmp_path / "books.json"
    allowed = ["--allow-ip", "127.0.0.0/8"]
    first = start_simulator(
        artifacts_dir / "logs", tls=False, extra=["--state-file", str(state), *allowed]
    )
    try:
        with httpx.Client(base_url=first.base_url) as http:
            assert log_in_by_hand(http, first.manager, first.password).json()["retcode"] == "0 Done"
            added = http.post(
                "/api/user/add",
                json={
                    "Login": 5555,
                    "Group": "demo\\pro",
                    "Name": "Kept",
                    "Leverage": 10,
                    "PassMain": "Main#Pass1",
                    "PassInvestor": "Inv#Pass1",
                },
            )
            assert added.json()["retcode"] == "0 Done"
            deposit: dict[str, str | int] = {
                "login": 5555,
                "type": 2,
                "balance": "1234.56",
                "comment": "kept-dep",
            }
            paid = http.get("/api/trade/balance", params=deposit).json()
            assert paid["retcode"] == "0 Done"
            ticket = int(paid["answer"]["Ticket"])
    finally:
        first.child.stop()
    second = start_simulator(artifacts_dir / "logs", tls=False, extra=["--state-file", str(state)])
    try:
        with httpx.Client(base_url=second.base_url) as http:
            log_in_by_hand(http, second.manager, second.password)
            user = http.get("/api/user/get", params={"login": 5555}).json()["answer"]
            assert (user["Name"], user["Balance"]) == ("Kept", "1234.56")
            deal = http.get("/api/deal/get", params={"ticket": ticket}).json()["answer"]
            assert (deal["Login"], deal["Action"], deal["Profit"], deal["Comment"]) == (
                "5555",
                "2",
                "1234.56",
                "kept-dep",
            )
            window = {"login": 5555, "from": 0, "to": 4_000_000_000}
            total = http.get("/api/deal/get_total", params=window).json()["answer"]["total"]
            assert total == "1"
            # Tickets go on from where they were: no deal number is handed out twice.
            again: dict[str, str | int] = {**deposit, "balance": "1", "comment": "after"}
            after = http.get("/api/trade/balance", params=again).json()["answer"]["Ticket"]
            assert int(after) > ticket
    finally:
        second.child.stop()
