"""Trader-flow generator: accounts that trade like the archetypes a broker's dealing desk meets.

Each account's archetype is ground truth, readable only through the simulator-only
`/_sim/archetypes` (for grading detection later); nothing in the Web API reveals it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from decimal import Decimal

from simulators.mt5.engine import BUY, REASON_CLIENT, SELL, Engine
from simulators.mt5.feed import PriceFeed
from simulators.mt5.retcodes import Refusal
from simulators.mt5.state import Deal, Position, User

ARCHETYPES = (
    "losing_retail",
    "profitable_swing",
    "scalper",
    "latency_arbitrageur",
    "news_trader",
    "hedger",
    "grid_ea",
)
FLOW_GROUP = "real\\standard"  # retail hedging
FIRST_FLOW_LOGIN = 9_000_000
STARTING_BALANCE = "1000000"
TRADED = ("EURUSD", "GBPUSD", "USDJPY", "XAUUSD", "US500", "BTCUSD")
FEED_DELAY_MS = 500
NEWS_WINDOW_MS = 2_000


@dataclass
class Trader:
    login: int
    archetype: str
    symbol: str
    partner: int | None = None  # the hedger's second account
    held_steps: int = 0
    history: list[Decimal] = field(default_factory=list)
    grid_anchor: Decimal | None = None


class TraderFlow:
    def __init__(
        self, engine: Engine, traders: int, seed: int = 0, feed: PriceFeed | None = None
    ) -> None:
        self.engine = engine
        self.random = random.Random(seed)
        self.feed = feed or PriceFeed({name: engine.symbol(name) for name in TRADED}, seed)
        self.traders: list[Trader] = []
        self.archetypes: dict[int, str] = {}
        self.running = True
        for index in range(traders):
            self._enrol(index)

    def _enrol(self, index: int) -> None:
        archetype = ARCHETYPES[index % len(ARCHETYPES)]
        login = FIRST_FLOW_LOGIN + index * 2
        trader = Trader(login, archetype, self.random.choice(TRADED))
        self._account(login, archetype)
        if archetype == "hedger":
            trader.partner = login + 1
            self._account(login + 1, archetype)
        self.traders.append(trader)

    def _account(self, login: int, archetype: str) -> None:
        if login not in self.engine.books.users:
            self.engine.books.users[login] = User(
                login=login,
                group=FLOW_GROUP,
                name=f"Flow {login}",
                password_main="Flow#Pass1",
                password_investor="Flow#Pass2",
                leverage=100,
                balance=STARTING_BALANCE,
            )
        self.archetypes[login] = archetype

    # -- the flow --------------------------------------------------------------------------

    def step(self, now_msc: int) -> list[Deal]:
        """One decision of one trader, after one tick of its symbol's price."""
        trader = self.random.choice(self.traders)
        quote = self.feed.tick(trader.symbol, now_msc)
        if quote is None:
            return []
        self.engine.set_quote(trader.symbol, *quote, last=self.feed.last(trader.symbol))
        trader.history = [*trader.history[-49:], quote[0]]
        decide = getattr(self, f"_{trader.archetype}")
        # An account that may not connect, or whose trading is off, sends no requests (both of a
        # hedger's accounts must be able to, or it would leave one leg alone).
        logins = [trader.login] if trader.partner is None else [trader.login, trader.partner]
        try:
            for login in logins:
                self.engine.require_trading(login)
            deals: list[Deal] = decide(trader, now_msc)
        except Refusal:
            return []
        trader.held_steps = trader.held_steps + 1 if self._open(trader.login, trader.symbol) else 0
        return deals

    def _open(self, login: int, symbol: str) -> list[Position]:
        return [p for p in self.engine.positions_of(login) if p.symbol == symbol]

    def _lots(self, low: int, high: int) -> int:
        return self.random.randint(low, high) * 100  # hundredths of a lot

    def _enter(
        self, trader: Trader, action: int, volume: int, login: int | None = None
    ) -> list[Deal]:
        return self.engine.market(
            login or trader.login, trader.symbol, action, volume, reason=REASON_CLIENT
        )

    def _exit(self, position: Position) -> list[Deal]:
        closing = SELL if position.action == BUY else BUY
        return self.engine.market(
            position.login,
            position.symbol,
            closing,
            position.volume,
            position_id=position.position,
            reason=REASON_CLIENT,
        )

    def _profit(self, position: Position) -> Decimal:
        return self.engine.floating_profit(position)

    # -- archetypes ------------------------------------------------------------------------

    def _losing_retail(self, trader: Trader, now_msc: int) -> list[Deal]:
        """Cuts winners early, lets losers run."""
        positions = self._open(trader.login, trader.symbol)
        if not positions:
            return self._enter(trader, self.random.choice((BUY, SELL)), self._lots(10, 100))
        position = positions[0]
        profit = self._profit(position)
        if (profit > 0 and self.random.random() < 0.6) or self.random.random() < 0.02:
            return self._exit(position)
        return []

    def _profitable_swing(self, trader: Trader, now_msc: int) -> list[Deal]:
        """Follows the trend, holds for a while, takes three times what it risks."""
        positions = self._open(trader.login, trader.symbol)
        if not positions:
            if len(trader.history) < 20:
                return []
            rising = trader.history[-1] > trader.history[-20]
            return self._enter(trader, BUY if rising else SELL, self._lots(50, 200))
        position = positions[0]
        risk = Decimal(position.volume) / 100
        profit = self._profit(position)
        if profit > 3 * risk or profit < -risk or trader.held_steps > 200:
            return self._exit(position)
        return []

    def _scalper(self, trader: Trader, now_msc: int) -> list[Deal]:
        """In and out within a few ticks."""
        positions = self._open(trader.login, trader.symbol)
        if not positions:
            return self._enter(trader, self.random.choice((BUY, SELL)), self._lots(100, 500))
        if trader.held_steps >= self.random.randint(1, 3):
            return self._exit(positions[0])
        return []

    def _latency_arbitrageur(self, trader: Trader, now_msc: int) -> list[Deal]:
        """Trades the gap between the live price and a feed that runs behind it."""
        positions = self._open(trader.login, trader.symbol)
        if positions:
            return self._exit(positions[0])
        stale = self.feed.delayed(trader.symbol, now_msc, FEED_DELAY_MS)
        if stale is None:
            return []
        live_bid, _ = self.engine.quote(trader.symbol)
        symbol = self.engine.symbol(trader.symbol)
        gap = live_bid - stale[0]
        if abs(gap) < symbol.point * symbol.spread_points:
            return []
        return self._enter(trader, BUY if gap > 0 else SELL, self._lots(100, 300))

    def _news_trader(self, trader: Trader, now_msc: int) -> list[Deal]:
        """Jumps on a spike in the direction it moved, out soon after."""
        positions = self._open(trader.login, trader.symbol)
        if positions:
            return self._exit(positions[0]) if trader.held_steps >= 2 else []
        recent = [
            t
            for t, name in self.feed.spikes
            if name == trader.symbol and now_msc - t < NEWS_WINDOW_MS
        ]
        if not recent or len(trader.history) < 2:
            return []
        up = trader.history[-1] > trader.history[-2]
        return self._enter(trader, BUY if up else SELL, self._lots(100, 400))

    def _hedger(self, trader: Trader, now_msc: int) -> list[Deal]:
        """Opposite positions on two accounts at once: one of them always wins a bonus-less bet."""
        assert trader.partner is not None
        mine, theirs = (
            self._open(trader.login, trader.symbol),
            self._open(trader.partner, trader.symbol),
        )
        if mine or theirs:
            if trader.held_steps < 20:
                return []
            return [deal for position in mine + theirs for deal in self._exit(position)]
        volume = self._lots(50, 200)
        side = self.random.choice((BUY, SELL))
        return self._enter(trader, side, volume) + self._enter(
            trader, SELL if side == BUY else BUY, volume, login=trader.partner
        )

    def _grid_ea(self, trader: Trader, now_msc: int) -> list[Deal]:
        """Buys every grid step down, sells every step up, banks each position one step later."""
        bid, _ = self.engine.quote(trader.symbol)
        symbol = self.engine.symbol(trader.symbol)
        step = symbol.point * symbol.spread_points * 5
        if trader.grid_anchor is None:
            trader.grid_anchor = bid
            return []
        deals: list[Deal] = []
        for position in self._open(trader.login, trader.symbol):
            if self._profit(position) > 0 and abs(bid - Decimal(position.price_open)) >= step:
                deals += self._exit(position)
        if abs(bid - trader.grid_anchor) >= step:
            deals += self._enter(
                trader, BUY if bid < trader.grid_anchor else SELL, self._lots(10, 10)
            )
            trader.grid_anchor = bid
        return deals
