"""The simulator's server-side faults, and how BrokerFlow's gateway rides them out."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mt5_adapter.errors import Mt5ConnectionError
from mt5_adapter.webapi import gateway_for
from simulators.mt5.faults import FaultPlan, FaultRule
from tests.conftest import mt5_settings_for
from tests.mt5.test_protocol import log_in_by_hand, new_user
from tests.support.processes import Simulator, start_simulator


@pytest.fixture
def simulator(artifacts_dir: Path) -> Iterator[Simulator]:
    running = start_simulator(artifacts_dir / "logs", tls=False)
    yield running
    running.child.stop()


def limits(simulator: Simulator, **values: float) -> None:
    httpx.post(f"{simulator.base_url}/_sim/limits", json=values).raise_for_status()


def test_too_frequent_requests_get_12_and_the_gateway_stays_under_the_limit(
    simulator: Simulator,
) -> None:
    limits(simulator, requests_per_second=5)
    with httpx.Client(base_url=simulator.base_url) as http:
        log_in_by_hand(http, simulator.manager, simulator.password)
        codes = [http.get("/api/test/access").json()["retcode"] for _ in range(10)]
    assert codes.count("0 Done") == 5
    assert all(code.startswith("12 ") for code in codes if code != "0 Done")

    async def paced() -> None:
        settings = mt5_settings_for(simulator).model_copy(
            update={"max_requests_per_second": 4.0, "connections": 1}
        )
        gateway = gateway_for(settings)
        for _ in range(8):
            await gateway.ping()  # would raise Mt5TransientError(12) if it went too fast
        await gateway.aclose()

    # The limit is the manager's over the last second: start the gateway on a fresh second.
    limits(simulator, advance_seconds=1)
    asyncio.run(paced())


def test_an_expired_session_is_refused_and_the_gateway_logs_in_again(
    simulator: Simulator,
) -> None:
    limits(simulator, session_timeout=0.3)
    with httpx.Client(base_url=simulator.base_url) as http:
        log_in_by_hand(http, simulator.manager, simulator.password)
        asyncio.run(asyncio.sleep(0.5))
        assert http.get("/api/test/access").status_code == 403

    async def resumes() -> None:
        gateway = gateway_for(mt5_settings_for(simulator))
        await gateway.ping()
        await asyncio.sleep(0.5)
        await gateway.ping()
        await gateway.aclose()

    asyncio.run(resumes())


def test_a_restart_drops_every_session_but_keeps_the_books(simulator: Simulator) -> None:
    async def scenario() -> None:
        gateway = gateway_for(mt5_settings_for(simulator).model_copy(update={"connections": 1}))
        await gateway.add_user(new_user(4_300_001))
        httpx.post(
            f"{simulator.base_url}/_sim/restart", params={"down_seconds": 1}
        ).raise_for_status()
        with pytest.raises(Mt5ConnectionError) as down:
            await gateway.ping()
        assert down.value.retryable
        await asyncio.sleep(1.1)
        assert (await gateway.get_user(4_300_001)).name == "Wire Test"
        await gateway.aclose()

    asyncio.run(scenario())


SPREAD = {"path": "/api/test/access", "mode": "latency", "latency_ms": 50, "latency_ms_max": 250}


def test_a_latency_range_draws_uniformly_from_the_seeded_plan() -> None:
    plan = FaultPlan([FaultRule.parse(SPREAD)], seed=7)
    draws = [plan.for_request("/api/test/access")[0].latency_ms for _ in range(2000)]
    assert all(50 <= d <= 250 for d in draws)
    assert min(draws) < 60 and max(draws) > 240  # the whole range, not a fixed value
    assert 130 < sum(draws) / len(draws) < 170  # uniform: mean near the middle (150)
    again = FaultPlan([FaultRule.parse(SPREAD)], seed=7)
    assert [again.for_request("/api/test/access")[0].latency_ms for _ in range(2000)] == draws
    # The configured rule keeps its range and counts the firings.
    [rule] = plan.rules
    assert (rule.latency_ms, rule.latency_ms_max, rule.hits) == (50, 250, 2000)
    assert plan.describe()["rules"][0]["latency_ms_max"] == 250
    # Without a maximum the latency is fixed.
    fixed = FaultPlan([FaultRule.from_flag("path=/api/x,mode=latency,latency_ms=40")], seed=1)
    assert {fixed.for_request("/api/x")[0].latency_ms for _ in range(50)} == {40}
    flagged = FaultRule.from_flag("path=/api/x,mode=latency,latency_ms=5,latency_ms_max=9")
    assert (flagged.latency_ms, flagged.latency_ms_max) == (5, 9)
    for bad in ({"latency_ms_max": 10}, {"latency_ms": -1, "latency_ms_max": None}):
        with pytest.raises(ValueError):
            FaultRule.parse({**SPREAD, **bad})


def test_the_server_waits_the_drawn_latency(simulator: Simulator) -> None:
    rule = {**SPREAD, "latency_ms": 20, "latency_ms_max": 150, "times": 4}
    # The server's plan draws from the same seed: these are the waits it must make.
    twin = FaultPlan([FaultRule.parse(rule)], seed=11)
    expected = [twin.for_request("/api/test/access")[0].latency_ms for _ in range(4)]
    assert len(set(expected)) > 1
    with httpx.Client(base_url=simulator.base_url) as http:
        http.post("/_sim/faults", json={"rules": [rule], "seed": 11}).raise_for_status()
        log_in_by_hand(http, simulator.manager, simulator.password)
        for wait_ms in expected:
            started = time.monotonic()
            assert http.get("/api/test/access").json()["retcode"] == "0 Done"
            assert time.monotonic() - started >= (wait_ms - 1) / 1000
        [seen] = http.get("/_sim/faults").json()["rules"]
    assert (seen["hits"], seen["latency_ms"], seen["latency_ms_max"]) == (4, 20, 150)
