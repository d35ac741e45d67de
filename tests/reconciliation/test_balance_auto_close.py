"""A `balance_mismatch` case is auto-closed by a later run of its server that checked the
login's balance and found it equal, never by a run that skipped the balance check, nor by a
back-filled earlier day; the case says which run closed it, the close is audited (as a timing
case's). Runs seeded as the matching step leaves them (breaks and the balances snapshot), filed
by the real step; no Temporal."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.reconciliation import ReconciliationSteps
from contracts.reconciliation import FileCases, period_bounds
from db.models import AuditEntry
from db.models.reconciliation import ReconciliationBalance, ReconciliationBreak, ReconciliationRun
from db.models.reconciliation_cases import ReconciliationCase

SERVER = "balance-close"
FIXED, OTHER, STILL = 5100001, 5100002, 5100003
DAY = date(2026, 11, 2)


async def seed_run(
    sessions: async_sessionmaker[AsyncSession],
    day: date,
    *,
    checked: list[int],
    mismatched: list[int],
) -> uuid.UUID:
    """A matched run of `day`: the balances of `checked` snapshot (none: the check skipped),
    a balance break for each of `mismatched`."""
    run_id = uuid.uuid4()
    start, end = period_bounds(day, time(0), 0)
    async with sessions.begin() as session:
        session.add(
            ReconciliationRun(
                id=run_id,
                server=SERVER,
                day=day,
                period_start=start,
                period_end=end,
                window_seconds=300,
                match_window_seconds=3600,
                status="matched",
                matched=0,
                breaks=len(mismatched),
                finished_at=end,
                balances_note=None if checked else "trade ingestion behind: balances unchecked",
            )
        )
        await session.flush()
        for login in checked:
            session.add(
                ReconciliationBalance(
                    run_id=run_id,
                    login=login,
                    currency="USD",
                    mt5_minor=150_000,
                    trading_minor=100_000,
                    read_at=end,
                )
            )
        for login in mismatched:
            session.add(
                ReconciliationBreak(
                    run_id=run_id,
                    type="balance_mismatch",
                    key=f"balance:{login}",
                    amount_minor=5000,
                    currency="USD",
                    login=login,
                    found_in="mt5,ledger",
                    missing_from="",
                    detail="balance test",
                )
            )
    return run_id


async def cases(sessions: async_sessionmaker[AsyncSession]) -> dict[int, ReconciliationCase]:
    async with sessions() as session:
        rows = await session.scalars(
            select(ReconciliationCase).where(ReconciliationCase.server == SERVER)
        )
        return {case.login or 0: case for case in rows}


async def test_a_balance_case_closes_when_a_later_run_finds_the_account_balanced(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    now = datetime(2026, 11, 10, 8, 0, tzinfo=UTC)
    steps = ReconciliationSteps(sessions, {}, now=lambda: now)

    async def file(run_id: uuid.UUID) -> tuple[int, int, int]:
        filed = await steps.file_reconciliation_cases(FileCases(run_id=run_id))
        return filed.opened, filed.carried, filed.auto_closed

    logins = [FIXED, OTHER, STILL]
    first = await seed_run(sessions, DAY, checked=logins, mismatched=logins)
    assert await file(first) == (3, 0, 0)
    # The next day's run skipped the balance check: it says nothing about the balances.
    skipped = await seed_run(sessions, date(2026, 11, 3), checked=[], mismatched=[])
    assert await file(skipped) == (0, 0, 0)
    # A back-fill of the day before the case: balanced then, which says nothing of later.
    earlier = await seed_run(sessions, date(2026, 11, 1), checked=logins, mismatched=[])
    assert await file(earlier) == (0, 0, 0)
    assert {c.status for c in (await cases(sessions)).values()} == {"open"}

    # Two days on: FIXED checked and equal, STILL checked and still off, OTHER not checked.
    later = await seed_run(sessions, date(2026, 11, 4), checked=[FIXED, STILL], mismatched=[STILL])
    assert await file(later) == (0, 1, 1)
    assert await file(later) == (0, 0, 0)  # a retried step changes nothing twice

    found = await cases(sessions)
    assert (found[OTHER].status, found[STILL].status) == ("open", "open")
    assert found[STILL].last_run_id == later
    closed = found[FIXED]
    assert (closed.status, closed.closed_at, closed.last_run_id) == ("auto_closed", now, first)
    assert closed.resolution == (
        f"balanced in the run of 2026-11-04 ({later}): MT5 less trading equals the ledger's mirror"
    )
    async with sessions() as session:
        [audit] = list(
            await session.scalars(
                select(AuditEntry).where(
                    AuditEntry.action == "reconciliation_case.auto_closed",
                    AuditEntry.entity_id == str(closed.id),
                )
            )
        )
    assert audit.before == {"status": "open"}
    assert audit.after == {"status": "auto_closed", "run_id": str(later), "balanced": True}
