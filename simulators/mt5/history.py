"""A seeded, realistic trade history written straight into the books (`generate_history`).

Accounts deposit, trade and withdraw over a time range as retail clients do: netting accounts
add to, partly close and reverse their one position per symbol (the reversal keeps the position
id); hedging accounts hold several positions, close them whole or in part and close opposite
ones by each other (two OUT_BY deals). Each deal carries what the engine would book for the same
fill: the dealer plugin's markup, profit via the contract size (or tick value) and the
conversion rate on the side less favourable to the client, the group's commission, and the swaps
of the nights held, realised pro rata on exit. History orders are not written (a deal's `Order`
ticket has none): BrokerFlow reads deals, and an Order record costs more than its deal.

A million deals take well under a minute: prices are integers in 1/1000 of a point (the
precision of a netting position's averaged open price), money is integer minor units of the
deposit currency (rounded as Decimal would), texts are made once per deal (and once per
price), deals are built positionally, and Decimal arithmetic is left to commission rules beyond
a flat per-lot or per-deal charge, which the engine computes itself.

What it takes from the server as it is: the books' groups (their currency, margin mode and
commissions) and quotes (each symbol's walk starts and ends at its current quote, else the
catalogue's); the default dealer rules; days and swap nights at UTC midnight.
"""

from __future__ import annotations

import fnmatch
import gc
import math
import random
import time
from bisect import bisect_right
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache
from itertools import accumulate
from statistics import NormalDist
from typing import Any

from simulators.mt5.catalogue import CATALOGUE, FUTURES, SWAP_INTEREST_CURRENT, Symbol
from simulators.mt5.engine import (
    BUY,
    CHARGE_INSTANT,
    COMM_AGENT,
    COMM_STANDARD,
    ENTRY_IN,
    ENTRY_INOUT,
    ENTRY_MODE_ALL,
    ENTRY_OUT,
    ENTRY_OUT_BY,
    HEDGING,
    LOT,
    NETTING,
    PER_LOT,
    RANGE_VOLUME,
    REASON_CLIENT,
    REASON_SL,
    REASON_TP,
    SELL,
    TIER_DEPOSIT,
    Engine,
    charged_volume,
)
from simulators.mt5.feed import in_session, trades_on
from simulators.mt5.state import Books, Deal, Position, User

DAY_MS = 86_400_000
SLOT_MS = 1_800_000  # sessions are looked up per half hour
DEFAULT_SPAN_MS = 30 * DAY_MS
SUB = 1000  # prices in 1/1000 of a point, as the engine keeps averaged open prices
RATE_PLACES = 8  # conversion rates, as the engine quantizes them; commission values too
RATE_ONE: int = 10**RATE_PLACES
POWERS: list[int] = [10**n for n in range(64)]
DEAL_BALANCE = 2

# Activity per UTC hour, busiest in the London and New York overlap and quiet around the 21:00
# rollover; scaled by the share of (popular) symbols in session, so weekends are crypto-quiet.
HOURLY_ACTIVITY = (*(0.35,) * 6, 0.6, *(1.0,) * 5, *(1.2,) * 5, *(0.7,) * 4, 0.25, 0.3, 0.3)
# Daily volatility by the symbol's path root; steps drawn from 4096 quantiles of the standard
# normal (one uniform draw each: a third of the cost of random.gauss).
DAILY_VOLATILITY = {"Forex": 0.006, "Metals": 0.012, "Indices": 0.012, "Energies": 0.02}
DAILY_VOLATILITY |= {"Stocks": 0.018, "Crypto": 0.035, "Futures": 0.012}
NORMAL = tuple(NormalDist().inv_cdf((n + 0.5) / 4096) for n in range(4096))
POPULARITY = {"EURUSD": 20, "XAUUSD": 15, "GBPUSD": 8, "USDJPY": 8, "US500": 6, "BTCUSD": 5}
POPULARITY |= {"AUDUSD": 4, "GER40": 4, "XTIUSD": 4, "USDCHF": 3, "USDCAD": 3, "GBPJPY": 3}
POPULARITY |= {"AAPL": 3, "NZDUSD": 2, "EURGBP": 2, "EURJPY": 2, "ES": 2}

