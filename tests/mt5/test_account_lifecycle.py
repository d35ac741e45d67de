"""What the MT5 account lifecycle needs, over the wire: the real adapter against a simulator
subprocess. Leverage, group and rights changes (`user/update`), deletion refused while trades are
open, open-position counts, the live groups and a trade on a GBP account.

Trades go through `dealer/send_request` by hand (BrokerFlow itself never trades): the rights
checks need a trade request to refuse. Expected figures are worked out from the reference's
formulas in the comments, not read back from the simulator's code.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr, ValidationError

from domain.mt5 import (
    DEFAULT_LIVE_RIGHTS,
    BalanceOperation,
    Mt5UserChanges,
    NewMt5User,
    UserRights,
    with_login_disabled,
    with_login_enabled,
    with_trading_disabled,
    with_trading_enabled,
)
from mt5_adapter import errors
from mt5_adapter.webapi import WebApiGateway, gateway_for
from tests.conftest import mt5_settings_for
from tests.mt5.test_protocol import log_in_by_hand
from tests.support.processes import Simulator, start_simulator

LIVE_GROUPS = {
    "real\\eu\\standard": "EUR",
    "real\\eu\\pro": "EUR",
    "real\\eu\\standard-hr": "EUR",
    "real\\eu\\pro-hr": "EUR",
    "real\\uk\\standard": "GBP",
    "real\\uk\\pro": "GBP",
    "real\\uk\\standard-hr": "GBP",
    "real\\uk\\pro-hr": "GBP",
    "real\\intl\\standard": "USD",
    "real\\intl\\pro": "USD",
    "real\\intl\\standard-hr": "USD",
    "real\\intl\\pro-hr": "USD",
}
FRESH_RIGHTS = 0x1E3  # what the reference shows for a fresh account (483)


@dataclass
class Wire:
    http: httpx.Client  # a manager session spoken by hand, for trades and raw retcodes
    mt5: WebApiGateway  # the real adapter


@pytest.fixture(scope="module")
def simulator(artifacts_dir: Path) -> Iterator[Simulator]:
    """A simulator of this module's own: the tests set prices, which others must not see."""
    started = start_simulator(artifacts_dir / "logs", tls=False)
    yield started
    started.child.stop()


@pytest.fixture(scope="module")
async def wire(simulator: Simulator) -> AsyncIterator[Wire]:
    mt5 = gateway_for(mt5_settings_for(simulator))
    with httpx.Client(base_url=simulator.base_url) as http:
        log_in_by_hand(http, simulator.manager, simulator.password)
        yield Wire(http, mt5)
    await mt5.aclose()


def fresh_login() -> int:
    return 6_000_000 + int.from_bytes(os.urandom(3), "big")


async def live_account(
    wire: Wire, group: str = "real\\eu\\standard", deposit: str = "10000", **extra: Any
) -> int:
    login = fresh_login()
    await wire.mt5.add_user(
        NewMt5User(
            login=login,
            group=group,
            name="Lifecycle Test",
            leverage=100,
            password_main=SecretStr("Main#Pass1"),
            password_investor=SecretStr("Inv#Pass1"),
            **extra,
        )
    )
    await wire.mt5.apply_balance(
        BalanceOperation(login=login, amount=Decimal(deposit), comment="initial deposit")
    )
    return login


def trade(wire: Wire, login: int, **request: object) -> dict[str, str]:
    """A dealer request (market buy of 0.10 EURUSD unless told otherwise); its result."""
    body = {"Action": 200, "Login": login, "Symbol": "EURUSD", "Type": 0, "Volume": 1000}
    sent = wire.http.post("/api/dealer/send_request", json={**body, **request}).json()
    assert sent["retcode"] == "0 Done"
    result = wire.http.get("/api/dealer/get_request_result", params={"id": sent["answer"]["id"]})
    return dict(result.json()["answer"]["result"])


def retcode(result: dict[str, str]) -> int:
    return int(result["Retcode"].split(" ", 1)[0])


def position_of(wire: Wire, deal: str) -> str:
    return str(
        wire.http.get("/api/deal/get", params={"ticket": deal}).json()["answer"]["PositionID"]
    )


def raw_update(wire: Wire, login: int, **fields: object) -> str:
    body = wire.http.post("/api/user/update", json={"Login": str(login), **fields}).json()
    return str(body["retcode"])


# -- groups ---------------------------------------------------------------------------------


