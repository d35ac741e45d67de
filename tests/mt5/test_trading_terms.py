"""What the live exposure reads from MT5 (`mt5_adapter.terms.TradingTerms`), through the real
adapter against the simulator: a group's currency, MarginMode and margin-call / stop-out lines
(`group/get`), accounts' group, leverage and country (`user/get_batch`), the symbols' last ticks
with Last (`tick/last`), trade states (`user/account/get_batch`) classified by
`domain.exposure.margin_calls`. Expected values come from the simulator's built-in groups as its
docs list them (demo\\pro: USD, retail netting; demo\\eur: EUR, retail hedging; both MarginCall
100 %, MarginStopOut 50 %) and from the raw answers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from decimal import Decimal

import httpx
import pytest

from domain.exposure.margin_calls import MarginLimits, MarginState, classify
from domain.mt5 import BalanceOperation
from mt5_adapter.errors import Mt5NotFound
from mt5_adapter.terms import GroupTerms, TradeStates, TradingTerms, UserTerms
from mt5_adapter.webapi import WebApiGateway, gateway_for
from tests.conftest import mt5_settings_for
from tests.mt5.test_protocol import fresh_login, log_in_by_hand, new_user
from tests.support.processes import Simulator


@pytest.fixture
async def gateway(mt5_sim: Simulator) -> AsyncIterator[WebApiGateway]:
    mt5 = gateway_for(mt5_settings_for(mt5_sim))
    yield mt5
    await mt5.aclose()


@pytest.fixture
def raw(mt5_sim: Simulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=mt5_sim.base_url, verify=False) as http:
        log_in_by_hand(http, mt5_sim.manager, mt5_sim.password)
        yield http


async def test_group_terms_give_the_currency_and_the_margin_mode(gateway: WebApiGateway) -> None:
    assert isinstance(gateway, TradingTerms)
    netting = await gateway.group_terms("demo\\pro")
    hedging = await gateway.group_terms("demo\\eur")
    lines = (Decimal(100), Decimal(50), 0)
    assert netting == GroupTerms("demo\\pro", "USD", 0, *lines) and not netting.hedging
    assert hedging == GroupTerms("demo\\eur", "EUR", 2, *lines) and hedging.hedging
    with pytest.raises(Mt5NotFound):
        await gateway.group_terms("no\\such-group")


async def test_user_terms_read_a_batch_and_leave_unknown_logins_out(
    gateway: WebApiGateway,
) -> None:
    first, second, unknown = fresh_login(), fresh_login(), fresh_login()
    await gateway.add_user(new_user(first, group="demo\\pro", leverage=500, country="FR"))
    await gateway.add_user(new_user(second, group="demo\\eur", leverage=30))
    found = await gateway.user_terms([second, unknown, first])
    assert sorted(found, key=lambda u: u.login) == sorted(
        [UserTerms(first, "demo\\pro", 500, "FR"), UserTerms(second, "demo\\eur", 30, "")],
        key=lambda u: u.login,
    )
    assert await gateway.user_terms([unknown]) == []


async def test_last_ticks_carry_bid_ask_and_last_as_the_server_wrote_them(
    gateway: WebApiGateway, raw: httpx.Client
) -> None:
    ticks = {t.symbol: t for t in await gateway.last_ticks(["EURUSD", "XAUUSD"])}
    answer = raw.get("/api/tick/last", params={"symbol": "EURUSD,XAUUSD", "trans_id": "0"})
    for record in answer.json()["answer"]:
        tick = ticks[record["Symbol"]]
        assert (tick.bid, tick.ask, tick.last) == (
            Decimal(record["Bid"]),
            Decimal(record["Ask"]),
            Decimal(record["Last"]),
        )
        # A quote never moved is stamped "now" at each read: the time is not compared.
        assert 0 < tick.bid <= tick.ask and tick.server_msc > 0
    with pytest.raises(Mt5NotFound):
        await gateway.last_ticks(["EURUSD", "NOSUCHSYMBOL"])


async def test_trade_states_put_an_account_near_stop_out_into_a_margin_call(
    gateway: WebApiGateway, raw: httpx.Client
) -> None:
    """A 1-lot EURUSD buy on 2000 USD at 1:100 (margin ~1100 USD, level ~180 %), then a
    withdrawal (unchecked) leaving equity at 3/4 of the margin: 75 %, between the stop out
    (50 %) and the margin call (100 %)."""
    assert isinstance(gateway, TradeStates)
    login, idle, unknown = fresh_login(), fresh_login(), fresh_login()
    for who in (login, idle):
        await gateway.add_user(new_user(who, group="demo\\pro", leverage=100))
    await gateway.apply_balance(BalanceOperation(login=login, amount=Decimal(2000), comment="in"))
    body = {"Action": 200, "Login": login, "Symbol": "EURUSD", "Type": 0, "Volume": 10000}
    sent = raw.post("/api/dealer/send_request", json=body).json()
    assert sent["retcode"] == "0 Done", sent
    [opened] = await gateway.trade_states([login])
    assert opened.margin > 0 and opened.margin_level > 100
    withdrawal = Decimal(opened.equity - opened.margin * 3 / 4).quantize(Decimal("0.01"))
    await gateway.apply_balance(
        BalanceOperation(login=login, amount=-withdrawal, comment="out", check_margin=False)
    )
    states = {s.login: s for s in await gateway.trade_states([unknown, idle, login])}
    assert sorted(states) == sorted([login, idle])  # an unknown login is left out
    state = states[login]
    answer = raw.get("/api/user/account/get_batch", params={"login": str(login)}).json()
    [record] = answer["answer"]
    assert (state.equity, state.margin, state.margin_level) == (
        Decimal(record["Equity"]),
        Decimal(record["Margin"]),
        Decimal(record["MarginLevel"]),
    )
    group = await gateway.group_terms("demo\\pro")
    limits = MarginLimits(group.margin_call, group.margin_stop_out, group.margin_so_mode)
    check = classify(state.equity, state.margin, limits)
    assert check.state is MarginState.MARGIN_CALL
    assert check.level is not None and abs(check.level - state.margin_level) < Decimal("0.01")
    assert 60 < state.margin_level < 90  # ~75 %, whatever the quote did meanwhile
    # No position: Margin 0, nothing at risk.
    assert classify(states[idle].equity, states[idle].margin, limits).state is MarginState.FINE


async def test_a_batch_answered_13_is_halved_until_the_logins_without_a_state_are_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The reference: an account with no trade state may answer 13 (the simulator never does:
    an answering stand-in here)."""
    gateway = object.__new__(WebApiGateway)
    asked: list[list[int]] = []

    async def call(command: str, params: dict[str, str], *_: object, **__: object) -> object:
        logins = [int(x) for x in params["login"].split(",")]
        asked.append(logins)
        if 3 in logins:
            raise Mt5NotFound(13, "Not found", command)
        return {
            "answer": [
                {"Login": str(x), "Equity": "10", "Margin": "5", "MarginLevel": "200"}
                for x in logins
            ]
        }

    monkeypatch.setattr(gateway, "_call", call)
    found = await gateway.trade_states([4, 1, 3, 2, 2])
    assert [(s.login, s.equity, s.margin_level) for s in found] == [
        (1, Decimal(10), Decimal(200)),
        (2, Decimal(10), Decimal(200)),
        (4, Decimal(10), Decimal(200)),
    ]
    assert asked[0] == [1, 2, 3, 4] and [3] in asked and len(asked) == 5
