"""Rows the accrual stores by reference (a trace template and the row's own values) read back
as the whole trace would: the same JSONB, its keys in the same order, for every reader (the
portal, the statement, the recomputation)."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import Text, cast, delete, func, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities import ib_payout
from activities.ib_accrual import STORED_COLUMNS, copy_escape
from activities.ib_payout import accrue
from db.models.ib import IbCommission, IbCommissionTrace, IntroducingBroker
from domain.ib.rows import Row
from tests.ib_payout.scene import T0, example_scene
from tests.ib_payout.test_accrual import PERIOD


async def test_a_trace_by_reference_reads_back_as_the_whole_trace(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await example_scene(sessions)
    await accrue(sessions, PERIOD)
    async with sessions() as session:
        stored = list(await session.scalars(select(IbCommission).order_by(IbCommission.id)))
        assert len(stored) == 15
        assert all(r.stored_trace is None and r.trace_ref for r in stored)
        templates = await session.scalar(select(func.count()).select_from(IbCommissionTrace))
        assert templates is not None and 0 < templates <= len(stored)
        for r in stored:
            row = Row.model_validate(r.trace["row"])
            assert (row.deal, row.ib, row.level, row.login, row.symbol, row.time) == (
                r.deal,
                str(r.ib_id),
                r.level,
                r.login,
                r.symbol,
                r.deal_time,
            )
            assert (row.plan, row.version, row.amount, row.currency) == (
                r.plan_id,
                r.version,
                r.amount,
                r.currency,
            )
            whole = f'{{"row": {row.model_dump_json()}, "adjustment": null}}'
            as_stored = await session.scalar(select(cast(cast(whole, Text), JSONB)))
            # The same JSONB: equal, and its keys in the same order once read.
            assert json.dumps(r.trace) == json.dumps(as_stored)
            by_query = await session.scalar(
                select(IbCommission.trace).where(IbCommission.id == r.id)
            )
            assert json.dumps(by_query) == json.dumps(as_stored)
        assert stored[0].deal_time >= T0


async def test_an_ib_with_commission_rows_is_not_deleted(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    ibs = await example_scene(sessions)
    await accrue(sessions, PERIOD)
    with pytest.raises(DBAPIError, match="has commission rows"):
        async with sessions.begin() as session:
            await session.execute(delete(IntroducingBroker).where(IntroducingBroker.id == ibs["D"]))


async def test_rows_another_accrual_stored_first_are_skipped_not_refused(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """A batch COPYed straight into the ledger meets rows stored since it looked (here: its
    own): the savepoint falls back to the staging table, which adds nothing."""
    await example_scene(sessions)
    await accrue(sessions, PERIOD)
    async with sessions.begin() as session:
        r = (await session.scalars(select(IbCommission).limit(1))).one()
        values = {c: getattr(r, c) for c in STORED_COLUMNS}
        line = "\t".join(copy_escape(str(values[c])) for c in STORED_COLUMNS) + "\n"
        assert await ib_payout._store(session, [line], [], direct=True) == (0, 0)
        count = await session.scalar(select(func.count()).select_from(IbCommission))
    assert count == 15