def test_every_live_group_is_retail_hedging_in_its_currency(wire: Wire) -> None:
    for name, currency in LIVE_GROUPS.items():
        body = wire.http.get("/api/group/get", params={"group": name}).json()
        assert body["retcode"] == "0 Done", name
        group = body["answer"]
        assert (group["Currency"], group["MarginMode"], group["DemoLeverage"]) == (
            currency,
            "2",
            "0",
        ), name
        assert group["Commissions"], name
    for kept in ("demo\\standard", "demo\\pro", "demo\\eur", "real\\standard", "real\\pro"):
        assert wire.http.get("/api/group/get", params={"group": kept}).json()["retcode"] == "0 Done"


async def test_a_trade_on_a_gbp_account_converts_margin_and_profit(wire: Wire) -> None:
    prices = {
        "EURUSD": ["1.10000", "1.10010"],
        "GBPUSD": ["1.25000", "1.25010"],
        "EURGBP": ["0.88000", "0.88010"],
    }
    wire.http.post("/_sim/quotes", json=prices).raise_for_status()
    login = await live_account(wire, "real\\uk\\standard")
    await wire.mt5.update_user(login, Mt5UserChanges(leverage=30))
    opened = trade(wire, login, Volume=10_000)  # 1 lot, at the ask 1.10010
    assert retcode(opened) == 10009
    account = wire.http.get("/api/user/account/get", params={"login": login}).json()["answer"]
    # Forex margin: 1 lot x 100000 / 30 = 3333.33 EUR, to GBP at EURGBP's ask 0.88010.
    # Commission 3.50 GBP per lot on entry.
    assert (account["Margin"], account["Balance"]) == ("2933.67", "9996.50")
    wire.http.post("/_sim/quotes", json={"EURUSD": ["1.10510", "1.10520"]}).raise_for_status()
    # Profit: (1.10510 - 1.10010) x 100000 = 500 USD, to GBP at 1 / GBPUSD's ask 1.25010.
    account = wire.http.get("/api/user/account/get", params={"login": login}).json()["answer"]
    assert account["Profit"] == "399.97"
    closing = trade(wire, login, Type=1, Volume=10_000, Position=position_of(wire, opened["Deal"]))
    deal = wire.http.get("/api/deal/get", params={"ticket": closing["Deal"]}).json()["answer"]
    assert (deal["Profit"], deal["Commission"]) == ("399.97", "-3.50")
    assert Decimal(deal["RateProfit"]) == (1 / Decimal("1.25010")).quantize(Decimal("1e-8"))
    assert (await wire.mt5.get_user(login)).balance == Decimal("10392.97")


# -- user/update ----------------------------------------------------------------------------


async def test_leverage_name_email_comment_change_and_user_get_shows_them(wire: Wire) -> None:
    login = await live_account(wire)
    changes = Mt5UserChanges(leverage=30, name="New Name", email="n@example.com", comment="kyc")
    updated = await wire.mt5.update_user(login, changes)
    assert (updated.leverage, updated.name, updated.email, updated.comment) == (
        30,
        "New Name",
        "n@example.com",
        "kyc",
    )
    assert await wire.mt5.get_user(login) == updated
    account = wire.http.get("/api/user/account/get", params={"login": login}).json()["answer"]
    assert account["MarginLeverage"] == "30"


async def test_a_leverage_that_is_not_a_positive_integer_is_refused(wire: Wire) -> None:
    login = await live_account(wire)
    with pytest.raises(ValidationError):
        Mt5UserChanges(leverage=0)  # the adapter cannot even send it
    for bad in ("0", "-5", "abc", "1.5"):
        assert raw_update(wire, login, Leverage=bad).startswith("3 "), bad
    # A refused update changes nothing, not even the fields that were valid.
    assert raw_update(wire, login, Leverage="50", Rights="-1").startswith("3 ")
    assert (await wire.mt5.get_user(login)).leverage == 100


async def test_group_changes_within_the_currency_only(wire: Wire) -> None:
    login = await live_account(wire)
    moved = await wire.mt5.update_user(login, Mt5UserChanges(group="real\\eu\\pro-hr"))
    assert moved.group == "real\\eu\\pro-hr"
    assert (await wire.mt5.get_user(login)).group == "real\\eu\\pro-hr"
    with pytest.raises(errors.Mt5GroupCurrencyMismatch) as other_currency:
        await wire.mt5.update_user(login, Mt5UserChanges(group="real\\uk\\pro"))
    assert other_currency.value.retcode == 3010 and not other_currency.value.retryable
    assert isinstance(other_currency.value, errors.Mt5InvalidRequest)
    # An unknown group: 8, as the reference gives it for user/add and user/update alike.
    with pytest.raises(errors.Mt5PermissionDenied) as unknown:
        await wire.mt5.update_user(login, Mt5UserChanges(group="real\\nowhere"))
    assert unknown.value.retcode == 8
    assert (await wire.mt5.get_user(login)).group == "real\\eu\\pro-hr"


