"""A profile from an account's metrics: what kind of flow it is, why, and the book it suggests.

Rules are tried in order; the first whose every condition holds names the profile, and its
conditions (metric, value, threshold) are the explanation. Earlier rules are the more specific
and the more costly to miss: latency arbitrage before scalping (an arbitrageur also holds
briefly), hedging across accounts before anything directional. Thresholds are `Thresholds`
fields; docs/risk-profiling.md gives the reasoning behind each default.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from domain.profiling.metrics import AccountMetrics


class Profile(StrEnum):
    INSUFFICIENT_DATA = "insufficient_data"
    HEDGING = "hedging"
    LATENCY_ARBITRAGE = "latency_arbitrage"
    NEWS_TRADING = "news_trading"
    SCALPING = "scalping"
    GRID_EA = "grid_ea"
    PROFITABLE_DIRECTIONAL = "profitable_directional"
    LOSING_DIRECTIONAL = "losing_directional"


class Book(StrEnum):
    A = "A"  # passed to a liquidity provider
    B = "B"  # internalised: the broker is the counterparty
    HYBRID = "hybrid"  # a share passed on, the rest internalised


@dataclass(frozen=True)
class Thresholds:
    # Fewer closed trades than this say too little: a win rate over 10 trades has a ±30 %
    # confidence interval. New accounts stay in their group's default book.
    min_trades: int = 10
    # Latency arbitrage: most entries are in profit against the broker's own quote one second
    # later. Without a faster feed that needs a move of more than the spread within a second,
    # which a liquid symbol makes on a few per cent of entries; half is far beyond chance.
    latency_stale_share: Decimal = Decimal("0.5")
    # ...and held only until the quote catches up: seconds, not minutes.
    latency_max_median_hold_s: Decimal = Decimal(30)
    # Hedging across one person's accounts: most entries mirrored (opposite side, same symbol,
    # size within 10 %, within a minute) on a sibling account. Chance pairings between two
    # independent traders of one person are rare; a majority is a pattern.
    hedge_share: Decimal = Decimal("0.6")
    # News trading: most entries within 15 s after a price jump (a move of 5 spreads or more
    # between two quotes: a release). Jumps fill well under 1 % of a trading day's seconds, so
    # chance entries after one are rare.
    news_after_jump_share: Decimal = Decimal("0.5")
    # Scalping: half the trades closed within 5 minutes (the usual "minimum holding time" in
    # brokers' scalping clauses is 1-5 minutes), and trading all day long.
    scalp_max_median_hold_s: Decimal = Decimal(300)
    scalp_min_trades_per_day: Decimal = Decimal(20)
    # Grid / martingale EA: a ladder of positions open at once, of one fixed size. Manual
    # traders rarely hold four positions of one size at once.
    grid_min_open: int = 4
    grid_max_lots_cv: Decimal = Decimal("0.05")
    # Profitable directional flow: gross profit at least 1.2 times gross loss and a positive
    # net result after costs (§5.1 of the domain reference: a profit factor above 1 held over
    # many trades is skill, above 2 is toxic-looking).
    profitable_min_profit_factor: Decimal = Decimal("1.2")
    # A flow whose average entry is this large goes to the A book whatever its profile (§5.2).
    large_lots: Decimal = Decimal(10)
    # A profitable directional flow with a profit factor above this is passed on whole.
    strong_profit_factor: Decimal = Decimal("1.5")
    hybrid_share: Decimal = Decimal("0.5")  # the A share of a hybrid suggestion


@dataclass(frozen=True)
class Condition:
    metric: str
    value: Decimal | int | None
    comparison: str  # ">=" or "<=" or ">"
    threshold: Decimal | int

    @property
    def met(self) -> bool:
        if self.value is None:
            return False
        if self.comparison == ">=":
            return self.value >= self.threshold
        if self.comparison == "<=":
            return self.value <= self.threshold
        return self.value > self.threshold

    def __str__(self) -> str:
        shown = "n/a" if self.value is None else _show(self.value)
        mark = "yes" if self.met else "no"
        return f"{self.metric} = {shown} {self.comparison} {_show(self.threshold)}: {mark}"


def _show(value: Decimal | int) -> str:
    if isinstance(value, int):
        return str(value)
    return f"{value.quantize(Decimal('0.001')).normalize():f}"


@dataclass(frozen=True)
class Classification:
    login: int
    profile: Profile
    book: Book
    a_share: Decimal  # the share passed to the A book: 1 for A, 0 for B
    conditions: tuple[Condition, ...]
    book_reason: str

    @property
    def explanation(self) -> str:
        because = "; ".join(str(c) for c in self.conditions)
        return f"{self.profile.value} ({because}) -> {self.book.value}: {self.book_reason}"


def _rules(m: AccountMetrics, t: Thresholds) -> list[tuple[Profile, tuple[Condition, ...]]]:
    return [
        (
            Profile.HEDGING,
            (Condition("hedge_share", m.hedge_share, ">=", t.hedge_share),),
        ),
        (
            Profile.LATENCY_ARBITRAGE,
            (
                Condition("stale_quote_share", m.stale_quote_share, ">=", t.latency_stale_share),
                Condition("hold_median_s", m.hold_median_s, "<=", t.latency_max_median_hold_s),
            ),
        ),
        (
            Profile.NEWS_TRADING,
            (Condition("after_jump_share", m.after_jump_share, ">=", t.news_after_jump_share),),
        ),
        (
            Profile.SCALPING,
            (
                Condition("hold_median_s", m.hold_median_s, "<=", t.scalp_max_median_hold_s),
                Condition("trades_per_day", m.trades_per_day, ">=", t.scalp_min_trades_per_day),
            ),
        ),
        (
            Profile.GRID_EA,
            (
                Condition("max_open", m.max_open, ">=", t.grid_min_open),
                Condition("lots_cv", m.lots_cv, "<=", t.grid_max_lots_cv),
            ),
        ),
        (
            Profile.PROFITABLE_DIRECTIONAL,
            (
                Condition("profit_factor", m.profit_factor, ">=", t.profitable_min_profit_factor),
                Condition("net_profit", m.net_profit, ">", Decimal(0)),
            ),
        ),
    ]


def _profitable(m: AccountMetrics, t: Thresholds) -> bool:
    return m.net_profit > 0 and (
        m.profit_factor is None or m.profit_factor >= t.profitable_min_profit_factor
    )


def _book(profile: Profile, m: AccountMetrics, t: Thresholds) -> tuple[Book, str]:
    if m.lots_mean is not None and m.lots_mean >= t.large_lots:
        return Book.A, f"average entry {_show(m.lots_mean)} lots >= {_show(t.large_lots)}"
    match profile:
        case Profile.LATENCY_ARBITRAGE:
            return Book.A, "toxic: wins against the broker's stale quotes"
        case Profile.NEWS_TRADING if _profitable(m, t):
            return Book.A, "profitable flow on releases"
        case Profile.NEWS_TRADING:
            return Book.HYBRID, "releases move prices fast: pass a share on"
        case Profile.SCALPING if _profitable(m, t):
            return Book.A, "profitable short-hold flow"
        case Profile.SCALPING:
            return Book.B, "losing short-hold flow"
        case Profile.PROFITABLE_DIRECTIONAL if (
            m.profit_factor is None or m.profit_factor >= t.strong_profit_factor
        ):
            return Book.A, "consistently profitable"
        case Profile.PROFITABLE_DIRECTIONAL:
            return Book.HYBRID, "profitable, not strongly"
        case Profile.GRID_EA if _profitable(m, t):
            return Book.HYBRID, "profitable grid: pass a share on"
        case Profile.HEDGING:
            return Book.B, "no net market risk across the pair; review for bonus or IB abuse"
        case _:
            return Book.B, "losing or unproven flow stays internalised"


def classify(m: AccountMetrics, thresholds: Thresholds = Thresholds()) -> Classification:
    """The account's profile, the conditions that made it, and the suggested book."""
    t = thresholds
    if m.trades < t.min_trades:
        profile = Profile.INSUFFICIENT_DATA
        conditions: tuple[Condition, ...] = (Condition("trades", m.trades, "<=", t.min_trades - 1),)
    else:
        profile, conditions = Profile.LOSING_DIRECTIONAL, ()
        for candidate, checks in _rules(m, t):
            if all(c.met for c in checks):
                profile, conditions = candidate, checks
                break
        if profile is Profile.LOSING_DIRECTIONAL:
            conditions = (
                Condition("profit_factor", m.profit_factor, "<=", t.profitable_min_profit_factor),
                Condition("net_profit", m.net_profit, "<=", Decimal(0)),
            )
    book, reason = (
        _book(profile, m, t)
        if profile is not Profile.INSUFFICIENT_DATA
        else (
            Book.B,
            "too few trades: the group's default book",
        )
    )
    share = {Book.A: Decimal(1), Book.B: Decimal(0), Book.HYBRID: t.hybrid_share}[book]
    return Classification(m.login, profile, book, share, conditions, reason)
