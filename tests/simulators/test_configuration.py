"""Groups and symbols configured through the Web API and a config file, field limits, scale
limits and dealer request ids, on the simulator's commands in-process (one over the wire)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from simulators.mt5.commands import MAX_BATCH, MAX_PAGE, Call, Commands
from simulators.mt5.config import symbol_from_record, symbol_record
from simulators.mt5.retcodes import Refusal
from simulators.mt5.state import Books, Deal
from simulators.mt5.trade_commands import TradeCommands
from tests.mt5.test_protocol import log_in_by_hand
from tests.support.processes import start_simulator

LOGIN = 7_000_001
AGENT = 7_000_002
# A CFD on a USD account, so no conversion enters its figures: 10 units a lot, 2 digits,
# 10 points of spread (bid 100.00, ask 100.10), 10 % margin.
WIDGET = {
    "Symbol": "WIDGET",
    "Path": "Widgets\\WIDGET",
    "CurrencyBase": "USD",
    "CurrencyProfit": "USD",
    "CalcMode": "2",
    "ContractSize": "10",
    "Digits": "2",
    "Bid": "100.00",
    "Spread": "10",
    "MarginRateInitial": ["0.1"] * 8,
}
NEW_GROUP = {"Group": "real\\test", "Currency": "USD", "MarginMode": "0", "MarginStopOut": "30"}


class Server:
    """The simulator's command tables over fresh books, called as the HTTP layer calls them."""

    def __init__(self, books: Books | None = None) -> None:
        self.books = books or Books()
        self.commands = Commands(self.books, save=lambda _: None)
        self.trading = TradeCommands(self.commands)
        self.table: dict[str, Callable[[Call], dict[str, Any]]] = {
            **self.commands.table(),
            **self.trading.table(),
        }

    def __call__(self, path: str, body: Any = None, **params: object) -> Any:
        return self.table[path](Call({k: str(v) for k, v in params.items()}, body)).get("answer")

    def refused(self, path: str, body: Any = None, **params: object) -> int:
        with pytest.raises(Refusal) as refusal:
            self(path, body, **params)
        return refusal.value.code

    def add_user(self, login: int = LOGIN, group: str = "demo\\pro", **fields: object) -> Any:
        record = {
            "Login": login,
            "Group": group,
            "Name": "Config Trader",
            "Leverage": 100,
            "PassMain": "Main#Pass1",
            "PassInvestor": "Inv#Pass1",
            **fields,
        }
        return self("user/add", record)

    def buy(self, symbol: str, volume: int, login: int = LOGIN) -> dict[str, str]:
        request = {"Action": 200, "Login": login, "Symbol": symbol, "Type": 0, "Volume": volume}
        sent = self("dealer/send_request", request)
        result: dict[str, str] = self("dealer/get_request_result", id=sent["id"])["result"]
        return result


@pytest.fixture
def server() -> Server:
    return Server()


# -- groups ------------------------------------------------------------------------------------


def test_a_group_added_gets_the_defaults_and_takes_accounts(server: Server) -> None:
    total = int(server("group/total")["total"])
    added = server("group/add", NEW_GROUP)
    assert (added["Group"], added["Currency"], added["MarginStopOut"]) == (
        "real\\test",
        "USD",
        "30",
    )
    assert (added["CurrencyDigits"], added["MarginCall"], added["Commissions"]) == ("2", "100", [])
    assert all(isinstance(v, str | list) for v in added.values()), "numbers as strings"
    assert server("group/get", group="real\\test") == added
    assert int(server("group/total")["total"]) == total + 1
    assert server.add_user(group="real\\test")["Group"] == "real\\test"


