"""Per-account trading metrics from MT5 deals and the broker's own price history.

Inputs are what a back office can know: deals as the MT5 Web API gives them (`Deal`, `Login`,
`TimeMsc`, `Symbol`, `Action`, `Entry`, `Volume`, `Price`, `Profit`, `Commission`, `Storage`,
`Fee`, `PositionID`, `Reason`), the broker's quotes (`tick/history`: time, bid, ask) and which
accounts belong to one person (the back office's own client records). Pure: no clock, no I/O;
times are the server's milliseconds, as MT5 writes them (deals and ticks on the same clock).

Definitions (docs/risk-profiling.md has the reasons):

* a *trade* is a closing deal (Entry OUT or OUT_BY) against the position it closes; its hold is
  the close time minus the position's first entry; it *wins* when its `Profit` (the price
  result, before commission and swap) is above zero, as MT5's own reports count winners;
* net P&L adds every trade deal's Profit, Commission, Storage and Fee;
* profit factor = gross profit / gross loss over trades (None when nothing was lost);
* the *stale-quote* test of an entry: the broker's own quote `markout_ms` after the entry would
  have closed it at a profit (a buy's later bid above its price, a sell's later ask below it),
  i.e. the price moved more than the spread in the client's favour within a moment: what a
  client trading on a faster feed than the broker's gets, and what others rarely do;
* a *price jump* is a change of the broker's mid between two consecutive ticks of at least
  `jump_spreads` spreads.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

BUY, SELL = 0, 1
ENTRY_IN, ENTRY_OUT, ENTRY_INOUT, ENTRY_OUT_BY = 0, 1, 2, 3
REASON_EXPERT = 1  # server enum: sent by an Expert Advisor
VOLUME_PER_LOT = 10_000  # `Volume` is in 1/10000 lot
MS_PER_DAY = 86_400_000
ZERO = Decimal(0)


@dataclass(frozen=True)
class TradeDeal:
    """A trade deal (Action 0 buy / 1 sell) as MT5 records it."""

    deal: int
    login: int
    time_msc: int
    symbol: str
    action: int
    entry: int
    volume: int
    price: Decimal
    profit: Decimal
    position_id: int
    commission: Decimal = ZERO
    storage: Decimal = ZERO
    fee: Decimal = ZERO
    reason: int = 0

    @classmethod
    def from_record(cls, record: Mapping[str, object]) -> TradeDeal | None:
        """From a Web API deal record (every field a string); None for balance and other
        non-trade deals."""
        action = int(str(record.get("Action", "2")))
        if action not in (BUY, SELL):
            return None

        def money(name: str) -> Decimal:
            return Decimal(str(record.get(name) or "0"))

        return cls(
            deal=int(str(record["Deal"])),
            login=int(str(record["Login"])),
            time_msc=int(str(record["TimeMsc"])),
            symbol=str(record.get("Symbol", "")),
            action=action,
            entry=int(str(record.get("Entry", "0"))),
            volume=int(str(record.get("Volume", "0"))),
            price=money("Price"),
            profit=money("Profit"),
            position_id=int(str(record.get("PositionID", "0"))),
            commission=money("Commission"),
            storage=money("Storage"),
            fee=money("Fee"),
            reason=int(str(record.get("Reason", "0"))),
        )


@dataclass(frozen=True)
class Tick:
    time_msc: int
    bid: Decimal
    ask: Decimal

    @property
    def mid(self) -> Decimal:
        return (self.bid + self.ask) / 2

    @property
    def spread(self) -> Decimal:
        return self.ask - self.bid


class QuoteTape:
    """One symbol's broker quotes in time order, with its price jumps."""

    def __init__(self, ticks: Iterable[Tick], jump_spreads: Decimal) -> None:
        self.ticks = sorted(ticks, key=lambda t: t.time_msc)
        self.times = [t.time_msc for t in self.ticks]
        self.jumps: list[int] = []
        for before, after in zip(self.ticks, self.ticks[1:], strict=False):
            spread = after.spread
            if spread > 0 and abs(after.mid - before.mid) >= jump_spreads * spread:
                self.jumps.append(after.time_msc)

    def at(self, time_msc: int) -> Tick | None:
        """The quote in force at `time_msc` (the last tick at or before it)."""
        index = bisect_right(self.times, time_msc) - 1
        return self.ticks[index] if index >= 0 else None

    def jumps_between(self, since: int, until: int) -> int:
        """Jumps with since <= time <= until."""
        return bisect_right(self.jumps, until) - bisect_left(self.jumps, since)


@dataclass(frozen=True)
class Trade:
    """A closing deal with its position's entry."""

    symbol: str
    action: int  # the position's direction
    opened_msc: int
    closed_msc: int
    volume: int
    profit: Decimal

    @property
    def hold_ms(self) -> int:
        return self.closed_msc - self.opened_msc


