"""Trader-flow generator: accounts that trade like the archetypes a broker's dealing desk meets.

Each account's archetype is ground truth, readable only through the simulator-only
`/_sim/archetypes` (for grading detection later); nothing in the Web API reveals it.
"""

from __future__ import annotations

import heapq
import random
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

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


# -- a realistic population on a simulated clock ----------------------------------------------
#
# `--population N --population-start MS --population-hours H`: N clients trade like the archetypes
# above, but on the trade server's own (frozen) clock, advanced by the simulation as fast as it
# runs, so hours of a trading day take seconds and holding times are those of real traders, not
# of the generator's rate. Prices come from a liquidity provider's feed (the reference) that the
# broker shows `BROKER_DELAY_MS` late: the latency arbitrageur watches the reference and trades
# the broker's stale quote; everyone else sees only the broker's quotes. Every quote the broker
# shows is on the tape `tick/history` answers.

POPULATION_ARCHETYPES = ARCHETYPES
REASON_EXPERT = 1  # server enum: an Expert Advisor sent the request
TICK_MS = 500  # the reference feed prints every symbol twice a second
BROKER_DELAY_MS = 500  # bridge and aggregation: the broker's quote shows the reference this late
NOISE_SPREADS = 0.11  # an ordinary tick's move (standard deviation), in spreads
BURST_PROBABILITY = 0.002  # a fast move (order-book sweep) on one tick in 500
BURST_SPREADS = 1.5  # its standard deviation, in spreads
TREND_SPREADS_PER_HOUR = 24.0  # drift of a trending regime (what a trend follower earns on)
REGIME_MEAN_MS = 90 * 60_000  # regimes (up, flat, down) last 90 minutes on average
NEWS_MEAN_INTERVAL_MS = 60 * 60_000  # a scheduled release about every hour
NEWS_JUMP_SPREADS = (6.0, 15.0)  # the release's jump on each symbol it moves
NEWS_FOLLOW_MS = 5 * 60_000  # and the drift after it, in the jump's direction...
NEWS_FOLLOW_SPREADS = (3.0, 8.0)  # ...of this many spreads in all
MINUTE_MS = 60_000


def _points(price: float, point: float) -> int:
    return round(price / point)


@dataclass
class Market:
    """One symbol: the reference mid (the LP's price now) and what the broker shows."""

    name: str
    digits: int
    point: float
    spread_points: int
    mid: float
    shown: float = 0.0  # the broker's mid now (the reference BROKER_DELAY_MS ago)
    drift: float = 0.0
    regime_until: int = 0
    follow: float = 0.0
    follow_until: int = 0
    pending: deque[tuple[int, float, int]] = field(default_factory=deque)
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=20))  # last 10 s shown
    minutes: deque[float] = field(default_factory=lambda: deque(maxlen=240))  # shown, per minute
    dirty: bool = True

    @property
    def spread(self) -> float:
        return self.spread_points * self.point

    def quote(self) -> tuple[int, int]:
        """The broker's bid and ask now, in points."""
        bid = _points(self.shown - self.spread / 2, self.point)
        return bid, bid + self.spread_points


@dataclass
class Holding:
    position: int
    symbol: str
    action: int
    volume: int
    price: float
    opened: int


@dataclass
class Client:
    login: int
    archetype: str
    symbol: str
    params: dict[str, float]
    partner: int | None = None
    holdings: list[Holding] = field(default_factory=list)
    partner_holdings: list[Holding] = field(default_factory=list)
    anchor: float | None = None
    busy: bool = False  # an entry is on its way (arbitrageur, news trader)


