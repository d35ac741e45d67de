"""Sessions and throttling over the wire: an expired session takes its connection with it, and
the request budget belongs to the manager login, whichever connections it uses.

Time here is the simulator's session clock, frozen and moved on through `/_sim/limits`, so no
test waits for a session to age or a throttling window to pass.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h11
import httpx
import pytest

from simulators.mt5.commands import Commands
from simulators.mt5.faults import FaultPlan
from simulators.mt5.server import Connection, Manager, Mt5Server
from simulators.mt5.state import Books
from tests.mt5.test_protocol import log_in_by_hand, proof
from tests.support.processes import Simulator, start_simulator


@pytest.fixture
def simulator(artifacts_dir: Path) -> Iterator[Simulator]:
    running = start_simulator(artifacts_dir / "logs", tls=False)
    yield running
    running.child.stop()


def limits(simulator: Simulator, **values: object) -> dict[str, Any]:
    response = httpx.post(f"{simulator.base_url}/_sim/limits", json=values)
    response.raise_for_status()
    answer: dict[str, Any] = response.json()
    return answer


class RawConnection:
    """One TCP connection speaking HTTP/1.1 by hand, so a test sees the server close it."""

    def __init__(self, simulator: Simulator) -> None:
        self.socket = socket.create_connection(("127.0.0.1", simulator.port), timeout=10)
        self.http = h11.Connection(h11.CLIENT)
        self.cookie = ""

    def get(self, target: str) -> tuple[int, dict[str, Any] | None]:
        headers = [("Host", "mt5"), *([("Cookie", self.cookie)] if self.cookie else [])]
        request = h11.Request(method="GET", target=target, headers=headers)
        self.socket.sendall(self.http.send(request) + self.http.send(h11.EndOfMessage()))
        status, body = 0, b""
        while True:
            event = self.http.next_event()
            if event is h11.NEED_DATA:
                self.http.receive_data(self.socket.recv(65536))
            elif isinstance(event, h11.Response):
                status = event.status_code
                for name, value in event.headers:
                    if name == b"set-cookie":
                        self.cookie = value.decode().split(";")[0]
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
        if self.http.their_state is h11.DONE:
            self.http.start_next_cycle()
        return status, json.loads(body) if body else None

    def log_in(self, simulator: Simulator) -> None:
        query = f"version=3211&agent=raw&login={simulator.manager}&type=manager"
        _, start = self.get(f"/api/auth/start?{query}")
        assert start is not None
        answer = proof(simulator.password, start["srv_rand"])
        _, done = self.get(f"/api/auth/answer?srv_rand_answer={answer}&cli_rand={'ab' * 16}")
        assert done is not None and done["retcode"] == "0 Done"

    def closed_by_server(self) -> bool:
        """Waits (within the socket's timeout) for the server to end the connection."""
        try:
            return self.socket.recv(1) == b""
        except ConnectionResetError:
            return True


def test_an_idle_session_is_closed_with_its_connection(simulator: Simulator) -> None:
    limits(simulator, frozen=True)
    raw = RawConnection(simulator)
    raw.log_in(simulator)
    limits(simulator, advance_seconds=179)
    assert raw.get("/api/test/access") == (200, {"retcode": "0 Done"})  # in time: kept alive
    limits(simulator, advance_seconds=181)  # 181 s of silence: past the 180 s timeout
    assert raw.closed_by_server()
    # The session died with it: its cookie on a new connection is nobody's.
    with httpx.Client(base_url=simulator.base_url) as http:
        http.headers["Cookie"] = raw.cookie
        assert http.get("/api/test/access").status_code == 403


async def test_a_request_racing_the_expiry_gets_403_and_the_connection_closes() -> None:
    server = Mt5Server(
        Commands(Books(), lambda books: None), Manager(1000, "Pw#12345", []), FaultPlan()
    )
    connection = Connection(1, "127.0.0.1")
    query = "version=3211&agent=t&login=1000&type=manager"
    start = await server.handle(connection, f"/api/auth/start?{query}", {}, b"")
    assert start.body is not None
    answer = f"srv_rand_answer={proof('Pw#12345', start.body['srv_rand'])}&cli_rand={'cd' * 16}"
    assert (await server.handle(connection, f"/api/auth/answer?{answer}", {}, b"")).body
    server.limits.clock.advance(server.limits.session_timeout + 1)  # not reaped yet
    expired = await server.handle(connection, "/api/test/access", {}, b"")
    assert (expired.status, expired.body, expired.headers) == (403, None, [("Connection", "close")])
    assert server.sessions == {}


def test_the_request_budget_is_the_managers_across_its_connections(simulator: Simulator) -> None:
    limits(simulator, frozen=True, requests_per_second=4)
    with (
        httpx.Client(base_url=simulator.base_url) as first,
        httpx.Client(base_url=simulator.base_url) as second,
    ):
        log_in_by_hand(first, simulator.manager, simulator.password)  # login steps: counted apart
        log_in_by_hand(second, simulator.manager, simulator.password)

        def access(http: httpx.Client) -> str:
            return str(http.get("/api/test/access").json()["retcode"])

        assert [access(h) for h in (first, second, first, second)] == ["0 Done"] * 4
        assert [access(h) for h in (first, second)] == ["12 Too frequent requests"] * 2
        limits(simulator, advance_seconds=1)  # the window has passed
        assert access(second) == "0 Done"


def test_login_steps_are_throttled_as_server_busy(simulator: Simulator) -> None:
    limits(simulator, frozen=True, requests_per_second=2)
    params: dict[str, str | int] = {
        "version": "3211",
        "agent": "t",
        "login": simulator.manager,
        "type": "manager",
    }
    with (
        httpx.Client(base_url=simulator.base_url) as first,
        httpx.Client(base_url=simulator.base_url) as second,
    ):
        log_in_by_hand(first, simulator.manager, simulator.password)  # auth/start + auth/answer
        assert second.get("/api/auth/start", params=params).json() == {
            "retcode": "1018 Server is busy"
        }
        # Commands have their own budget: the login used none of it.
        codes = [first.get("/api/test/access").json()["retcode"] for _ in range(2)]
        assert codes == ["0 Done", "0 Done"]
        limits(simulator, advance_seconds=1)
        assert log_in_by_hand(second, simulator.manager, simulator.password).status_code == 200
        assert second.get("/api/test/access").json()["retcode"] == "0 Done"


def test_limits_change_only_the_fields_sent(simulator: Simulator) -> None:
    assert limits(simulator, requests_per_second=3) == {
        "session_timeout": 180.0,
        "requests_per_second": 3,
        "frozen": False,
    }
    assert limits(simulator, session_timeout=60)["requests_per_second"] == 3
    answer = httpx.get(f"{simulator.base_url}/_sim/limits").json()
    assert (answer["session_timeout"], answer["requests_per_second"]) == (60.0, 3)
