"""The engine's rules through the Web API, with figures computed by hand (the same cases as
tests/simulators/test_engine_rules.py, configured as a manager would: `symbol/add`,
`group/add`, `trade/balance`, and the simulator's `/_sim/quotes` and `/_sim/time`)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.mt5.test_protocol import log_in_by_hand
from tests.support.processes import start_simulator

# A broker zone: UTC+2, UTC+3 in EU summer time. Server midnight is 22:00 / 21:00 UTC.
ZONE = ["--timezone", "120", "--daylight"]


@pytest.fixture
def http(artifacts_dir: Path) -> Iterator[httpx.Client]:
    simulator = start_simulator(artifacts_dir / "logs", tls=False, extra=ZONE)
    try:
        with httpx.Client(base_url=simulator.base_url) as client:
            log_in_by_hand(client, simulator.manager, simulator.password)
            yield client
    finally:
        simulator.child.stop()


def api(http: httpx.Client, command: str, body: dict[str, Any] | None = None, **params: Any) -> Any:
    """A Web API command that must succeed (a POSTed record, or query parameters); its answer."""
    if body is None:
        reply = http.get(f"/api/{command}", params=params).json()
    else:
        reply = http.post(f"/api/{command}", params=params, json=body).json()
    assert reply["retcode"] == "0 Done", (command, reply)
    return reply.get("answer")


def account(http: httpx.Client, login: int, group: str, deposit: str) -> int:
    api(
        http,
        "user/add",
        {
            "Login": login,
            "Group": group,
            "Name": f"Rules {login}",
            "Leverage": 100,
            "PassMain": "Main#Pass1",
            "PassInvestor": "Inv#Pass1",
        },
    )
    api(http, "trade/balance", login=login, type=2, balance=deposit, comment="deposit")
    return login


def quotes(http: httpx.Client, **prices: list[str]) -> list[dict[str, str]]:
    response = http.post("/_sim/quotes", json=prices)
    response.raise_for_status()
    return list(response.json()["stopped_out"])


def request(http: httpx.Client, **fields: Any) -> dict[str, str]:
    """A dealer request's result, whatever its retcode."""
    sent = api(http, "dealer/send_request", {"Action": 200, **fields})
    return dict(api(http, "dealer/get_request_result", id=sent["id"])["result"])


def trade(http: httpx.Client, login: int, symbol: str, side: int, volume: int) -> dict[str, str]:
    result = request(http, Login=login, Symbol=symbol, Type=side, Volume=volume)
    assert result["Retcode"].startswith("10009 "), result
    return result


def deals(http: httpx.Client, login: int) -> list[dict[str, str]]:
    window = {"login": login, "from": 0, "to": 4_000_000_000}
    return list(http.get("/api/deal/get_batch", params=window).json()["answer"])


def margin(http: httpx.Client, login: int) -> str:
    return str(api(http, "user/account/get", login=login)["Margin"])


def rates(*per_type: str) -> list[str]:
    return [*per_type, *["0"] * (8 - len(per_type))]


def test_per_side_margin_rates(http: httpx.Client) -> None:
    api(
        http,
        "symbol/add",
        {
            "Symbol": "OILX",
            "Path": "Energies\\OILX",
            "CurrencyBase": "USD",
            "CurrencyProfit": "USD",
            "CalcMode": 2,  # CFD
            "ContractSize": 1000,
            "Digits": 3,
            "MarginRateInitial": rates("0.1", "0.2"),
        },
    )
    login = account(http, 4_300_001, "demo\\pro", "100000")
    quotes(http, OILX=["75.000", "75.030"])
    trade(http, login, "OILX", 0, 10_000)
    assert margin(http, login) == "7503.00"  # buy: 1 lot x 1000 x 75.030 x 0.1
    trade(http, login, "OILX", 1, 20_000)  # netting reversal: short 1 lot at 75.000
    assert margin(http, login) == "15000.00"  # sell: 1 lot x 1000 x 75.000 x 0.2