# Clients: deposits in major units (weights), how they reach the server (deal reasons client 0,
# expert 1, mobile 16, web 17), and their habits.
DEPOSITS = (100, 200, 250, 500, 1000, 2000, 3000, 5000, 10_000, 20_000, 50_000, 100_000)
DEPOSIT_WEIGHTS = (8, 6, 8, 12, 14, 10, 6, 8, 6, 3, 2, 1)
REASONS, REASON_WEIGHTS = (0, 1, 16, 17), (5, 2, 2, 1)
LEVERAGES = (30, 50, 100, 200, 500)
NETTING_SHARE = 0.35  # of accounts, when the books have both kinds of group
BALANCE_OPERATIONS = 0.01  # share of events that are a deposit or withdrawal
TOP_UP_BELOW = 0.1  # of the first deposit: the client deposits again before trading on
CLOSE_SHARE = 0.55  # of trades that act on an open position
CLOSE_BY_SHARE = 0.2  # of hedging closes, when an opposite pair is open
STOPS_SHARE = 0.3  # of whole hedging closes that are the position's SL or TP
HEDGE_SHARE = 0.25  # of hedging opens that go against an open position of the same symbol
MAX_NETTING_POSITIONS, MAX_HEDGING_POSITIONS = 4, 6
# Retail exposure: what a client holds, as a multiple of the balance (log-normal, capped), and
# the share of the balance committed as margin at most, however high the leverage.
MEDIAN_GEARING, MAX_GEARING, MARGIN_SHARE = 3.0, 20.0, 0.5
FIRST_NAMES = ("Anna", "Ben", "Chen", "Dara", "Elif", "Femi", "Greta", "Hugo", "Ines", "Jonas")
LAST_NAMES = ("Novak", "Okafor", "Silva", "Tanaka", "Weber", "Yilmaz", "Kowalski", "Haddad")
COUNTRIES = ("Germany", "United Kingdom", "Spain", "Poland", "Japan", "Brazil", "Nigeria")
PASSWORD = "History#Pass1"  # every generated account's, main and investor
# Deals are built positionally (a third of the cost of naming the fields): in this order, which
# the writer checks against Deal's before it starts.
DEAL_LAYOUT = (
    *("deal", "login", "action", "profit", "comment", "time_msc", "entry", "symbol", "volume"),
    *("volume_closed", "price", "price_position", "position_id", "order", "storage"),
    *("commission", "profit_raw", "contract_size", "rate_profit", "rate_margin", "reason"),
    *("market_bid", "market_ask", "digits", "gateway", "price_gateway", "position_by_id"),
)


def generate_history(
    books: Books,
    *,
    deals: int,
    accounts: int,
    seed: int,
    start_msc: int | None = None,
    end_msc: int | None = None,
) -> int:
    """Write `deals` deals of `accounts` new accounts (each starting with a deposit) into the
    books, timed from `start_msc` to `end_msc` (UTC ms; default: the 30 days before today, UTC,
    so one seed gives one history all day). Answers the number of deals written."""
    if accounts < 1 or deals < accounts:
        raise ValueError("at least one account, and a deposit deal for each")
    if end_msc is None:
        end_msc = int(time.time() * 1000) // DAY_MS * DAY_MS
    if start_msc is None:
        start_msc = end_msc - DEFAULT_SPAN_MS
    if not 0 <= start_msc < end_msc:
        raise ValueError("the time range is empty")
    writer = _Writer(books, random.Random(seed), start_msc, end_msc)
    # Nothing written makes reference cycles: the collector would only walk the growing books
    # again and again (a fifth of the time).
    collecting = gc.isenabled()
    gc.disable()
    try:
        writer.write(deals, accounts)
    finally:
        if collecting:
            gc.enable()
    return writer.written


# -- numbers ---------------------------------------------------------------------------------


def _divide_half_up(numerator: int, denominator: int) -> int:
    """numerator / denominator (denominator positive) to the nearest integer, ties away from
    zero (Decimal's ROUND_HALF_UP, the rounding of money)."""
    rounded = (2 * abs(numerator) + denominator) // (2 * denominator)
    return rounded if numerator >= 0 else -rounded


def _round_half_up(value: int, places: int) -> int:
    """`value` / 10**places, rounded half up."""
    return value * POWERS[-places] if places <= 0 else _divide_half_up(value, POWERS[places])


def _divide_half_even(numerator: int, denominator: int) -> int:
    """numerator / denominator (both positive) to the nearest integer, ties to even, as
    Decimal's default context rounds (the engine's rates and averaged prices)."""
    quotient, remainder = divmod(numerator, denominator)
    if 2 * remainder > denominator or (2 * remainder == denominator and quotient % 2):
        quotient += 1
    return quotient


def _fixed(value: int, places: int) -> str:
    """The decimal text of value / 10**places with all `places` decimals (money, prices)."""
    if places <= 0:
        return str(value)
    unit = POWERS[places]
    whole, fraction = divmod(abs(value), unit)
    text = f"{whole}.{str(fraction + unit)[1:]}"  # the fraction zero-padded to `places`
    return "-" + text if value < 0 else text


def _trimmed(value: int, places: int, keep: int) -> str:
    """The exact decimal text of value / 10**places, trailing zeros cut down to `keep` places."""
    text = _fixed(value, places)
    if places <= keep:
        return text
    text = text.rstrip("0")
    decimals = len(text) - text.index(".") - 1
    return text + "0" * (keep - decimals) if keep else text.rstrip(".")


@lru_cache(maxsize=1 << 16)
def _rate_text(rate: int) -> str:
    return _fixed(rate, RATE_PLACES)


def _scaled(value: Decimal, places: int) -> int:
    """`value` in units of 10**-places; configuration finer than that is refused."""
    units = value.scaleb(places)
    if units != units.to_integral_value():
        raise ValueError(f"{value} has more than {places} decimals")
    return int(units)


def _number(record: dict[str, Any], key: str) -> Decimal:
    return Decimal(str(record.get(key) or 0))


# -- the market: prices, sessions, conversion rates ------------------------------------------