@dataclass(frozen=True)
class Settings:
    """The measuring choices (not the classification thresholds): see docs/risk-profiling.md."""

    markout_ms: int = 1_000
    jump_spreads: Decimal = Decimal(5)
    after_jump_ms: int = 15_000
    around_jump_ms: int = 60_000
    hedge_window_ms: int = 60_000
    hedge_volume_tolerance: Decimal = Decimal("0.1")
    short_hold_ms: int = 60_000


@dataclass(frozen=True)
class AccountMetrics:
    login: int
    trades: int
    entries: int
    net_profit: Decimal
    gross_profit: Decimal
    gross_loss: Decimal
    win_rate: Decimal | None
    profit_factor: Decimal | None
    hold_mean_s: Decimal | None
    hold_p10_s: Decimal | None
    hold_median_s: Decimal | None
    hold_p90_s: Decimal | None
    short_hold_share: Decimal | None  # trades held under `short_hold_ms`
    short_win_share: Decimal | None  # winning trades held under `short_hold_ms`, of all trades
    trades_per_day: Decimal | None
    lots_mean: Decimal | None
    lots_cv: Decimal | None  # coefficient of variation of entry sizes
    max_open: int
    expert_share: Decimal | None
    stale_quote_share: Decimal | None  # entries the broker's quote turned profitable in markout_ms
    markout_spreads: Decimal | None  # mean move in the client's favour after markout_ms, in spreads
    after_jump_share: Decimal | None  # entries within after_jump_ms after a jump
    around_jump_share: Decimal | None  # entries within around_jump_ms of a jump, either side
    hedge_share: Decimal | None  # entries mirrored on another account of the same person
    symbols: tuple[str, ...] = field(default=())


def _share(count: int, total: int) -> Decimal | None:
    return Decimal(count) / Decimal(total) if total else None


def _percentile(ordered: Sequence[int], fraction: Decimal) -> Decimal | None:
    """Nearest-rank percentile of sorted milliseconds, in seconds."""
    if not ordered:
        return None
    rank = max(1, int((fraction * len(ordered)).to_integral_value(rounding="ROUND_CEILING")))
    return Decimal(ordered[rank - 1]) / 1000


def trades_of(deals: Iterable[TradeDeal]) -> list[Trade]:
    """Closing deals matched to their positions' first entry, in order of closing."""
    ordered = sorted(deals, key=lambda d: (d.time_msc, d.deal))
    opened: dict[int, TradeDeal] = {}
    trades: list[Trade] = []
    for deal in ordered:
        if deal.entry == ENTRY_IN:
            opened.setdefault(deal.position_id, deal)
        elif deal.entry in (ENTRY_OUT, ENTRY_OUT_BY, ENTRY_INOUT):
            first = opened.get(deal.position_id)
            if first is not None:
                trades.append(
                    Trade(
                        deal.symbol,
                        first.action,
                        first.time_msc,
                        deal.time_msc,
                        deal.volume,
                        deal.profit,
                    )
                )
            if deal.entry == ENTRY_INOUT:  # a netting reversal: the remainder opens anew here
                opened[deal.position_id] = deal
    return trades


def _max_open(deals: Sequence[TradeDeal]) -> int:
    """The most positions open at once (a position opens at its first entry, closes when its
    volume is gone)."""
    events: list[tuple[int, int, int]] = []
    volume: dict[int, int] = defaultdict(int)
    for deal in sorted(deals, key=lambda d: (d.time_msc, d.deal)):
        before = volume[deal.position_id]
        if deal.entry == ENTRY_IN:
            volume[deal.position_id] += deal.volume
        elif deal.entry in (ENTRY_OUT, ENTRY_OUT_BY):
            volume[deal.position_id] = max(0, before - deal.volume)
        after = volume[deal.position_id]
        if before == 0 and after > 0:
            events.append((deal.time_msc, 1, deal.deal))
        elif before > 0 and after == 0:
            events.append((deal.time_msc, -1, deal.deal))
    open_now = highest = 0
    for _, change, _ in sorted(events, key=lambda e: (e[0], e[1], e[2])):
        open_now += change
        highest = max(highest, open_now)
    return highest


def _mirrored(entry: TradeDeal, others: Sequence[TradeDeal], settings: Settings) -> bool:
    for other in others:
        if (
            other.symbol == entry.symbol
            and other.action != entry.action
            and abs(other.time_msc - entry.time_msc) <= settings.hedge_window_ms
            and abs(Decimal(other.volume - entry.volume))
            <= settings.hedge_volume_tolerance * Decimal(entry.volume)
        ):
            return True
    return False