def test_hedged_margin_with_margin_hedged(http: httpx.Client) -> None:
    api(
        http,
        "symbol/add",
        {
            "Symbol": "GOLDX",
            "Path": "Metals\\GOLDX",
            "CurrencyBase": "XAU",
            "CurrencyProfit": "USD",
            "CurrencyMargin": "USD",
            "CalcMode": 4,  # CFD leverage
            "ContractSize": 100,
            "Digits": 2,
            "MarginHedged": 50,
        },
    )
    login = account(http, 4_300_002, "demo\\standard", "100000")  # hedging, 1:100
    for bid, ask, side, volume in (
        ("1999.75", "2000.00", 0, 20_000),
        ("2009.75", "2010.00", 0, 10_000),
        ("2020.00", "2020.25", 1, 10_000),
    ):
        quotes(http, GOLDX=[bid, ask])
        trade(http, login, "GOLDX", side, volume)
    # Buy leg 3 lots at (2 x 2000 + 2010) / 3 = 2003.3333, sell leg 1 lot at 2020.
    # Uncovered 2 lots x 100 x 2003.3333 / 100 = 4006.6667; hedged 1 lot x 50 / 100 = 0.5 lot
    # x 100 x (2003.3333 + 2020) / 2 / 100 = 1005.8333; total 5012.50.
    assert margin(http, login) == "5012.50"


def test_exchange_stocks_are_priced_at_last(http: httpx.Client) -> None:
    login = account(http, 4_300_003, "demo\\pro", "10000")
    quotes(http, AAPL=["189.98", "190.02", "190.10"])
    trade(http, login, "AAPL", 0, 100_000)
    assert margin(http, login) == "380.20"  # 10 lots x 1 x 190.10 (Last) x 0.2
    quotes(http, AAPL=["199.98", "200.02", "200.00"])
    assert margin(http, login) == "400.00"  # 10 x 200.00 x 0.2
    [tick] = api(http, "tick/last", symbol="AAPL")
    assert (tick["Bid"], tick["Ask"], tick["Last"]) == ("199.98", "200.02", "200.00")


def test_tiered_commission_with_minimum_and_maximum(http: httpx.Client) -> None:
    tier = {"Mode": 0, "Type": 1}  # money in the deposit currency, per lot
    api(
        http,
        "group/add",
        {
            "Group": "test\\tiered",
            "Currency": "USD",
            "MarginMode": 0,
            "Commissions": [
                {
                    "Name": "tiered",
                    "Path": "Forex\\*",
                    "Mode": 0,
                    "RangeMode": 0,  # the deal's volume in lots
                    "ChargeMode": 2,  # instant
                    "EntryMode": 0,
                    "Tiers": [
                        {**tier, "Value": "5", "Minimal": "2", "RangeFrom": "0", "RangeTo": "1"},
                        {**tier, "Value": "4", "Maximal": "30", "RangeFrom": "1", "RangeTo": "0"},
                    ],
                }
            ],
        },
    )
    login = account(http, 4_300_004, "test\\tiered", "100000")
    charged = []
    for volume in (1_000, 5_000, 20_000, 100_000):
        ticket = trade(http, login, "EURUSD", 0, volume)["Deal"]
        charged.append(api(http, "deal/get", ticket=ticket)["Commission"])
    # 0.1 lot x 5 = 0.50 -> minimum 2.00; 0.5 x 5 = 2.50; 2 x 4 = 8.00; 10 x 4 = 40 -> max 30
    assert charged == ["-2.00", "-2.50", "-8.00", "-30.00"]


def test_a_withdrawal_that_breaches_the_stop_out_level_stops_the_account_out(
    http: httpx.Client,
) -> None:
    login = account(http, 4_300_005, "demo\\pro", "2000")  # netting, stop-out at 50 %
    quotes(http, EURUSD=["1.10000", "1.10000"])
    trade(http, login, "EURUSD", 0, 10_000)  # margin 1 x 100000 / 100 = 1000 EUR = 1100 USD
    refused = http.get(
        "/api/trade/balance", params={"login": login, "type": 2, "balance": "-900.01"}
    ).json()
    assert refused["retcode"].startswith("10019 ")  # free margin is 900
    api(http, "trade/balance", login=login, type=2, balance="-1500", check_margin=0)
    # Equity 500 / margin 1100 = 45.45 % <= 50 %: the position is closed at 1.10000.
    assert api(http, "position/get_total", login=login)["total"] == "0"
    assert [(d["Action"], d["Reason"], d["Profit"]) for d in deals(http, login)][-1] == (
        "1",
        "5",
        "0.00",
    )
    assert api(http, "user/get", login=login)["Balance"] == "500.00"


