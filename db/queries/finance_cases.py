"""Finance cases as finance works them: a case by id, and the movement it names (a payment, a
transfer or an unmatched-funds item), each optionally locked. Works in the caller's session;
never commits, never audits (`docs/finance-cases.md`)."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from db.models import FinanceCase, Payment, Transfer, UnmatchedFunds

CaseMovement = Payment | Transfer | UnmatchedFunds
MOVEMENT_MODELS: dict[str, type[CaseMovement]] = {
    "payment": Payment,
    "transfer": Transfer,
    "unmatched_funds": UnmatchedFunds,
}


async def case_by_id(
    session: AsyncSession, case_id: uuid.UUID, *, lock: bool = False
) -> FinanceCase | None:
    return await session.get(FinanceCase, case_id, with_for_update=lock)


async def movement_of(
    session: AsyncSession, case: FinanceCase, *, lock: bool = False
) -> CaseMovement | None:
    """The row of the movement `case` names; None for an unknown kind or a missing row."""
    model = MOVEMENT_MODELS.get(case.movement_kind)
    if model is None:
        return None
    return await session.get(model, case.movement_id, with_for_update=lock)
