"""Trade server time: the broker's zone, as MT5 servers keep it.

MT5 stamps every `Time` field in the server's own zone (reference 4.9), and day boundaries,
swaps and daily commissions follow that zone's midnight. A zone here is a standard offset in
minutes and, optionally, daylight saving by the EU rule (one hour more from the last Sunday of
March 01:00 UTC to the last Sunday of October 01:00 UTC), the rule of the usual broker zones
(EET, CET). Tests may freeze the clock (`/_sim/time`); nothing else moves it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS


def _last_sunday(year: int, month: int) -> datetime:
    first_of_next = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)
    last_day = first_of_next - timedelta(days=1)
    return last_day - timedelta(days=(last_day.weekday() + 1) % 7)


@dataclass
class ServerClock:
    zone_minutes: int = 0
    daylight: bool = False
    frozen_msc: int | None = None  # UTC milliseconds a test set; None: the wall clock

    def now_msc(self) -> int:
        """UTC milliseconds now."""
        return self.frozen_msc if self.frozen_msc is not None else int(time.time() * 1000)

    def in_daylight(self, utc_msc: int) -> bool:
        if not self.daylight:
            return False
        moment = datetime.fromtimestamp(utc_msc / 1000, UTC)
        start = _last_sunday(moment.year, 3) + timedelta(hours=1)
        end = _last_sunday(moment.year, 10) + timedelta(hours=1)
        return start <= moment < end

    def offset_msc(self, utc_msc: int) -> int:
        return (self.zone_minutes + (60 if self.in_daylight(utc_msc) else 0)) * MINUTE_MS

    def to_server(self, utc_msc: int) -> int:
        """UTC milliseconds as the server writes them: Unix milliseconds of the local time."""
        return utc_msc + self.offset_msc(utc_msc)

    def to_utc(self, server_msc: int) -> int:
        """The inverse of `to_server`; in the repeated hour of autumn, the earlier instant."""
        for guess in (server_msc - self.offset_msc(server_msc - 2 * HOUR_MS), server_msc):
            for candidate in (guess - HOUR_MS, guess, guess + HOUR_MS):
                if self.to_server(candidate) == server_msc:
                    return candidate
        # The skipped hour of spring does not exist locally: read it with the winter offset.
        return server_msc - self.zone_minutes * MINUTE_MS

    def server_date(self, utc_msc: int) -> date:
        return datetime.fromtimestamp(self.to_server(utc_msc) / 1000, UTC).date()
