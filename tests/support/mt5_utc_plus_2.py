"""An MT5 simulator of a test module's own whose clock runs at UTC+2 (no daylight saving), so
the broker day is not the UTC day; and a Web API gateway to it.

Import the fixtures into the test module that uses them:

    from tests.support.mt5_utc_plus_2 import UTC_PLUS_2, gateway, simulator  # noqa: F401

`simulator` is module-scoped: each module gets a process of its own, whose quotes, clock
(`/_sim/time`) and books it may change without disturbing any other module.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from mt5_adapter.webapi import WebApiGateway, gateway_for
from tests.conftest import mt5_settings_for
from tests.support.processes import Simulator, start_simulator

UTC_PLUS_2 = 7200  # the simulator's clock, in seconds ahead of UTC


@pytest.fixture(scope="module")
def simulator(artifacts_dir: Path) -> Iterator[Simulator]:
    """A simulator of the module's own at UTC+2 (`--timezone 120`, no daylight saving)."""
    child = start_simulator(
        artifacts_dir / "logs", tls=False, extra=["--timezone", str(UTC_PLUS_2 // 60)]
    )
    yield child
    child.child.stop()


@pytest.fixture
async def gateway(simulator: Simulator) -> AsyncIterator[WebApiGateway]:
    """BrokerFlow's Web API gateway to the module's simulator."""
    mt5 = gateway_for(mt5_settings_for(simulator))
    yield mt5
    await mt5.aclose()