@pytest.mark.parametrize(
    "record",
    [
        {"Currency": "USD"},  # no name
        {"Group": "", "Currency": "USD"},
        {"Group": "x" * 64, "Currency": "USD"},
        {"Group": "real\\test"},  # no currency
        {"Group": "real\\test", "Currency": "XYZ"},
        {**NEW_GROUP, "MarginCall": "lots"},
        {**NEW_GROUP, "MarginMode": "7"},
        {**NEW_GROUP, "CurrencyDigits": "-1"},
        {**NEW_GROUP, "Commissions": "none"},
        {**NEW_GROUP, "Commissions": [{"Path": "*", "Tiers": [{"Value": "cheap"}]}]},
        {**NEW_GROUP, "Commissions": [{"Path": "*", "Tiers": []}]},
        {**NEW_GROUP, "Symbols": [{"Path": "Forex\\*", "VolumeMin": "many"}]},
        {**NEW_GROUP, "Symbols": [{"VolumeMin": "100"}]},  # no path
        # Valid alone, but above EURUSD's maximum of 100 lots.
        {**NEW_GROUP, "Symbols": [{"Path": "Forex\\*", "VolumeMin": "2000000"}]},
    ],
)
def test_an_invalid_group_is_refused_and_not_stored(server: Server, record: Any) -> None:
    assert server.refused("group/add", record) == 3
    assert server.refused("group/get", group="real\\test") == 13


def test_a_group_is_updated_and_deleted_only_when_empty(server: Server) -> None:
    server("group/add", NEW_GROUP)
    updated = server("group/update", {"Group": "real\\test", "MarginCall": "80"})
    assert (updated["MarginCall"], updated["MarginStopOut"]) == ("80", "30")
    assert server.refused("group/update", {"Group": "real\\nothing", "MarginCall": "80"}) == 13
    server.add_user(group="real\\test")
    # Its accounts' balances are in USD: the currency stays while they are there.
    assert server.refused("group/update", {"Group": "real\\test", "Currency": "EUR"}) == 2003
    assert server.refused("group/delete", group="real\\test") == 2003
    server("user/delete", login=LOGIN)
    assert server("group/delete", group="real\\test") is None
    assert server.refused("group/get", group="real\\test") == 13
    assert server.refused("group/delete", group="real\\test") == 13


# -- symbols -----------------------------------------------------------------------------------


def test_a_symbol_added_is_traded_at_once(server: Server) -> None:
    total = int(server("symbol/total")["total"])
    added = server("symbol/add", WIDGET)
    assert (added["Symbol"], added["CalcMode"], added["CurrencyMargin"]) == ("WIDGET", "2", "USD")
    assert server("symbol/get", symbol="WIDGET") == added
    assert int(server("symbol/total")["total"]) == total + 1
    server.add_user()
    server("trade/balance", login=LOGIN, type=2, balance="1000")
    assert server.buy("WIDGET", 10_000)["Retcode"].startswith("10009 ")
    # CFD margin: 1 lot x 10 contract x 100.10 ask x 0.1 rate = 100.10
    assert server("user/account/get", login=LOGIN)["Margin"] == "100.10"
    [position] = server("position/get_batch", login=LOGIN)
    assert (position["Symbol"], position["ContractSize"]) == ("WIDGET", "10")


@pytest.mark.parametrize(
    "change",
    [
        {"Symbol": None},
        {"Symbol": "W" * 32},
        {"CurrencyProfit": "XYZ"},
        {"CurrencyBase": None},
        {"ContractSize": "0"},
        {"Digits": "9"},
        {"CalcMode": "33"},  # exchange futures: a mode this server does not compute
        {"TradeMode": "5"},
        {"VolumeMin": "1000", "VolumeMax": "100"},
        {"VolumeMin": "100", "VolumeMinExt": "2000000"},  # the two units disagree
        {"VolumeStepExt": "50"},  # below 1/10000 lot
        {"MarginRateInitial": ["0.1"] * 7},
        {"MarginRateInitial": ["-0.1"] * 8},
        {"SwapLong": "NaN"},
        {"Swap3Day": "7"},
    ],
)
def test_an_invalid_symbol_is_refused_and_not_stored(
    server: Server, change: dict[str, Any]
) -> None:
    record = {k: v for k, v in {**WIDGET, **change}.items() if v is not None}
    assert server.refused("symbol/add", record) == 3
    assert server.refused("symbol/get", symbol="WIDGET") == 13


