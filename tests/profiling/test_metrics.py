"""Profiling metrics on small hand-computed cases, and their invariants."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.profiling import QuoteTape, Tick, TradeDeal, account_metrics, profile_accounts

EURUSD = "EURUSD"
D = Decimal


def deal(
    ticket: int,
    time_msc: int,
    action: int,
    entry: int,
    position: int,
    *,
    login: int = 1,
    price: str = "1.10000",
    profit: str = "0",
    volume: int = 10_000,
    commission: str = "0",
    reason: int = 0,
) -> TradeDeal:
    return TradeDeal(
        deal=ticket,
        login=login,
        time_msc=time_msc,
        symbol=EURUSD,
        action=action,
        entry=entry,
        volume=volume,
        price=D(price),
        profit=D(profit),
        position_id=position,
        commission=D(commission),
        reason=reason,
    )


BUY, SELL, IN, OUT = 0, 1, 0, 1

# Three round trips: +50 held 30 s, -20 held 300 s, +30 held 2 s (2 lots, commission 7 a side).
THREE = [
    deal(1, 0, BUY, IN, 10),
    deal(2, 30_000, SELL, OUT, 10, profit="50"),
    deal(3, 100_000, SELL, IN, 11, price="1.10100"),
    deal(4, 400_000, BUY, OUT, 11, profit="-20"),
    deal(5, 500_000, BUY, IN, 12, volume=20_000, commission="-7"),
    deal(6, 502_000, SELL, OUT, 12, profit="30", volume=20_000, commission="-7"),
]


def test_win_rate_profit_factor_and_holding_times_by_hand() -> None:
    m = account_metrics(1, THREE, {})
    assert (m.trades, m.entries) == (3, 3)
    assert m.win_rate == D(2) / 3
    assert (m.gross_profit, m.gross_loss, m.profit_factor) == (D(80), D(20), D(4))
    assert m.net_profit == D(46)  # 50 - 20 + 30 - 14 commission
    # Holds 2, 30 and 300 s: nearest-rank percentiles.
    assert (m.hold_p10_s, m.hold_median_s, m.hold_p90_s) == (D(2), D(30), D(300))
    assert m.hold_mean_s == D(332) / 3
    assert m.short_hold_share == D(2) / 3 and m.short_win_share == D(2) / 3
    assert m.lots_mean == D(4) / 3
    assert m.lots_cv is not None and abs(m.lots_cv - D("0.35355")) < D("0.0001")
    assert m.max_open == 1
    assert m.trades_per_day == D(3) * 86_400_000 / 3_600_000  # the span counts at least 1 h


def test_no_loss_has_no_profit_factor_and_no_trade_no_rates() -> None:
    m = account_metrics(1, THREE[:2], {})
    assert m.profit_factor is None and m.win_rate == 1
    empty = account_metrics(1, [deal(1, 0, BUY, IN, 10)], {})
    assert empty.trades == 0 and empty.win_rate is None and empty.hold_median_s is None
    assert empty.max_open == 1


# The broker's quotes: flat, then 3 spreads up at 700 ms (the delayed quote catching up).
TAPE = [
    Tick(0, D("1.10000"), D("1.10010")),
    Tick(400, D("1.10000"), D("1.10010")),
    Tick(700, D("1.10030"), D("1.10040")),
    Tick(60_000, D("1.10030"), D("1.10040")),
]


def test_latency_arbitrage_signature_on_a_small_tape() -> None:
    tapes = {EURUSD: QuoteTape(TAPE, D(5))}
    # A buy at the stale ask 100 ms before the quote moves: its bid 1 s later is above the price.
    arbitrage = [
        deal(1, 100, BUY, IN, 10, price="1.10010"),
        deal(2, 1_500, SELL, OUT, 10, price="1.10030", profit="20"),
    ]
    m = account_metrics(1, arbitrage, tapes)
    assert m.stale_quote_share == 1
    assert m.markout_spreads == D(3)  # mid 1.10005 -> 1.10035, spread 0.0001
    # The same moment selling: against the move, no stale-quote profit.
    wrong_way = [deal(1, 100, SELL, IN, 10, price="1.10000")]
    m = account_metrics(1, wrong_way, tapes)
    assert m.stale_quote_share == 0 and m.markout_spreads == D(-3)
    # Entering after the move: the quote one second later does not beat the spread.
    late = [deal(1, 800, BUY, IN, 10, price="1.10040")]
    assert account_metrics(1, late, tapes).stale_quote_share == 0


def test_price_jumps_and_entries_after_them() -> None:
    # A 3-spread move between two quotes is a jump at 2 spreads, not at 5.
    assert QuoteTape(TAPE, D(5)).jumps == []
    tapes = {EURUSD: QuoteTape(TAPE, D(2))}
    assert tapes[EURUSD].jumps == [700]
    after = [deal(1, 5_000, BUY, IN, 10, price="1.10040")]
    m = account_metrics(1, after, tapes)
    assert m.after_jump_share == 1 and m.around_jump_share == 1
    before = [deal(1, 500, BUY, IN, 10, price="1.10010")]
    m = account_metrics(1, before, tapes)
    assert m.after_jump_share == 0 and m.around_jump_share == 1
    far = [deal(1, 200_000, BUY, IN, 10, price="1.10040")]
    assert account_metrics(1, far, tapes).around_jump_share == 0


def test_hedging_across_one_persons_accounts() -> None:
    deals = [
        deal(1, 0, BUY, IN, 10, login=1),
        deal(2, 3_000, SELL, IN, 11, login=2),  # the same person, the other side, 3 s later
        deal(3, 0, SELL, IN, 12, login=3),  # someone else
        deal(4, 90_000, SELL, IN, 13, login=2),  # outside the minute: not a mirror
    ]
    metrics = profile_accounts(deals, {}, {1: "ann", 2: "ann", 3: "bob"})
    assert metrics[1].hedge_share == 1
    assert metrics[2].hedge_share == D(1) / 2
    assert metrics[3].hedge_share == 0


def test_a_grid_holds_a_ladder_of_one_size() -> None:
    ladder = [deal(i, i * 1_000, BUY, IN, 100 + i, volume=1_000, reason=1) for i in range(5)]
    ladder += [deal(10 + i, 60_000 + i, SELL, OUT, 100 + i, volume=1_000) for i in range(5)]
    m = account_metrics(1, ladder, {})
    assert m.max_open == 5 and m.lots_cv == 0 and m.expert_share == 1


def test_the_window_keeps_deals_within_it() -> None:
    metrics = profile_accounts(THREE, {}, since_msc=90_000, until_msc=450_000)
    assert metrics[1].trades == 1 and metrics[1].gross_loss == 20


trips = st.lists(
    st.tuples(
        st.integers(0, 10_000_000),  # opened
        st.integers(1, 600_000),  # held
        st.integers(-500, 500),  # profit
        st.sampled_from([BUY, SELL]),
        st.integers(1, 50),  # hundredths of a lot
    ),
    min_size=1,
    max_size=25,
)


def _deals(spec: list[tuple[int, int, int, int, int]]) -> list[TradeDeal]:
    deals = []
    for n, (opened, held, profit, action, size) in enumerate(spec):
        closing = SELL if action == BUY else BUY
        deals.append(deal(2 * n, opened, action, IN, n, volume=size * 100))
        deals.append(
            deal(2 * n + 1, opened + held, closing, OUT, n, profit=str(profit), volume=size * 100)
        )
    return deals


@settings(max_examples=40, deadline=None)
@given(trips, st.randoms(use_true_random=False))
def test_metrics_do_not_depend_on_the_order_deals_come_in(spec, random) -> None:  # type: ignore[no-untyped-def]
    deals = _deals(spec)
    shuffled = list(deals)
    random.shuffle(shuffled)
    tapes = {EURUSD: QuoteTape(TAPE, D(2))}
    assert account_metrics(1, deals, tapes) == account_metrics(1, shuffled, tapes)


@settings(max_examples=40, deadline=None)
@given(trips)
def test_profit_factor_is_gross_profit_over_gross_loss(spec) -> None:  # type: ignore[no-untyped-def]
    m = account_metrics(1, _deals(spec), {})
    profits = [D(p) for _, _, p, _, _ in spec]
    assert m.gross_profit == sum(p for p in profits if p > 0)
    assert m.gross_loss == -sum(p for p in profits if p < 0)
    if m.gross_loss:
        assert m.profit_factor == m.gross_profit / m.gross_loss
    else:
        assert m.profit_factor is None
    assert m.win_rate == D(sum(1 for p in profits if p > 0)) / len(profits)
    assert m.trades == len(spec) and 0 <= (m.short_hold_share or 0) <= 1