def test_volume_limits_and_trade_mode(http: httpx.Client) -> None:
    login = account(http, 4_300_008, "demo\\pro", "100000")
    # EURUSD: 0.01 to 100 lots in steps of 0.01 (Volume 100 to 1000000, step 100).
    for volume in (50, 150, 1_000_100):
        result = request(http, Login=login, Symbol="EURUSD", Type=0, Volume=volume)
        assert result["Retcode"].startswith("10014 "), volume
    record = api(http, "symbol/get", symbol="XAUUSD")
    api(http, "symbol/add", {**record, "TradeMode": 3})  # close only
    result = request(http, Login=login, Symbol="XAUUSD", Type=0, Volume=100)
    assert result["Retcode"].startswith("10044 ")


def test_close_by_names_the_opposite_position_on_its_deals_and_order(http: httpx.Client) -> None:
    login = account(http, 4_300_009, "demo\\standard", "100000")  # hedging
    quotes(http, XAUUSD=["2000.00", "2000.25"])
    long = trade(http, login, "XAUUSD", 0, 10_000)
    short = trade(http, login, "XAUUSD", 1, 10_000)
    positions = [api(http, "deal/get", ticket=t["Deal"])["PositionID"] for t in (long, short)]
    closed = request(http, Action=210, Login=login, Position=positions[0], PositionBy=positions[1])
    assert closed["Retcode"].startswith("10009 ")
    deals = [api(http, "deal/get", ticket=t) for t in closed["Deals"].split(",")]
    assert [(d["Entry"], d["PositionID"], d["PositionByID"]) for d in deals] == [
        ("3", positions[0], positions[1]),
        ("3", positions[1], positions[0]),
    ]
    order = api(http, "history/get", ticket=closed["Order"])
    assert (order["Type"], order["PositionID"], order["PositionByID"]) == ("8", *positions)
    # The pair's profit: sold at 2000.00 what was bought at 2000.25, 1 lot x 100 = -25.00.
    assert sum(Decimal(d["Profit"]) for d in deals) == Decimal("-25.00")


def test_a_groups_trade_flags_and_limits(http: httpx.Client) -> None:
    group = {
        "Group": "demo\\fifo",
        "Currency": "USD",
        "MarginMode": "2",  # hedging
        "TradeFlags": str(0x7 | 0x100 | 0x200),  # + FIFO_CLOSE + HEDGE_PROHIBIT
        "LimitPositions": "2",
        "LimitOrders": "1",
    }
    api(http, "group/add", group)
    login = account(http, 4_300_020, "demo\\fifo", "100000")
    quotes(http, XAUUSD=["2000.00", "2000.25"])
    first = trade(http, login, "XAUUSD", 0, 1_000)
    # Opening a sell against the open buy: hedging is prohibited.
    hedge = request(http, Login=login, Symbol="XAUUSD", Type=1, Volume=1_000)
    assert hedge["Retcode"].startswith("10046 "), hedge
    second = trade(http, login, "XAUUSD", 0, 1_000)
    third = request(http, Login=login, Symbol="XAUUSD", Type=0, Volume=1_000)
    assert third["Retcode"].startswith("10040 "), third  # two positions at most
    older, newer = (api(http, "deal/get", ticket=t["Deal"])["PositionID"] for t in (first, second))
    # FIFO: the newer buy may not be closed while the older one is open; the older may.
    early = request(http, Login=login, Symbol="XAUUSD", Type=1, Volume=1_000, Position=newer)
    assert early["Retcode"].startswith("10045 "), early
    trade_result = request(http, Login=login, Symbol="XAUUSD", Type=1, Volume=1_000, Position=older)
    assert trade_result["Retcode"].startswith("10009 "), trade_result
    pending = {"Action": 201, "Login": login, "Symbol": "XAUUSD", "Type": 2, "Volume": 1_000}
    placed = api(http, "dealer/send_request", {**pending, "PriceOrder": "1990.00"})
    assert api(http, "dealer/get_request_result", id=placed["id"])["result"]["Retcode"].startswith(
        "10009 "
    )
    again = api(http, "dealer/send_request", {**pending, "PriceOrder": "1980.00"})
    refused = api(http, "dealer/get_request_result", id=again["id"])["result"]
    assert refused["Retcode"].startswith("10033 "), refused  # one pending order at most


