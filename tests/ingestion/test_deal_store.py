"""The bulk upsert at the database: a dealer's correction overwrites the deal (the simulator has
no `deal/update`, so corrections are played here), an identical re-read writes nothing, a
correction that moves the deal to another month moves its row, and months get partitions."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.trade_store import Batch, DealStore, copy_text

SERVER = "demo"
# 2026-11-30 23:59:59.500 UTC, and a server clock at UTC+2 (MT5's usual EET): TimeMsc is
# 1_796_083_199_500 + 2 * 3_600_000 = 1_796_090_399_500.
NOV_30_UTC_MSC = 1_796_083_199_500
EET_MSC = 2 * 3_600_000


def record(**changes: str) -> dict[str, str]:
    base = {
        "Deal": "501",
        "Login": "1000001",
        "Action": "0",
        "Entry": "1",
        "Symbol": "EURUSD",
        "Time": str((NOV_30_UTC_MSC + EET_MSC) // 1000),
        "TimeMsc": str(NOV_30_UTC_MSC + EET_MSC),
        "Price": "1.08345",
        "Volume": "10000",
        "VolumeClosed": "10000",
        "Profit": "-12.50",
        "Commission": "-3.50",
        "Storage": "-0.71",
        "Fee": "0.00",
        "PositionID": "480",
        "Comment": "tab\there\\back",
    }
    return base | changes


def batch(*records: dict[str, str]) -> Batch:
    lines, low, high = copy_text(SERVER, records, lambda server_msc: server_msc - EET_MSC)
    return Batch(lines, len(records), low, high)


async def merge(sessions: async_sessionmaker[AsyncSession], store: DealStore, b: Batch) -> int:
    async with sessions.begin() as session:
        return await store.merge(await session.connection(), b)


async def stored(sessions: async_sessionmaker[AsyncSession]) -> list[dict[str, Any]]:
    async with sessions() as session:
        result = await session.execute(
            text(
                "SELECT deal, time, time_server, commission, storage, comment, updated_at,"
                " created_at, tableoid::regclass::text AS part FROM deals"
            )
        )
        return [dict(row) for row in result.mappings()]


async def test_corrections_overwrite_and_rereads_write_nothing(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    store = DealStore(sessions)
    assert await merge(sessions, store, batch(record())) == 1
    [first] = await stored(sessions)
    assert first["time"] == datetime(2026, 11, 30, 23, 59, 59, 500_000, tzinfo=UTC)
    assert first["time_server"] == 1_796_090_399  # the server's own seconds, kept
    assert first["commission"] == Decimal("-3.50") and first["comment"] == "tab\there\\back"
    assert first["part"] == "deals_2026_11"

    # The same deal read twice in one batch and again later: nothing written.
    assert await merge(sessions, store, batch(record(), record())) == 0
    assert await stored(sessions) == [first]

    # The dealer corrects the commission and the swap: both overwritten, updated_at moves.
    assert await merge(sessions, store, batch(record(Commission="-7.00", Storage="0"))) == 1
    [corrected] = await stored(sessions)
    assert (corrected["commission"], corrected["storage"]) == (Decimal("-7.00"), Decimal(0))
    assert corrected["updated_at"] > first["updated_at"]

    # The dealer moves the deal a second later, into December: one row, in the new month.
    # 1_796_083_199_500 + 1_000 = 1_796_083_200_500 UTC = 2026-12-01 00:00:00.500.
    moved_msc = NOV_30_UTC_MSC + 1_000 + EET_MSC
    moved = record(TimeMsc=str(moved_msc), Time=str(moved_msc // 1000), Commission="-7.00")
    assert await merge(sessions, store, batch(moved, record(Deal="502"))) == 2
    rows = {row["deal"]: row for row in await stored(sessions)}
    assert rows.keys() == {501, 502}
    assert rows[501]["part"] == "deals_2026_12" and rows[502]["part"] == "deals_2026_11"
