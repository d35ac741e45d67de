"""A seeded, deterministic price feed: a random walk per symbol with trading sessions, wider
spreads around the daily rollover, news spikes, and a delayed copy for latency-arbitrage tests."""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from simulators.mt5.catalogue import EXCH_STOCKS, Symbol

# Per-tick volatility as a fraction of the price, and how often a tick is a news spike.
TICK_VOLATILITY = 0.00005
SPIKE_PROBABILITY = 0.001
SPIKE_SIZE = 40  # in tick volatilities
ROLLOVER_HOUR = 21  # UTC; spreads widen for the hour around the daily rollover
ROLLOVER_SPREAD_FACTOR = 4


def in_session(symbol: Symbol, moment: datetime) -> bool:
    """FX, metals, indices and crypto CFDs trade around the clock on weekdays (crypto all week);
    exchange stocks 13:30-20:00 UTC on weekdays."""
    weekday = moment.weekday()
    if symbol.path.startswith("Crypto"):
        return True
    if weekday >= 5:
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


@dataclass
class Track:
    mid: float
    history: deque[tuple[int, Decimal, Decimal]] = field(default_factory=lambda: deque(maxlen=256))


class PriceFeed:
    def __init__(
        self,
        symbols: dict[str, Symbol],
        seed: int = 0,
        calendar: SessionCalendar = SessionCalendar(),
    ) -> None:
        self.symbols = symbols
        self.calendar = calendar
        self.random = random.Random(seed)
        self.tracks = {name: Track(float(s.bid + s.ask) / 2) for name, s in symbols.items()}
        self.spikes: list[tuple[int, str]] = []  # (msc, symbol): ground truth for news traders

    def tick(self, name: str, now_msc: int) -> tuple[Decimal, Decimal] | None:
        """Advance `name` by one tick at `now_msc`; None when its market is closed."""
        symbol = self.symbols[name]
        moment = datetime.fromtimestamp(now_msc / 1000, UTC)
        if not self.calendar.is_open(symbol, moment):
            return None
        track = self.tracks[name]
        shock = self.random.gauss(0.0, 1.0)
        if self.random.random() < SPIKE_PROBABILITY:
            shock = math.copysign(SPIKE_SIZE, shock)
            self.spikes.append((now_msc, name))
        track.mid *= math.exp(TICK_VOLATILITY * shock)
        spread = symbol.point * symbol.spread_points
        if moment.hour == ROLLOVER_HOUR:
            spread *= ROLLOVER_SPREAD_FACTOR
        bid = (Decimal(track.mid) - spread / 2).quantize(symbol.point)
        ask = bid + spread
        track.history.append((now_msc, bid, ask))
        return bid, ask

    def delayed(self, name: str, now_msc: int, delay_ms: int) -> tuple[Decimal, Decimal] | None:
        """The quote a feed `delay_ms` behind would show now (the latency arbitrageur's edge)."""
        seen = None
        for stamp, bid, ask in self.tracks[name].history:
            if stamp > now_msc - delay_ms:
                break
            seen = (bid, ask)
        return seen