class _Market:
    """One symbol: its constants, computed once, and its price (a seeded random walk)."""

    def __init__(self, index: int, symbol: Symbol, bid: Decimal, start: int, end: int) -> None:
        self.index, self.symbol, self.name = index, symbol, symbol.name
        self.digits = symbol.digits
        tick_size, tick_value = symbol.tick()
        self.step = max(1, _scaled(tick_size, symbol.digits))  # a price tick, in points
        self.spread = symbol.spread_points
        points = round(bid.scaleb(symbol.digits))  # a quote may carry more digits
        self.bid = self.anchor = max(1, round(points / self.step)) * self.step
        self.floor = max(self.step, self.anchor // 5 // self.step * self.step)
        daily = DAILY_VOLATILITY.get(symbol.path.split("\\")[0], 0.01) * self.anchor
        self.sigma = daily / math.sqrt(DAY_MS)  # points per square-root millisecond
        self.moved, self.end = start, end
        self.weight = POPULARITY.get(symbol.name, 1)
        # Profit in the profit currency = move (sub-points) x volume x profit_factor /
        # 10**profit_places: per lot, the contract size per unit of price (tick value per tick
        # size for futures).
        self.per_price = (
            tick_value / tick_size if symbol.calc_mode == FUTURES else symbol.contract_size
        )
        sign, digits, exponent = self.per_price.normalize().as_tuple()
        assert isinstance(exponent, int)
        self.profit_factor = int("".join(map(str, digits))) * (-1 if sign else 1)
        self.profit_places = symbol.digits + 3 + 4 - exponent  # sub-points, 1/10000 lot
        if self.profit_places < 0:
            self.profit_factor *= POWERS[-self.profit_places]
            self.profit_places = 0
        self.contract_size = str(symbol.contract_size)
        # A night's swap in the profit currency = volume x factor [x price in points, interest
        # mode] / swap_unit x rate; factor = swap x contract size, both scaled by 10**8.
        self.swap_interest = symbol.swap_mode == SWAP_INTEREST_CURRENT
        size = _scaled(symbol.contract_size, RATE_PLACES)
        self.swap_factors = tuple(
            _scaled(swap, RATE_PLACES) * size for swap in (symbol.swap_long, symbol.swap_short)
        )
        self.swap_unit = POWERS[4 + symbol.digits + 3 * RATE_PLACES] * (
            36_000 if self.swap_interest else 1
        )
        self.volume_step = symbol.volume_step
        self.volume_min = -(-max(symbol.volume_min, 1) // self.volume_step) * self.volume_step
        self.volume_max = symbol.volume_max // self.volume_step * self.volume_step
        self._prices: dict[int, str] = {}

    def price(self, points: int) -> str:
        """A price on the symbol's digits, as text (made once per price)."""
        text = self._prices.get(points)
        if text is None:
            text = self._prices[points] = _fixed(points, self.digits)
        return text

    def sub_price(self, sub: int) -> str:
        """A price in 1/1000 of a point: its own digits, and up to three more if averaged."""
        if sub % SUB == 0:
            return self.price(sub // SUB)
        return _trimmed(sub, self.digits + 3, self.digits)

    def move(self, rng: random.Random, now: int) -> None:
        """The walk up to `now`: a Gaussian step for the time since the last move, drawn back
        towards the quote it started from so that it ends there (a Brownian bridge: the history
        leads into the server's current quotes), on the tick grid, above a fifth of the start."""
        elapsed = now - self.moved
        if elapsed <= 0:
            return
        pull = (self.anchor - self.bid) * elapsed / (self.end - self.moved)
        self.moved = now
        shock = NORMAL[int(rng.random() * 4096)] * self.sigma * math.sqrt(elapsed)
        self.bid = max(self.floor, self.bid + round((pull + shock) / self.step) * self.step)


@dataclass(frozen=True)
class _Session:
    """The symbols in session over a half hour (as feed.in_session has them), with cumulative
    popularity weights to draw one by."""

    markets: tuple[_Market, ...]
    weights: tuple[float, ...]
    open: tuple[bool, ...]  # by market index

    def draw(self, rng: random.Random) -> _Market:
        return self.markets[bisect_right(self.weights, rng.random() * self.weights[-1])]


Legs = tuple[tuple[_Market, bool], ...]  # (pair, inverse) to multiply a rate through


def _legs(markets: dict[str, _Market], source: str, target: str) -> Legs | None:
    """The pairs that convert `source` into `target` as Engine.rate finds them: a direct pair,
    an inverse one, or a cross via USD; None if there is none."""
    if source == target:
        return ()
    if source + target in markets:
        return ((markets[source + target], False),)
    if target + source in markets:
        return ((markets[target + source], True),)
    if "USD" in (source, target):
        return None
    to_usd, from_usd = _legs(markets, source, "USD"), _legs(markets, "USD", target)
    return None if to_usd is None or from_usd is None else to_usd + from_usd


def _rate(legs: Legs, high: bool) -> int:
    """The rate in 1e-8 from the walking prices. `high` is the side less favourable for a loss,
    a charge or margin (a direct pair's ask, an inverse one's 1/bid), else the bid and 1/ask."""
    rate = RATE_ONE
    for count, (market, inverse) in enumerate(legs):
        price = market.bid + market.spread if high != inverse else market.bid
        scale = POWERS[market.digits]
        numerator, denominator = (RATE_ONE * scale, price) if inverse else (price * RATE_ONE, scale)
        leg = _divide_half_even(numerator, denominator)
        rate = leg if count == 0 else _divide_half_even(rate * leg, RATE_ONE)
    return rate


# -- groups and accounts ---------------------------------------------------------------------

FlatRules = list[tuple[int, int, int]]  # (EntryMode, per lot, per deal in 1e-8 deposit money)


def _flat_rules(config: dict[str, Any], symbol: Symbol) -> FlatRules | None:
    """The group's commission rules on `symbol` when each is a flat instant charge in the deposit
    currency (one open-ended tier, per lot or per deal, no filters or limits); None when one is
    more than that, and the engine computes the deal's commission itself. Agent rules are left
    out: they pay the account's agent, and generated accounts have none."""
    rules: FlatRules = []
    for rule in config.get("Commissions") or []:
        if not fnmatch.fnmatchcase(symbol.path, str(rule.get("Path", "*"))):
            continue
        mode, tiers = int(rule.get("Mode", COMM_STANDARD)), rule.get("Tiers") or []
        if mode == COMM_AGENT or not tiers:
            continue
        tier = tiers[0]
        flat = (
            mode == COMM_STANDARD
            and int(rule.get("ChargeMode", CHARGE_INSTANT)) == CHARGE_INSTANT
            and not int(rule.get("ActionMode", 0))
            and not int(rule.get("ProfitMode", 0))
            and int(rule.get("RangeMode", RANGE_VOLUME)) == RANGE_VOLUME
            and len(tiers) == 1
            and int(tier.get("Mode", TIER_DEPOSIT)) == TIER_DEPOSIT
            and not any(_number(tier, k) for k in ("RangeFrom", "RangeTo", "Minimal", "Maximal"))
        )
        if not flat:
            return None
        value = _scaled(_number(tier, "Value"), RATE_PLACES)
        per_lot = int(tier.get("Type", PER_LOT)) == PER_LOT
        entry_mode = int(rule.get("EntryMode", ENTRY_MODE_ALL))
        rules.append((entry_mode, value if per_lot else 0, 0 if per_lot else value))
    return rules


@dataclass(frozen=True)
class _Terms:
    """What a group does to deals of one symbol."""

    commissions: FlatRules | None  # None: the engine's own computation
    markup: int  # dealer plugin markup, points
    gateway: str  # A-book: the LP's gateway
    profit_legs: Legs
    margin_legs: Legs


@dataclass(frozen=True)
class _Group:
    name: str
    digits: int
    zero: str  # 0 in the currency's digits
    usd: float  # USD per minor unit of the currency (sizing only)
    hedging: bool
    leverage: int
    weight: int
    terms: tuple[_Terms, ...]  # by market index


@dataclass(eq=False, slots=True)
class _Position:
    ticket: int
    market: _Market
    action: int
    volume: int
    open: int  # sub-points
    open_text: str
    created: int
    accrued_day: int  # swaps are in `storage` up to this day's start
    storage: int = 0  # minor units, not yet realised
    updated: int = 0


@dataclass(eq=False, slots=True)
class _Account:
    login: int
    group: _Group
    reason: int
    margins: list[float]  # a lot's margin by market index, in USD (sizing only)
    gearing: float  # the most the client holds, as a multiple of the balance
    first_deposit: int = 0
    balance: int = 0  # minor units
    positions: list[_Position] = field(default_factory=list)


# -- the writer ------------------------------------------------------------------------------


class _Writer:
    """One run of the generator: the markets, groups and timeline it set up, and the accounts
    it opened, as integers until `_finish` writes balances and positions into the books."""

    def __init__(self, books: Books, rng: random.Random, start: int, end: int) -> None:
        if tuple(f.name for f in fields(Deal))[: len(DEAL_LAYOUT)] != DEAL_LAYOUT:
            raise RuntimeError("Deal's fields moved: update history.DEAL_LAYOUT and _book")
        self.books, self.rng, self.start, self.end = books, rng, start, end
        self.engine = Engine(books)
        self.written = 0
        # Tickets are counted here and handed back to the books when done (Books.new_ticket
        # goes through the books' change tracking: a twentieth of the run).
        self.ticket = books.next_ticket
        self.first_day, self.end_day = start // DAY_MS, end // DAY_MS
        self.markets: list[_Market] = []
        for name in CATALOGUE:
            symbol = self.engine.symbol(name)
            quote = books.quotes.get(name)
            bid = Decimal(quote[0]) if quote else symbol.bid
            self.markets.append(_Market(len(self.markets), symbol, bid, start, end))
        self.by_name = {m.name: m for m in self.markets}
        self.nights = [self._nights(m.symbol) for m in self.markets]
        self._margins: dict[int, list[float]] = {}  # by leverage
        self.notional = [self._notional(m) for m in self.markets]
        self.netting, self.hedging = self._groups()
        self.timeline = self._timeline()
        self.accounts: list[_Account] = []

    # -- set-up ------------------------------------------------------------------------------

    def _groups(self) -> tuple[list[_Group], list[_Group]]:
        """Netting and hedging groups of the books whose currency every symbol converts to."""
        netting: list[_Group] = []
        hedging: list[_Group] = []
        for name, config in sorted(self.books.groups.items()):
            mode, currency = int(str(config["MarginMode"])), str(config["Currency"])
            terms = []
            for market in self.markets:
                profit = _legs(self.by_name, market.symbol.profit, currency)
                margin = _legs(self.by_name, market.symbol.margin, currency)
                if profit is None or margin is None:
                    break
                rule = self.engine.dealer_rule(name, market.name)
                terms.append(
                    _Terms(
                        commissions=_flat_rules(config, market.symbol),
                        markup=rule.markup_points,
                        gateway=rule.gateway if rule.a_book else "",
                        profit_legs=profit,
                        margin_legs=margin,
                    )
                )
            if mode not in (NETTING, HEDGING) or len(terms) < len(self.markets):
                continue
            digits = int(str(config["CurrencyDigits"]))
            group = _Group(
                name=name,
                digits=digits,
                zero=_fixed(0, digits),
                usd=self._usd(currency) / POWERS[digits],
                hedging=mode == HEDGING,
                leverage=int(str(config.get("DemoLeverage") or 0)),
                weight=3 if name.lower().startswith("real") else 1,
                terms=tuple(terms),
            )
            (hedging if group.hedging else netting).append(group)
        if not netting and not hedging:
            raise ValueError("no netting or hedging group converts every symbol's currencies")
        return netting, hedging

    def _session(self, slot: int) -> _Session:
        """The symbols in session for the whole half hour starting at `slot` (UTC ms)."""
        first = datetime.fromtimestamp(slot / 1000, UTC)
        last = datetime.fromtimestamp((slot + SLOT_MS - 1) / 1000, UTC)
        flags = tuple(
            in_session(m.symbol, first) and in_session(m.symbol, last) for m in self.markets
        )
        markets = tuple(m for m in self.markets if flags[m.index])
        return _Session(markets, tuple(accumulate(float(m.weight) for m in markets)), flags)

    def _timeline(self) -> list[tuple[float, float, int, float, _Session]]:
        """Per half hour of the range: (cumulative activity at its start and end, its start,
        ms per unit of activity, its session). Deal k of n lands where the cumulative activity
        reaches (k + u) / n of the total, u uniform in [0, 1)."""
        total_weight = sum(m.weight for m in self.markets)
        sessions: dict[tuple[int, int], _Session] = {}
        timeline, mass, moment = [], 0.0, self.start
        while moment < self.end:
            slot = moment // SLOT_MS * SLOT_MS
            stop = min(self.end, slot + SLOT_MS)
            key = ((slot // DAY_MS + 3) % 7, slot % DAY_MS)  # weekday (Monday 0), time of day
            if key not in sessions:
                sessions[key] = self._session(slot)
            session = sessions[key]
            hour = slot % DAY_MS // 3_600_000
            activity = HOURLY_ACTIVITY[hour] * sum(m.weight for m in session.markets) / total_weight
            added = (stop - moment) * activity
            timeline.append((mass, mass + added, moment, 1 / activity if activity else 0, session))
            mass += added
            moment = stop
        if not mass:
            raise ValueError("no symbol is in session in the time range")
        return timeline

    def _nights(self, symbol: Symbol) -> list[int]:
        """Swap nights before each day of the range (index 0: its first day), cumulated: a
        rollover at the end of each day the symbol trades, three nights on its Swap3Day (MT5
        numbering, Sunday 0), as Engine.rollover charges them, at UTC midnight."""
        nights = [0]
        for day in range(self.first_day, self.end_day + 1):
            weekday = (day + 3) % 7  # Monday 0; 1970-01-01 (day 0) was a Thursday
            charged = 0
            if trades_on(symbol, weekday):
                charged = 3 if (weekday + 1) % 7 == symbol.swap_3day else 1
            nights.append(nights[-1] + charged)
        return nights

    def _usd(self, currency: str) -> float:
        """USD per unit of `currency` at the start; 1 when no pair converts it. (This, lots'
        worth and margins are floats: they size volumes, they are never money.)"""
        legs = _legs(self.by_name, currency, "USD")
        return 1.0 if legs is None else _rate(legs, False) / RATE_ONE

    def _notional(self, market: _Market) -> float:
        """A lot's worth in USD at the start."""
        price = market.anchor / POWERS[market.digits]
        return max(1.0, price * float(market.per_price) * self._usd(market.symbol.profit))

    def _margins_at(self, leverage: int) -> list[float]:
        """A lot's initial margin per market, in USD, at the starting prices: as the engine
        computes it (Engine.margin_for), for sizing volumes."""
        margins = self._margins.get(leverage)
        if margins is None:
            margins = self._margins[leverage] = []
            for market in self.markets:
                symbol = market.symbol
                price = Decimal(market.anchor).scaleb(-market.digits)
                rate = self.engine.margin_rate(symbol, BUY)
                margin = self.engine.margin_for(symbol, Decimal(1), price, leverage, rate)
                margins.append(max(0.01, float(margin) * self._usd(symbol.margin)))
        return margins

    # -- the run -----------------------------------------------------------------------------

    def write(self, deals: int, accounts: int) -> None:
        """The deals, then the accounts' balances and open positions."""
        try:
            self._run(deals, accounts)
        finally:
            self.books.next_ticket = self.ticket
        for account in self.accounts:
            self._finish(account)

    def _run(self, deals: int, accounts: int) -> None:
        """Deposits open the accounts, spread over the first half of the deals; every other deal
        is an event of an open account, drawn by activity (heavy-tailed, as real books are)."""
        rng = self.rng
        weights = list(accumulate(min(200.0, rng.paretovariate(1.2)) for _ in range(accounts)))
        timeline, index = self.timeline, 0
        scale = timeline[-1][1] / deals
        opened = 0
        while self.written < deals:
            mass = (self.written + rng.random()) * scale
            while mass >= timeline[index][1] and index + 1 < len(timeline):
                index += 1
            begin, _, since, per_mass, session = timeline[index]
            now = min(self.end - 1, since + int((mass - begin) * per_mass))
            unopened = accounts - opened
            due = self.written >= opened * deals // (2 * accounts)
            if unopened and (due or deals - self.written <= unopened):
                self._open_account(now)
                opened += 1
                continue
            account = self.accounts[bisect_right(weights, rng.random() * weights[opened - 1])]
            self._event(account, now, session, deals - self.written - unopened)

    def _event(self, account: _Account, now: int, session: _Session, spare: int) -> None:
        """One thing the account does: a deposit or withdrawal, or a trade (`spare`: deals this
        event may write, at least one)."""
        rng = self.rng
        if account.balance < account.first_deposit * TOP_UP_BELOW:
            self._balance(account, now, self._deposit_amount(account), "Deposit")
        elif rng.random() < BALANCE_OPERATIONS:
            if rng.random() < 0.4 and account.balance > account.first_deposit:
                share = rng.randint(10, 50)  # percent of the balance
                self._balance(account, now, -(account.balance * share // 100), "Withdrawal")
            else:
                self._balance(account, now, self._deposit_amount(account), "Deposit")
        elif account.group.hedging:
            self._hedging(account, now, session, spare)
        else:
            self._netting(account, now, session)

    def _size(self, account: _Account, market: _Market) -> int:
        """A volume on the symbol's step taking part of the room left under the client's gearing
        and margin share (estimates at starting prices, in USD: real accounts mostly stay clear
        of their stop-out level); 0 when not even the minimum fits."""
        margins, notional = account.margins, self.notional
        balance = account.balance * account.group.usd
        held = used = 0.0
        for position in account.positions:
            held += position.volume * notional[position.market.index]
            used += position.volume * margins[position.market.index]
        lots = min(
            (balance * account.gearing - held / LOT) / notional[market.index],
            (balance * MARGIN_SHARE - used / LOT) / margins[market.index],
        )
        if lots * LOT < market.volume_min:
            return 0
        volume = int(lots * (0.1 + 0.9 * self.rng.random()) * LOT)
        volume = volume // market.volume_step * market.volume_step
        return min(market.volume_max, max(market.volume_min, volume))

    def _part(self, market: _Market, volume: int) -> int:
        """A part of `volume` to close, leaving at least the minimum open (and no more than a
        deal's maximum: a netting position can outgrow it, by adding)."""
        most = min(volume - market.volume_min, market.volume_max)
        return self.rng.randrange(market.volume_min, most + 1, market.volume_step)

    # -- accounts and money ------------------------------------------------------------------

    def _open_account(self, now: int) -> None:
        rng = self.rng
        netting, hedging = self.netting, self.hedging
        kinds = netting if netting and (not hedging or rng.random() < NETTING_SHARE) else hedging
        group = rng.choices(kinds, weights=[g.weight for g in kinds])[0]
        login = self.books.allocate_login()
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        self.books.users[login] = User(
            login=login,
            group=group.name,
            name=f"{first} {last}",
            password_main=PASSWORD,
            password_investor=PASSWORD,
            leverage=group.leverage or rng.choice(LEVERAGES),
            email=f"{first}.{last}.{login}@example.com".lower(),
            country=rng.choice(COUNTRIES),
            registration=now // 1000,
        )
        user = self.books.users[login]
        account = _Account(
            login=login,
            group=group,
            reason=rng.choices(REASONS, weights=REASON_WEIGHTS)[0],
            margins=self._margins_at(user.leverage),
            gearing=min(MAX_GEARING, math.exp(rng.gauss(math.log(MEDIAN_GEARING), 0.7))),
        )
        self.accounts.append(account)
        account.first_deposit = self._deposit_amount(account)
        self._balance(account, now, account.first_deposit, "Deposit")

    def _deposit_amount(self, account: _Account) -> int:
        major = self.rng.choices(DEPOSITS, weights=DEPOSIT_WEIGHTS)[0]
        return major * POWERS[account.group.digits]

    def _balance(self, account: _Account, now: int, amount: int, comment: str) -> None:
        """A balance operation (deal action 2), as trade/balance books it."""
        self.ticket = ticket = self.ticket + 1
        text = _fixed(amount, account.group.digits)
        self.books.add_deal(Deal(ticket, account.login, DEAL_BALANCE, text, comment, now))
        account.balance += amount
        self.written += 1

    def _finish(self, account: _Account) -> None:
        """The account's balance, and its open positions with the swaps of the nights since
        their last deal, into the books."""
        digits = account.group.digits
        self.books.users[account.login].balance = _fixed(account.balance, digits)
        for position in account.positions:
            self._accrue(account, position, self.end_day)
            self.books.positions[position.ticket] = Position(
                position=position.ticket,
                login=account.login,
                symbol=position.market.name,
                action=position.action,
                volume=position.volume,
                price_open=position.open_text,
                storage=_fixed(position.storage, digits),
                time_create_msc=position.created,
                time_update_msc=position.updated,
                reason=account.reason,
            )

    def _accrue(self, account: _Account, position: _Position, day: int) -> None:
        """The swaps of the rollovers since the position's last accrual, at today's price and
        rate (the engine charges each night at that night's; the history keeps no such prices):
        per night, lots x swap x point x contract size in points mode, lots x contract size x
        price x swap / 100 / 360 in interest mode, in the profit currency."""
        market = position.market
        nights = self.nights[market.index]
        count = nights[day - self.first_day] - nights[position.accrued_day - self.first_day]
        position.accrued_day = day
        factor = market.swap_factors[position.action]
        if not count or not factor:
            return
        amount = position.volume * count * factor * POWERS[account.group.digits]
        if market.swap_interest:
            amount *= market.bid if position.action == BUY else market.bid + market.spread
        amount *= _rate(account.group.terms[market.index].profit_legs, factor < 0)
        position.storage += _divide_half_up(amount, market.swap_unit)

    # -- trading -----------------------------------------------------------------------------

    def _netting(self, account: _Account, now: int, session: _Session) -> None:
        """Act on an open position (close it, part of it, reverse or add to it), or trade a
        symbol, which opens, adds to, reduces or reverses per the netting rules."""
        rng = self.rng
        tradable = [p for p in account.positions if session.open[p.market.index]]
        full = len(account.positions) >= MAX_NETTING_POSITIONS
        if tradable and (full or rng.random() < CLOSE_SHARE):
            position = tradable[int(rng.random() * len(tradable))]
            market, volume = position.market, position.volume
            opposite = SELL if position.action == BUY else BUY
            choice, size = rng.random(), self._size(account, market)
            fits = 0 < size <= market.volume_max - volume
            if choice < 0.25 and volume >= 2 * market.volume_min:
                self._netting_fill(account, market, opposite, self._part(market, volume), now)
            elif choice < 0.45 and fits:
                self._netting_fill(account, market, opposite, volume + size, now)  # reversal
            elif choice < 0.6 and fits:
                self._netting_fill(account, market, position.action, size, now)
            else:
                self._netting_fill(account, market, opposite, min(volume, market.volume_max), now)
            return
        market = session.draw(rng)
        size = self._size(account, market)
        if not size:  # no margin left for it: the client funds the account
            self._balance(account, now, self._deposit_amount(account), "Deposit")
            return
        action = BUY if rng.random() < 0.5 else SELL
        self._netting_fill(account, market, action, size, now)

    def _quote(self, account: _Account, market: _Market, action: int, now: int) -> int:
        """The client's price in points: the market moved to `now`, plus the dealer's markup."""
        market.move(self.rng, now)
        markup = account.group.terms[market.index].markup
        if action == BUY:
            return market.bid + market.spread + markup
        return max(market.step, market.bid - markup)

    def _netting_fill(
        self, account: _Account, market: _Market, action: int, volume: int, now: int
    ) -> None:
        """As Engine._netting_fill: IN opens or adds (at the volume-weighted price), an opposite
        deal is an OUT up to the position's volume and an INOUT beyond it (the position keeps
        its id and reopens the rest at the deal price)."""
        price = self._quote(account, market, action, now)
        self.ticket = order = self.ticket + 1
        position = next((p for p in account.positions if p.market is market), None)
        if position is None:
            position = self._open(account, market, action, volume, price, order, now)
            self._book(account, position, action, ENTRY_IN, volume, 0, price * SUB, order, now)
        elif position.action == action:
            total = position.volume + volume
            position.open = _divide_half_even(
                position.open * position.volume + price * SUB * volume, total
            )
            position.open_text = market.sub_price(position.open)
            position.volume, position.updated = total, now
            self._book(account, position, action, ENTRY_IN, volume, 0, price * SUB, order, now)
        else:
            closed = min(volume, position.volume)
            entry = ENTRY_INOUT if volume > position.volume else ENTRY_OUT
            self._book(account, position, action, entry, volume, closed, price * SUB, order, now)
            if volume > position.volume:
                position.action, position.volume = action, volume - position.volume
                position.open, position.open_text = price * SUB, market.price(price)
                position.storage, position.updated = 0, now
            else:
                self._reduce(account, position, closed, now)

    def _hedging(self, account: _Account, now: int, session: _Session, spare: int) -> None:
        """Close a position (whole, in part, or by an opposite one) or open one, sometimes
        against an open position of the same symbol."""
        rng = self.rng
        tradable = [p for p in account.positions if session.open[p.market.index]]
        full = len(account.positions) >= MAX_HEDGING_POSITIONS
        if tradable and (full or rng.random() < CLOSE_SHARE):
            if spare >= 2 and rng.random() < CLOSE_BY_SHARE:
                pair = next(
                    (
                        (first, second)
                        for first in tradable
                        for second in tradable
                        if second.market is first.market and second.action != first.action
                    ),
                    None,
                )
                if pair is not None:
                    self._close_by(account, *pair, now)
                    return
            position = tradable[int(rng.random() * len(tradable))]
            volume = position.volume
            if rng.random() < 0.25 and volume >= 2 * position.market.volume_min:
                volume = self._part(position.market, volume)
            self._hedging_close(account, position, volume, now)
            return
        if tradable and rng.random() < HEDGE_SHARE:
            against = tradable[int(rng.random() * len(tradable))]
            market, action = against.market, SELL if against.action == BUY else BUY
        else:
            market, action = session.draw(rng), BUY if rng.random() < 0.5 else SELL
        volume = self._size(account, market)
        if not volume:  # no margin left for it: the client funds the account
            self._balance(account, now, self._deposit_amount(account), "Deposit")
            return
        price = self._quote(account, market, action, now)
        self.ticket = order = self.ticket + 1
        position = self._open(account, market, action, volume, price, order, now)
        self._book(account, position, action, ENTRY_IN, volume, 0, price * SUB, order, now)

    def _hedging_close(self, account: _Account, position: _Position, volume: int, now: int) -> None:
        """An OUT deal naming the position; a whole close is sometimes its SL or TP."""
        market = position.market
        action = SELL if position.action == BUY else BUY
        price = self._quote(account, market, action, now)
        reason, comment = account.reason, ""
        if volume == position.volume and self.rng.random() < STOPS_SHARE:
            gain = (price * SUB - position.open) * (1 if position.action == BUY else -1) > 0
            reason = REASON_TP if gain else REASON_SL
            comment = f"[{'tp' if gain else 'sl'} {market.price(price)}]"
        self.ticket = order = self.ticket + 1
        self._book(
            account,
            position,
            action,
            ENTRY_OUT,
            volume,
            volume,
            price * SUB,
            order,
            now,
            reason=reason,
            comment=comment,
        )
        self._reduce(account, position, volume, now)

    def _close_by(self, account: _Account, first: _Position, second: _Position, now: int) -> None:
        """As Engine.close_by: two OUT_BY deals at the second position's open price, the first
        carrying the pair's profit, the second closed at its own open price (zero profit); each
        names the other position."""
        market = first.market
        volume = min(first.volume, second.volume)
        market.move(self.rng, now)
        self.ticket = order = self.ticket + 1
        for position, other in ((first, second), (second, first)):
            action = SELL if position.action == BUY else BUY
            self._book(
                account, position, action, ENTRY_OUT_BY, volume, volume, second.open, order, now,
                by=other.ticket, reason=REASON_CLIENT,
            )  # fmt: skip
        self._reduce(account, first, volume, now)
        self._reduce(account, second, volume, now)

    def _open(
        self,
        account: _Account,
        market: _Market,
        action: int,
        volume: int,
        price: int,
        order: int,
        now: int,
    ) -> _Position:
        position = _Position(
            ticket=order,
            market=market,
            action=action,
            volume=volume,
            open=price * SUB,
            open_text=market.price(price),
            created=now,
            accrued_day=now // DAY_MS,
            updated=now,
        )
        account.positions.append(position)
        return position

    @staticmethod
    def _reduce(account: _Account, position: _Position, closed: int, now: int) -> None:
        position.volume -= closed
        position.updated = now
        if not position.volume:
            account.positions.remove(position)

    def _book(
        self,
        account: _Account,
        position: _Position,
        action: int,
        entry: int,
        volume: int,
        closed: int,
        close: int,
        order: int,
        now: int,
        by: int = 0,
        reason: int = -1,
        comment: str = "",
    ) -> None:
        """One trade deal at `close` (sub-points): realises the closed part's profit and swaps,
        charges the commission, and moves the balance by all of them."""
        group, market = account.group, position.market
        terms = group.terms[market.index]
        digits, zero = group.digits, group.zero
        profit_text = storage_text = zero
        profit = storage = 0
        raw_text = "0"
        rate = RATE_ONE
        if closed:
            self._accrue(account, position, now // DAY_MS)
            if position.storage:
                storage = _divide_half_up(position.storage * closed, position.volume)
                position.storage -= storage
                storage_text = _fixed(storage, digits)
            move = close - position.open if position.action == BUY else position.open - close
            raw = move * closed * market.profit_factor
            if terms.profit_legs:
                rate = _rate(terms.profit_legs, raw < 0)
            if raw:
                profit = _round_half_up(raw * rate, market.profit_places + RATE_PLACES - digits)
                profit_text = _fixed(profit, digits)
                raw_text = _trimmed(raw, market.profit_places, 2)
        elif terms.profit_legs:
            rate = _rate(terms.profit_legs, False)
        bid, ask = market.bid, market.bid + market.spread
        bid_text, ask_text = market.price(bid), market.price(ask)
        gateway, gateway_price = "", "0"
        if terms.gateway:
            gateway, gateway_price = terms.gateway, ask_text if action == BUY else bid_text
        self.ticket += 1
        deal = Deal(  # in DEAL_LAYOUT's order
            self.ticket,
            account.login,
            action,
            profit_text,
            comment,
            now,
            entry,
            market.name,
            volume,
            closed,
            market.sub_price(close),
            position.open_text,
            position.ticket,
            order,
            storage_text,
            zero,
            raw_text,
            market.contract_size,
            _rate_text(rate) if terms.profit_legs else "1",
            _rate_text(_rate(terms.margin_legs, True)) if terms.margin_legs else "1",
            account.reason if reason < 0 else reason,
            bid_text,
            ask_text,
            market.digits,
            gateway,
            gateway_price,
            by,
        )
        self.books.add_deal(deal)
        if terms.commissions is None:
            self.books.next_ticket = self.ticket  # the engine may book deals of its own
            self.engine._charge_commissions(deal, market.symbol)
            self.ticket = self.books.next_ticket
            charged = _scaled(Decimal(deal.commission), digits) + _scaled(Decimal(deal.fee), digits)
        else:
            charged = 0
            for entry_mode, per_lot, per_deal in terms.commissions:
                part = charged_volume(entry_mode, deal)
                if part:
                    amount = per_lot * part + per_deal * LOT
                    charged -= _round_half_up(amount, RATE_PLACES + 4 - digits)
            if charged:
                deal.commission = _fixed(charged, digits)
        account.balance += profit + storage + charged
        self.written += 1
