"""The symbols' upsert at the database, beyond what the simulator's catalogue exercises: a
few hundred symbols in one statement, a listing that is not complete deletes nothing, a record
without a number every symbol has is skipped, and a server giving one margin rate for every
order type."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.queries.trading import symbol_of, symbols_of
from db.trade_store import merge_symbols

SERVER = "many"
SEEN = datetime(2026, 12, 7, tzinfo=UTC)


def symbol(number: int, **changes: Any) -> dict[str, Any]:
    return {
        "Symbol": f"S{number:05d}",
        "Path": f"Synthetic\\S{number:05d}",
        "CalcMode": "2",
        "Digits": "3",
        "ContractSize": "100",
        "Spread": "20",
        "CurrencyBase": "XYZ",
        "CurrencyProfit": "USD",
        "CurrencyMargin": "USD",
        "MarginRateInitial": "0.1",  # one number for every order type
        **changes,
    }


async def merge(
    sessions: async_sessionmaker[AsyncSession], records: list[dict[str, Any]], complete: bool
) -> int:
    async with sessions.begin() as session:
        connection = await session.connection()
        return await merge_symbols(connection, SERVER, records, SEEN, complete=complete)


async def test_many_symbols_partial_listings_and_odd_records(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    count = 300
    records = [symbol(n) for n in range(count)]
    assert await merge(sessions, records, complete=True) == count
    assert await merge(sessions, records, complete=True) == 0  # unchanged: nothing written

    async with sessions() as session:
        stored = await symbols_of(session, SERVER)
        first = await symbol_of(session, SERVER, "S00000")
    assert len(stored) == count
    before = {s.symbol: s.updated_at for s in stored}
    assert first is not None
    assert first.margin_rate_initial == [Decimal("0.1")] and first.margin_rate_maintenance is None
    assert first.point == Decimal("0.001")  # no `Point` in the record: from `Digits`
    assert first.tick_size is None and first.margin_initial is None  # not given: NULL

    # An incomplete listing (a symbol added meanwhile) upserts what it read, deletes nothing;
    # a record without `ContractSize` is skipped, the symbol kept as it was.
    broken = symbol(1, ContractSize="")
    changed = symbol(2, Spread="35")
    assert await merge(sessions, [broken, changed], complete=False) == 1
    async with sessions() as session:
        assert len(await symbols_of(session, SERVER)) == count
        kept = await symbol_of(session, SERVER, "S00001")
        spread = await symbol_of(session, SERVER, "S00002")
    assert kept is not None and kept.contract_size == Decimal(100)
    assert spread is not None and spread.spread == 35

    # A complete listing without the first symbol deletes it (and writes the one that changed
    # back to the catalogue's spread).
    assert await merge(sessions, records[1:], complete=True) == 2
    async with sessions() as session:
        names = {s.symbol for s in await symbols_of(session, SERVER)}
    assert names == {r["Symbol"] for r in records[1:]}
    async with sessions() as session:
        after = {s.symbol: s.updated_at for s in await symbols_of(session, SERVER)}
    assert {n: t for n, t in after.items() if n != "S00002"} == {
        n: t for n, t in before.items() if n not in ("S00000", "S00002")
    }