class Population:
    """The realistic flow; `advance(until)` runs it to `until` (UTC ms) on the engine's clock."""

    def __init__(
        self, engine: Engine, clients: int, seed: int, start_msc: int, hours: float
    ) -> None:
        self.engine = engine
        self.random = random.Random(seed)
        self.now = start_msc
        self.end = start_msc + int(hours * 3_600_000)
        self.running = True
        self.archetypes: dict[int, str] = {}
        self.clients: list[Client] = []
        self.markets: dict[str, Market] = {}
        for name in TRADED:
            symbol = engine.symbol(name)
            mid = float(symbol.bid) + float(symbol.point) * symbol.spread_points / 2
            market = Market(name, symbol.digits, float(symbol.point), symbol.spread_points, mid)
            market.shown = mid
            self.markets[name] = market
        self.events: list[tuple[int, int, str, Any]] = []
        self.sequence = 0
        self.next_news = start_msc + int(self.random.expovariate(1 / NEWS_MEAN_INTERVAL_MS))
        engine.clock.frozen_msc = start_msc
        engine.tape.cap = 1 << 40  # the run's whole tape: it is what profiling reads
        for index in range(clients):
            self._enrol(index)
        self._at(start_msc, "tick", None)

    @property
    def done(self) -> bool:
        return self.now >= self.end

    # -- enrolment --------------------------------------------------------------------------

    def _enrol(self, index: int) -> None:
        archetype = POPULATION_ARCHETYPES[index % len(POPULATION_ARCHETYPES)]
        login = FIRST_FLOW_LOGIN + index * 2
        r = self.random
        params: dict[str, float] = {
            "losing_retail": {
                "tp": r.uniform(3, 6),
                "sl": r.uniform(20, 40),
                "max_hold": r.uniform(4, 8) * 3.6e6,
                "check": r.uniform(30, 120) * 1000,
                "gap": r.uniform(10, 40) * MINUTE_MS,
                "lots": r.randint(1, 10) * 1000,
            },
            "profitable_swing": {
                "risk": r.uniform(8, 15),
                "max_hold": r.uniform(4, 6) * 3.6e6,
                "check": r.uniform(60, 180) * 1000,
                "gap": r.uniform(5, 20) * MINUTE_MS,
                "lookback": r.choice((20, 30, 45)),
                "lots": r.randint(5, 20) * 1000,
            },
            "scalper": {
                "tp": r.uniform(1, 2),
                "sl": r.uniform(2, 3),
                "max_hold": r.uniform(60, 300) * 1000,
                "check": r.uniform(3, 12) * 1000,
                "gap": r.uniform(1, 4) * MINUTE_MS,
                "momentum": float(r.random() < 0.5),
                "expert": float(r.random() < 0.5),
                "lots": r.randint(10, 50) * 1000,
            },
            "latency_arbitrageur": {
                "threshold": r.uniform(1.3, 2.0),
                "take": r.uniform(0.1, 0.25),
                "reaction": r.uniform(10, 150),
                "hold": r.uniform(600, 3000),
                "lots": r.randint(10, 50) * 1000,
            },
            "news_trader": {
                "take": r.uniform(0.5, 0.9),
                "reaction": r.uniform(1000, 8000),
                "hold": r.uniform(2, 15) * MINUTE_MS,
                "lots": r.randint(10, 40) * 1000,
            },
            "hedger": {
                "gap": r.uniform(30, 60) * MINUTE_MS,
                "hold": r.uniform(5, 120) * MINUTE_MS,
                "lots": r.randint(5, 30) * 1000,
            },
            "grid_ea": {
                "step": r.uniform(4, 8),
                "check": r.uniform(30, 90) * 1000,
                "lots": r.choice((1000, 2000)),
                "max_open": 10,
            },
        }[archetype]
        client = Client(login, archetype, r.choice(TRADED), params)
        owner = login
        self._account(login, archetype, owner)
        if archetype == "hedger":
            client.partner = login + 1
            self._account(login + 1, archetype, owner)
        self.clients.append(client)
        if archetype in ("losing_retail", "profitable_swing", "scalper", "hedger", "grid_ea"):
            self._at(self.now + int(r.uniform(0, 10 * MINUTE_MS)), "act", client)

    def _account(self, login: int, archetype: str, owner: int) -> None:
        """One client's account; a hedger's two accounts are one person's (same name, e-mail
        and phone), as a back office sees them."""
        if login not in self.engine.books.users:
            self.engine.books.users[login] = User(
                login=login,
                group=FLOW_GROUP,
                name=f"Client {owner}",
                email=f"client{owner}@flow.example",
                phone=f"+44{owner}",
                password_main="Flow#Pass1",
                password_investor="Flow#Pass2",
                leverage=100,
                balance=STARTING_BALANCE,
                registration=self.now // 1000,
            )
        self.archetypes[login] = archetype

    # -- the event loop ---------------------------------------------------------------------

    def _at(self, msc: int, kind: str, subject: Any) -> None:
        self.sequence += 1
        heapq.heappush(self.events, (msc, self.sequence, kind, subject))

    def advance(self, until: int) -> list[Deal]:
        """Run every event up to `until` (at most the end); the deals they made."""
        until = min(until, self.end)
        deals: list[Deal] = []
        while self.events and self.events[0][0] <= until:
            msc, _, kind, subject = heapq.heappop(self.events)
            self.now = msc
            if kind == "tick":
                self._tick(msc)
                self._at(msc + TICK_MS, "tick", None)
            elif kind == "act":
                deals += self._act(subject, msc)
            else:  # a scheduled trade: ("open" | "close", details)
                deals += self._scheduled(kind, subject, msc)
        self.now = until
        self.engine.clock.frozen_msc = until
        self._flush()
        return deals

    # -- prices -----------------------------------------------------------------------------

    def _tick(self, now: int) -> None:
        r = self.random
        news: dict[str, int] = {}
        if now >= self.next_news:
            self.next_news = now + int(r.expovariate(1 / NEWS_MEAN_INTERVAL_MS))
            moved = [name for name in self.markets if r.random() < 0.6] or [r.choice(TRADED)]
            news = {name: r.choice((1, -1)) for name in moved}
        for market in self.markets.values():
            spread = market.spread
            if now >= market.regime_until:
                market.regime_until = now + int(r.expovariate(1 / REGIME_MEAN_MS))
                per_tick = TREND_SPREADS_PER_HOUR * spread * TICK_MS / 3_600_000
                market.drift = r.choice((-1, 0, 1)) * per_tick
            move = r.gauss(0.0, NOISE_SPREADS) * spread + market.drift
            if r.random() < BURST_PROBABILITY:
                move += r.gauss(0.0, BURST_SPREADS) * spread
            if now < market.follow_until:
                move += market.follow
            direction = news.get(market.name, 0)
            if direction:
                move += direction * r.uniform(*NEWS_JUMP_SPREADS) * spread
                total = direction * r.uniform(*NEWS_FOLLOW_SPREADS) * spread
                market.follow = total * TICK_MS / NEWS_FOLLOW_MS
                market.follow_until = now + NEWS_FOLLOW_MS
            market.mid = max(market.mid + move, 100 * spread)
            market.pending.append((now + BROKER_DELAY_MS, market.mid, direction))
            while market.pending and market.pending[0][0] <= now:
                shown_at, mid, jump = market.pending.popleft()
                self._show(market, shown_at, mid)
                if jump:
                    self._news_seen(market, shown_at, jump)
            self._arbitrage(market, now)

    def _show(self, market: Market, msc: int, mid: float) -> None:
        market.shown = mid
        market.dirty = True
        market.recent.append(mid)
        if msc % MINUTE_MS < TICK_MS:
            market.minutes.append(mid)
        bid, ask = market.quote()
        self.engine.tape.record(market.name, msc, bid, ask)

    def _flush(self) -> None:
        """The broker's current quotes into the books (for fills, conversions and `tick/last`)."""
        engine = self.engine
        for market in self.markets.values():
            if market.dirty:
                bid, ask = market.quote()
                engine.books.quotes[market.name] = [
                    str(Decimal(bid).scaleb(-market.digits)),
                    str(Decimal(ask).scaleb(-market.digits)),
                ]
                engine.tick_serial += 1
                engine.tick_changes[market.name] = (engine.tick_serial, self.now)
                market.dirty = False

    def _prices(self, market: Market) -> tuple[float, float]:
        bid, ask = market.quote()
        return bid * market.point, ask * market.point

    # -- trading ----------------------------------------------------------------------------

    def _trade(
        self,
        login: int,
        symbol: str,
        action: int,
        volume: int,
        *,
        position: int = 0,
        expert: bool = False,
    ) -> list[Deal]:
        self.engine.clock.frozen_msc = self.now
        self._flush()
        try:
            self.engine.require_trading(login)
            return self.engine.market(
                login,
                symbol,
                action,
                volume,
                position_id=position,
                reason=REASON_EXPERT if expert else REASON_CLIENT,
            )
        except Refusal:
            return []

    def _open(
        self,
        client: Client,
        symbol: str,
        action: int,
        *,
        login: int | None = None,
        expert: bool = False,
        volume: int | None = None,
    ) -> list[Deal]:
        login = login or client.login
        deals = self._trade(
            login, symbol, action, volume or int(client.params["lots"]), expert=expert
        )
        for deal in deals:
            if deal.entry == 0:
                holding = Holding(
                    deal.position_id, symbol, action, deal.volume, float(deal.price), self.now
                )
                (client.holdings if login == client.login else client.partner_holdings).append(
                    holding
                )
        return deals

    def _close(self, client: Client, holding: Holding, *, expert: bool = False) -> list[Deal]:
        login = client.login if holding in client.holdings else client.partner
        assert login is not None
        deals = self._trade(
            login,
            holding.symbol,
            SELL if holding.action == BUY else BUY,
            holding.volume,
            position=holding.position,
            expert=expert,
        )
        if deals or not any(
            p.position == holding.position for p in self.engine.positions_of(login)
        ):
            for held in (client.holdings, client.partner_holdings):
                if holding in held:
                    held.remove(holding)
        return deals

    def _gain(self, holding: Holding) -> float:
        """The holding's profit now, in spreads (closing at the broker's bid or ask)."""
        market = self.markets[holding.symbol]
        bid, ask = self._prices(market)
        moved = bid - holding.price if holding.action == BUY else holding.price - ask
        return moved / market.spread

    def _after(self, mean: float) -> int:
        return self.now + int(self.random.expovariate(1 / mean))

    def _act(self, client: Client, now: int) -> list[Deal]:
        act = getattr(self, f"_act_{client.archetype}")
        deals: list[Deal] = act(client, now)
        return deals

    def _act_losing_retail(self, c: Client, now: int) -> list[Deal]:
        """Cuts winners at a few spreads, lets losers run to a wide stop (or hours)."""
        p = c.params
        if not c.holdings:
            self._at(now + int(p["check"]), "act", c)
            return self._open(c, c.symbol, self.random.choice((BUY, SELL)))
        return self._manage(c, now, p["tp"], p["sl"])

    def _manage(
        self, c: Client, now: int, take: float, stop: float, expert: bool = False
    ) -> list[Deal]:
        """Close the open holding at +`take` or -`stop` spreads or after its longest hold (then
        wait a gap before the next trade), else look again after the client's check interval."""
        p = c.params
        holding = c.holdings[0]
        gain = self._gain(holding)
        if gain >= take or gain <= -stop or now - holding.opened >= p["max_hold"]:
            self._at(self._after(p["gap"]), "act", c)
            return self._close(c, holding, expert=expert)
        self._at(now + int(p["check"]), "act", c)
        return []

    def _act_profitable_swing(self, c: Client, now: int) -> list[Deal]:
        """Follows the last half hour's trend, risks R to make 3R, holds for hours at most."""
        p = c.params
        market = self.markets[c.symbol]
        if not c.holdings:
            lookback = int(p["lookback"])
            if len(market.minutes) <= lookback:
                self._at(now + int(p["check"]), "act", c)
                return []
            change = (market.shown - market.minutes[-lookback]) / market.spread
            if abs(change) < 3:  # no trend worth following yet
                self._at(now + int(p["check"]), "act", c)
                return []
            self._at(now + int(p["check"]), "act", c)
            return self._open(c, c.symbol, BUY if change > 0 else SELL)
        return self._manage(c, now, 3 * p["risk"], p["risk"])

    def _act_scalper(self, c: Client, now: int) -> list[Deal]:
        """In and out within minutes for a spread or two, often; no faster feed than ours."""
        p = c.params
        expert = bool(p["expert"])
        market = self.markets[c.symbol]
        if not c.holdings:
            self._at(now + int(p["check"]), "act", c)
            if p["momentum"] and len(market.recent) > 1 and market.recent[0] != market.shown:
                action = BUY if market.shown > market.recent[0] else SELL
            else:
                action = self.random.choice((BUY, SELL))
            return self._open(c, c.symbol, action, expert=expert)
        return self._manage(c, now, p["tp"], p["sl"], expert)

    def _act_hedger(self, c: Client, now: int) -> list[Deal]:
        """Opposite positions of one size on the client's two accounts, opened and closed
        within seconds of each other."""
        p = c.params
        if not c.holdings and not c.partner_holdings:
            side = self.random.choice((BUY, SELL))
            volume = int(p["lots"])
            other = SELL if side == BUY else BUY
            lag = int(self.random.uniform(0, 5000))
            self._at(now + lag, "open", (c, c.symbol, other, c.partner, volume))
            self._at(now + lag + int(p["hold"]), "act", c)
            return self._open(c, c.symbol, side, volume=volume)
        deals: list[Deal] = []
        for holding in list(c.holdings):
            deals += self._close(c, holding)
        lag = int(self.random.uniform(0, 5000))
        for holding in list(c.partner_holdings):
            self._at(now + lag, "close", (c, holding))
        self._at(self._after(p["gap"]), "act", c)
        return deals

    def _act_grid_ea(self, c: Client, now: int) -> list[Deal]:
        """An EA: buys every grid step down, sells every step up, banks each a step later."""
        p = c.params
        market = self.markets[c.symbol]
        step = p["step"] * market.spread
        self._at(now + int(p["check"]), "act", c)
        if c.anchor is None:
            c.anchor = market.shown
            return []
        deals: list[Deal] = []
        for holding in list(c.holdings):
            if self._gain(holding) >= p["step"]:
                deals += self._close(c, holding, expert=True)
        if abs(market.shown - c.anchor) >= step and len(c.holdings) < p["max_open"]:
            action = BUY if market.shown < c.anchor else SELL
            deals += self._open(c, c.symbol, action, expert=True)
            c.anchor = market.shown
        return deals

    def _arbitrage(self, market: Market, now: int) -> None:
        """Arbitrageurs see the reference now and the broker's stale quote: a gap wider than
        their threshold is a trade at the stale price, closed once the quote has caught up."""
        gap = (market.mid - market.shown) / market.spread
        if abs(gap) < 1.3:
            return
        for c in self.clients:
            if c.archetype != "latency_arbitrageur" or c.busy or c.holdings:
                continue
            p = c.params
            if abs(gap) >= p["threshold"] and self.random.random() < p["take"]:
                c.busy = True
                action = BUY if gap > 0 else SELL
                self._at(now + int(p["reaction"]), "open", (c, market.name, action, None, None))

    def _news_seen(self, market: Market, msc: int, jump: int) -> None:
        """News traders see the release's jump on the broker's quotes and chase it."""
        for c in self.clients:
            if c.archetype != "news_trader" or c.busy or c.holdings:
                continue
            p = c.params
            if self.random.random() < p["take"]:
                c.busy = True
                action = BUY if jump > 0 else SELL
                when = msc + int(p["reaction"] * self.random.uniform(0.5, 1.5))
                self._at(when, "open", (c, market.name, action, None, None))

    def _scheduled(self, kind: str, subject: Any, now: int) -> list[Deal]:
        if kind == "close":
            client, holding = subject
            return self._close(client, holding)
        client, symbol, action, login, volume = subject
        client.busy = False
        expert = client.archetype == "latency_arbitrageur"
        deals = self._open(client, symbol, action, login=login, volume=volume, expert=expert)
        if client.archetype in ("latency_arbitrageur", "news_trader"):
            for holding in client.holdings:
                hold = client.params["hold"]
                self._at(
                    now + int(hold * self.random.uniform(0.7, 1.3)), "close", (client, holding)
                )
        return deals
