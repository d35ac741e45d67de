"""Trade-server time: MT5 writes every `Time` field as Unix seconds of the server's own clock.

A broker's server runs in its own zone (commonly UTC+2, UTC+3 in summer), so a deal stamped
`Time` = T happened at T minus the zone's offset in UTC, and a `from`/`to` window is read on the
same clock. `time/get` tells the zone: `TimeZone` (standard offset in minutes) and `Daylight`
(daylight saving on). Which daylight rule MT5 applies is not in the reference; this reads it as
the EU rule (one hour more from the last Sunday of March 01:00 UTC to the last Sunday of October
01:00 UTC), the rule of the usual broker zones (EET, CET); see docs/mt5-adapter.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

HOUR = timedelta(hours=1)


def _last_sunday_of(year: int, month: int) -> datetime:
    after = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC) - timedelta(days=1)
    return after - timedelta(days=(after.weekday() + 1) % 7)


def in_eu_summer_time(moment: datetime) -> bool:
    start = _last_sunday_of(moment.year, 3) + HOUR
    end = _last_sunday_of(moment.year, 10) + HOUR
    return start <= moment < end


@dataclass(frozen=True)
class ServerZone:
    minutes: int = 0
    daylight: bool = False

    def offset_at(self, moment: datetime) -> timedelta:
        summer = self.daylight and in_eu_summer_time(moment.astimezone(UTC))
        return timedelta(minutes=self.minutes) + (HOUR if summer else timedelta(0))

    def server_seconds(self, moment: datetime) -> int:
        """`moment` as the server writes it (for `from` / `to`)."""
        return int((moment + self.offset_at(moment)).timestamp())

    def moment(self, server_seconds: int) -> datetime:
        """The UTC instant of a server `Time`; in the hour autumn repeats, the earlier one."""
        local = datetime.fromtimestamp(server_seconds, UTC)
        for offset in (timedelta(minutes=self.minutes) + HOUR, timedelta(minutes=self.minutes)):
            candidate = local - offset
            if self.offset_at(candidate) == offset:
                return candidate
        return local - timedelta(minutes=self.minutes)  # the hour spring skips


UTC_SERVER = ServerZone()


def zone_of(config: dict[str, object]) -> ServerZone:
    """The zone from a `time/get` answer."""
    return ServerZone(int(str(config.get("TimeZone", 0))), str(config.get("Daylight", "0")) == "1")
