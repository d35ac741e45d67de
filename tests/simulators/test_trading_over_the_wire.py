"""Trading through the simulator's Web API: dealer requests, positions, account state, stop-out."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.mt5.test_protocol import log_in_by_hand
from tests.support.processes import Simulator, start_simulator

LOGIN = 4_200_001


@pytest.fixture
def wire(artifacts_dir: Path) -> Iterator[tuple[httpx.Client, Simulator]]:
    simulator = start_simulator(artifacts_dir / "logs", tls=False)
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
    simulator.child.stop()


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
    trade(http, Symbol="XAUUSD", Type=0, Volume=40_000)  # 4 lots: 8000 margin on 10000
    assert quotes(http, XAUUSD=("1985.00", "1985.25")) == []  # equity 4000, level 50.4%
    [stop] = quotes(http, XAUUSD=("1984.90", "1985.15"))  # equity 3960 / margin 7940.60
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
