"""Server-zone arithmetic, with instants worked out by hand from the EU daylight-saving rule, and
the gateway against a simulator that is not on UTC."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from domain.mt5 import BalanceOperation
from mt5_adapter.server_time import ServerZone, zone_of
from mt5_adapter.webapi import gateway_for
from tests.conftest import mt5_settings_for
from tests.mt5.test_protocol import new_user
from tests.support.processes import Simulator, start_simulator

EET = ServerZone(120, daylight=True)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("instant", "server_local"),
    [
        # Winter: UTC+2.
        ("2026-12-06T12:00:00", "2026-12-06T14:00:00"),
        # Last Sunday of March 2026 is the 29th: summer from 01:00 UTC on.
        ("2026-03-29T00:59:59", "2026-03-29T02:59:59"),
        ("2026-03-29T01:00:00", "2026-03-29T04:00:00"),
        # Summer: UTC+3; server midnight is 21:00 UTC the day before.
        ("2026-07-01T21:00:00", "2026-07-02T00:00:00"),
        # Last Sunday of October 2026 is the 25th: winter again from 01:00 UTC.
        ("2026-10-25T00:30:00", "2026-10-25T03:30:00"),
        ("2026-10-25T01:30:00", "2026-10-25T03:30:00"),
    ],
)
def test_instants_are_written_on_the_servers_clock(instant: str, server_local: str) -> None:
    assert EET.server_seconds(utc(instant)) == int(utc(server_local).timestamp())


@pytest.mark.parametrize(
    ("server_local", "instant"),
    [
        ("2026-12-06T14:00:00", "2026-12-06T12:00:00"),
        ("2026-07-02T00:00:00", "2026-07-01T21:00:00"),
        # 03:30 local happens twice on 25 October; the earlier instant is taken.
        ("2026-10-25T03:30:00", "2026-10-25T00:30:00"),
        # 03:30 local does not exist on 29 March (02:59:59 is followed by 04:00:00).
        ("2026-03-29T03:30:00", "2026-03-29T01:30:00"),
    ],
)
def test_server_times_are_read_back_as_utc(server_local: str, instant: str) -> None:
    assert EET.moment(int(utc(server_local).timestamp())) == utc(instant)


def test_the_zone_comes_from_time_get() -> None:
    assert zone_of({"TimeZone": "180", "Daylight": "0"}) == ServerZone(180, daylight=False)
    assert zone_of({}) == ServerZone(0, daylight=False)


@pytest.fixture
def eet_simulator(artifacts_dir: Path) -> Iterator[Simulator]:
    running = start_simulator(artifacts_dir / "logs", extra=["--timezone", "120", "--daylight"])
    yield running
    running.child.stop()


async def test_the_gateway_against_a_server_at_utc_plus_3(eet_simulator: Simulator) -> None:
    """The simulator's clock frozen at 12:00 UTC on 1 July 2026: its server time is 15:00 (EET,
    summer). A deposit booked then is found by a ±10-minute window in UTC, and read back at
    12:00 UTC; the user's registration too."""
    noon = utc("2026-07-01T12:00:00")
    frozen = httpx.post(
        f"{eet_simulator.base_url}/_sim/time",
        json={"utc_msc": int(noon.timestamp() * 1000)},
        verify=False,
    )
    assert frozen.is_success, frozen.text
    gateway = gateway_for(mt5_settings_for(eet_simulator))
    try:
        assert await gateway.server_zone() == EET
        login = 7_100_000 + int.from_bytes(os.urandom(2), "big")
        user = await gateway.add_user(new_user(login))
        assert user.registration == noon
        await gateway.apply_balance(
            BalanceOperation(login=login, amount=Decimal("100"), comment="tz-dep-1")
        )
        window = timedelta(minutes=10)
        found = await gateway.find_deal_by_comment(login, "tz-dep-1", noon - window, noon + window)
        assert found is not None and found.time == noon
        # The same window three hours early (server seconds read as UTC) finds nothing.
        early = noon - timedelta(hours=3)
        assert await gateway.find_deal_by_comment(login, "tz-dep-1", early, early + window) is None
    finally:
        await gateway.aclose()
