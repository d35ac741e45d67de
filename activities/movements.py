"""What payment and transfer steps share: loading their rows and moving their status with its
audit entry, in the caller's transaction (the move itself: `db.queries.movements`)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity
from temporalio.exceptions import ApplicationError

from contracts.funds import Compensation, MarkMovement, OpenFinanceCase
from db import audit
from db.models import FinanceCase, Payment, Transfer
from db.queries.movements import exists, move_row
from domain.errors import BackOfficeError
from domain.money_flows import MovementKind
from domain.payments import FinanceCaseStatus

# The API commits a payment's row right after starting its workflow: give that commit time, but
# do not wait forever for a request that was rolled back.
MAX_ATTEMPTS_FOR_MISSING_ROW = 20

MovementRow = Payment | Transfer
# The alert: operations watch this logger (a WARNING per finance case opened).
alerts = logging.getLogger("brokerflow.finance_cases")


@asynccontextmanager
async def reading(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session for reads that need no transaction (autocommit): no BEGIN and ROLLBACK round
    trips around them."""
    async with sessions() as session:
        await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        yield session


def as_business_failure(error: BackOfficeError) -> ApplicationError:
    """A refusal of the books (insufficient funds, a reused key) is final: retrying won't help."""
    return ApplicationError(error.detail, type=type(error).__name__, non_retryable=True)


async def load_movement(
    session: AsyncSession, kind: MovementKind, movement_id: uuid.UUID
) -> MovementRow:
    row: MovementRow | None
    if kind is MovementKind.PAYMENT:
        row = await session.get(Payment, movement_id, with_for_update=True)
    else:
        row = await session.get(Transfer, movement_id, with_for_update=True)
    if row is None:
        raise missing(kind, movement_id)
    return row


def missing(kind: MovementKind, movement_id: uuid.UUID) -> ApplicationError:
    """A movement whose row is not there (yet): retried, until it cannot be a commit late."""
    return ApplicationError(
        f"{kind.value} {movement_id} does not exist",
        type="MovementNotFound",
        non_retryable=activity.info().attempt >= MAX_ATTEMPTS_FOR_MISSING_ROW,
    )


async def load_payment(session: AsyncSession, payment_id: uuid.UUID) -> Payment:
    row = await load_movement(session, MovementKind.PAYMENT, payment_id)
    assert isinstance(row, Payment)
    return row


async def apply_mark(session: AsyncSession, mark: MarkMovement) -> None:
    """The movement's new status (with its MT5 ticket or credited amount), unless it is there
    already (a retry of a step that went through): one `UPDATE … RETURNING` and its audit row."""
    values: dict[str, Any] = {}
    details: dict[str, Any] = {}
    if mark.credited is not None:
        details["credited"] = f"{mark.credited.amount} {mark.credited.currency}"
    moved: MovementRow | None
    model: type[MovementRow]
    also: dict[str, Any] = {"details": details, "reason": mark.reason}
    if mark.movement.kind is MovementKind.PAYMENT:
        if mark.mt5_ticket is not None:
            values["mt5_ticket"] = mark.mt5_ticket
            details = {"mt5_ticket": mark.mt5_ticket, **details}
        also["details"] = details
        model = Payment
        moved = await move_row(
            session, Payment, mark.movement.id, mark.status, values=values, **also
        )
    else:
        if mark.credited is not None:
            values["credited_minor"] = mark.credited.to_minor_units()
        model = Transfer
        moved = await move_row(
            session, Transfer, mark.movement.id, mark.status, values=values, **also
        )
    if moved is None and not await exists(session, model, mark.movement.id):
        raise missing(mark.movement.kind, mark.movement.id)


def _listed(step: Compensation) -> dict[str, object]:
    entry: dict[str, object] = {"step": step.step, "what": step.what}
    if step.amount is not None:
        entry["amount"] = str(step.amount.amount)
        entry["currency"] = step.amount.currency
    if step.error is not None:
        entry["error"] = step.error[:2000]
    return entry


async def open_case(session: AsyncSession, request: OpenFinanceCase) -> None:
    """The movement's finance case, once per movement and kind (a retry finds it and adds
    nothing), with its audit row; then the movement's status, in the same transaction."""
    amount = request.amount
    case_id = await session.scalar(
        insert(FinanceCase)
        .values(
            id=uuid.uuid4(),
            movement_kind=request.movement.kind.value,
            movement_id=request.movement.id,
            reference=request.reference,
            client_id=request.client_id,
            kind=request.kind.value,
            status=FinanceCaseStatus.OPEN.value,
            currency=amount.currency if amount is not None else None,
            amount_minor=amount.to_minor_units() if amount is not None else None,
            reason=request.reason[:2000],
            undone=[_listed(step) for step in request.undone],
            not_undone=[_listed(step) for step in request.not_undone],
        )
        .on_conflict_do_nothing(index_elements=["movement_kind", "movement_id", "kind"])
        .returning(FinanceCase.id)
    )
    if case_id is not None:
        audit.record(
            session,
            audit.system_actor(on_behalf_of=str(request.client_id)),
            audit.Change(
                action="finance_case.opened",
                entity_type="finance_case",
                entity_id=str(case_id),
                after={
                    "movement": f"{request.movement.kind.value} {request.movement.id}",
                    "reference": request.reference,
                    "kind": request.kind.value,
                    "amount": None if amount is None else f"{amount.amount} {amount.currency}",
                    "not_undone": [step.what for step in request.not_undone],
                },
                reason=request.reason[:2000],
            ),
        )
        alerts.warning(
            "finance case %s opened (%s) for %s %s, client %s: %s",
            case_id,
            request.kind.value,
            request.movement.kind.value,
            request.reference,
            request.client_id,
            request.reason[:500],
        )
    if request.then is not None:
        await apply_mark(session, request.then)
