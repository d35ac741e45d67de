"""The history generator: what it writes into the books holds together as the engine's own books
do (balances, tickets, positions, volumes, sessions, profit and commission figures), and one
seed always writes one history."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulators.mt5.catalogue import CATALOGUE, FUTURES
from simulators.mt5.engine import BUY, SELL, Engine
from simulators.mt5.feed import in_session
from simulators.mt5.history import generate_history
from simulators.mt5.state import Books, Deal, User
from tests.mt5.test_protocol import log_in_by_hand
from tests.support.processes import Simulator, start_simulator

DAY = 86_400_000
START = int(datetime(2026, 3, 2, tzinfo=UTC).timestamp() * 1000)  # a Monday
END = START + 30 * DAY
IN, OUT, INOUT, OUT_BY = 0, 1, 2, 3
BALANCE = 2
CENT = Decimal("0.01")


def generated(seed: int, deals: int = 2000, accounts: int = 50) -> Books:
    books = Books()
    written = generate_history(
        books, deals=deals, accounts=accounts, seed=seed, start_msc=START, end_msc=END
    )
    assert written == deals == len(books.deals)
    return books


def trades(books: Books) -> Iterator[Deal]:
    return (d for d in books.deals if d.action in (BUY, SELL))


def money(deal: Deal) -> Decimal:
    return (
        Decimal(deal.profit) + Decimal(deal.commission) + Decimal(deal.storage) + Decimal(deal.fee)
    )


def assert_books_hold_together(books: Books, accounts: int) -> None:
    # Every account opens with a deposit, and its balance is the sum of its deals' money.
    logins = {d.login for d in books.deals}
    assert logins == set(books.users) and len(logins) == accounts
    for login, user in books.users.items():
        own = books.deals_of(login)
        assert own[0].action == BALANCE and Decimal(own[0].profit) > 0
        assert Decimal(user.balance) == sum((money(d) for d in own), Decimal(0))
    # Tickets grow strictly and never repeat (order and position tickets included); times only
    # go forward, inside the range.
    tickets = [d.deal for d in books.deals]
    assert tickets == sorted(set(tickets)) and tickets[0] > 1000
    orders = {d.order for d in trades(books)}
    assert not orders & set(tickets) and max(orders | set(tickets)) <= books.next_ticket
    times = [d.time_msc for d in books.deals]
    assert times == sorted(times) and START <= times[0] and times[-1] < END
    for deal in trades(books):
        symbol = CATALOGUE[deal.symbol]
        assert deal.volume % symbol.volume_step == 0
        assert symbol.volume_min <= deal.volume <= symbol.volume_max
        assert in_session(symbol, datetime.fromtimestamp(deal.time_msc / 1000, UTC))
        for price in (deal.price, deal.market_bid, deal.market_ask):
            assert -Decimal(price).as_tuple().exponent <= symbol.digits  # type: ignore[operator]
        assert Decimal(deal.market_bid) < Decimal(deal.market_ask)


def replay_positions(books: Books) -> dict[int, tuple[int, str, int, int]]:
    """Open positions (id -> login, symbol, direction, volume) from the deals alone: IN opens or
    adds, OUT and OUT_BY take their closed volume off, INOUT turns what is left around."""
    open_: dict[int, tuple[int, str, int, int]] = {}
    for deal in trades(books):
        login, symbol, action, volume = open_.get(
            deal.position_id, (deal.login, deal.symbol, deal.action, 0)
        )
        assert (login, symbol) == (deal.login, deal.symbol)
        if deal.entry == IN:
            assert action == deal.action
            volume += deal.volume
        else:
            assert action != deal.action and deal.volume_closed <= volume
            volume -= deal.volume_closed
            if deal.entry == INOUT:
                assert volume == 0 and deal.volume > deal.volume_closed
                action, volume = deal.action, deal.volume - deal.volume_closed
        if volume:
            open_[deal.position_id] = (login, symbol, action, volume)
        else:
            del open_[deal.position_id]
    return open_


def assert_positions_match_deals(books: Books) -> None:
    held = {
        ticket: (p.login, p.symbol, p.action, p.volume) for ticket, p in books.positions.items()
    }
    assert held == replay_positions(books)
    netting = {
        login for login, u in books.users.items() if books.groups[u.group]["MarginMode"] == 0
    }
    per_symbol = [(p.login, p.symbol) for p in books.positions.values() if p.login in netting]
    assert len(per_symbol) == len(set(per_symbol))  # netting: one position per symbol
    # Netting: a symbol's signed deal volumes add up to its position (or to nothing).
    net: dict[tuple[int, str], int] = defaultdict(int)
    for deal in trades(books):
        if deal.login in netting:
            net[deal.login, deal.symbol] += deal.volume * (1 if deal.action == BUY else -1)
    for (login, symbol), volume in net.items():
        position = [p for p in books.positions.values() if (p.login, p.symbol) == (login, symbol)]
        assert volume == sum(p.volume * (1 if p.action == BUY else -1) for p in position)


def assert_figures_as_the_engine_books_them(books: Books) -> None:
    """Profit = (close - open) x direction x contract size (tick value / tick size for futures)
    x lots, in the deposit currency at RateProfit, half up to the cent. For example a sell of
    0.05 EURUSD at 1.10100 closing a buy opened at 1.10012: (1.10100 - 1.10012) x 100000 x 0.05
    = 4.40 USD. RateProfit is on the side less favourable to the client: a EUR account's USD
    profit on EURUSD at 1/ask for a gain (1/1.10012 = 0.90899175), at 1/bid for a loss.
    Commission of FX per lot on both sides: 3.50 x lots, e.g. 0.37 lots: 1.295 -> -1.30."""
    for deal in trades(books):
        group = books.groups[books.users[deal.login].group]
        symbol = CATALOGUE[deal.symbol]
        if deal.entry == IN:
            assert (deal.profit, deal.profit_raw, deal.volume_closed) == ("0.00", "0", 0)
            assert deal.price == deal.price_position or group["MarginMode"] == 0
        else:
            tick_size, tick_value = symbol.tick()
            per_price = (
                tick_value / tick_size
                if symbol.calc_mode == FUTURES
                else Decimal(deal.contract_size)
            )
            direction = 1 if deal.action == SELL else -1  # the closed position's side
            move = (Decimal(deal.price) - Decimal(deal.price_position)) * direction
            raw = move * per_price * Decimal(deal.volume_closed) / 10_000
            assert Decimal(deal.profit_raw) == raw
            rate = Decimal(deal.rate_profit)
            assert Decimal(deal.profit) == (raw * rate).quantize(CENT, ROUND_HALF_UP)
        if symbol.profit == group["Currency"]:
            assert deal.rate_profit == "1"
        if deal.symbol == group["Currency"] + symbol.profit:  # the conversion's own pair
            loss = Decimal(deal.profit_raw) < 0
            price = Decimal(deal.market_bid if loss else deal.market_ask)
            assert Decimal(deal.rate_profit) == (1 / price).quantize(Decimal("1E-8"))
        if symbol.margin == group["Currency"]:
            assert deal.rate_margin == "1"
        rule = {
            "real\\standard": ("3.50", True),  # FX only
            "real\\intl\\pro": ("2.50", False),
            "real\\pro": ("0", False),
        }.get(books.users[deal.login].group)
        if rule is not None:
            per_lot, forex_only = rule
            if forex_only and not symbol.path.startswith("Forex"):
                per_lot = "0"
            charged = Decimal(per_lot) * Decimal(deal.volume) / 10_000
            assert Decimal(deal.commission) == -charged.quantize(CENT, ROUND_HALF_UP)


@settings(max_examples=12, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    deals=st.integers(1, 2000),
    accounts=st.integers(1, 60),
)
def test_any_history_holds_together(seed: int, deals: int, accounts: int) -> None:
    accounts = min(accounts, deals)
    books = generated(seed, deals, accounts)
    assert_books_hold_together(books, accounts)
    assert_positions_match_deals(books)
    assert_figures_as_the_engine_books_them(books)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_history_has_what_benchmarks_need(seed: int) -> None:
    books = generated(seed)
    assert_books_hold_together(books, 50)
    assert_positions_match_deals(books)
    assert_figures_as_the_engine_books_them(books)
    modes = {books.groups[u.group]["MarginMode"] for u in books.users.values()}
    assert modes == {0, 2}
    entries = {d.entry for d in trades(books)}
    assert entries == {IN, OUT, INOUT, OUT_BY}
    assert any(d.action == BALANCE and Decimal(d.profit) < 0 for d in books.deals)  # withdrawal
    assert any(Decimal(d.storage) for d in books.deals)  # swaps of positions held overnight
    assert any(d.gateway == "LP-Prime" for d in books.deals)  # real\pro is A-book
    # Accounts hold what their balance carries: at the server's quotes (where every price walk
    # ends) hardly any is at its stop-out level, and no balance is below zero.
    engine = Engine(books)
    holders = {p.login for p in books.positions.values()}
    stopped = [login for login in holders if engine.account(login).activation == 2]
    assert len(stopped) <= len(holders) // 50
    assert all(Decimal(u.balance) >= 0 for u in books.users.values())
    # A partial close: an OUT leaving part of its position open.
    remaining: dict[int, int] = defaultdict(int)
    partial = False
    for deal in trades(books):
        if deal.entry == IN:
            remaining[deal.position_id] += deal.volume
        elif deal.entry in (OUT, OUT_BY):
            remaining[deal.position_id] -= deal.volume_closed
            partial |= deal.entry == OUT and remaining[deal.position_id] > 0
        else:
            remaining[deal.position_id] = deal.volume - deal.volume_closed
    assert partial
    # Close-by: two OUT_BY deals of one order, each naming the other's position, the second
    # closed at its own open price (no profit).
    by_order: dict[int, list[Deal]] = defaultdict(list)
    for deal in trades(books):
        if deal.entry == OUT_BY:
            by_order[deal.order].append(deal)
    assert by_order
    for first, second in by_order.values():
        assert (first.position_by_id, second.position_by_id) == (
            second.position_id,
            first.position_id,
        )
        assert first.price == second.price == second.price_position
        assert second.profit == "0.00" and first.volume == second.volume


def test_commission_rules_beyond_a_flat_charge_are_the_engines() -> None:
    """A tier with a minimum and a fee rule: charged by the engine's own rules, deal by deal.
    5.00 per lot with a 1.00 minimum: 0.01 lot -> 5.00 x 0.01 = 0.05 -> -1.00; 0.50 lot ->
    -2.50. A fee of 0.10 per deal lands on Fee, not Commission."""
    books = Books()
    rules = [
        {
            "Path": "*",
            "Mode": 0,
            "ChargeMode": 2,
            "EntryMode": 0,
            "Tiers": [{"Mode": 0, "Type": 1, "Value": "5.00", "Minimal": "1.00", "RangeTo": "0"}],
        },
        {
            "Path": "*",
            "Mode": 2,
            "ChargeMode": 2,
            "Tiers": [{"Mode": 0, "Type": 0, "Value": "0.10"}],
        },
    ]
    for group in books.groups.values():
        group["Commissions"] = rules
    generate_history(books, deals=3000, accounts=40, seed=4, start_msc=START, end_msc=END)
    assert_books_hold_together(books, 40)
    for deal in trades(books):
        expected = max(Decimal("5.00") * deal.volume / 10_000, Decimal("1.00"))
        assert Decimal(deal.commission) == -expected.quantize(CENT, ROUND_HALF_UP)
        assert deal.fee == "-0.10"


def test_one_seed_one_history() -> None:
    first, again, other = generated(7, 1500, 30), generated(7, 1500, 30), generated(8, 1500, 30)
    assert [asdict(d) for d in first.deals] == [asdict(d) for d in again.deals]
    assert [asdict(u) for u in first.users.values()] == [asdict(u) for u in again.users.values()]
    assert {k: asdict(p) for k, p in first.positions.items()} == {
        k: asdict(p) for k, p in again.positions.items()
    }
    assert [asdict(d) for d in first.deals] != [asdict(d) for d in other.deals]


def test_the_engine_trades_on_from_a_history() -> None:
    """Open positions are the engine's to close: each account's balance stays the sum of its
    deals after the engine closes everything at the catalogue's prices."""
    books = generated(11, 1000, 20)
    engine = Engine(books)
    for ticket, position in list(books.positions.items()):
        closing = SELL if position.action == BUY else BUY
        hedged = position.position if engine.hedging(position.login) else 0
        while ticket in books.positions:  # a netting position may outgrow one deal's maximum
            volume = min(position.volume, CATALOGUE[position.symbol].volume_max)
            engine.market(position.login, position.symbol, closing, volume, position_id=hedged)
    assert not books.positions
    for login, user in books.users.items():
        assert Decimal(user.balance) == sum((money(d) for d in books.deals_of(login)), Decimal(0))