def test_a_record_holds_every_field_and_reads_back_the_same() -> None:
    record = {
        **WIDGET,
        "MarginRateInitial": ["0.1", "0.2", "0.1", "0.2", "0.1", "0.2", "0.1", "0.2"],
        "MarginRateMaintenance": ["0.05"] * 8,
        "MarginInitial": "500",
        "MarginMaintenance": "400",
        "MarginHedged": "5",
        "MarginFlags": "4",
        "VolumeMinExt": "10000000",  # 0.1 lot
        "VolumeMax": "500000",
        "VolumeStep": "1000",
        "TradeMode": "3",
        "SwapMode": "5",
        "SwapLong": "-2.5",
        "SwapShort": "0.5",
        "Swap3Day": "5",
        "TickSize": "0.05",
        "TickValue": "0.5",
    }
    symbol = symbol_from_record(record)
    assert symbol.margin_rates_initial == tuple(Decimal(r) for r in record["MarginRateInitial"])
    assert symbol.margin_rates_maintenance == (Decimal("0.05"),) * 8
    assert (symbol.margin_initial, symbol.margin_maintenance) == (Decimal(500), Decimal(400))
    # 0.1 lot = 1000 in 1/10000 lot; 50 lots = 500000.
    assert (symbol.volume_min, symbol.volume_max, symbol.volume_step) == (1000, 500_000, 1000)
    assert (symbol.trade_mode, symbol.margin_flags, symbol.swap_3day) == (3, 4, 5)
    answered = symbol_record(symbol)
    assert {k: answered[k] for k in record} == record
    assert symbol_record(symbol_from_record(answered)) == answered


def test_a_groups_overrides_are_what_its_accounts_trade_by(server: Server) -> None:
    server("symbol/add", WIDGET)
    rates = ["0.5"] * 8
    override = {
        "Path": "Widgets\\*",
        "MarginRateInitial": rates,
        "MarginRateMaintenance": rates,
        "VolumeMin": "20000",
    }
    server("group/add", {**NEW_GROUP, "Symbols": [override]})
    server.add_user(LOGIN, "real\\test")
    server.add_user(AGENT)  # demo\pro: WIDGET as configured
    for login in (LOGIN, AGENT):
        server("trade/balance", login=login, type=2, balance="2000")
    # The group's minimum is 2 lots: 1 lot is an invalid volume there, not elsewhere.
    assert server.buy("WIDGET", 10_000)["Retcode"].startswith("10014 ")
    assert server.buy("WIDGET", 10_000, login=AGENT)["Retcode"].startswith("10009 ")
    assert server.buy("WIDGET", 20_000)["Retcode"].startswith("10009 ")
    # Margin, lots x contract x open price (the ask) x rate:
    # here 2 x 10 x 100.10 x 0.5 = 1001.00; elsewhere 1 x 10 x 100.10 x 0.1 = 100.10.
    assert server("user/account/get", login=LOGIN)["Margin"] == "1001.00"
    assert server("user/account/get", login=AGENT)["Margin"] == "100.10"


def test_a_group_overrides_its_symbols(server: Server) -> None:
    override = {
        "Path": "Forex\\*",
        "MarginRateInitial": ["2"] * 8,
        "VolumeMin": "1000",
        "TradeMode": "3",
        "SwapLong": "default",  # keeps the symbol's own
        "SpreadDiff": "5",
    }
    server("group/add", {**NEW_GROUP, "Symbols": [override, {"Path": "EURUSD", "Swap3Day": "5"}]})
    plain = server("symbol/get", symbol="EURUSD")
    seen = server("symbol/get_group", symbol="EURUSD", group="real\\test")
    assert seen["MarginRateInitial"] == ["2"] * 8
    # A symbol without a per-type table: its rate for buys and sells, pending orders free.
    assert plain["MarginRateInitial"] == ["1", "1", "0", "0", "0", "0", "0", "0"]
    assert (seen["VolumeMin"], seen["VolumeMinExt"], seen["TradeMode"]) == ("1000", "10000000", "3")
    assert (seen["SwapLong"], seen["Swap3Day"], seen["Spread"]) == (plain["SwapLong"], "5", "17")
    assert server("symbol/get_group", symbol="XAUUSD", group="real\\test") == server(
        "symbol/get", symbol="XAUUSD"
    )
    assert server.refused("symbol/get_group", symbol="EURUSD", group="real\\nothing") == 13
    # A symbol the group's overrides would make invalid (minimum above its maximum) is refused.
    assert server.refused("symbol/add", {**WIDGET, "Path": "Forex\\W", "VolumeMax": "500"}) == 3


