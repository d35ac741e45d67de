"""A seeded, deterministic price feed: a random walk per symbol with trading sessions, wider
spreads around the daily rollover, news spikes, and a delayed copy for latency-arbitrage tests."""

from __future__ import annotations

import math
import random
from array import array
from bisect import bisect_left, bisect_right
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from simulators.mt5.catalogue import EXCH_STOCKS, Symbol
from simulators.mt5.clock import ServerClock

# Per-tick volatility as a fraction of the price, and how often a tick is a news spike.
TICK_VOLATILITY = 0.00005
SPIKE_PROBABILITY = 0.001
SPIKE_SIZE = 40  # in tick volatilities
# Spreads widen for the first hour of the server's day (the daily rollover). Without the
# server's clock: a UTC+3 broker's, whose day starts at 21:00 UTC.
DEFAULT_CLOCK = ServerClock(zone_minutes=180)
ROLLOVER_SPREAD_FACTOR = 4


def trades_on(symbol: Symbol, weekday: int) -> bool:
    """Whether `symbol` trades at all on a day of the week (Monday 0): crypto every day, the rest
    Monday to Friday. Swaps accrue only for such days."""
    return symbol.path.startswith("Crypto") or weekday < 5


def in_session(symbol: Symbol, moment: datetime) -> bool:
    """FX, metals, indices and crypto CFDs trade around the clock on weekdays (crypto all week);
    exchange stocks 13:30-20:00 UTC on weekdays."""
    if not trades_on(symbol, moment.weekday()):
        return False
    if symbol.calc_mode == EXCH_STOCKS:
        minutes = moment.hour * 60 + moment.minute
        return 13 * 60 + 30 <= minutes < 20 * 60
    return True


@dataclass(frozen=True)
class SessionCalendar:
    """Which hours markets trade. Real hours by default; `always_open` (`--market-hours always`)
    lets tests and benchmarks trade FX on any day of the week they happen to run on."""

    always_open: bool = False

    def is_open(self, symbol: Symbol, moment: datetime) -> bool:
        return self.always_open or in_session(symbol, moment)


class TickTape:
    """Every quote each symbol printed, for `tick/history`: UTC milliseconds and bid/ask in
    points (integers), at most `cap` ticks per symbol (the oldest half dropped beyond it), so a
    long-running `--feed` keeps a bounded memory."""

    def __init__(self, cap: int = 50_000) -> None:
        self.cap = cap
        self.times: dict[str, array[int]] = {}
        self.bids: dict[str, array[int]] = {}
        self.asks: dict[str, array[int]] = {}

    def record(self, name: str, msc: int, bid: int, ask: int) -> None:
        """A tick of `name` at `msc`, prices in points (a tick older than the last is dropped:
        the tape is kept in time order)."""
        times = self.times.get(name)
        if times is None:
            times = self.times[name] = array("q")
            self.bids[name], self.asks[name] = array("q"), array("q")
        if times and msc < times[-1]:
            return
        times.append(msc)
        self.bids[name].append(bid)
        self.asks[name].append(ask)
        if len(times) > self.cap:
            drop = len(times) - self.cap // 2
            for column in (times, self.bids[name], self.asks[name]):
                del column[:drop]

    def between(self, name: str, since: int, until: int) -> list[tuple[int, int, int]]:
        """Ticks of `name` with since <= time <= until (UTC ms), oldest first."""
        times = self.times.get(name)
        if not times:
            return []
        low, high = bisect_left(times, since), bisect_right(times, until)
        bids, asks = self.bids[name], self.asks[name]
        return [(times[i], bids[i], asks[i]) for i in range(low, high)]


@dataclass
class Track:
    mid: float
    history: deque[tuple[int, Decimal, Decimal]] = field(default_factory=lambda: deque(maxlen=256))
    last: Decimal | None = None  # exchange symbols: the price of the last trade


class PriceFeed:
    def __init__(
        self,
        symbols: dict[str, Symbol],
        seed: int = 0,
        calendar: SessionCalendar = SessionCalendar(),
        clock: ServerClock = DEFAULT_CLOCK,
    ) -> None:
        self.symbols = symbols
        self.calendar = calendar
        self.clock = clock
        self.random = random.Random(seed)
        self.tracks = {name: Track(float(s.bid + s.ask) / 2) for name, s in symbols.items()}
        self.spikes: list[tuple[int, str]] = []  # (msc, symbol): ground truth for news traders

    def tick(self, name: str, now_msc: int) -> tuple[Decimal, Decimal] | None:
        """Advance `name` by one tick at `now_msc`; None when its market is closed."""
        symbol = self.symbols[name]
        moment = datetime.fromtimestamp(now_msc / 1000, UTC)
        if not self.calendar.is_open(symbol, moment):
            return None
        track = self._track(name, symbol)
        shock = self.random.gauss(0.0, 1.0)
        if self.random.random() < SPIKE_PROBABILITY:
            shock = math.copysign(SPIKE_SIZE, shock)
            self.spikes.append((now_msc, name))
        track.mid *= math.exp(TICK_VOLATILITY * shock)
        spread = symbol.point * symbol.spread_points
        if datetime.fromtimestamp(self.clock.to_server(now_msc) / 1000, UTC).hour == 0:
            spread *= ROLLOVER_SPREAD_FACTOR
        bid = (Decimal(track.mid) - spread / 2).quantize(symbol.point)
        ask = bid + spread
        if symbol.exchange:
            # A trade inside the spread, on the tick grid; no random draw, so the other symbols'
            # walks stay what they were.
            track.last = bid + (spread / 2 / symbol.point).to_integral_value() * symbol.point
        track.history.append((now_msc, bid, ask))
        return bid, ask

    def _track(self, name: str, symbol: Symbol) -> Track:
        """The symbol's walk; one added at run time (`symbol/add`) starts at its own price."""
        track = self.tracks.get(name)
        if track is None:
            track = self.tracks[name] = Track(float(symbol.bid + symbol.ask) / 2)
        return track

    def last(self, name: str) -> Decimal | None:
        """The Last price of an exchange symbol (None for OTC symbols and before its first tick)."""
        track = self.tracks.get(name)
        return None if track is None else track.last

    def delayed(self, name: str, now_msc: int, delay_ms: int) -> tuple[Decimal, Decimal] | None:
        """The quote a feed `delay_ms` behind would show now (the latency arbitrageur's edge)."""
        seen = None
        track = self.tracks.get(name)
        for stamp, bid, ask in track.history if track is not None else ():
            if stamp > now_msc - delay_ms:
                break
            seen = (bid, ask)
        return seen