async def test_trading_disabled_refuses_trades_but_not_balance_operations(wire: Wire) -> None:
    login = await live_account(wire)
    rights = (await wire.mt5.get_user(login)).rights
    assert rights == FRESH_RIGHTS
    off = await wire.mt5.update_user(login, Mt5UserChanges(rights=with_trading_disabled(rights)))
    assert off.rights == FRESH_RIGHTS | 0x4
    assert (await wire.mt5.get_user(login)).rights == FRESH_RIGHTS | 0x4
    assert retcode(trade(wire, login)) == 10017
    assert await wire.mt5.get_open_position_count(login) == 0
    # The manager's balance operations go on: deposit and withdrawal.
    for amount in ("250", "-100"):
        await wire.mt5.apply_balance(
            BalanceOperation(login=login, amount=Decimal(amount), comment=f"while off {amount}")
        )
    assert (await wire.mt5.get_user(login)).balance == Decimal("10150.00")
    on = await wire.mt5.update_user(login, Mt5UserChanges(rights=with_trading_enabled(off.rights)))
    assert on.rights == FRESH_RIGHTS
    assert retcode(trade(wire, login)) == 10009
    assert await wire.mt5.get_open_position_count(login) == 1


async def test_an_account_that_may_not_connect_sends_no_trades(wire: Wire) -> None:
    login = await live_account(wire)
    rights = (await wire.mt5.get_user(login)).rights
    disabled = await wire.mt5.update_user(login, Mt5UserChanges(rights=with_login_disabled(rights)))
    assert not disabled.rights & UserRights.ENABLED
    assert retcode(trade(wire, login)) == 10017
    await wire.mt5.apply_balance(
        BalanceOperation(login=login, amount=Decimal("1"), comment="while disabled")
    )
    enabled = with_login_enabled(disabled.rights)
    assert (await wire.mt5.update_user(login, Mt5UserChanges(rights=enabled))).rights == rights
    assert retcode(trade(wire, login)) == 10009


async def test_user_add_honours_rights(wire: Wire) -> None:
    login = await live_account(wire, rights=DEFAULT_LIVE_RIGHTS)
    assert (await wire.mt5.get_user(login)).rights == 0x163
    trading_off = await live_account(wire, rights=with_trading_disabled(DEFAULT_LIVE_RIGHTS))
    assert retcode(trade(wire, trading_off)) == 10017
    record = {
        "Login": fresh_login(),
        "Group": "real\\intl\\pro",
        "Name": "Raw",
        "Leverage": "100",
        "PassMain": "Main#Pass1",
        "PassInvestor": "Inv#Pass1",
    }
    for bad in ("-1", str(2**64), "x"):
        added = wire.http.post("/api/user/add", json={**record, "Rights": bad}).json()
        assert added["retcode"].startswith("3 "), bad
    top = wire.http.post("/api/user/add", json={**record, "Rights": str(2**64 - 1)}).json()
    assert top["retcode"] == "0 Done" and top["answer"]["Rights"] == str(2**64 - 1)


# -- user/delete and open positions ---------------------------------------------------------


async def test_delete_is_refused_while_trades_are_open(wire: Wire) -> None:
    login = await live_account(wire)
    assert await wire.mt5.get_open_position_count(login) == 0
    first, second = trade(wire, login), trade(wire, login, Type=1)  # hedging: two positions
    assert await wire.mt5.get_open_position_count(login) == 2
    with pytest.raises(errors.Mt5HasOpenPositions) as refused:
        await wire.mt5.delete_user(login)
    assert refused.value.retcode == 3008 and not refused.value.retryable
    for opened, closing_side in ((first, 1), (second, 0)):
        closed = trade(wire, login, Type=closing_side, Position=position_of(wire, opened["Deal"]))
        assert retcode(closed) == 10009
    assert await wire.mt5.get_open_position_count(login) == 0
    # A pending order is an open trade too.
    pending = trade(wire, login, Action=201, Type=2, PriceOrder="1.00000")
    with pytest.raises(errors.Mt5HasOpenPositions):
        await wire.mt5.delete_user(login)
    assert retcode(trade(wire, login, Action=203, Order=pending["Order"])) == 10009
    await wire.mt5.delete_user(login)
    with pytest.raises(errors.Mt5NotFound):
        await wire.mt5.get_user(login)
    with pytest.raises(errors.Mt5NotFound):
        await wire.mt5.get_open_position_count(login)
