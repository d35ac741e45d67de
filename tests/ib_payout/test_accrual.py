"""Accrual into the commission ledger: docs/ib-commissions.md's hand-computed example read from
the deals table, stored once however often it is recomputed, and a dealer's correction of a
paid deal answered with clawback rows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities import ib_payout
from activities.ib_payout import accrue
from contracts.ib_payout import AccrualRequest
from db.models.ib import IbCommission
from db.models.trading import SymbolRow
from tests.ib_payout.scene import SERVER, T0, Scene, example_scene, trade, version

WEEK = 7 * 86400
PERIOD = AccrualRequest(start=T0, end=T0 + WEEK, history_from=T0 - WEEK)


async def _ledger(
    sessions: async_sessionmaker[AsyncSession],
) -> list[tuple[int, uuid.UUID, int, int, Decimal, str]]:
    async with sessions() as session:
        rows = await session.execute(
            select(
                IbCommission.deal,
                IbCommission.ib_id,
                IbCommission.level,
                IbCommission.revision,
                IbCommission.amount,
                IbCommission.currency,
            ).order_by(IbCommission.deal, IbCommission.level, IbCommission.revision)
        )
        return [(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]


async def test_the_example_is_accrued_once_with_its_hand_computed_amounts(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    ibs = await example_scene(sessions)
    name = {v: k for k, v in ibs.items()}

    first = await accrue(sessions, PERIOD)
    assert (first.rows, first.adjustments, first.unattributed) == (15, 0, 0)
    ledger = await _ledger(sessions)
    # The example's rows (docs/ib-commissions.md): deal 1 CPA 100 / 150-100 / (200-150)*0.9;
    # deal 3: 4*0.4, 7*0.4-1.6, (10*0.4-2.8)*0.9; deal 4: 4*0.6, 7*0.6-2.4, (10*0.6-4.2)*0.9;
    # deal 5 held 30 s < 60: zeros; deal 7 after D's version 2: 5*0.5, 7*0.5-2.5, (10*0.5-3.5)*0.9.
    assert [
        (deal, name[who], level, amount, ccy) for deal, who, level, _, amount, ccy in ledger
    ] == [
        (1, "D", 1, Decimal("100.00"), "USD"),
        (1, "S", 2, Decimal("50.00"), "USD"),
        (1, "M", 3, Decimal("45.00"), "EUR"),
        (3, "D", 1, Decimal("1.60"), "USD"),
        (3, "S", 2, Decimal("1.20"), "USD"),
        (3, "M", 3, Decimal("1.08"), "EUR"),
        (4, "D", 1, Decimal("2.40"), "USD"),
        (4, "S", 2, Decimal("1.80"), "USD"),
        (4, "M", 3, Decimal("1.62"), "EUR"),
        (5, "D", 1, Decimal("0.00"), "USD"),
        (5, "S", 2, Decimal("0.00"), "USD"),
        (5, "M", 3, Decimal("0.00"), "EUR"),
        (7, "D", 1, Decimal("2.50"), "USD"),
        (7, "S", 2, Decimal("1.00"), "USD"),
        (7, "M", 3, Decimal("1.35"), "EUR"),
    ]
    async with sessions() as session:
        trace = await session.scalar(
            select(IbCommission.trace).where(IbCommission.deal == 4, IbCommission.level == 3)
        )
    assert trace is not None
    assert trace["row"]["volume_why"] == (
        "INOUT: 0.60 closed + 0.90 opened; round turn counts closes: 0.60"
    )
    assert trace["row"]["conversion"] == {"source": "USD", "target": "EUR", "rate": "0.9"}

    again = await accrue(sessions, PERIOD)
    assert (again.rows, again.adjustments) == (0, 0)
    assert await _ledger(sessions) == ledger


async def test_a_corrected_deal_is_clawed_back_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    ibs = await example_scene(sessions)
    name = {v: k for k, v in ibs.items()}
    await accrue(sessions, PERIOD)

    # The dealer corrects deal 7's close from 0.50 to 0.20 lots.
    await Scene(sessions).write_deals(
        [trade(7, T0 + 5000, 1, 1, 2000, "1.10050", 7006, closed=2000, profit="10.00")]
    )
    corrected = await accrue(sessions, PERIOD)
    assert (corrected.rows, corrected.adjustments) == (0, 3)
    # Recomputed on 0.20 lots: D 5*0.2 = 1.00 (paid 2.50), S 7*0.2 - 1.0 = 0.40 (paid 1.00),
    # M (10*0.2 - 1.4)*0.9 = 0.54 EUR (paid 1.35).
    adjustments = [
        (name[who], revision, amount, ccy)
        for _, who, _, revision, amount, ccy in await _ledger(sessions)
        if revision > 0
    ]
    assert adjustments == [
        ("D", 1, Decimal("-1.50"), "USD"),
        ("S", 1, Decimal("-0.60"), "USD"),
        ("M", 1, Decimal("-0.81"), "EUR"),
    ]
    assert (await accrue(sessions, PERIOD)).adjustments == 0
    async with sessions() as session:
        total = await session.scalar(
            select(func.sum(IbCommission.amount)).where(
                IbCommission.deal == 7, IbCommission.ib_id == ibs["D"]
            )
        )
    assert total == Decimal("1.00")


async def test_batches_computed_in_worker_processes_give_the_same_ledger(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large accrual computes its batches in a process pool while it reads and stores: the
    same rows as in-process, stored once."""
    ibs = await example_scene(sessions)
    name = {v: k for k, v in ibs.items()}
    monkeypatch.setattr(ib_payout, "POOL_FROM_BATCHES", 1)
    summary = await accrue(sessions, PERIOD)
    assert (summary.rows, summary.adjustments, summary.unattributed) == (15, 0, 0)
    assert [
        (deal, name[who], level, amount)
        for deal, who, level, _, amount, _ in await _ledger(sessions)
    ][:3] == [
        (1, "D", 1, Decimal("100.00")),
        (1, "S", 2, Decimal("50.00")),
        (1, "M", 3, Decimal("45.00")),
    ]
    assert (await accrue(sessions, PERIOD)).rows == 0