def test_a_symbol_with_trades_stays_and_the_catalogue_survives_a_restart(server: Server) -> None:
    server("symbol/add", WIDGET)
    server.add_user()
    server("trade/balance", login=LOGIN, type=2, balance="1000")
    server.buy("WIDGET", 10_000)
    assert server.refused("symbol/delete", symbol="WIDGET") == 2003
    assert server("symbol/delete", symbol="NZDUSD") is None
    assert server.refused("symbol/get", symbol="NZDUSD") == 13
    assert server.refused("symbol/delete", symbol="NZDUSD") == 13
    restarted = Server(server.books)
    assert restarted("symbol/get", symbol="WIDGET") == server("symbol/get", symbol="WIDGET")
    assert restarted.refused("symbol/get", symbol="NZDUSD") == 13
    assert restarted("symbol/total") == server("symbol/total")


# -- the config file ---------------------------------------------------------------------------


def test_a_config_file_replaces_and_extends_the_defaults(tmp_path: Path, server: Server) -> None:
    eurusd = {**server("symbol/get", symbol="EURUSD"), "Spread": "3"}
    group = {**NEW_GROUP, "Symbols": [{"Path": "Widgets\\*", "VolumeMin": "10000"}]}
    path = tmp_path / "mt5.json"
    path.write_text(json.dumps({"groups": [group], "symbols": [WIDGET, eurusd]}))
    server.commands.configure(config=path)
    assert server("symbol/get", symbol="EURUSD")["Spread"] == "3"
    assert server("symbol/get", symbol="WIDGET")["ContractSize"] == "10"
    assert server("symbol/get_group", symbol="WIDGET", group="real\\test")["VolumeMin"] == "10000"
    assert server("group/get", group="demo\\pro")["Group"] == "demo\\pro"  # defaults stay


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        '["groups"]',
        '{"groups": {}}',
        json.dumps({"symbols": [{**WIDGET, "CurrencyProfit": "XYZ"}]}),
        json.dumps({"groups": [{"Group": "real\\test"}]}),
    ],
)
def test_an_invalid_config_file_stops_the_start(
    tmp_path: Path, server: Server, content: str
) -> None:
    path = tmp_path / "mt5.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=r"mt5\.json"):
        server.commands.configure(config=path)


# -- users: field limits and the agent ---------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"Leverage": 0},
        {"Leverage": 10_001},
        {"Name": "N" * 129},
        {"Comment": "C" * 65},
        {"Email": "e" * 65},
        {"Agent": AGENT},  # no such account
        {"Agent": -1},
    ],
)
def test_user_fields_beyond_their_limits_are_refused(
    server: Server, fields: dict[str, object]
) -> None:
    with pytest.raises(Refusal) as refusal:
        server.add_user(LOGIN, "demo\\pro", **fields)
    assert refusal.value.code == 3
    server.add_user()
    assert server.refused("user/update", {"Login": LOGIN, **fields}) == 3


def test_an_agent_is_recorded_with_the_commission_accumulators(server: Server) -> None:
    server.add_user(AGENT, Name="Introducing Broker", Leverage=10_000)
    user = server.add_user(Agent=AGENT)
    assert (user["Agent"], user["CommissionMonthly"]) == (str(AGENT), "0.00")
    assert (user["CommissionAgentDaily"], user["CommissionAgentMonthly"]) == ("0.00", "0.00")
    assert server("user/update", {"Login": LOGIN, "Agent": 0})["Agent"] == "0"


# -- scale limits ------------------------------------------------------------------------------