def test_it_appends_to_books_that_have_deals() -> None:
    books = Books()
    books.users[5] = User(5, "demo\\pro", "Existing", "Pass#Word1", "Pass#Word1", 100)
    books.next_ticket = 50_000
    generate_history(books, deals=300, accounts=5, seed=1, start_msc=START, end_msc=END)
    assert min(d.deal for d in books.deals) > 50_000 and 5 not in {d.login for d in books.deals}
    assert len(books.users) == 6


@pytest.mark.parametrize(("deals", "accounts"), [(0, 0), (3, 4)])
def test_it_refuses_what_it_cannot_write(deals: int, accounts: int) -> None:
    with pytest.raises(ValueError):
        generate_history(Books(), deals=deals, accounts=accounts, seed=1)


def test_a_history_over_the_wire(artifacts_dir: Path) -> None:
    """`POST /_sim/history` fills the server; the Web API then answers the generated accounts
    and their deals, balance equal to the deals' sum."""
    simulator: Simulator = start_simulator(artifacts_dir / "logs", tls=False)
    try:
        with httpx.Client(base_url=simulator.base_url) as http:
            answer = http.post("/_sim/history", json={"deals": 600, "accounts": 12, "seed": 5})
            assert answer.json()["deals"] == 600
            log_in_by_hand(http, simulator.manager, simulator.password)
            users = http.get("/_sim/state/users").json()["users"]
            assert len(users) == 12
            for user in users[:3]:
                login = user["Login"]
                got = http.get("/api/user/get", params={"login": login}).json()["answer"]
                page = http.get(
                    "/api/deal/get_page",
                    params={"login": login, "from": 0, "to": 2**31 - 1, "offset": 0, "total": 1000},
                ).json()["answer"]
                total = sum(
                    Decimal(d[k]) for d in page for k in ("Profit", "Commission", "Storage", "Fee")
                )
                assert page and Decimal(got["Balance"]) == total
    finally:
        simulator.child.stop()
