"""Invariants of the simulator's books under any sequence of trades, price moves and rollovers."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from simulators.mt5.engine import BUY, SELL, Engine
from simulators.mt5.retcodes import Refusal
from simulators.mt5.state import Books, User

SYMBOLS = ["EURUSD", "USDJPY", "XAUUSD", "US500"]
START = Decimal("1000000")

trade = st.tuples(
    st.just("trade"),
    st.sampled_from(SYMBOLS),
    st.sampled_from([BUY, SELL]),
    st.integers(min_value=1, max_value=300).map(lambda n: n * 100),  # 0.01 .. 3 lots
    st.integers(min_value=0, max_value=3),  # which open position to close (hedging), if any
)
move = st.tuples(st.just("move"), st.sampled_from(SYMBOLS), st.integers(-300, 300))
rollover = st.tuples(st.just("rollover"), st.integers(0, 6))
close_by = st.tuples(st.just("close_by"), st.integers(0, 3), st.integers(0, 3))
steps = st.lists(st.one_of(trade, st.one_of(move, rollover, close_by)), min_size=10, max_size=80)


def run(group: str, program: list[tuple[object, ...]]) -> Engine:
    books = Books()
    books.users[1] = User(
        login=1,
        group=group,
        name="P",
        password_main="x",
        password_investor="x",
        leverage=100,
        balance=str(START),
    )
    engine = Engine(books)
    for step in program:
        try:
            apply(engine, step)
        except Refusal:
            pass  # refused trades must leave no trace; checked by the invariants
    return engine


def apply(engine: Engine, step: tuple[object, ...]) -> None:
    kind = step[0]
    if kind == "move":
        _, symbol, points = step
        bid, ask = engine.quote(str(symbol))
        shift = engine.symbol(str(symbol)).point * int(str(points))
        if bid + shift > 0:
            engine.set_quote(str(symbol), bid + shift, ask + shift)
    elif kind == "rollover":
        engine.rollover(int(str(step[1])))
    elif kind == "close_by":
        positions = engine.positions_of(1)
        if positions:
            first = positions[int(str(step[1])) % len(positions)]
            second = positions[int(str(step[2])) % len(positions)]
            engine.close_by(1, first.position, second.position)
    else:
        _, symbol, action, volume, pick = step
        hedging = engine.group(1)["MarginMode"] == 2
        targets = [p for p in engine.positions_of(1) if p.symbol == symbol and p.action != action]
        position_id = 0
        if hedging and targets and int(str(pick)) < len(targets):
            target = targets[int(str(pick))]
            position_id, volume = target.position, min(int(str(volume)), target.volume)
        engine.market(1, str(symbol), int(str(action)), int(str(volume)), position_id=position_id)


def signed(action: int, volume: int) -> int:
    return volume if action == BUY else -volume


def check_books(engine: Engine) -> None:
    deals = [d for d in engine.books.deals if d.login == 1]
    state = engine.account(1)
    # Balance moves only by what deals book: profit + swap + commission.
    booked = sum(
        (Decimal(d.profit) + Decimal(d.storage) + Decimal(d.commission) for d in deals), Decimal(0)
    )
    assert state.balance == START + booked
    # Equity = balance + credit + floating P&L (profit and swaps of open positions).
    floating = sum(
        (engine.floating_profit(p) + Decimal(p.storage) for p in engine.positions_of(1)), Decimal(0)
    )
    assert state.equity == state.balance + state.credit + floating
    # Each position's volume is the signed sum of its deals; a closed one sums to zero.
    by_position = Counter[int]()
    for deal in deals:
        by_position[deal.position_id] += signed(deal.action, deal.volume)
    open_positions = {p.position: p for p in engine.positions_of(1)}
    for position_id, volume in by_position.items():
        position = open_positions.get(position_id)
        assert volume == (signed(position.action, position.volume) if position else 0)
    assert all(p.volume > 0 for p in open_positions.values())


@settings(max_examples=150, deadline=None)
@given(steps)
def test_netting_books_stay_consistent(program: list[tuple[object, ...]]) -> None:
    engine = run("demo\\pro", [s for s in program if s[0] != "close_by"])
    check_books(engine)
    per_symbol = Counter(p.symbol for p in engine.positions_of(1))
    assert all(count == 1 for count in per_symbol.values()), "netting keeps one position per symbol"


@settings(max_examples=150, deadline=None)
@given(steps)
def test_hedging_books_stay_consistent(program: list[tuple[object, ...]]) -> None:
    check_books(run("demo\\standard", program))
