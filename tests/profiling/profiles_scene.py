"""A profiling scene written straight into a test database, as the ingestion stores deals, with
the broker's quotes around them (a fake `tick/history`).

On `live-1`, 12 round trips each, one an hour from 2026-11-04 00:00 UTC (offset 0: server
milliseconds are UTC milliseconds):
* 7001, an arbitrageur: buys EURUSD at the stale ask 1.10010; half a second later the quote is
  1.10030 / 1.10040 (a buy's later bid above its price); closes 2 s later at 1.10030, +2.00:
  latency arbitrage, book A.
* 7002, a losing trader: buys at 1.10010 with a steady quote, closes 30 min later, -5.00:
  losing directional, book B.
* 7003, a closed account trading like 7001: not profiled.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import DealRow
from tests.activities.kyc_rows import add_client, add_live_account

D = Decimal
SERVER = "live-1"
ARBITRAGEUR, LOSER, CLOSED = 7001, 7002, 7003
START = datetime(2026, 11, 4, tzinfo=UTC)
UNTIL = START + timedelta(hours=13)
_tickets = itertools.count(1)


def msc(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def deal(login: int, at: datetime, entry: int, price: str, profit: str, position: int) -> DealRow:
    return DealRow(
        server=SERVER,
        deal=next(_tickets),
        time=at,
        time_server=msc(at) // 1000,
        time_msc=msc(at),
        login=login,
        order_ticket=0,
        action=0 if entry == 0 else 1,
        entry=entry,
        reason=0,
        symbol="EURUSD",
        digits=5,
        digits_currency=2,
        contract_size=D(100000),
        price=D(price),
        price_position=D(price),
        volume=10000,
        volume_ext=10000,
        volume_closed=0,
        volume_closed_ext=0,
        profit=D(profit),
        profit_raw=D(profit),
        storage=D(0),
        commission=D(0),
        fee=D(0),
        rate_profit=D(1),
        rate_margin=D(1),
        market_bid=D(0),
        market_ask=D(0),
        position_id=position,
        position_by_id=0,
        dealer=0,
        expert_id=0,
        flags=0,
        external_id="",
        gateway="",
        comment="",
    )


class FakeTicks:
    """`tick/history` of a tape: the ticks in [since, until], and every window asked for."""

    def __init__(self, ticks: list[tuple[int, Decimal, Decimal]]) -> None:
        self.ticks = sorted(ticks)
        self.asked: list[tuple[str, datetime, datetime]] = []

    async def tick_history(
        self, symbol: str, since: datetime, until: datetime
    ) -> list[tuple[int, Decimal, Decimal]]:
        self.asked.append((symbol, since, until))
        low, high = msc(since), msc(until)
        return [t for t in self.ticks if low <= t[0] <= high]


async def seed(sessions: async_sessionmaker[AsyncSession]) -> FakeTicks:
    """The deals of the three accounts, the closed account's row, and the quotes."""
    client = await add_client(sessions)
    await add_live_account(sessions, client.id, login=CLOSED, status="closed")
    rows: list[DealRow] = []
    ticks: list[tuple[int, Decimal, Decimal]] = []
    position = itertools.count(100)
    for hour in range(12):
        for login, minute in ((ARBITRAGEUR, 10), (CLOSED, 40)):
            opened = START + timedelta(hours=hour, minutes=minute)
            ticks += [
                (msc(opened - timedelta(seconds=5)), D("1.10000"), D("1.10010")),
                (msc(opened + timedelta(milliseconds=500)), D("1.10030"), D("1.10040")),
            ]
            p = next(position)
            rows += [
                deal(login, opened, 0, "1.10010", "0", p),
                deal(login, opened + timedelta(seconds=2), 1, "1.10030", "2.00", p),
            ]
        opened = START + timedelta(hours=hour, minutes=20)
        ticks.append((msc(opened - timedelta(seconds=5)), D("1.10000"), D("1.10010")))
        p = next(position)
        rows += [
            deal(LOSER, opened, 0, "1.10010", "0", p),
            deal(LOSER, opened + timedelta(minutes=30), 1, "1.09960", "-5.00", p),
        ]
    async with sessions.begin() as session:
        await session.execute(text("SELECT create_deals_month(:m)"), {"m": START.date()})
        session.add_all(rows)
    return FakeTicks(ticks)
