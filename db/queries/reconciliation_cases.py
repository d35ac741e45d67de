"""Break cases and runs as finance works them: look-ups by key, lists with filters and paging,
a run's breaks. Works in the caller's session; never commits, never audits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, NamedTuple, TypeVar

from sqlalchemy import Select, String, cast, exists, func, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from db.models.audit import AuditEntry
from db.models.reconciliation import (
    ReconciliationBalance,
    ReconciliationBreak,
    ReconciliationMt5Deal,
    ReconciliationPspRow,
    ReconciliationRun,
)
from db.models.reconciliation_cases import (
    ReconciliationCase,
    ReconciliationCaseComment,
    ReconciliationCaseProposal,
    ReconciliationSignoff,
)
from db.models.staff import StaffUser

T = TypeVar("T", bound=tuple[Any, ...])
OPEN_STATUSES = ("open", "proposed")
CUT_OFF_TIMING = "cut_off_timing"
BALANCE_MISMATCH = "balance_mismatch"


async def open_cases_by_key(
    session: AsyncSession, server: str, keys: Sequence[str], *, lock: bool = False
) -> dict[str, ReconciliationCase]:
    """The open (or proposed) case of each of `keys` on `server` that has one."""
    if not keys:
        return {}
    query = select(ReconciliationCase).where(
        ReconciliationCase.server == server,
        ReconciliationCase.key.in_(list(keys)),
        ReconciliationCase.status.in_(OPEN_STATUSES),
    )
    if lock:
        query = query.with_for_update()
    return {case.key: case for case in await session.scalars(query)}


async def balanced_cases(
    session: AsyncSession, run: ReconciliationRun, *, lock: bool = False
) -> list[ReconciliationCase]:
    """The open (or proposed) `balance_mismatch` cases on the run's server that `run` shows
    balanced: it checked the case's login (a row in its balances snapshot; a run that skipped
    the check has none) and reported no balance break of the case's key. Only cases last seen
    on the run's day or before (a back-filled earlier day says nothing about a later balance)
    and by another run. By login."""
    checked = exists().where(
        ReconciliationBalance.run_id == run.id,
        ReconciliationBalance.login == ReconciliationCase.login,
    )
    broken = exists().where(
        ReconciliationBreak.run_id == run.id,
        ReconciliationBreak.key == ReconciliationCase.key,
    )
    query = (
        select(ReconciliationCase)
        .where(
            ReconciliationCase.server == run.server,
            ReconciliationCase.type == BALANCE_MISMATCH,
            ReconciliationCase.status.in_(OPEN_STATUSES),
            ReconciliationCase.last_day <= run.day,
            ReconciliationCase.last_run_id != run.id,
            checked,
            ~broken,
        )
        .order_by(ReconciliationCase.login, ReconciliationCase.id)
    )
    if lock:
        query = query.with_for_update(of=ReconciliationCase)
    return list(await session.scalars(query))


async def breaks_of_run(session: AsyncSession, run_id: uuid.UUID) -> list[ReconciliationBreak]:
    """A run's breaks in the engine's order (the order they were stored)."""
    rows = await session.scalars(
        select(ReconciliationBreak)
        .where(ReconciliationBreak.run_id == run_id)
        .order_by(ReconciliationBreak.id)
    )
    return list(rows)


@dataclass(frozen=True)
class CaseFilter:
    server: str | None = None
    status: str | None = None
    type: str | None = None
    assignee_id: uuid.UUID | None = None
    run_id: uuid.UUID | None = None
    currency: str | None = None
    opened_before: date | None = None  # first seen on or before this day (ageing)


def _filtered(query: Select[T], wanted: CaseFilter) -> Select[T]:
    if wanted.server is not None:
        query = query.where(ReconciliationCase.server == wanted.server)
    if wanted.status == "unresolved":
        query = query.where(ReconciliationCase.status.in_(OPEN_STATUSES))
    elif wanted.status is not None:
        query = query.where(ReconciliationCase.status == wanted.status)
    if wanted.type is not None:
        query = query.where(ReconciliationCase.type == wanted.type)
    if wanted.assignee_id is not None:
        query = query.where(ReconciliationCase.assignee_id == wanted.assignee_id)
    if wanted.run_id is not None:
        query = query.where(ReconciliationCase.last_run_id == wanted.run_id)
    if wanted.currency is not None:
        query = query.where(ReconciliationCase.currency == wanted.currency)
    if wanted.opened_before is not None:
        query = query.where(ReconciliationCase.first_day <= wanted.opened_before)
    return query


async def cases_oldest_first(
    session: AsyncSession, wanted: CaseFilter, limit: int, offset: int
) -> tuple[list[ReconciliationCase], int]:
    """A page of the cases `wanted` names, the oldest first (then by key), and their count."""
    total = await session.scalar(
        _filtered(select(func.count()).select_from(ReconciliationCase), wanted)
    )
    rows = await session.scalars(
        _filtered(select(ReconciliationCase), wanted)
        .order_by(ReconciliationCase.first_day, ReconciliationCase.key, ReconciliationCase.id)
        .limit(limit)
        .offset(offset)
    )
    return list(rows), int(total or 0)


async def case_comments(
    session: AsyncSession, case_id: uuid.UUID
) -> list[ReconciliationCaseComment]:
    rows = await session.scalars(
        select(ReconciliationCaseComment)
        .where(ReconciliationCaseComment.case_id == case_id)
        .order_by(ReconciliationCaseComment.id)
    )
    return list(rows)


async def proposals_of(
    session: AsyncSession, case_id: uuid.UUID
) -> list[ReconciliationCaseProposal]:
    """Every adjusting entry proposed on the case, the first first."""
    rows = await session.scalars(
        select(ReconciliationCaseProposal)
        .where(ReconciliationCaseProposal.case_id == case_id)
        .order_by(ReconciliationCaseProposal.number)
    )
    return list(rows)


async def last_proposals(
    session: AsyncSession, case_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, ReconciliationCaseProposal]:
    """Each case's latest proposal (whatever became of it), for the cases that have one."""
    if not case_ids:
        return {}
    rows = await session.scalars(
        select(ReconciliationCaseProposal)
        .distinct(ReconciliationCaseProposal.case_id)
        .where(ReconciliationCaseProposal.case_id.in_(list(case_ids)))
        .order_by(ReconciliationCaseProposal.case_id, ReconciliationCaseProposal.number.desc())
    )
    return {p.case_id: p for p in rows}


