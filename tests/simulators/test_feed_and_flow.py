"""The price feed and the trader-flow generator: deterministic, session-aware, and truthful."""

from __future__ import annotations

import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import httpx

from simulators.mt5.catalogue import CATALOGUE
from simulators.mt5.engine import Engine
from simulators.mt5.feed import PriceFeed, SessionCalendar
from simulators.mt5.flow import ARCHETYPES, TraderFlow
from simulators.mt5.state import Books
from tests.support.processes import start_simulator

WEDNESDAY_NOON = int(datetime(2026, 11, 18, 12, tzinfo=UTC).timestamp() * 1000)
SATURDAY = int(datetime(2026, 11, 21, 12, tzinfo=UTC).timestamp() * 1000)


def test_the_feed_is_deterministic_per_seed() -> None:
    def walk(seed: int) -> list[object]:
        feed = PriceFeed(CATALOGUE, seed)
        return [feed.tick("EURUSD", WEDNESDAY_NOON + i) for i in range(50)]

    assert walk(3) == walk(3)
    assert walk(3) != walk(4)


def test_sessions_spreads_and_the_delayed_feed() -> None:
    feed = PriceFeed(CATALOGUE, 1)
    assert feed.tick("EURUSD", SATURDAY) is None  # FX closed at the weekend
    assert feed.tick("BTCUSD", SATURDAY) is not None  # crypto trades all week
    assert feed.tick("AAPL", WEDNESDAY_NOON) is None  # before the US open
    bid, ask = feed.tick("EURUSD", WEDNESDAY_NOON) or (0, 0)
    rollover = int(datetime(2026, 11, 18, 21, 5, tzinfo=UTC).timestamp() * 1000)
    wide_bid, wide_ask = feed.tick("EURUSD", rollover) or (0, 0)
    assert wide_ask - wide_bid > ask - bid
    assert feed.delayed("EURUSD", rollover, 1000) == (bid, ask)


def test_an_always_open_calendar_trades_fx_at_the_weekend() -> None:
    always = SessionCalendar(always_open=True)
    assert PriceFeed(CATALOGUE, 1, always).tick("EURUSD", SATURDAY) is not None
    saturday, eurusd = datetime.fromtimestamp(SATURDAY / 1000, UTC), CATALOGUE["EURUSD"]
    assert not SessionCalendar().is_open(eurusd, saturday)
    assert always.is_open(eurusd, saturday)


def test_the_flow_produces_every_archetype_and_consistent_books() -> None:
    engine = Engine(Books())
    flow = TraderFlow(engine, traders=len(ARCHETYPES) * 2, seed=5)
    for step in range(4000):
        flow.step(WEDNESDAY_NOON + step * 20)
    traded = Counter(flow.archetypes[d.login] for d in engine.books.deals)
    assert set(traded) == set(ARCHETYPES)
    # A hedger's two accounts always hold mirror images of each other.
    for trader in (t for t in flow.traders if t.archetype == "hedger"):
        assert trader.partner is not None
        mine = [(p.symbol, p.volume, p.action) for p in engine.positions_of(trader.login)]
        theirs = [(p.symbol, p.volume, 1 - p.action) for p in engine.positions_of(trader.partner)]
        assert sorted(mine) == sorted(theirs)


def test_the_running_simulator_generates_and_tells_the_truth_only_on_its_admin_surface(
    artifacts_dir: Path,
) -> None:
    simulator = start_simulator(
        artifacts_dir / "logs", tls=False, extra=["--traders", "14", "--rate", "200", "--feed"]
    )
    try:
        with httpx.Client(base_url=simulator.base_url) as admin:
            deadline = time.monotonic() + 60
            while (deals := admin.get("/_sim/flow").json()["deals"]) < 100:
                assert time.monotonic() < deadline, f"only {deals} deals generated in 60 s"
                time.sleep(0.1)
            truth = admin.get("/_sim/archetypes").json()["archetypes"]
            assert set(truth.values()) == set(ARCHETYPES)
            first = admin.get("/api/tick/last", params={"symbol": "BTCUSD"})
            assert first.status_code == 403  # the Web API needs a session, the truth is not there
    finally:
        simulator.child.stop()


def test_accounts_that_may_not_trade_send_nothing_until_allowed_again() -> None:
    """Rights 0x4 (trading off) or without 0x1 (may not connect): the flow's clients of those
    accounts send no requests; the server's own executions are not theirs to stop."""
    engine = Engine(Books())
    flow = TraderFlow(engine, traders=len(ARCHETYPES), seed=5)
    logins = sorted(flow.archetypes)
    for index, login in enumerate(logins):
        user = engine.books.users[login]
        user.rights = user.rights | 0x4 if index % 2 else user.rights & ~0x1
    for step in range(1500):
        flow.step(WEDNESDAY_NOON + step * 20)
    assert engine.books.deals == []
    for login in logins:
        engine.books.users[login].rights = 0x1E3
    for step in range(1500, 3000):
        flow.step(WEDNESDAY_NOON + step * 20)
    assert engine.books.deals
