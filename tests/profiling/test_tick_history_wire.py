"""`tick/history` over the wire: the adapter reads the quotes the simulator printed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx

from mt5_adapter.webapi import gateway_for
from tests.conftest import mt5_settings_for
from tests.support.processes import Simulator


async def test_the_adapter_reads_the_quotes_a_symbol_printed(mt5_sim: Simulator) -> None:
    quotes = [("71.111", "71.151"), ("71.121", "71.161")]
    for bid, ask in quotes:
        answer = httpx.post(
            f"{mt5_sim.base_url}/_sim/quotes", json={"XTIUSD": [bid, ask]}, verify=False
        )
        assert answer.is_success, answer.text
    now = datetime.now(UTC)
    gateway = gateway_for(mt5_settings_for(mt5_sim))
    try:
        ticks = await gateway.tick_history(
            "XTIUSD", now - timedelta(minutes=1), now + timedelta(minutes=1)
        )
    finally:
        await gateway.aclose()
    printed = [(bid, ask) for _, bid, ask in ticks]
    wanted = [(Decimal(bid), Decimal(ask)) for bid, ask in quotes]
    assert printed[-2:] == wanted
    assert [stamp for stamp, _, _ in ticks] == sorted(stamp for stamp, _, _ in ticks)