async def waiting_proposal(
    session: AsyncSession, case_id: uuid.UUID
) -> ReconciliationCaseProposal | None:
    """The case's proposal waiting for a decision (at most one, by a partial unique index),
    locked: the caller decides it. Lock the case first."""
    rows = await session.scalars(
        select(ReconciliationCaseProposal)
        .where(
            ReconciliationCaseProposal.case_id == case_id,
            ReconciliationCaseProposal.status == "proposed",
        )
        .with_for_update()
    )
    return rows.first()


async def next_proposal_number(session: AsyncSession, case_id: uuid.UUID) -> int:
    """The number the case's next proposal gets (1 for its first). Lock the case first."""
    last = await session.scalar(
        select(func.max(ReconciliationCaseProposal.number)).where(
            ReconciliationCaseProposal.case_id == case_id
        )
    )
    return int(last or 0) + 1


async def lapse_waiting_proposals(
    session: AsyncSession, case_ids: Sequence[uuid.UUID], at: datetime, note: str
) -> int:
    """Mark the proposals still waiting on `case_ids` (cases being closed) lapsed: nobody
    decided them before the case closed, and they can no longer be approved."""
    if not case_ids:
        return 0
    done = await session.execute(
        update(ReconciliationCaseProposal)
        .where(
            ReconciliationCaseProposal.case_id.in_(list(case_ids)),
            ReconciliationCaseProposal.status == "proposed",
        )
        .values(status="lapsed", decided_at=at, decision_note=note)
        .returning(ReconciliationCaseProposal.id)
    )
    return len(done.all())


async def other_open_case(
    session: AsyncSession, case: ReconciliationCase
) -> ReconciliationCase | None:
    """Another case open (or proposed) on `case`'s server and key: a later run opened it after
    `case` closed (at most one case per key is open)."""
    rows = await session.scalars(
        select(ReconciliationCase).where(
            ReconciliationCase.server == case.server,
            ReconciliationCase.key == case.key,
            ReconciliationCase.status.in_(OPEN_STATUSES),
            ReconciliationCase.id != case.id,
        )
    )
    return rows.first()


async def case_trail(session: AsyncSession, case_id: uuid.UUID) -> list[AuditEntry]:
    """The case's audit rows, the oldest first: its history (opened, assigned, proposals and
    their decisions, each closing and reopening)."""
    rows = await session.scalars(
        select(AuditEntry)
        .where(
            AuditEntry.entity_type == "reconciliation_case",
            AuditEntry.entity_id == str(case_id),
        )
        .order_by(AuditEntry.id)
        .limit(500)
    )
    return list(rows)