@pytest.mark.parametrize(
    ("mode", "free"),
    [
        # Balance 10000; 1 lot XAUUSD bought at 2000.25: margin 1 x 100 x 2000.25 / 100 = 2000.25;
        # at bid 2010.00 the floating profit is (2010.00 - 2000.25) x 100 = 975.00.
        ("0", "7999.75"),  # floating not counted: 10000 - 2000.25
        ("1", "8974.75"),  # counted: 10975.00 - 2000.25
        ("3", "7999.75"),  # losses only: a profit does not count
    ],
)
def test_free_margin_follows_the_groups_mode(http: httpx.Client, mode: str, free: str) -> None:
    api(http, "group/add", {"Group": "demo\\free", "Currency": "USD", "MarginFreeMode": mode})
    login = account(http, 4_300_021, "demo\\free", "10000")
    quotes(http, XAUUSD=["2000.00", "2000.25"])
    trade(http, login, "XAUUSD", 0, 10_000)
    quotes(http, XAUUSD=["2010.00", "2010.25"])
    state = api(http, "user/account/get", login=login)
    assert (state["Margin"], state["MarginFree"]) == ("2000.25", free)


# -- automatic rollover at server midnight -------------------------------------------------------


def utc_msc(year: int, month: int, day: int, hour: int, minute: int) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp() * 1000)


def server_seconds(year: int, month: int, day: int) -> int:
    """Midnight of a server date as the server writes it: Unix seconds of the local time."""
    return int(datetime(year, month, day, tzinfo=UTC).timestamp())


def freeze(http: httpx.Client, moment: int) -> None:
    http.post("/_sim/time", json={"utc_msc": moment}).raise_for_status()


def storage(http: httpx.Client, login: int) -> str:
    return str(api(http, "position/get", login=login, symbol="EURUSD")["Storage"])


def test_rollover_across_a_weekend_in_server_time(http: httpx.Client) -> None:
    """EURUSD buy 1 lot: -6.5 points x 0.00001 x 100000 = -6.50 USD a night (triple on
    Wednesday). Friday 23:59 server (UTC+2 in November) is 21:59 UTC."""
    api(
        http,
        "group/add",
        {
            "Group": "test\\daily",
            "Currency": "USD",
            "MarginMode": 0,
            "Commissions": [
                {
                    "Path": "Forex\\*",
                    "ChargeMode": 0,  # daily
                    "Tiers": [{"Mode": 0, "Type": 1, "Value": "3"}],
                }
            ],
        },
    )
    freeze(http, utc_msc(2030, 11, 22, 21, 59))  # Friday 23:59 server
    login = account(http, 4_300_006, "test\\daily", "10000")
    quotes(http, EURUSD=["1.10000", "1.10012"])
    trade(http, login, "EURUSD", 0, 10_000)
    freeze(http, utc_msc(2030, 11, 22, 22, 0))  # Saturday 00:00 server, still Friday in UTC
    assert storage(http, login) == "-6.50"
    [charge] = [
        d for d in deals(http, login) if d["Action"] == "8"
    ]  # 1 lot x 3, at the server's midnight
    assert (charge["Profit"], charge["Time"]) == ("-3.00", str(server_seconds(2030, 11, 23)))
    freeze(http, utc_msc(2030, 11, 24, 22, 1))  # Monday 00:01 server
    assert storage(http, login) == "-6.50"  # no swap for Saturday or Sunday


def test_rollover_on_the_triple_day_in_summer_time(http: httpx.Client) -> None:
    freeze(http, utc_msc(2031, 7, 16, 20, 59))  # Wednesday 23:59 server (UTC+3)
    login = account(http, 4_300_007, "demo\\pro", "10000")
    quotes(http, EURUSD=["1.10000", "1.10012"])
    trade(http, login, "EURUSD", 0, 10_000)
    freeze(http, utc_msc(2031, 7, 16, 21, 1))  # Thursday 00:01 server
    assert storage(http, login) == "-19.50"  # Wednesday: 3 x -6.50
    freeze(http, utc_msc(2031, 7, 17, 21, 1))  # Friday 00:01 server
    assert storage(http, login) == "-26.00"
