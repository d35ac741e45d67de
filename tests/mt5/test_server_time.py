"""Server-zone arithmetic, with instants worked out by hand from the EU daylight-saving rule."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mt5_adapter.server_time import ServerZone, zone_of

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
