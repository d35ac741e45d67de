"""Trade-server time: a server at UTC+2 with EU daylight saving (UTC+3 in summer) answers every
time in its own zone and reads every `from`/`to` in it, in-process and over the wire."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.mt5.test_protocol import log_in_by_hand
from tests.simulators.test_configuration import LOGIN, Server
from tests.support.processes import start_simulator

HOUR, MINUTES_10 = 3600, 600
SUMMER = int(datetime(2026, 7, 1, 12, 0, tzinfo=UTC).timestamp())  # EEST: UTC+3
WINTER = int(datetime(2026, 1, 15, 12, 0, tzinfo=UTC).timestamp())  # EET: UTC+2
# 2026-10-25 01:00 UTC daylight saving ends: local 04:00 EEST becomes 03:00 EET, so 03:00-04:00
# local happens twice (00:00-01:00 UTC and 01:00-02:00 UTC).
AUTUMN_FIRST = int(datetime(2026, 10, 25, 0, 30, tzinfo=UTC).timestamp())  # 03:30 local, +3
AUTUMN_SECOND = int(datetime(2026, 10, 25, 1, 30, tzinfo=UTC).timestamp())  # 03:30 local, +2
LOCAL_0330 = int(datetime(2026, 10, 25, 3, 30, tzinfo=UTC).timestamp())  # as the server writes it


@pytest.fixture
def server() -> Server:
    server = Server()
    server.commands.configure(time_zone_minutes=120, daylight=True)
    server.add_user()
    return server


def at(server: Server, utc_seconds: int) -> None:
    server.commands.engine.clock.frozen_msc = utc_seconds * 1000


def deposit(server: Server, comment: str = "dep") -> dict[str, str]:
    ticket = server("trade/balance", login=LOGIN, type=2, balance="100", comment=comment)["Ticket"]
    deal: dict[str, str] = server("deal/get", ticket=ticket)
    return deal


def window(centre: int, half: int = MINUTES_10) -> dict[str, int]:
    return {"login": LOGIN, "from": centre - half, "to": centre + half}


@pytest.mark.parametrize(("moment", "offset"), [(SUMMER, 3 * HOUR), (WINTER, 2 * HOUR)])
def test_a_deal_is_stamped_in_server_time(server: Server, moment: int, offset: int) -> None:
    at(server, moment)
    deal = deposit(server)
    assert deal["Time"] == str(moment + offset)
    assert deal["TimeMsc"] == str((moment + offset) * 1000)
    # A ±10 min window on the server's clock finds it; the same window on UTC does not.
    [found] = server("deal/get_batch", **window(moment + offset))
    assert json.loads(found)["Deal"] == deal["Deal"]
    assert server("deal/get_batch", **window(moment)) == []
    assert server("deal/get_total", **window(moment + offset)) == {"total": "1"}
    assert len(server("deal/get_page", **window(moment + offset), offset=0, total=10)) == 1


def test_time_commands_answer_the_zone(server: Server) -> None:
    at(server, SUMMER)
    # 12:00 UTC + 3 h = 15:00 local
    assert server("time/server") == {"Time": f"{SUMMER + 3 * HOUR} 2026.07.01 15:00:00"}
    assert server("time/get") == {
        "TimeZone": "120",
        "Daylight": "1",
        "DaylightState": "1",
        "TimeServer": str(SUMMER + 3 * HOUR),
    }
    at(server, WINTER)
    assert server("time/get")["DaylightState"] == "0"
    assert server("time/server")["Time"] == f"{WINTER + 2 * HOUR} 2026.01.15 14:00:00"


def test_records_of_users_orders_positions_and_ticks_are_in_server_time(server: Server) -> None:
    at(server, SUMMER)
    server.add_user(LOGIN + 1)
    assert server("user/get", login=LOGIN + 1)["Registration"] == str(SUMMER + 3 * HOUR)
    server("trade/balance", login=LOGIN, type=2, balance="10000")
    server.trading.set_quotes({"EURUSD": ["1.10000", "1.10010"]})
    server.buy("EURUSD", 1000)
    [position] = server("position/get_batch", login=LOGIN)
    assert position["TimeCreate"] == position["TimeUpdate"] == str(SUMMER + 3 * HOUR)
    [order] = server("history/get_batch", **window(SUMMER + 3 * HOUR))
    assert order["TimeSetup"] == order["TimeDone"] == str(SUMMER + 3 * HOUR)
    assert server("history/get_batch", **window(SUMMER)) == []
    [tick] = server("tick/last", symbol="EURUSD")
    assert tick["Datetime"] == str(SUMMER + 3 * HOUR)


def test_a_window_over_the_repeated_autumn_hour_holds_both_passes(server: Server) -> None:
    at(server, AUTUMN_FIRST)
    first = deposit(server, "first")
    at(server, AUTUMN_SECOND)
    second = deposit(server, "second")
    assert first["Time"] == second["Time"] == str(LOCAL_0330)
    found = server("deal/get_batch", **window(LOCAL_0330, half=29 * 60))
    assert [json.loads(d)["Comment"] for d in found] == ["first", "second"]


@pytest.mark.parametrize("minutes", [-721, 841])
def test_a_zone_beyond_the_earths_is_refused(minutes: int) -> None:
    with pytest.raises(ValueError, match="time zone"):
        Server().commands.configure(time_zone_minutes=minutes)


# -- over the wire -----------------------------------------------------------------------------


@pytest.fixture
def wire(artifacts_dir: Path) -> Iterator[httpx.Client]:
    simulator = start_simulator(
        artifacts_dir / "logs", tls=False, extra=["--timezone", "120", "--daylight"]
    )
    try:
        with httpx.Client(base_url=simulator.base_url) as http:
            log_in_by_hand(http, simulator.manager, simulator.password)
            http.post(
                "/api/user/add",
                json={
                    "Login": LOGIN,
                    "Group": "demo\\pro",
                    "Name": "Zone Trader",
                    "Leverage": 100,
                    "PassMain": "Main#Pass1",
                    "PassInvestor": "Inv#Pass1",
                },
            ).raise_for_status()
            yield http
    finally:
        simulator.child.stop()


@pytest.mark.parametrize(("moment", "offset"), [(SUMMER, 3 * HOUR), (WINTER, 2 * HOUR)])
def test_a_deposit_over_the_wire_is_found_on_the_servers_clock(
    wire: httpx.Client, moment: int, offset: int
) -> None:
    wire.post("/_sim/time", json={"utc_msc": moment * 1000}).raise_for_status()
    assert wire.get("/api/time/get").json()["answer"]["TimeZone"] == "120"
    deposit: dict[str, str | int] = {"login": LOGIN, "type": 2, "balance": "100", "comment": "zone"}
    ticket = wire.get("/api/trade/balance", params=deposit).json()["answer"]["Ticket"]
    deal = wire.get("/api/deal/get", params={"ticket": ticket}).json()["answer"]
    assert deal["Time"] == str(moment + offset)
    [found] = wire.get("/api/deal/get_batch", params=window(moment + offset)).json()["answer"]
    assert found["Deal"] == ticket
    assert wire.get("/api/deal/get_batch", params=window(moment)).json()["answer"] == []