async def test_a_rule_by_symbol_path_pays_from_the_ingested_symbol_list(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """A deal carries no symbol path: the accrual reads it from the ingested `symbols` table.
    An IB paid by path (`Forex\\*`) earns what one paid by the symbol's name earns."""
    scene = Scene(sessions)
    by_path = version(1, T0, "10", "0")
    by_path["rules"] = [{"basis": "per_lot", "paths": ["Forex\\*"], "rate": "10"}]
    by_name = version(1, T0, "10", "0")
    by_name["rules"] = [{"basis": "per_lot", "symbols": ["EURUSD"], "rate": "10"}]
    await scene.plan("by-path", by_path)
    await scene.plan("by-name", by_name)
    paid_by_path, paid_by_name = await scene.ib("P", "by-path"), await scene.ib("N", "by-name")
    for login, ib in ((1001, paid_by_path), (1002, paid_by_name)):
        await scene.account(login)
        await scene.attribute(login, ib, T0)
    await scene.write_deals(
        [
            trade(11, T0 + 1000, 0, 0, 10000, "1.10000", 7101, login=1001),
            trade(12, T0 + 2000, 1, 1, 10000, "1.10100", 7101, login=1001, closed=10000),
            trade(21, T0 + 1000, 0, 0, 10000, "1.10000", 7201, login=1002),
            trade(22, T0 + 2000, 1, 1, 10000, "1.10100", 7201, login=1002, closed=10000),
        ]
    )
    async with sessions.begin() as session:
        session.add(
            SymbolRow(
                server=SERVER,
                symbol="EURUSD",
                path="Forex\\Majors\\EURUSD",
                calc_mode=0,
                digits=5,
                spread=0,
                contract_size=Decimal(100000),
                point=Decimal("0.00001"),
                currency_base="EUR",
                currency_profit="USD",
                currency_margin="EUR",
                raw={},
                seen_at=datetime.now(UTC),
            )
        )

    await accrue(sessions, PERIOD)

    totals: dict[uuid.UUID, Decimal] = {}
    for _, who, _, _, amount, _ in await _ledger(sessions):
        totals[who] = totals.get(who, Decimal(0)) + amount
    assert totals[paid_by_name] > 0
    assert totals[paid_by_path] == totals[paid_by_name]