def test_pages_and_batches_are_capped(server: Server) -> None:
    server.add_user()
    for n in range(MAX_PAGE + 1):
        server.books.add_deal(Deal(server.books.new_ticket(), LOGIN, 2, "1.00", "", n * 1000))
    window = {"login": LOGIN, "from": 0, "to": 4_000_000_000}
    first = server("deal/get_page", **window, offset=0, total=MAX_PAGE * 5)
    rest = server("deal/get_page", **window, offset=MAX_PAGE, total=MAX_PAGE * 5)
    assert (len(first), len(rest)) == (MAX_PAGE, 1)
    for n in range(MAX_PAGE + 1, MAX_BATCH + 1):
        server.books.add_deal(Deal(server.books.new_ticket(), LOGIN, 2, "1.00", "", n * 1000))
    batch = server("deal/get_batch", **window)
    assert len(batch) == MAX_BATCH
    assert json.loads(batch[-1])["Time"] == str(MAX_BATCH - 1)  # the first ones, by ticket


def test_deal_and_order_records_carry_position_by_and_fee(server: Server) -> None:
    server.add_user()
    server("trade/balance", login=LOGIN, type=2, balance="1000")
    [deposit] = server("deal/get_batch", login=LOGIN, **{"from": 0, "to": 4_000_000_000})
    assert (json.loads(deposit)["PositionByID"], json.loads(deposit)["Fee"]) == ("0", "0.00")
    server.buy("EURUSD", 1000)
    [order] = server("history/get_batch", login=LOGIN, **{"from": 0, "to": 4_000_000_000})
    assert order["PositionByID"] == "0"


# -- dealer requests ---------------------------------------------------------------------------


def test_dealer_request_ids_and_results_outlive_a_restart(server: Server) -> None:
    server.add_user()
    server("trade/balance", login=LOGIN, type=2, balance="1000")
    market = {"Action": 200, "Login": LOGIN, "Type": 0, "Volume": 1000}
    done = server("dealer/send_request", {**market, "Symbol": "EURUSD"})
    refused = server("dealer/send_request", {**market, "Symbol": "NOPE"})
    restarted = Server(server.books)  # a restart: new tables over the books kept
    assert restarted("dealer/get_request_result", id=done["id"])["result"]["Retcode"].startswith(
        "10009 "
    )
    assert restarted("dealer/get_request_result", id=refused["id"])["result"]["Retcode"] == (
        "13 Not found"
    )
    again = restarted("dealer/send_request", {"Action": 203, "Login": LOGIN, "Order": 1})
    assert int(again["id"]) == int(refused["id"]) + 1


# -- over the wire -----------------------------------------------------------------------------


@pytest.fixture
def wire(artifacts_dir: Path) -> Iterator[httpx.Client]:
    simulator = start_simulator(artifacts_dir / "logs", tls=False)
    try:
        with httpx.Client(base_url=simulator.base_url) as http:
            log_in_by_hand(http, simulator.manager, simulator.password)
            yield http
    finally:
        simulator.child.stop()


def test_groups_and_symbols_over_the_wire(wire: httpx.Client) -> None:
    added = wire.post("/api/symbol/add", json=WIDGET).json()
    assert added["retcode"] == "0 Done" and added["answer"]["Symbol"] == "WIDGET"
    group = {**NEW_GROUP, "Symbols": [{"Path": "Widgets\\*", "MarginRateInitial": ["0.5"] * 8}]}
    assert wire.post("/api/group/add", json=group).json()["retcode"] == "0 Done"
    seen = wire.get("/api/symbol/get_group", params={"symbol": "WIDGET", "group": "real\\test"})
    assert seen.json()["answer"]["MarginRateInitial"] == ["0.5"] * 8
    bad = wire.post("/api/symbol/add", json={**WIDGET, "CurrencyProfit": "XYZ"}).json()
    assert bad["retcode"].startswith("3 ") and "answer" not in bad
    assert wire.get("/api/group/delete", params={"group": "real\\test"}).json()["retcode"] == (
        "0 Done"
    )
