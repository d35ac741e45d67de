"""What the live exposure reads from MT5 (`mt5_adapter.terms.TradingTerms`), through the real
adapter against the simulator: a group's currency and MarginMode (`group/get`), accounts' group,
leverage and country (`user/get_batch`), the symbols' last ticks with Last (`tick/last`).
Expected values come from the simulator's built-in groups as its docs list them (demo\\pro:
USD, retail netting; demo\\eur: EUR, retail hedging) and from the raw answers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from decimal import Decimal

import httpx
import pytest

from mt5_adapter.errors import Mt5NotFound
from mt5_adapter.terms import GroupTerms, TradingTerms, UserTerms
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
    assert netting == GroupTerms("demo\\pro", "USD", 0) and not netting.hedging
    assert hedging == GroupTerms("demo\\eur", "EUR", 2) and hedging.hedging
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
