"""The simulator's realistic population and its `tick/history` (what profiling reads)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import simulators.mt5.trade_commands as trade_commands
from simulators.mt5.commands import Call, Commands
from simulators.mt5.flow import BROKER_DELAY_MS, POPULATION_ARCHETYPES, Population
from simulators.mt5.state import Books
from simulators.mt5.trade_commands import TradeCommands

SUNDAY = int(datetime(2026, 11, 22, tzinfo=UTC).timestamp() * 1000)  # markets open: own clock


def run(seed: int, minutes: int) -> tuple[Commands, Population]:
    commands = Commands(Books(), lambda _: None)
    population = Population(commands.engine, len(POPULATION_ARCHETYPES) * 2, seed, SUNDAY, 1)
    population.advance(SUNDAY + minutes * 60_000)
    return commands, population


def test_the_population_trades_on_its_own_clock_and_is_seeded() -> None:
    commands, population = run(3, 30)
    books = commands.engine.books
    assert commands.engine.clock.now_msc() == SUNDAY + 30 * 60_000
    assert all(SUNDAY <= d.time_msc <= SUNDAY + 30 * 60_000 for d in books.deals)
    traded = Counter(population.archetypes[d.login] for d in books.deals)
    assert {"scalper", "latency_arbitrageur", "hedger"} <= set(traded)
    # A hedger's two accounts are one person's.
    hedger = next(c for c in population.clients if c.archetype == "hedger")
    assert hedger.partner is not None
    assert books.users[hedger.login].email == books.users[hedger.partner].email
    again, _ = run(3, 30)
    assert [(d.login, d.time_msc, d.price) for d in again.engine.books.deals] == [
        (d.login, d.time_msc, d.price) for d in books.deals
    ]
    assert not population.done


def test_tick_history_answers_the_broker_quotes_in_the_window() -> None:
    commands, _ = run(5, 2)
    trading = TradeCommands(commands)
    since = SUNDAY // 1000
    answer = trading.tick_history(
        Call({"symbol": "EURUSD", "from": str(since), "to": str(since + 59)}, None)
    )
    rows = answer["answer"]
    # Two quotes a second, the first shown BROKER_DELAY_MS after the start, up to 59.999 s.
    assert len(rows) == (60_000 - 1 - BROKER_DELAY_MS) // 500 + 1
    stamp, bid, ask = rows[0]
    assert stamp == SUNDAY + BROKER_DELAY_MS and ask > bid
    assert "retcode" not in answer
    only_bids = trading.tick_history(
        Call({"symbol": "EURUSD", "from": str(since), "to": str(since), "data": "b"}, None)
    )
    assert all(len(row) == 1 for row in only_bids["answer"])


def test_tick_history_cut_at_its_limit_says_so(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    commands, _ = run(5, 1)
    monkeypatch.setattr(trade_commands, "MAX_HISTORY_TICKS", 10)
    since = SUNDAY // 1000
    answer = TradeCommands(commands).tick_history(
        Call({"symbol": "EURUSD", "from": str(since), "to": str(since + 60)}, None)
    )
    assert len(answer["answer"]) == 10
    assert answer["retcode"] == "14 Operation has not been completed"