async def runs_newest_first(
    session: AsyncSession, server: str | None, limit: int, offset: int
) -> tuple[list[tuple[ReconciliationRun, ReconciliationSignoff | None]], int]:
    """A page of runs, the newest day first, each with its sign-off if it has one."""
    count = select(func.count()).select_from(ReconciliationRun)
    query = select(ReconciliationRun, ReconciliationSignoff).outerjoin(
        ReconciliationSignoff, ReconciliationSignoff.run_id == ReconciliationRun.id
    )
    if server is not None:
        count = count.where(ReconciliationRun.server == server)
        query = query.where(ReconciliationRun.server == server)
    total = await session.scalar(count)
    rows = await session.execute(
        query.order_by(
            ReconciliationRun.day.desc(), ReconciliationRun.created_at.desc(), ReconciliationRun.id
        )
        .limit(limit)
        .offset(offset)
    )
    return [(run, signoff) for run, signoff in rows.tuples()], int(total or 0)


async def run_cases_open(session: AsyncSession, run_id: uuid.UUID) -> int:
    """How many cases last seen in `run_id` are still unresolved."""
    total = await session.scalar(
        select(func.count())
        .select_from(ReconciliationCase)
        .where(
            ReconciliationCase.last_run_id == run_id,
            ReconciliationCase.status.in_(OPEN_STATUSES),
        )
    )
    return int(total or 0)


async def open_or_last_cases(
    session: AsyncSession, server: str, keys: Sequence[str]
) -> dict[str, ReconciliationCase]:
    """For each of `keys` on `server`: its open case, else its most recently opened one."""
    if not keys:
        return {}
    rows = await session.scalars(
        select(ReconciliationCase)
        .where(ReconciliationCase.server == server, ReconciliationCase.key.in_(list(set(keys))))
        .order_by(ReconciliationCase.created_at, ReconciliationCase.id)
    )
    found: dict[str, ReconciliationCase] = {}
    for case in rows:
        known = found.get(case.key)
        if known is None or known.status not in OPEN_STATUSES:
            found[case.key] = case
    return found


class ReportInputs(NamedTuple):
    """What a run's report shows (`reports.reconciliation.build_report`)."""

    run: ReconciliationRun
    breaks: list[ReconciliationBreak]
    cases: dict[str, ReconciliationCase]
    signed_off: str  # "signed off by … at … UTC: note", or ""
    deals: int
    settlement_rows: int
    balances: int


async def report_inputs(session: AsyncSession, run: ReconciliationRun) -> ReportInputs:
    signoff = await session.get(ReconciliationSignoff, run.id)
    signed = ""
    if signoff is not None:
        staff = await session.get(StaffUser, signoff.staff_id)
        who = staff.full_name if staff else str(signoff.staff_id)
        signed = f"signed off by {who} at {signoff.signed_at:%Y-%m-%d %H:%M} UTC: {signoff.note}"
    breaks = await breaks_of_run(session, run.id)

    async def count(query: Select[tuple[int]]) -> int:
        return int(await session.scalar(query) or 0)

    return ReportInputs(
        run,
        breaks,
        await open_or_last_cases(session, run.server, [b.key for b in breaks]),
        signed,
        await count(select(func.count()).where(ReconciliationMt5Deal.run_id == run.id)),
        await count(select(func.count()).where(ReconciliationPspRow.run_id == run.id)),
        await count(select(func.count()).where(ReconciliationBalance.run_id == run.id)),
    )


async def alerted_cases_opened_by(
    session: AsyncSession, run_id: uuid.UUID
) -> list[ReconciliationCase]:
    """The alerted cases run `run_id` opened, by type and key."""
    rows = await session.scalars(
        select(ReconciliationCase)
        .where(ReconciliationCase.first_run_id == run_id, ReconciliationCase.alerted.is_(True))
        .order_by(ReconciliationCase.type, ReconciliationCase.key)
    )
    return list(rows)


async def finance_emails(session: AsyncSession) -> list[str]:
    """The addresses of active staff users with the finance role, sorted."""
    rows = await session.scalars(
        select(StaffUser.email).where(
            StaffUser.active.is_(True),
            StaffUser.roles.overlap(cast(["finance"], ARRAY(String(32)))),
        )
    )
    return sorted(rows.all())
