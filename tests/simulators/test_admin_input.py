"""Bad input to the simulator-only `/_sim/` endpoints is a 4xx with a reason: never a crash, a
500, or a knob half turned."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.processes import Simulator, start_simulator

# Bodies no JSON-object endpoint can take.
NOT_AN_OBJECT = [
    b"{",
    b"\xff\xfe\x00",
    b"[1, 2]",
    b'"text"',
    b"null",
    b"7",
    b"[" * 100_000,
]
# (method, path, bad bodies) per endpoint: wrong types, missing fields, negative and
# out-of-range numbers, unknown modes and fields.
BAD_BODIES: list[tuple[str, str, list[object]]] = [
    (
        "POST",
        "/_sim/faults",
        [
            {},
            {"rules": "x"},
            {"rules": [1]},
            {"rules": [{"mode": "retcode"}]},
            {"rules": [{"path": "/api/user/add"}]},
            {"rules": [{"path": "/api/user/add", "mode": "explode"}]},
            {"rules": [{"path": "/api/user/add", "mode": "retcode", "times": -1}]},
            {"rules": [{"path": "/api/user/add", "mode": "retcode", "retcode": "ten"}]},
            {"rules": [{"path": "/api/user/add", "mode": "retcode", "probability": 2}]},
            {"rules": [{"path": "/api/user/add", "mode": "latency", "latency_ms": -5}]},
            {"rules": [{"path": "/api/user/add", "mode": "latency", "latency_ms": True}]},
            {"rules": [{"path": "/api/user/add", "mode": "retcode", "tims": 1}]},
            {"rules": [], "seed": "seven"},
            {"rules": [], "extra": 1},
        ],
    ),
    (
        "POST",
        "/_sim/quotes",
        [
            {"NOPE": ["1", "2"]},
            {"EURUSD": "1.1"},
            {"EURUSD": ["1.1"]},
            {"EURUSD": ["x", "1.2"]},
            {"EURUSD": ["-1.1", "1.2"]},
            {"EURUSD": ["1.2", "1.1"]},
            {"EURUSD": [True, "1.1"]},
            {"EURUSD": ["NaN", "1.1"]},
            {"EURUSD": ["1.1", "1.2", "1.3", "1.4"]},
        ],
    ),
    (
        "POST",
        "/_sim/dealer",
        [
            {},
            {"rules": {}},
            {"rules": ["x"]},
            {"rules": [{}]},
            {"rules": [{"group_mask": 5}]},
            {"rules": [{"group_mask": "*", "markup_points": -3}]},
            {"rules": [{"group_mask": "*", "markup_points": "3"}]},
            {"rules": [{"group_mask": "*", "a_book": "yes"}]},
            {"rules": [{"group_mask": "*", "book": "A"}]},
        ],
    ),
    (
        "POST",
        "/_sim/limits",
        [
            {"requests_per_second": -1},
            {"requests_per_second": 1.5},
            {"requests_per_second": "5"},
            {"session_timeout": -1},
            {"session_timeout": "long"},
            {"frozen": 1},
            {"advance_seconds": -10},
            {"timeout": 5},
        ],
    ),
    ("POST", "/_sim/flow", [{}, {"running": "no"}, {"running": 0}]),
    (
        "POST",
        "/_sim/time",
        [
            {},
            {"utc_msc": "now"},
            {"utc_msc": -1},
            {"utc_msc": 1.5},
            {"utc_msc": 10**20},
            {"utc_msc": 1, "zone": 2},
        ],
    ),
    (
        "POST",
        "/_sim/history",
        [
            {},
            {"deals": 10},
            {"deals": -10, "accounts": 1},
            {"deals": 10, "accounts": 0},
            {"deals": 10, "accounts": 11},
            {"deals": "10", "accounts": 1},
            {"deals": 10, "accounts": 1, "seed": "s"},
            {"deals": 10**12, "accounts": 1},
        ],
    ),
]
BAD_PARAMETERS = [
    ("POST", "/_sim/rollover", {"weekday": "x"}),
    ("POST", "/_sim/rollover", {"weekday": "7"}),
    ("POST", "/_sim/rollover", {"weekday": "-1"}),
    ("POST", "/_sim/restart", {"down_seconds": "soon"}),
    ("POST", "/_sim/restart", {"down_seconds": "-1"}),
    ("POST", "/_sim/restart", {"down_seconds": "nan"}),
    ("POST", "/_sim/restart", {"down_seconds": "inf"}),
    ("GET", "/_sim/state/deals", {"login": "abc"}),
    ("GET", "/_sim/state/deals", {"login": "-5"}),
]
WRONG_METHODS = [
    ("GET", "/_sim/history"),
    ("GET", "/_sim/rollover"),
    ("PUT", "/_sim/faults"),
    ("DELETE", "/_sim/limits"),
    ("POST", "/_sim/state/users"),
]


@pytest.fixture(scope="module")
def simulator(artifacts_dir: Path) -> Iterator[Simulator]:
    running = start_simulator(artifacts_dir / "logs", tls=False, extra=["--traders", "1"])
    yield running
    running.child.stop()


def refused(response: httpx.Response) -> bool:
    return 400 <= response.status_code < 500 and bool(response.json()["error"])


def test_every_admin_endpoint_refuses_bad_bodies_with_a_reason(simulator: Simulator) -> None:
    with httpx.Client(base_url=simulator.base_url, timeout=30) as http:
        before = http.get("/_sim/limits").json()
        for method, path, bodies in BAD_BODIES:
            for raw in NOT_AN_OBJECT:
                response = http.request(method, path, content=raw)
                assert refused(response), (path, raw[:20], response.text)
            for body in bodies:
                response = http.request(method, path, json=body)
                assert refused(response), (path, body, response.text)
        for method, path, params in BAD_PARAMETERS:
            response = http.request(method, path, params=params)
            assert refused(response), (path, params, response.text)
        for method, path in WRONG_METHODS:
            assert http.request(method, path).status_code == 405, (method, path)
        assert http.get("/_sim/nothing").status_code == 404
        # Nothing was half applied, and the server is well.
        assert http.get("/_sim/limits").json() == before
        assert http.get("/_sim/faults").json() == {"rules": []}
        assert http.get("/_sim/time").json()["frozen"] is False
    assert "Traceback" not in simulator.child.log_path.read_text()


def test_good_bodies_still_apply(simulator: Simulator) -> None:
    with httpx.Client(base_url=simulator.base_url, timeout=30) as http:
        rule = {"path": "/api/user/add", "mode": "retcode", "retcode": 10, "times": 1}
        assert http.post("/_sim/faults", json={"rules": [rule], "seed": 3}).status_code == 200
        assert http.delete("/_sim/faults").json() == {"rules": []}
        assert http.post("/_sim/quotes", json={"EURUSD": ["1.1", "1.1002"]}).status_code == 200
        assert http.post("/_sim/flow", json={"running": False}).json()["running"] is False
        assert http.post("/_sim/rollover", params={"weekday": 3}).json() == {"done": True}
        frozen = http.post("/_sim/time", json={"utc_msc": 1_780_000_000_000}).json()
        assert (frozen["utc_msc"], frozen["frozen"]) == (1_780_000_000_000, True)
        assert http.delete("/_sim/time").json()["frozen"] is False