def account_metrics(
    login: int,
    deals: Sequence[TradeDeal],
    tapes: Mapping[str, QuoteTape],
    siblings: Sequence[TradeDeal] = (),
    settings: Settings = Settings(),
) -> AccountMetrics:
    """The metrics of one account from its trade deals; `siblings` are the entries of the other
    accounts of the same person (for the cross-account hedging share)."""
    trades = trades_of(deals)
    entries = sorted((d for d in deals if d.entry == ENTRY_IN), key=lambda d: (d.time_msc, d.deal))
    gross_profit = sum((t.profit for t in trades if t.profit > 0), ZERO)
    gross_loss = -sum((t.profit for t in trades if t.profit < 0), ZERO)
    wins = sum(1 for t in trades if t.profit > 0)
    holds = sorted(t.hold_ms for t in trades)
    short = [t for t in trades if t.hold_ms < settings.short_hold_ms]
    net = sum((d.profit + d.commission + d.storage + d.fee for d in deals), ZERO)

    span_ms = 0
    if deals:
        times = [d.time_msc for d in deals]
        span_ms = max(max(times) - min(times), 3_600_000)  # at least an hour: no inflated rates
    lots = [Decimal(d.volume) / VOLUME_PER_LOT for d in entries]
    lots_mean = sum(lots, ZERO) / len(lots) if lots else None
    lots_cv: Decimal | None = None
    if lots_mean:
        variance = sum(((x - lots_mean) ** 2 for x in lots), ZERO) / len(lots)
        lots_cv = variance.sqrt() / lots_mean

    stale = measured = after_jump = around_jump = 0
    markout_sum = ZERO
    for entry in entries:
        tape = tapes.get(entry.symbol)
        if tape is None:
            continue
        at_entry, later = tape.at(entry.time_msc), tape.at(entry.time_msc + settings.markout_ms)
        if at_entry is not None and later is not None and at_entry.spread > 0:
            measured += 1
            if entry.action == BUY:
                stale += later.bid > entry.price
                markout_sum += (later.mid - at_entry.mid) / at_entry.spread
            else:
                stale += later.ask < entry.price
                markout_sum += (at_entry.mid - later.mid) / at_entry.spread
            after_jump += (
                tape.jumps_between(entry.time_msc - settings.after_jump_ms, entry.time_msc) > 0
            )
            around_jump += (
                tape.jumps_between(
                    entry.time_msc - settings.around_jump_ms,
                    entry.time_msc + settings.around_jump_ms,
                )
                > 0
            )
    sibling_entries = [d for d in siblings if d.entry == ENTRY_IN]
    hedged = sum(1 for e in entries if _mirrored(e, sibling_entries, settings))

    return AccountMetrics(
        login=login,
        trades=len(trades),
        entries=len(entries),
        net_profit=net,
        gross_profit=gross_profit,
        gross_loss=gross_loss,
        win_rate=_share(wins, len(trades)),
        profit_factor=gross_profit / gross_loss if gross_loss > 0 else None,
        hold_mean_s=Decimal(sum(holds)) / len(holds) / 1000 if holds else None,
        hold_p10_s=_percentile(holds, Decimal("0.1")),
        hold_median_s=_percentile(holds, Decimal("0.5")),
        hold_p90_s=_percentile(holds, Decimal("0.9")),
        short_hold_share=_share(len(short), len(trades)),
        short_win_share=_share(sum(1 for t in short if t.profit > 0), len(trades)),
        trades_per_day=Decimal(len(trades)) * MS_PER_DAY / span_ms if span_ms else None,
        lots_mean=lots_mean,
        lots_cv=lots_cv,
        max_open=_max_open(deals),
        expert_share=_share(sum(1 for d in entries if d.reason == REASON_EXPERT), len(entries)),
        stale_quote_share=_share(stale, measured),
        markout_spreads=markout_sum / measured if measured else None,
        after_jump_share=_share(after_jump, measured),
        around_jump_share=_share(around_jump, measured),
        hedge_share=_share(hedged, len(entries)) if siblings else Decimal(0) if entries else None,
        symbols=tuple(sorted({d.symbol for d in deals})),
    )


def profile_accounts(
    deals: Iterable[TradeDeal],
    tapes: Mapping[str, QuoteTape],
    owners: Mapping[int, str] | None = None,
    since_msc: int | None = None,
    until_msc: int | None = None,
    settings: Settings = Settings(),
) -> dict[int, AccountMetrics]:
    """Metrics of every account with deals in the window [since, until] (a rolling window is
    the caller's choice of bounds); `owners` maps a login to its person (accounts of one owner
    are checked for mirrored entries)."""
    by_login: dict[int, list[TradeDeal]] = defaultdict(list)
    for deal in deals:
        if since_msc is not None and deal.time_msc < since_msc:
            continue
        if until_msc is not None and deal.time_msc > until_msc:
            continue
        by_login[deal.login].append(deal)
    owners = owners or {}
    accounts_of: dict[str, list[int]] = defaultdict(list)
    for login in by_login:
        if login in owners:
            accounts_of[owners[login]].append(login)
    result: dict[int, AccountMetrics] = {}
    for login, own in by_login.items():
        siblings: list[TradeDeal] = []
        if login in owners:
            for other in accounts_of[owners[login]]:
                if other != login:
                    siblings += by_login[other]
        result[login] = account_metrics(login, own, tapes, siblings, settings)
    return result
