"""The movement aggregate (payments and transfers): moving a row's status with its audit entry,
in the caller's transaction, and the payment's processor session that the API and the deposit's
steps both store.

A status move is one `UPDATE … RETURNING` (the status it moved from comes back from a locked
sub-select) plus its audit row, not a load and a flush: each round trip costs the caller's event
loop about a millisecond (docs/payments.md, "Cost per deposit").
"""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from db import audit
from db.models import Client, Payment, Transfer
from domain.payments import PaymentSession, PaymentStatus

MovementRow = Payment | Transfer
# The first key of the two-key advisory locks on a payment's row before it is committed (the
# two-key space is apart from the one-key locks of ledger accounts, `db.ledger.locked_balance`).
UNCOMMITTED_PAYMENT_LOCKS = 0x42465031  # "BFP1"
M = TypeVar("M", Payment, Transfer)


def move(
    session: AsyncSession,
    row: MovementRow,
    status: PaymentStatus,
    *,
    actor: audit.Actor | None = None,
    details: dict[str, Any] | None = None,
    reason: str | None = None,
) -> None:
    """Change a loaded payment's or transfer's status with its audit entry (written at flush)."""
    before = row.status
    row.status = status.value
    if status is PaymentStatus.COMPLETED:
        row.completed_at = datetime.now(UTC)
    if reason is not None:
        row.failure_reason = reason[:2000]
    _audit(session, row, row.id, row.client_id, before, status, actor, details, reason)


async def move_row(
    session: AsyncSession,
    model: type[M],
    row_id: uuid.UUID,
    status: PaymentStatus,
    *,
    values: dict[str, Any] | None = None,
    where: Sequence[ColumnElement[bool]] = (),
    actor: audit.Actor | None = None,
    details: dict[str, Any] | None = None,
    reason: str | None = None,
) -> M | None:
    """Move the row to `status` (with `values`) unless it is there already or `where` does not
    hold, as one `UPDATE … RETURNING`, and record the audit entry `move` would: the row as
    updated, or None when nothing moved (absent, already there, or `where` false; see `exists`).
    Objects of `model` already loaded in `session` are not refreshed: call it on rows the
    session has not loaded."""
    locked = (
        select(model.id, model.status.label("before"))
        .where(model.id == row_id)
        .with_for_update()
        .subquery()
    )
    changes: dict[str, Any] = {"status": status.value, **(values or {})}
    if status is PaymentStatus.COMPLETED:
        changes["completed_at"] = datetime.now(UTC)
    if reason is not None:
        changes["failure_reason"] = reason[:2000]
    moved = (
        await session.execute(
            update(model)
            .where(model.id == locked.c.id, locked.c.before != status.value, *where)
            .values(changes)
            .returning(model, locked.c.before)
            .execution_options(populate_existing=True, synchronize_session=False)
        )
    ).first()
    if moved is None:
        return None
    row: M = moved[0]
    _audit(session, row, row_id, row.client_id, moved[1], status, actor, details, reason)
    return row


async def exists(session: AsyncSession, model: type[MovementRow], row_id: uuid.UUID) -> bool:
    return await session.scalar(select(model.id).where(model.id == row_id)) is not None


def _audit(
    session: AsyncSession,
    row: MovementRow,
    row_id: uuid.UUID,
    client_id: uuid.UUID,
    before: str,
    status: PaymentStatus,
    actor: audit.Actor | None,
    details: dict[str, Any] | None,
    reason: str | None,
) -> None:
    kind = "payment" if isinstance(row, Payment) else "transfer"
    audit.record(
        session,
        actor or audit.system_actor(on_behalf_of=str(client_id)),
        audit.Change(
            action=f"{kind}.{status.value}",
            entity_type=kind,
            entity_id=str(row_id),
            before={"status": before},
            after={"status": status.value, **(details or {})},
            reason=reason,
        ),
    )


async def payment_with_client(
    session: AsyncSession, payment_id: uuid.UUID
) -> tuple[Payment, Client] | None:
    """The payment, locked for update until the transaction ends, with its client, in one
    query (the client is not locked)."""
    found = (
        await session.execute(
            select(Payment, Client)
            .join(Client, Client.id == Payment.client_id)
            .where(Payment.id == payment_id)
            .with_for_update(of=Payment)
        )
    ).first()
    return None if found is None else found.tuple()


def session_values(opened: PaymentSession) -> dict[str, Any]:
    """The processor's answer as the payment's columns."""
    return {
        "provider_ref": opened.provider_ref,
        "redirect_url": opened.redirect_url,
        "transfer_reference": opened.transfer_reference,
    }


async def store_session(
    session: AsyncSession, payment_id: uuid.UUID, opened: PaymentSession
) -> Payment | None:
    """The processor's page or reference on the payment, which then awaits its funds, with the
    audit entry of that move; once: None (nothing written) when the payment already has one or
    is absent. The API does it in the deposit request's transaction, the deposit's
    `record_payment_session` step when the request could not."""
    return await move_row(
        session,
        Payment,
        payment_id,
        PaymentStatus.AWAITING_FUNDS,
        values=session_values(opened),
        where=(Payment.provider_ref.is_(None),),
    )


def _lock_key(payment_id: uuid.UUID) -> int:
    # A signed 32-bit key; two payments sharing one only make one wait for the other's commit.
    return zlib.crc32(payment_id.bytes) - (1 << 31)


async def hold_until_committed(session: AsyncSession, payment_id: uuid.UUID) -> None:
    """Taken by the request that inserts the payment, before it starts the payment's workflow:
    released when that request commits or rolls back (`wait_until_committed`)."""
    await session.execute(
        select(func.pg_advisory_xact_lock(UNCOMMITTED_PAYMENT_LOCKS, _lock_key(payment_id)))
    )


async def wait_until_committed(session: AsyncSession, payment_id: uuid.UUID) -> None:
    """Wait (without polling) until the request that inserted the payment has committed or rolled
    back (at once if it has): the caller's next statement then sees its row, or its absence.
    The request holds the lock only while it waits for the workflow's answer and commits (at
    most `api.payments.service.SESSION_WAIT_SECONDS` and a describe), so the wait is short; a
    statement of its own, as READ COMMITTED takes each statement's snapshot at its start."""
    await session.execute(
        select(func.pg_advisory_xact_lock_shared(UNCOMMITTED_PAYMENT_LOCKS, _lock_key(payment_id)))
    )
