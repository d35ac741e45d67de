"""The simulator's server-side faults, and how BrokerFlow's gateway rides them out."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mt5_adapter.errors import Mt5ConnectionError
from mt5_adapter.webapi import gateway_for
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
