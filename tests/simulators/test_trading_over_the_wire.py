"""Trading through the simulator's Web API: dealer requests, positions, account state, stop-out."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.mt5.test_protocol import log_in_by_hand
from tests.support.processes import Simulator, start_simulator

LOGIN = 4_200_001


@contextmanager
def opened_wire(artifacts_dir: Path) -> Iterator[tuple[httpx.Client, Simulator]]:
    """A simulator with a logged-in client and LOGIN (demo\\pro) holding a 10000 deposit."""
    simulator = start_simulator(artifacts_dir / "logs", tls=False)
    try:
        with httpx.Client(base_url=simulator.base_url) as http:
            log_in_by_hand(http, simulator.manager, simulator.password)
            http.post(
                "/api/user/add",
                json={
                    "Login": LOGIN,
                    "Group": "demo\\pro",
                    "Name": "Wire Trader",
                    "Leverage": 100,
                    "PassMain": "Main#Pass1",
                    "PassInvestor": "Inv#Pass1",
                },
            )
            http.get(
                "/api/trade/balance",
                params={"login": LOGIN, "type": 2, "balance": "10000", "comment": "dep"},
            )
            yield http, simulator
    finally:
        simulator.child.stop()


@pytest.fixture
def wire(artifacts_dir: Path) -> Iterator[tuple[httpx.Client, Simulator]]:
    with opened_wire(artifacts_dir) as opened:
        yield opened


def quotes(http: httpx.Client, **prices: tuple[str, str]) -> list[dict[str, Any]]:
    response = http.post("/_sim/quotes", json={k: list(v) for k, v in prices.items()})
    response.raise_for_status()
    return list(response.json()["stopped_out"])


def trade(http: httpx.Client, **request: object) -> dict[str, str]:
    sent = http.post(
        "/api/dealer/send_request", json={"Action": 200, "Login": LOGIN, **request}
    ).json()
    assert sent["retcode"] == "0 Done"
    result = http.get("/api/dealer/get_request_result", params={"id": sent["answer"]["id"]}).json()
    return dict(result["answer"]["result"])


def test_a_position_its_margin_and_its_deals(wire: tuple[httpx.Client, Simulator]) -> None:
    http, _ = wire
    quotes(http, EURUSD=("1.0998", "1.1000"))
    assert trade(http, Symbol="EURUSD", Type=0, Volume=5000)["Retcode"].startswith("10009 ")
    position = http.get("/api/position/get", params={"login": LOGIN, "symbol": "EURUSD"}).json()[
        "answer"
    ]
    assert (position["Action"], position["Volume"], position["PriceOpen"]) == (
        "0",
        "5000",
        "1.10000",
    )
    account = http.get("/api/user/account/get", params={"login": LOGIN}).json()["answer"]
    assert (account["Margin"], account["Balance"]) == ("550.00", "10000.00")
    quotes(http, EURUSD=("1.1050", "1.1052"))
    account = http.get("/api/user/account/get", params={"login": LOGIN}).json()["answer"]
    assert (account["Profit"], account["Equity"]) == ("250.00", "10250.00")
    closing = trade(http, Symbol="EURUSD", Type=1, Volume=5000)
    deal = http.get("/api/deal/get", params={"ticket": closing["Deal"]}).json()["answer"]
    assert (deal["Entry"], deal["Profit"], deal["VolumeClosed"]) == ("1", "250.00", "5000")
    assert (
        http.get("/api/position/get_total", params={"login": LOGIN}).json()["answer"]["total"]
        == "0"
    )
    # Not enough margin: refused, nothing booked.
    assert trade(http, Symbol="EURUSD", Type=0, Volume=1_000_000)["Retcode"].startswith("10019 ")


def test_a_price_move_stops_the_account_out(wire: tuple[httpx.Client, Simulator]) -> None:
    http, _ = wire
    quotes(http, XAUUSD=("1999.75", "2000.00"))
    # 4 lots: margin 4 x 100 x 2000.00 (the open price) / 100 = 8000 on 10000.
    trade(http, Symbol="XAUUSD", Type=0, Volume=40_000)
    # Equity 10000 - 400 x (2000.00 - 1985.10) = 4040: level 4040 / 8000 = 50.5 %, above 50 %.
    assert quotes(http, XAUUSD=("1985.10", "1985.35")) == []
    # Equity 10000 - 400 x 15.10 = 3960: 49.5 %, stopped out.
    [stop] = quotes(http, XAUUSD=("1984.90", "1985.15"))
    assert (stop["Reason"], stop["Entry"], stop["Profit"]) == ("5", "1", "-6040.00")
    account = http.get("/api/user/account/get", params={"login": LOGIN}).json()["answer"]
    assert (account["Balance"], account["Margin"]) == ("3960.00", "0.00")


def test_symbols_and_ticks(wire: tuple[httpx.Client, Simulator]) -> None:
    http, _ = wire
    gold = http.get("/api/symbol/get", params={"symbol": "XAUUSD"}).json()["answer"]
    assert (gold["CalcMode"], gold["ContractSize"]) == ("4", "100")
    ticks = http.get("/api/tick/last", params={"symbol": "EURUSD,US500"}).json()["answer"]
    assert [t["Symbol"] for t in ticks] == ["EURUSD", "US500"]
    assert (
        http.get("/api/symbol/get", params={"symbol": "NOPE"}).json()["retcode"].startswith("13 ")
    )


def test_pending_orders_and_history_through_the_api(wire: tuple[httpx.Client, Simulator]) -> None:
    http, _ = wire
    quotes(http, EURUSD=("1.09988", "1.10000"))
    placed = trade(http, Action=201, Symbol="EURUSD", Type=2, Volume=1000, PriceOrder="1.09900")
    assert placed["Retcode"].startswith("10009 ")
    [pending] = http.get("/api/order/get_page", params={"login": LOGIN, "total": 10}).json()[
        "answer"
    ]
    assert (pending["Type"], pending["State"], pending["PriceOrder"]) == ("2", "1", "1.09900")
    [fill] = quotes(http, EURUSD=("1.09888", "1.09900"))
    assert fill["Price"] == "1.09900"
    assert (
        http.get("/api/order/get_total", params={"login": LOGIN}).json()["answer"]["total"] == "0"
    )
    window = {"login": LOGIN, "from": 0, "to": 4_000_000_000}
    history = http.get("/api/history/get_batch", params=window).json()["answer"]
    assert {(h["Order"], h["State"]) for h in history} >= {(placed["Order"], "4")}
    stops = trade(http, Action=202, Position=fill["PositionID"], PriceSL="1.09000", PriceTP="0")
    assert stops["Retcode"].startswith("10009 ")
    position = http.get("/api/position/get", params={"login": LOGIN, "symbol": "EURUSD"}).json()
    assert position["answer"]["PriceSL"] == "1.09000"


# -- every read endpoint, once valid and once invalid ------------------------------------------

WINDOW = {"login": LOGIN, "from": 0, "to": 4_000_000_000}
PAGE = {**WINDOW, "offset": 0, "total": 10}
NO_SUCH_TICKET = 999_999_999
# Field names per ../shared/mt5-webapi-reference.md (3.2-3.7): the ones every record must carry.
USER_FIELDS = {"Login", "Group", "Name", "Rights", "Registration", "Leverage", "Balance", "Credit"}
ACCOUNT_FIELDS = {
    "Login",
    "CurrencyDigits",
    "Balance",
    "Credit",
    "Margin",
    "MarginFree",
    "MarginLevel",
    "MarginLeverage",
    "Profit",
    "Storage",
    "Floating",
    "Equity",
    "SOActivation",
}
DEAL_FIELDS = {
    "Deal",
    "Login",
    "Order",
    "Action",
    "Entry",
    "Reason",
    "Time",
    "TimeMsc",
    "Symbol",
    "Price",
    "Volume",
    "VolumeExt",
    "Profit",
    "Storage",
    "Commission",
    "RateProfit",
    "RateMargin",
    "PositionID",
    "Comment",
}
POSITION_FIELDS = {
    "Position",
    "Login",
    "Symbol",
    "Action",
    "Digits",
    "TimeCreate",
    "TimeCreateMsc",
    "PriceOpen",
    "PriceCurrent",
    "PriceSL",
    "PriceTP",
    "Volume",
    "VolumeExt",
    "Profit",
    "Storage",
    "RateProfit",
    "RateMargin",
}
ORDER_FIELDS = {
    "Order",
    "Login",
    "Symbol",
    "State",
    "Reason",
    "TimeSetup",
    "TimeSetupMsc",
    "TimeDone",
    "Type",
    "TypeFill",
    "TypeTime",
    "PriceOrder",
    "PriceTrigger",
    "PriceSL",
    "PriceTP",
    "VolumeInitial",
    "VolumeInitialExt",
    "VolumeCurrent",
    "VolumeCurrentExt",
    "PositionID",
}
GROUP_FIELDS = {
    "Group",
    "Currency",
    "CurrencyDigits",
    "MarginMode",
    "MarginSOMode",
    "MarginCall",
    "MarginStopOut",
    "Commissions",
}
TOTAL = {"total"}


@dataclass(frozen=True)
class Tickets:
    """What the shared simulator holds for LOGIN: an open position (its filling order is in the
    history) and a pending buy limit."""

    position: int
    filled_order: int
    pending_order: int


Params = Callable[[Tickets], dict[str, Any]]


@dataclass(frozen=True)
class Endpoint:
    path: str
    valid: Params
    fields: set[str] | None  # of the answer (its items for an array); None: no answer at all
    invalid: Params | None  # None: the command takes no parameters; called without a session
    refusal: int = 0  # the retcode of the invalid call
    post: bool = False  # parameters as a JSON body (the password commands keep them off URLs)


def no_session(_: Tickets) -> dict[str, Any]:
    return {}


ENDPOINTS = [
    Endpoint("user/get_batch", lambda t: {"login": LOGIN}, USER_FIELDS, lambda t: {}, 3),
    Endpoint("user/logins", lambda t: {"group": "demo\\*"}, None, lambda t: {}, 3),
    Endpoint(
        "user/check_password",
        lambda t: {"login": LOGIN, "type": "main", "password": "Main#Pass1"},
        None,
        lambda t: {"login": LOGIN, "type": "main", "password": "Wrong#Pass1"},
        3006,
    ),
    Endpoint(
        "user/change_password",
        lambda t: {"Login": LOGIN, "Type": "investor", "Password": "Inv#Pass22"},
        None,
        lambda t: {"Login": LOGIN, "Type": "investor", "Password": "weak"},
        3006,
        post=True,
    ),
    Endpoint("user/account/get_batch", lambda t: {"login": LOGIN}, ACCOUNT_FIELDS, lambda t: {}, 3),
    Endpoint("deal/get_total", lambda t: WINDOW, TOTAL, lambda t: {"login": LOGIN}, 3),
    Endpoint("deal/get_page", lambda t: PAGE, DEAL_FIELDS, lambda t: {"login": LOGIN}, 3),
    Endpoint(
        "position/get_page",
        lambda t: {"login": LOGIN, "offset": 0, "total": 10},
        POSITION_FIELDS,
        lambda t: {"login": 1, "offset": 0, "total": 10},
        13,
    ),
    Endpoint(
        "position/get_batch",
        lambda t: {"ticket": t.position},
        POSITION_FIELDS,
        lambda t: {"login": LOGIN, "ticket": t.position},  # only one of login/group/ticket
        3,
    ),
    Endpoint(
        "order/get",
        lambda t: {"ticket": t.pending_order},
        ORDER_FIELDS,
        lambda t: {"ticket": NO_SUCH_TICKET},
        13,
    ),
    Endpoint("order/get_batch", lambda t: {"login": LOGIN}, ORDER_FIELDS, lambda t: {}, 3),
    Endpoint(
        "history/get",
        lambda t: {"ticket": t.filled_order},
        ORDER_FIELDS,
        lambda t: {"ticket": NO_SUCH_TICKET},
        13,
    ),
    Endpoint("history/get_total", lambda t: WINDOW, TOTAL, lambda t: {"login": LOGIN}, 3),
    Endpoint("history/get_page", lambda t: PAGE, ORDER_FIELDS, lambda t: {"login": LOGIN}, 3),
    Endpoint(
        "group/get", lambda t: {"group": "demo\\pro"}, GROUP_FIELDS, lambda t: {"group": "no"}, 13
    ),
    Endpoint("group/total", lambda t: {}, TOTAL, None),
    Endpoint("symbol/total", lambda t: {}, TOTAL, None),
    Endpoint("time/server", lambda t: {}, {"Time"}, None),
]


@dataclass
class Shared:
    http: httpx.Client
    anonymous: httpx.Client  # a connection that never authenticated
    tickets: Tickets


@pytest.fixture(scope="module")
def shared(artifacts_dir: Path) -> Iterator[Shared]:
    """One simulator for the endpoint tables below: each case is one request, so starting a
    server per case would cost far more than the case."""
    with opened_wire(artifacts_dir) as (http, simulator):
        quotes(http, EURUSD=("1.0998", "1.1000"))
        filled = trade(http, Symbol="EURUSD", Type=0, Volume=1000)
        pending = trade(http, Action=201, Symbol="EURUSD", Type=2, Volume=1000, PriceOrder="1.05")
        [deal] = http.get("/api/deal/get_batch", params={"ticket": filled["Deal"]}).json()["answer"]
        tickets = Tickets(int(deal["PositionID"]), int(filled["Order"]), int(pending["Order"]))
        with httpx.Client(base_url=simulator.base_url) as anonymous:
            yield Shared(http, anonymous, tickets)


def call(http: httpx.Client, endpoint: Endpoint, params: dict[str, Any]) -> httpx.Response:
    if endpoint.post:
        return http.post(f"/api/{endpoint.path}", json=params)
    return http.get(f"/api/{endpoint.path}", params=params)


@pytest.mark.parametrize("valid", [True, False], ids=["valid", "invalid"])
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[e.path for e in ENDPOINTS])
def test_each_endpoint_answers_and_refuses_per_the_reference(
    shared: Shared, endpoint: Endpoint, valid: bool
) -> None:
    if not valid:
        if endpoint.invalid is None:  # nothing to get wrong but the session: 403, no envelope
            response = call(shared.anonymous, endpoint, {})
            assert response.status_code == 403 and "retcode" not in response.text
            return
        refused = call(shared.http, endpoint, endpoint.invalid(shared.tickets)).json()
        assert int(refused["retcode"].split(" ", 1)[0]) == endpoint.refusal
        assert "answer" not in refused
        return
    body = call(shared.http, endpoint, endpoint.valid(shared.tickets)).json()
    assert body["retcode"] == "0 Done"
    answer = body.get("answer")
    if endpoint.fields is None and endpoint.path != "user/logins":
        assert answer is None  # retcode only
        return
    items = answer if isinstance(answer, list) else [answer]
    assert items, f"{endpoint.path} answered nothing"
    for item in items:
        if endpoint.fields is None:  # user/logins: login strings
            assert isinstance(item, str) and item.isdigit()
        else:
            assert endpoint.fields <= set(item), endpoint.fields - set(item)
            assert all(isinstance(v, str | list) for v in item.values()), "numbers as strings"
    CHECKS.get(endpoint.path, _nothing_more)(shared, answer)


def _nothing_more(shared: Shared, answer: Any) -> None:
    pass


def _logins(shared: Shared, answer: Any) -> None:
    assert str(LOGIN) in answer


def _password_changed(shared: Shared, answer: Any) -> None:
    check: dict[str, str | int] = {"login": LOGIN, "type": "investor", "password": "Inv#Pass22"}
    assert shared.http.get("/api/user/check_password", params=check).json()["retcode"] == "0 Done"


def _positive_total(shared: Shared, answer: Any) -> None:
    assert int(answer["total"]) > 0


def _time(shared: Shared, answer: Any) -> None:
    match = re.fullmatch(r"(\d+) (\d{4}\.\d\d\.\d\d \d\d:\d\d:\d\d)", answer["Time"])
    assert match, answer["Time"]
    unix = int(match[1])
    assert abs(unix - time.time()) < 60
    # Trade-server time is UTC in this simulator (docs/mt5-simulator.md).
    assert match[2] == datetime.fromtimestamp(unix, UTC).strftime("%Y.%m.%d %H:%M:%S")


CHECKS: dict[str, Callable[[Shared, Any], None]] = {
    "user/logins": _logins,
    "user/change_password": _password_changed,
    "order/get": lambda shared, a: _is(a, "Order", shared.tickets.pending_order, State="1"),
    "history/get": lambda shared, a: _is(a, "Order", shared.tickets.filled_order, State="4"),
    "position/get_batch": lambda shared, a: _is(a[0], "Position", shared.tickets.position),
    "deal/get_total": _positive_total,
    "history/get_total": _positive_total,
    "group/total": _positive_total,
    "symbol/total": _positive_total,
    "time/server": _time,
}


def _is(record: dict[str, str], key: str, ticket: int, **fields: str) -> None:
    assert record[key] == str(ticket)
    assert {k: record[k] for k in fields} == fields


@pytest.mark.parametrize("kind", [2, 3, 4, 5, 6])
def test_every_balance_type_books_a_deal_of_that_action(shared: Shared, kind: int) -> None:
    http, login = shared.http, LOGIN + 100 + kind
    added = http.post(
        "/api/user/add",
        json={
            "Login": login,
            "Group": "demo\\pro",
            "Name": f"Type {kind}",
            "Leverage": 100,
            "PassMain": "Main#Pass1",
            "PassInvestor": "Inv#Pass1",
        },
    ).json()
    assert added["retcode"] == "0 Done"

    def balance(amount: str) -> dict[str, Any]:
        params: dict[str, str | int] = {
            "login": login,
            "type": kind,
            "balance": amount,
            "comment": f"type {kind}",
        }
        return dict(http.get("/api/trade/balance", params=params).json())

    tickets = [int(balance(amount)["answer"]["Ticket"]) for amount in ("250.50", "-100")]
    assert tickets[1] > tickets[0]
    for ticket, profit in zip(tickets, ("250.50", "-100.00"), strict=True):
        deal = http.get("/api/deal/get", params={"ticket": ticket}).json()["answer"]
        assert (deal["Action"], deal["Entry"], deal["Profit"]) == (str(kind), "0", profit)
        assert (deal["Login"], deal["Symbol"], deal["Volume"]) == (str(login), "", "0")
        assert deal["Comment"] == f"type {kind}"
    # Credit (3) moves Credit, every other type Balance; taking more than is there: 10019.
    assert balance("-1000")["retcode"].startswith("10019 ")
    user = http.get("/api/user/get", params={"login": login}).json()["answer"]
    moved, untouched = ("Credit", "Balance") if kind == 3 else ("Balance", "Credit")
    assert (user[moved], user[untouched]) == ("150.50", "0.00")


def test_tick_last_answers_only_what_changed_since_trans_id(shared: Shared) -> None:
    """Reference 3.7: pass trans_id 0 first; the answer's trans_id, passed back, gets only the
    ticks changed since then."""
    http = shared.http
    quotes(http, GBPUSD=("1.27000", "1.27012"))
    symbols = "GBPUSD,USDJPY,AUDUSD"

    def last(trans_id: str) -> dict[str, Any]:
        params = {"symbol": symbols, "trans_id": trans_id}
        return dict(http.get("/api/tick/last", params=params).json())

    first = last("0")
    assert [t["Symbol"] for t in first["answer"]] == ["GBPUSD", "USDJPY", "AUDUSD"]
    quotes(http, USDJPY=("151.000", "151.012"))
    since = last(first["trans_id"])
    assert [(t["Symbol"], t["Bid"]) for t in since["answer"]] == [("USDJPY", "151.000")]
    assert int(since["trans_id"]) > int(first["trans_id"])
    assert last(since["trans_id"])["answer"] == []
